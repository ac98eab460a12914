"""``livebokeh bench quality``: what each mask step buys, per backend, on the evaluation data.

Rows: the raw model output (bilinear upsampling, probability > 0.5) and livebokeh's mask with
every step, and with each step taken out. Files a measured model was trained on (its
``trained_on``: the clips and portraits of livebokeh's DeepLab-v3+ decoder) are left out for every
backend of the run. Columns (metrics of ``../shared/data/README.md``):

- IoU and Boundary IoU on ``stills/`` and ``portraits/`` (reference alpha > 0.5);
- flicker on still content over ``videos/`` (per mille; lower is steadier);
- per-frame IoU and flicker against the chroma key of ``d0_greenscreen.mp4`` (no lag, no shimmer);
  clips are scored inside their picture, without letterbox bars (:func:`~livebokeh.bench.metrics.picture_area`);
- per-frame IoU on fast motion with an exact reference: each portrait composited over a textured
  background and slid across a 1280x720 frame at :data:`MOVING_SPEED` pixels a frame (what the
  talking-head clips, which move slowly, cannot show: a mask that trails).

The cost row times the smoothing and refinement of one 1280x720 frame beside the raw path.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from livebokeh.bench.common import machine, missing_data, table, video_frames, weights_only
from livebokeh.bench.metrics import boundary_iou, chroma_key, flicker_still, flicker_vs_reference, iou, picture_area
from livebokeh.config import Config, MaskConfig, RenderConfig
from livebokeh.errors import LivebokehError
from livebokeh.mask import (
    LookaheadSmoother,
    MaskSmoother,
    refine_alpha,
    resolve_auto,
    small_gray,
    upsample,
)
from livebokeh.segment import SegmenterOptions, create_segmenter
from livebokeh.segment.passes import extent
from livebokeh.types import Frame, Mask

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Variant:
    label: str
    cfg: MaskConfig | None  # None = the raw model output
    file_mode: bool = False
    flip_guided: bool = False  # the guided filter the other way than ``auto`` picks for the backend
    #: Live with the model resting (:attr:`~livebokeh.types.SegmenterTraits.live_duty`): it sees
    #: one frame in this many, and the frames between get its newest mask moved by optical flow.
    model_every: int = 1


#: The model's share of the frames in the resting-live row (RVM on the CPU: about 11 runs a
#: second of a 30 fps camera, each finished about 2 frames after it started).
LIVE_EVERY = 3


def variants(base: MaskConfig) -> list[Variant]:
    r = dataclasses.replace
    return [
        Variant("raw model output", None),
        Variant("livebokeh live (all steps)", base),
        Variant("  without temporal smoothing", r(base, smoothing=0.0)),
        Variant("  without flow (plain blend)", r(base, flow=False)),
        Variant("  guided filter the other way (on/off)", base, flip_guided=True),
        Variant("  without island removal", r(base, islands=0.0)),
        Variant("livebokeh file, look-ahead 2", r(base, lookahead=2), file_mode=True),
        Variant(f"livebokeh live, model on 1 frame in {LIVE_EVERY} (the live matte between)", base,
                model_every=LIVE_EVERY),
    ]


def _resolve(v: Variant, seg) -> Variant:
    """The variant with a concrete guided setting for this backend."""
    if v.cfg is None:
        return v
    cfg = resolve_auto(v.cfg, seg.traits)
    if v.flip_guided:
        cfg = dataclasses.replace(cfg, guided="off" if cfg.guided == "on" else "on")
    return dataclasses.replace(v, cfg=cfg)


def _alpha(prob: np.ndarray, image: np.ndarray, cfg: MaskConfig | None) -> np.ndarray:
    if cfg is None:
        return upsample(prob, (image.shape[1], image.shape[0]))
    return refine_alpha(prob, image, cfg)


def _smoother(v: Variant):
    if v.cfg is None:
        return None
    if v.file_mode and v.cfg.lookahead > 0 and v.cfg.smoothing > 0:
        return LookaheadSmoother(v.cfg.smoothing, v.cfg.lookahead, v.cfg.flow)
    return MaskSmoother(v.cfg.smoothing, v.cfg.flow)


def _read_pairs(pairs, said: set | None = None):
    """``(photo, 8-bit reference)`` for each pair that can be scored (:func:`read_pairs`; ``said``:
    the pairs already said to be left out)."""
    from livebokeh.bench.common import read_pairs

    for img, ref, _path in read_pairs(pairs, said):
        yield img, ref


def _photos(seg, pairs, vs: list[Variant], kind: str, acc: dict, said: set | None = None) -> None:
    for img, ref in _read_pairs(pairs, said):
        seg.reset()  # each photo on its own
        gt = ref > 127
        raw, prob = _both(seg, img)
        cache: dict = {}
        for v in vs:
            key = None if v.cfg is None else dataclasses.replace(v.cfg, smoothing=0.0, lookahead=0, flow=False)
            if key not in cache:
                pred = _alpha(raw if v.cfg is None else prob, img, v.cfg) > 0.5
                cache[key] = (iou(pred, gt), boundary_iou(pred, gt))
            i, b = cache[key]
            acc[v.label][f"{kind}_iou"].append(i)
            acc[v.label][f"{kind}_biou"].append(b)


def _both(seg, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The model's own output (one pass) and livebokeh's segmenter output (with the ROI pass if on;
    for a stateful model with its warmed-up memory, kept apart from the raw one's)."""
    raw = seg.model_output(image)
    extra = (seg.options.roi and seg.traits.roi_helps) or seg.options.tta or seg.traits.stateful
    return raw, (seg.segment(image).data if extra else raw)


class _Streams:
    """Streaming flicker sums for one variant over one clip (whole clips never sit in memory)."""

    def __init__(self) -> None:
        self.prev_alpha = None
        self.prev_luma = None
        self.prev_ref = None
        self.still: list[float] = []
        self.ref_flicker: list[float] = []
        self.ious: list[float] = []

    def add(self, alpha: np.ndarray, luma: np.ndarray, ref: np.ndarray | None) -> None:
        if self.prev_alpha is not None:
            self.still.append(flicker_still([self.prev_alpha, alpha], [self.prev_luma, luma]))
            if ref is not None:
                self.ref_flicker.append(flicker_vs_reference([self.prev_alpha, alpha], [self.prev_ref, ref]))
        if ref is not None:
            self.ious.append(iou(alpha > 0.5, ref > 0.5))
        self.prev_alpha, self.prev_luma, self.prev_ref = alpha, luma, ref


#: Speed of the moving portraits, in pixels of a 1280x720 frame per frame (a quick lean or turn).
MOVING_SPEED = 24
#: Frames of each moving sequence, and the first ones left out (the smoothing's start).
MOVING_FRAMES, MOVING_SKIP = 24, 4


@functools.lru_cache(maxsize=2)
def _texture(size: tuple[int, int]) -> np.ndarray:
    """The moving portraits' background, ``(H, W, 3)`` uint8, read-only: smooth colour waves with
    fine noise (made once per size, not once per portrait)."""
    W, H = size
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    bg = np.dstack([90 + 60 * np.sin(xx / 97), 120 + 50 * np.cos(yy / 61), 140 + 40 * np.sin((xx + yy) / 150)])
    noise = cv2.GaussianBlur(rng.normal(0, 25, (H, W, 3)).astype(np.float32), (0, 0), 2)
    bg = np.clip(bg + noise, 0, 255).astype(np.uint8)
    bg.flags.writeable = False
    return bg


def moving_sequence(image: np.ndarray, alpha: np.ndarray, frames: int, speed: int = MOVING_SPEED,
                    size: tuple[int, int] = (1280, 720)) -> list[tuple[np.ndarray, np.ndarray]]:
    """A portrait sliding left to right over a textured background: ``(frame, reference alpha)``.

    The person (the alpha's bounding box, a 10% margin) is framed as a webcam frames it: 85% of
    the frame's height, standing on its bottom edge.

    Args:
        image: ``(h, w, 3)`` uint8 portrait; alpha: ``(h, w)`` its float32 alpha in ``[0, 1]``.
        frames: length; speed: pixels a frame.

    Returns:
        ``frames`` pairs of a ``(H, W, 3)`` uint8 frame and its ``(H, W)`` float32 alpha.
    """
    W, H = size
    box = extent(alpha > 0.5)
    if box is not None:
        x0, y0, x1, y1 = box
        mx, my = round(0.1 * (x1 - x0)), round(0.1 * (y1 - y0))
        ys, xs = slice(max(0, y0 - my), min(alpha.shape[0], y1 + my)), slice(max(0, x0 - mx), min(alpha.shape[1], x1 + mx))
        image, alpha = image[ys, xs], alpha[ys, xs]
    bg = _texture(size)
    h = round(H * 0.85)
    w = min(W // 2, round(image.shape[1] * h / image.shape[0]))
    img = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)
    a = cv2.resize(alpha, (w, h), interpolation=cv2.INTER_AREA)[:, :, None]
    out = []
    for t in range(frames):
        x0 = min(W - w, speed * t)
        frame, ref = bg.copy(), np.zeros((H, W), np.float32)
        region = frame[H - h :, x0 : x0 + w].astype(np.float32)
        frame[H - h :, x0 : x0 + w] = np.clip(img * a + region * (1 - a) + 0.5, 0, 255).astype(np.uint8)
        ref[H - h :, x0 : x0 + w] = a[:, :, 0]
        out.append((frame, ref))
    return out


def camera_move(image: np.ndarray, ref: np.ndarray, frames: int, size: tuple[int, int] = (1280, 720),
                seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """A hand-held camera moving over a photo: a slow pan and zoom (eased in and out) of a 16:9
    window inside it, ``(frame, reference)`` pairs.

    Args:
        image: ``(h, w, 3)`` uint8 photo; ref: ``(h, w)`` its mask (any dtype), moved alike.
        frames: length; size: ``(W, H)`` of the frames; seed: picks the move (repeatable).

    Returns:
        ``frames`` pairs of a ``(H, W, 3)`` uint8 frame and its ``(H, W)`` reference, ``ref``'s dtype.
    """
    rng = np.random.default_rng(seed)
    h, w = image.shape[:2]
    aspect = size[0] / size[1]
    full = min(w, h * aspect)
    widths = full * rng.uniform(0.75, 0.95), full * rng.uniform(0.6, 0.9)
    x0, y0 = rng.uniform(0.4, 0.6) * w, rng.uniform(0.4, 0.6) * h
    x1, y1 = x0 + rng.uniform(-0.15, 0.15) * w, y0 + rng.uniform(-0.1, 0.1) * h
    out = []
    for i in range(frames):
        a = 0.5 - 0.5 * np.cos(np.pi * i / max(1, frames - 1))
        cw = widths[0] + (widths[1] - widths[0]) * a
        ch = cw / aspect
        cx = min(max(x0 + (x1 - x0) * a, cw / 2), w - cw / 2)
        cy = min(max(y0 + (y1 - y0) * a, ch / 2), h - ch / 2)
        k = size[0] / cw
        m = np.array([[k, 0, -(cx - cw / 2) * k], [0, k, -(cy - ch / 2) * k]], np.float32)
        out.append((cv2.warpAffine(image, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT),
                    cv2.warpAffine(ref, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)))
    return out


def _moving(seg, pairs, vs: list[Variant], limit: int, acc: dict, said: set | None = None) -> None:
    for img, ref in _read_pairs(pairs, said):
        seg.reset()  # each sequence is a stream of its own
        seq = moving_sequence(img, ref.astype(np.float32) / 255, min(MOVING_FRAMES, max(MOVING_SKIP + 2, limit)))
        frames = [f for f, _ in seq]
        for v, masks in _smoothed(seg, frames, vs):
            for t in range(MOVING_SKIP, len(seq)):
                acc[v.label]["moving_iou"].append(iou(_alpha(masks[t], frames[t], v.cfg) > 0.5, seq[t][1] > 0.5))


def _smoothed(seg, frames: list[np.ndarray], vs: list[Variant]):
    """Each variant with its masks for ``frames`` (model resolution), smoothed as it smooths them."""
    both = [_both(seg, f) for f in frames]
    raws, probs = [b[0] for b in both], [b[1] for b in both]
    h, w = probs[0].shape
    grays = [small_gray(f, (w, h)) for f in frames]
    for v in vs:
        sm = _smoother(v)
        if v.model_every > 1:
            # the live matte's masks are alphas already (each result stretched by the model's
            # levels): refined as the live path refines them, not stretched a second time
            shown = dataclasses.replace(v, cfg=dataclasses.replace(v.cfg, low=0.0, high=1.0))
            yield shown, _resting_live(seg, frames, v.cfg, v.model_every)
        elif isinstance(sm, LookaheadSmoother):
            done = []
            for t, (p, g) in enumerate(zip(probs, grays)):
                done += sm.push(t, Mask(p), g)
            done += sm.flush()
            yield v, [m.data for _, m in done]
        elif sm is not None:
            yield v, [sm.update(Mask(p), g).data for p, g in zip(probs, grays)]
        else:
            yield v, raws


def _resting_live(seg, frames, cfg: MaskConfig, every: int) -> list[np.ndarray]:
    """What the live pipeline shows when the model takes one frame in ``every`` and its result
    comes ``every - 1`` frames later: the live path's own :class:`FrameProcessor` (its
    :meth:`~FrameProcessor.segment` on the frames the model takes, :meth:`~FrameProcessor.follow`
    on every frame: the live matte), on a schedule instead of the clock. The frames before the
    first result get the first mask shown (the start is no flicker). A stateful model runs on
    those frames alone, from a fresh memory: what it remembers is what it saw."""
    from livebokeh.controls import LiveControls
    from livebokeh.pipeline.processor import FrameProcessor

    seg.reset()
    proc = FrameProcessor(seg, cfg, LiveControls(RenderConfig()), live=True)
    pending: dict[int, object] = {}
    newest = None
    out: list[np.ndarray | None] = []
    for t, image in enumerate(frames):
        frame = Frame(image, t, 0)
        newest = pending.pop(t, newest)
        if t % every == 0:
            pending[t + every - 1] = proc.segment(frame)
        if every == 1:
            newest = pending.pop(t)
        shown = proc.follow(newest, frame) if newest is not None else None
        out.append(None if shown is None else shown.mask.data)
    first = next(m for m in out if m is not None)
    return [first if m is None else m for m in out]


def _clips(seg, clips: list[Path], vs: list[Variant], limit: int, acc: dict) -> None:
    for clip in clips:
        frames = video_frames(clip, limit)
        if len(frames) < 2:
            continue
        seg.reset()
        keyed = clip.stem.endswith("greenscreen")
        area = picture_area(frames)  # the model sees whole frames; the metrics skip letterbox bars
        lumas = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY)[area] for f in frames]
        refs = [chroma_key(f)[area] for f in frames] if keyed else [None] * len(frames)
        for v, masks in _smoothed(seg, frames, vs):
            st = _Streams()
            for t, m in enumerate(masks):
                st.add(_alpha(m, frames[t], v.cfg)[area], lumas[t], refs[t])
            acc[v.label]["flicker_videos"].extend(st.still)
            if keyed:
                acc[v.label]["gs_iou"].extend(st.ious)
                acc[v.label]["gs_flicker"].extend(st.ref_flicker)


def cost(base: MaskConfig, frames: list[np.ndarray], seg) -> dict:
    """ms per frame: smoothing + refinement, and the raw path (bilinear upsampling), on the same frames."""
    probs = [seg.segment(f).data for f in frames]
    h, w = probs[0].shape
    sm = MaskSmoother(base.smoothing, base.flow)

    def ours(i: int) -> None:
        g = small_gray(frames[i], (w, h)) if base.flow and base.smoothing > 0 else None
        m = sm.update(Mask(probs[i]), g)
        refine_alpha(m.data, frames[i], base)

    def raw(i: int) -> None:
        upsample(probs[i], (frames[i].shape[1], frames[i].shape[0]))

    out = {}
    for name, fn in (("ours", ours), ("raw", raw)):
        for i in range(min(3, len(frames))):
            fn(i)
        t0 = time.perf_counter()
        for i in range(len(frames)):
            fn(i)
        out[name] = (time.perf_counter() - t0) / len(frames) * 1e3
    out["added_ms"] = out["ours"] - out["raw"]
    return out


def run(data: Path, backends: list[str], cfg: Config | None = None, clip_frames: int = 100000,
        stills_step: int = 1, base: MaskConfig | None = None, base_tta: str = "auto") -> dict:
    """Every variant of :func:`variants` for each backend; ``cfg`` gives the weights files."""
    cfg = cfg or Config()
    base = base or MaskConfig()
    vs = variants(base)
    configurations = _configurations(backends, cfg)
    left_out = _trained_on(configurations)
    clips = [c for c in sorted((data / "videos").glob("*.mp4")) if c.name not in left_out]
    stills = [(p, p.with_suffix(".png")) for p in sorted((data / "stills").glob("hs_*.jpg"))
              if p.name not in left_out][::stills_step]
    portraits = [(p, p.with_suffix(".png")) for p in sorted((data / "portraits").glob("p_*.jpg"))
                 if p.name not in left_out]
    if not (clips or stills or portraits):  # every table would be empty
        raise missing_data("clips, stills or portraits", data, "videos/*.mp4, stills/hs_*.jpg or portraits/p_*.jpg "
                           "(the pictures with their .png masks)")
    report: dict = {"machine": machine(), "mask_config": dataclasses.asdict(base), "backends": {},
                    "left_out": sorted(left_out)}
    said: set = set()  # the pairs left out (each said once, not again for each backend)
    for label, backend, live, own in configurations:
        try:
            seg = create_segmenter(backend, SegmenterOptions(threads=2, serial_threads=2, live=live, own=own))
        except LivebokehError as err:
            log.warning("%s: skipped (%s)", label, err)
            continue
        acc = {v.label: {k: [] for k in ("stills_iou", "stills_biou", "portraits_iou", "portraits_biou",
                                         "flicker_videos", "gs_iou", "gs_flicker", "moving_iou")} for v in vs}
        vs_b = [_resolve(v, seg) for v in vs]
        # photos get what a single image gets from the command line (tta = "auto": on)
        photo_seg = create_segmenter(backend, dataclasses.replace(seg.options, tta=base_tta != "off"))
        with seg, photo_seg:
            _photos(photo_seg, stills, vs_b, "stills", acc, said)
            _photos(photo_seg, portraits, vs_b, "portraits", acc, said)
            _clips(seg, clips, vs_b, clip_frames, acc)
            _moving(seg, portraits, vs_b, clip_frames, acc, said)
            office = data / "videos" / "office720p.mp4"
            seg.reset()
            c = cost(resolve_auto(base, seg.traits), video_frames(office, 60), seg) if office.is_file() else None
        rows = []
        for v in vs:
            row = {"variant": v.label}
            for k, vals in acc[v.label].items():
                row[k] = float(np.mean(vals)) if vals else None
            rows.append(row)
        report["backends"][label] = {"rows": rows, "cost_720p": c, "input": list(seg.input_size)}
        log.info("%s done", label)
    return report


def _trained_on(configurations: list[tuple[str, str, bool, object]]) -> frozenset[str]:
    """The evaluation files any measured model was trained on: left out for every row, so that
    the rows stay comparable and none is scored on what it learnt from."""
    out: frozenset[str] = frozenset()
    for _label, backend, live, own in configurations:
        try:
            with create_segmenter(backend, SegmenterOptions(live=live, own=own)) as seg:
                out |= seg.trained_on
        except LivebokehError:
            continue  # reported when the row is measured
    return out


def _configurations(backends: list[str], cfg: Config) -> list[tuple[str, str, bool, object]]:
    """``(label, backend, live, own options)`` to measure: each backend as it runs on files and
    photos, and again as it runs live when it runs otherwise there (a model that rests live, RVM on
    the CPU, also runs smaller: ``"rvm, live"``); DeepLab twice, with livebokeh's decoder
    (``"deeplab v3+"``) and as Google released it (``"deeplab v3"``)."""
    out = []
    for backend in backends:
        own = weights_only(backend, cfg)
        if backend == "deeplab":  # the two networks side by side
            out.append(("deeplab v3+", backend, False, dataclasses.replace(own, decoder="on")))
            out.append(("deeplab v3", backend, False, dataclasses.replace(own, decoder="off")))
        else:
            out.append((backend, backend, False, own))
        try:
            with create_segmenter(backend, SegmenterOptions(live=True, own=weights_only(backend, cfg))) as seg:
                rests = seg.traits.live_duty < 1
        except LivebokehError:
            rests = False  # reported when the files configuration is built
        if rests:
            out.append((f"{backend}, live", backend, True, own))
    return out


COLUMNS = [
    ("variant", "mask", ""),
    ("stills_iou", "stills IoU", ".3f"),
    ("stills_biou", "stills BIoU", ".3f"),
    ("portraits_iou", "portraits IoU", ".3f"),
    ("portraits_biou", "portraits BIoU", ".3f"),
    ("flicker_videos", "flicker videos (‰)", ".2f"),
    ("gs_iou", "greenscreen IoU", ".3f"),
    ("gs_flicker", "greenscreen flicker vs key (‰)", ".2f"),
    ("moving_iou", f"moving portraits IoU ({MOVING_SPEED} px/frame)", ".3f"),
]


def render(report: dict) -> str:
    parts = []
    for backend, b in report["backends"].items():
        size = "x".join(map(str, b["input"])) if b.get("input") else "?"
        parts.append(f"### {backend} (model input {size} for a 1280x720 frame)\n\n{table(b['rows'], COLUMNS)}")
        c = b.get("cost_720p")
        if c:
            parts.append(f"cost per 1280x720 frame: smoothing + refinement {c['ours']:.2f} ms, raw upsampling "
                         f"{c['raw']:.2f} ms, added {c['added_ms']:.2f} ms")
    if report.get("left_out"):
        parts.append("Left out of every row (a measured model was trained on them: livebokeh's DeepLab-v3+ "
                     f"decoder): {', '.join(report['left_out'])}")
    parts.append(report["machine"])
    return "\n\n".join(parts)
