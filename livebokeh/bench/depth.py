"""``livebokeh bench depth``: the blur by depth (``--depth``) against what is known of a scene.

- **Blur against depth**, on a generated room (:mod:`livebokeh.bench.depth_scene`: a plank
  floor and a brick wall in perspective, each pixel's distance known) with a person from
  ``portraits/`` standing on the floor: the picture goes through the real
  :class:`~livebokeh.pipeline.processor.FrameProcessor` with the depth model (as a photo: the
  person's matte is the one they were cut out with, so what is measured is the depth). In
  patches of :data:`PATCH` px of the background (a band around the person left out), the blur
  radius the output shows is estimated by matching the patch to the empty room blurred by the
  same lens at a ladder of radii; its rank correlation (Spearman) with the distance from the
  focus plane, ``|1/Z - 1/Z_person|`` (what a lens's blur follows), must be at least 0.9. The
  detail kept (variance of the Laplacian, output over input) on the floor within 10% of the
  person's distance must be at least twice the far wall's. The same with the ideal depth (the
  scene's own, no model) and, for reference, without depth.
- **The person's detail**: variance of the Laplacian inside the matte, with depth over without
  (target within 2%).
- **Flicker** on still clips: the room with sensor noise (sigma 2 levels) and real clips from
  ``videos/`` (a person talking, the camera still), as files (the model on every frame) and as a
  live stream (the processor's live path on a fixed schedule: the segmenter on every second
  frame, the depth model at :data:`livebokeh.depth.LIVE_RATE` a second, masks and depth moved by
  flow). On the pixels outside the person whose luminance changed by less than 2 levels, the mean
  ``|c_t - c_(t-1)|`` of the circle of confusion the renderer used, as a share of its mean
  (target below 2%).
- **Cost**: CPU time (this thread's) of the render step at 1280x720 with and without depth, of
  the plate by levels against a per-pixel gather (:func:`gather_plate`), of a depth model call
  and of the tracker; from them the live cost at 30 fps in cores; and the whole pipeline, paced
  at 30 fps and on a file, with and without depth, side by side.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from livebokeh.bench.common import machine, missing_data, table, video_frames
from livebokeh.bench.depth_scene import TURNED, WALL, Scene, room, scene
from livebokeh.config import Config, MaskConfig, RenderConfig
from livebokeh.controls import LiveControls
from livebokeh.depth import LIVE_RATE, DepthEstimator, DepthOptions, DepthTracker
from livebokeh.errors import ConfigError
from livebokeh.pipeline.processor import FrameProcessor, Segmented
from livebokeh.render import blur_background, circle_of_confusion, far_and_max_radius
from livebokeh.render.defocus import defocus_background
from livebokeh.render.plate import background_plate, plate_to_frame, reduction
from livebokeh.types import Frame, Mask, SegmenterTraits

log = logging.getLogger(__name__)

#: Portraits of people seen whole (feet or ankles in the picture), with their height in metres
#: as the picture shows them (the first is cut at the shoulders).
PORTRAITS = {"p_0865636e": 1.45, "p_819ea202": 1.7}
#: Metres from the camera to the person in the generated room.
DISTANCE = 2.5
#: Side of the patches whose blur is estimated, in pixels of 1280x720.
PATCH = 32
#: Bins of the distance from the focus plane for :func:`binned_correlation`.
BINS = 12
#: Width of the band around the person left out of the patches and regions, px.
MARGIN = 24
#: Clips with a still camera for the flicker.
CLIPS = ("office720p.mp4", "d3.mp4", "d6.mp4")
#: Live schedule: the segmenter runs on one frame in this many (RVM on a CPU: about 12 a second).
MODEL_EVERY = 2


class _GivenMatte:
    """A segmenter that gives each frame a known matte (the scene's), at 640 px wide."""

    traits = SegmenterTraits(matte=True)

    def __init__(self, alphas: Sequence[np.ndarray]) -> None:
        self._alphas = [cv2.resize(a, (640, max(2, round(640 * a.shape[0] / a.shape[1]))), interpolation=cv2.INTER_AREA)
                        for a in alphas]

    def segment_frame(self, frame: Frame) -> Mask:
        return Mask(self._alphas[frame.index % len(self._alphas)])


#: The mask settings of given mattes (as ``--mask`` uses them): the matte is final.
GIVEN = MaskConfig(low=0.0, high=1.0, feather=0.0, smoothing=0.0, guided="off", islands=0.0, lookahead=0)


def processor(segmenter: Any, render: RenderConfig, tracker: DepthTracker | None, live: bool = False,
              mask_cfg: MaskConfig = GIVEN, fps: float = 30.0) -> FrameProcessor:
    """The processor a run would use, with ``tracker`` for its depth."""
    controls = LiveControls(render, can_depth=tracker is not None)
    return FrameProcessor(segmenter, mask_cfg, controls, live=live, fps=fps, depth=tracker)


def as_files(proc: FrameProcessor, images: Sequence[np.ndarray], fps: float = 30.0) -> Iterator[Segmented]:
    """``images`` through ``proc`` as a file: every frame segmented and smoothed, in order."""
    for i, image in enumerate(images):
        frame = Frame(image, i, round(i * 1e9 / fps), time_s=i / fps)
        yield from proc.smooth(proc.segment(frame))
    yield from proc.flush()


def as_live(proc: FrameProcessor, images: Sequence[np.ndarray], fps: float = 30.0,
            model_every: int = MODEL_EVERY) -> Iterator[Segmented]:
    """``images`` through ``proc``'s live path (as :class:`~livebokeh.pipeline.live.LiveScheduler`
    calls it) on a fixed schedule: the model on one frame in ``model_every`` (the depth model when
    its tracker says it is due), every frame followed."""
    latest = None
    for i, image in enumerate(images):
        frame = Frame(image, i, round(i * 1e9 / fps))
        if i % model_every == 0:
            latest = proc.segment(frame)
        yield proc.follow(latest, frame)


# -- blur against depth ---------------------------------------------------------------------


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation (ties get their mean rank)."""
    def ranks(v: np.ndarray) -> np.ndarray:
        order = np.argsort(v, kind="stable")
        r = np.empty(len(v), np.float64)
        r[order] = np.arange(len(v), dtype=np.float64)
        _, inverse, counts = np.unique(v, return_inverse=True, return_counts=True)
        sums = np.bincount(inverse, weights=r)
        return sums[inverse] / counts[inverse]

    rx, ry = ranks(np.asarray(x, np.float64)), ranks(np.asarray(y, np.float64))
    if rx.std() == 0 or ry.std() == 0:
        return 0.0
    return float(np.corrcoef(rx, ry)[0, 1])


def laplacian_var(image: np.ndarray, region: np.ndarray) -> float:
    """Variance of the Laplacian of ``image``'s luminance over ``region`` (bool)."""
    lap = cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.CV_32F)
    return float(lap[region].var()) if region.any() else 0.0


def radius_ladder(far: float) -> np.ndarray:
    """The radii (px) tried for each patch: every pixel up to 8, then every 2, past the far end's."""
    return np.concatenate([np.arange(0.0, 8.0), np.arange(8.0, 1.3 * far + 2.0, 2.0)])


def estimated_radii(out: np.ndarray, empty: np.ndarray, cfg: RenderConfig, patches: list[tuple[int, int]],
                    ladder: np.ndarray) -> np.ndarray:
    """For each patch (top-left corners), the radius of the ladder whose uniform blur of the
    empty room (same lens) matches ``out`` best there (the minimum refined by a parabola)."""
    no_person = np.zeros(empty.shape[:2], np.float32)
    candidates = [empty if r == 0 else blur_background(empty, no_person, float(r), cfg) for r in ladder]
    outf = out.astype(np.float32)
    errs = np.empty((len(patches), len(ladder)))
    for j, cand in enumerate(candidates):
        d = (outf - cand.astype(np.float32)) ** 2
        for i, (y, x) in enumerate(patches):
            errs[i, j] = d[y : y + PATCH, x : x + PATCH].mean()
    best = errs.argmin(axis=1)
    radii = ladder[best].astype(np.float64)
    for i, j in enumerate(best):  # sub-step: the parabola through the minimum and its neighbours
        if 0 < j < len(ladder) - 1:
            e0, e1, e2 = errs[i, j - 1], errs[i, j], errs[i, j + 1]
            den = e0 - 2 * e1 + e2
            if den > 0:
                shift = 0.5 * (e0 - e2) / den
                step = (ladder[j + 1] - ladder[j - 1]) / 2
                radii[i] += float(np.clip(shift, -0.5, 0.5)) * step
    return radii


def _regions(sc: Scene) -> dict[str, Any]:
    """The background patches and regions of ``sc`` that are measured."""
    H, W = sc.alpha.shape
    near_person = cv2.dilate((sc.alpha > 0.02).astype(np.uint8), np.ones((2 * MARGIN + 1,) * 2, np.uint8)) > 0
    wall = ~sc.floor & (sc.alpha <= 0.02)
    junction = cv2.dilate(sc.floor.astype(np.uint8), np.ones((PATCH + 1, PATCH + 1), np.uint8)) > 0
    patches = []
    for y in range(0, H - PATCH + 1, PATCH):
        for x in range(0, W - PATCH + 1, PATCH):
            z = sc.depth[y : y + PATCH, x : x + PATCH]
            if near_person[y : y + PATCH, x : x + PATCH].any() or z.max() / z.min() > 1.15:
                continue
            patches.append((y, x))
    floor = sc.floor & ~near_person
    inside = cv2.erode((sc.alpha > 0.99).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    far_wall = wall & ~junction & ~near_person
    far_wall &= sc.depth >= np.percentile(sc.depth[far_wall], 50)  # the farther half
    return {"patches": patches,
            "near": floor & (np.abs(sc.depth - sc.person_distance) <= 0.1 * sc.person_distance),
            "wall": far_wall, "inside": inside}


def ideal_depth(sc: Scene) -> np.ndarray:
    """The scene's own normalised depth (0 at the background's far end, as the tracker takes it:
    its 5th percentile; 1 at the person; inverse depth), at 320 px wide: what a perfect depth
    model would give."""
    inv = 1.0 / sc.depth
    far = 1.0 / np.percentile(sc.depth[sc.alpha <= 0.02], 95)
    n = (inv - far) / (1.0 / sc.person_distance - far)
    H, W = n.shape
    return cv2.resize(n.astype(np.float32), (320, round(320 * H / W)), interpolation=cv2.INTER_AREA)


def binned_correlation(radii: np.ndarray, truth: np.ndarray, bins: int = BINS) -> float:
    """Spearman's rank correlation between the median radius and the mean truth of ``bins``
    equal-width bins of the truth (the empty ones left out): where many patches share one true
    distance (a wall facing the camera), the tiny noise of their estimates does not count as
    disorder, as it does patch by patch."""
    edges = np.linspace(truth.min(), truth.max() + 1e-9, bins + 1)
    which = np.digitize(truth, edges) - 1
    xs, ys = [], []
    for b in range(bins):
        sel = which == b
        if sel.any():
            xs.append(float(truth[sel].mean()))
            ys.append(float(np.median(radii[sel])))
    return spearman(np.array(ys), np.array(xs)) if len(xs) > 2 else float("nan")


def blur_vs_depth(portraits: Path, estimator: DepthEstimator, cfg: RenderConfig,
                  names: Sequence[str] = tuple(PORTRAITS), walls: Sequence[float] = (0.0, TURNED)) -> list[dict]:
    """The scene measures (see the module text) for each portrait in ``names`` found, in the room
    with its back wall at each angle of ``walls``."""
    rows = []
    for wall_angle in walls:
        rows += _blur_vs_depth(portraits, estimator, cfg, names, wall_angle)
    return rows


def _blur_vs_depth(portraits: Path, estimator: DepthEstimator, cfg: RenderConfig, names: Sequence[str],
                   wall_angle: float) -> list[dict]:
    empty, _, _, _ = room(wall_angle=wall_angle)
    far, _ = far_and_max_radius(cfg, empty.shape[0])
    ladder = radius_ladder(far)
    rows = []
    for name in names:
        pair = _read_portrait(portraits, name)
        if pair is None:
            continue
        photo, alpha = pair
        sc = scene(photo, alpha.astype(np.float32) / 255, DISTANCE, PORTRAITS.get(name, 1.6), wall_angle=wall_angle)
        reg = _regions(sc)
        depth_cfg = dataclasses.replace(cfg, depth=True)
        proc = processor(_GivenMatte([sc.alpha]), depth_cfg, DepthTracker(estimator, live=False))
        item = next(as_files(proc, [sc.image]))
        shown = proc.render(item)
        outputs = {"model depth": shown.image,
                   "ideal depth": proc.render(dataclasses.replace(item, depth=ideal_depth(sc))).image,
                   "no depth": proc.render(dataclasses.replace(item, depth=None)).image}
        # inside the alpha the composite used (upsampled to the frame), not only the scene's matte
        used = cv2.resize(shown.mask.data, (sc.image.shape[1], sc.image.shape[0]), interpolation=cv2.INTER_LINEAR)
        reg["inside_used"] = cv2.erode((used > 0.99).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        truth = np.array([abs(1.0 / sc.depth[y : y + PATCH, x : x + PATCH].mean() - 1.0 / sc.person_distance)
                          for y, x in reg["patches"]])
        base_detail = {k: laplacian_var(sc.image, reg[k]) for k in ("near", "wall")}
        no_depth_person = {k: laplacian_var(outputs["no depth"], reg[k]) for k in ("inside", "inside_used")}
        for label, out in outputs.items():
            radii = estimated_radii(out, empty, cfg, reg["patches"], ladder)
            kept = {k: laplacian_var(out, reg[k]) / max(base_detail[k], 1e-9) for k in ("near", "wall")}
            one_radius = float(np.percentile(radii, 90) - np.percentile(radii, 10)) < 1.0
            rows.append({"wall": f"turned {wall_angle:g} deg" if wall_angle else "facing", "portrait": name,
                         "depth": label, "patches": len(radii),
                         # one radius everywhere (no depth): no order to correlate
                         "rank_correlation": None if one_radius else spearman(radii, truth),
                         "rank_correlation_binned": None if one_radius else binned_correlation(radii, truth),
                         "near_kept": kept["near"], "wall_kept": kept["wall"],
                         "detail_ratio": kept["near"] / max(kept["wall"], 1e-9),
                         "person_vs_no_depth": laplacian_var(out, reg["inside_used"])
                         / max(no_depth_person["inside_used"], 1e-9) - 1.0,
                         "person_matte_vs_no_depth": laplacian_var(out, reg["inside"])
                         / max(no_depth_person["inside"], 1e-9) - 1.0,
                         "radius_near": float(np.median(radii[truth <= np.percentile(truth, 10)])),
                         "radius_wall": float(np.median(radii[truth >= np.percentile(truth, 90)]))})
    return rows


# -- flicker ------------------------------------------------------------------------------


def coc_flicker(images: Sequence[np.ndarray], items: Sequence[Segmented], cfg: RenderConfig) -> dict:
    """The change of the circle of confusion from frame to frame on still background pixels, as
    a share of its mean there: mean over frame pairs and 95th percentile (see the module text)."""
    far, top = far_and_max_radius(cfg, images[0].shape[0])
    shares = []
    for t in range(1, len(items)):
        d0, d1 = items[t - 1].depth, items[t].depth
        if d0 is None or d1 is None or d0.shape != d1.shape:
            continue
        h, w = d1.shape
        g0, g1 = (cv2.cvtColor(cv2.resize(images[i], (w, h), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)
                  .astype(np.int16) for i in (t - 1, t))
        person = cv2.resize(np.maximum(cv2.resize(items[t - 1].mask.data, (w, h)), cv2.resize(items[t].mask.data, (w, h))),
                            (w, h))
        away = cv2.dilate((person > 0.05).astype(np.uint8), np.ones((9, 9), np.uint8)) == 0
        still = (np.abs(g1 - g0) < 2) & away
        if still.sum() < 100:
            continue
        c0, c1 = circle_of_confusion(d0, far, top), circle_of_confusion(d1, far, top)
        mean = float(c1[still].mean())
        if mean > 0:
            shares.append(float(np.abs(c1 - c0)[still].mean()) / mean)
    if not shares:
        return {"pairs": 0, "mean": float("nan"), "p95": float("nan")}
    return {"pairs": len(shares), "mean": float(np.mean(shares)), "p95": float(np.percentile(shares, 95))}


def _read_portrait(portraits: Path, name: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Portrait ``name``'s (photo, 8-bit matte) (:func:`~livebokeh.bench.common.read_pair`); None
    when it is not there (silently: the scene rows take each one found) or cannot be used (said in
    a warning)."""
    from livebokeh.bench.common import read_pair
    from livebokeh.errors import printable

    photo, matte = portraits / f"{name}.jpg", portraits / f"{name}.png"
    if not os.path.lexists(photo) and not os.path.lexists(matte):
        return None
    pair = read_pair(photo, matte, "matte")
    if isinstance(pair, str):
        log.warning("left out %s: %s", printable(str(photo), newlines=False), printable(pair, newlines=False))
        return None
    return pair


def check_portraits(portraits: Path) -> tuple[np.ndarray, np.ndarray]:
    """The portrait the flicker room needs (the first of :data:`PORTRAITS`, photo and 8-bit matte;
    the scene rows take each one found), or one line saying what the folder lacks or what is wrong
    with it (exit 2)."""
    from livebokeh.bench.common import read_pair

    name = next(iter(PORTRAITS))
    want = f"portraits/{name}.jpg and its matte {name}.png"
    for ending in (".jpg", ".png"):
        if not os.path.lexists(portraits / f"{name}{ending}"):
            raise missing_data(f"{name}{ending}", portraits, want)
    pair = read_pair(portraits / f"{name}.jpg", portraits / f"{name}.png", "matte")
    if isinstance(pair, str):
        raise ConfigError(f"cannot use {portraits / name}.jpg: {pair}; pass --data DIR with {want}")
    return pair


def noisy_room(portraits: Path, frames: int, sigma: float = 2.0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The room with its first portrait, ``frames`` times with fresh sensor noise: (images, mattes)."""
    name = next(iter(PORTRAITS))
    photo, alpha = check_portraits(portraits)
    sc = scene(photo, alpha.astype(np.float32) / 255, DISTANCE, PORTRAITS[name])
    rng = np.random.default_rng(0)
    images = [np.clip(sc.image + rng.normal(0.0, sigma, sc.image.shape), 0, 255).astype(np.uint8) for _ in range(frames)]
    return images, [sc.alpha] * frames


def flicker(data: Path, estimator: DepthEstimator, cfg: Config, frames: int,
            clips: Sequence[str] = CLIPS) -> list[dict]:
    """Flicker rows: the noisy room (given matte) and each clip found (the settings' segmenter),
    as files and live."""
    from livebokeh.mask import resolve_auto
    from livebokeh.segment import SegmenterOptions, create_segmenter

    render = dataclasses.replace(cfg.render, depth=True)
    rows = []
    images, mattes = noisy_room(data / "portraits", frames)
    for mode, path in (("files", as_files), ("live", as_live)):
        seg = _GivenMatte(mattes)
        live = mode == "live"
        items = list(path(processor(seg, render, DepthTracker(estimator, live=live), live=live), images))
        rows.append({"clip": "room + noise", "mode": mode, **coc_flicker(images, items, render)})
    for clip in clips:
        file = data / "videos" / clip
        if not file.is_file():
            continue
        images = video_frames(file, frames)
        h, w = images[0].shape[:2]
        for mode, path in (("files", as_files), ("live", as_live)):
            live = mode == "live"
            opts = SegmenterOptions.from_config(cfg, (w, h), still=False, live=live)
            with create_segmenter(cfg.segmenter.backend, opts) as seg:
                mask_cfg = resolve_auto(cfg.mask, seg.traits)
                proc = processor(seg, render, DepthTracker(estimator, live=live), live=live, mask_cfg=mask_cfg)
                items = list(path(proc, images))
            rows.append({"clip": clip, "mode": mode, **coc_flicker(images, items, render)})
    return rows


# -- cost ---------------------------------------------------------------------------------


def gather_plate(image: np.ndarray, alpha: np.ndarray, coc: np.ndarray, max_radius: float,
                 cfg: RenderConfig) -> np.ndarray:
    """The alternative to :func:`livebokeh.render.defocus_background`'s levels, for the cost
    comparison: a variable-radius gather on the same reduced plate, each pixel averaging the
    pixels within its own circle of confusion (anti-aliased disc edge), one shifted copy per
    offset of the largest disc. New ``(H, W, 3)`` uint8."""
    H, W = image.shape[:2]
    k = reduction(max_radius, W, H)
    filled = background_plate(image, alpha, k, cfg)
    sh, sw = filled.shape[:2]
    c = cv2.resize(coc, (sw, sh), interpolation=cv2.INTER_AREA) * np.float32(1.0 / k)
    n = int(np.ceil(max_radius / k))
    pad = cv2.copyMakeBorder(filled, n, n, n, n, cv2.BORDER_REFLECT)
    acc = np.zeros_like(filled)
    total = np.zeros((sh, sw), np.float32)
    for dy in range(-n, n + 1):
        for dx in range(-n, n + 1):
            d = float(np.hypot(dx, dy))
            if d > n + 0.5:
                continue
            wgt = np.clip(c - np.float32(d - 0.5), 0.0, 1.0) if d > 0 else np.ones_like(c)
            acc += pad[n + dy : n + dy + sh, n + dx : n + dx + sw] * wgt[:, :, None]
            total += wgt
    return plate_to_frame(acc / total[:, :, None], (W, H), cfg)


def _cpu_ms(fn: Callable[[], object], runs: int) -> float:
    """Median CPU time of this thread for ``fn()``, ms (after one untimed call)."""
    fn()
    times = []
    for _ in range(runs):
        t0 = time.thread_time_ns()
        fn()
        times.append(time.thread_time_ns() - t0)
    return float(np.median(times)) / 1e6


def webcam_frames(data: Path, settings: Config, frames: int = 4) -> tuple[list[np.ndarray], list[np.ndarray]] | None:
    """The first frames of ``videos/office720p.mp4`` (a webcam's view: a person at a desk, a room
    behind) and the settings' segmenter's masks of them; None without the clip."""
    from livebokeh.segment import SegmenterOptions, create_segmenter

    clip = data / "videos" / "office720p.mp4"
    if not clip.is_file():
        return None
    images = video_frames(clip, frames)
    h, w = images[0].shape[:2]
    options = SegmenterOptions.from_config(settings, (w, h), still=False, live=False)
    with create_segmenter(settings.segmenter.backend, options) as seg:
        return images, [seg.segment(im).data for im in images]


def component_cost(data: Path, estimator: DepthEstimator, cfg: RenderConfig, settings: Config | None = None,
                   runs: int = 30) -> list[dict]:
    """CPU ms of each part at 1280x720, with and without depth measured in turn, and the live
    cost at 30 fps they add up to: on the generated room (half the picture a floor near the
    person's depth, which keeps its own pixels: the most the composite blends) and on a webcam's
    view (``office720p``)."""
    rows = [{"scene": "room", **_component_cost(*noisy_room(data / "portraits", 4), estimator, cfg, runs)}]
    webcam = webcam_frames(data, settings or Config())
    if webcam is not None:
        rows.append({"scene": "webcam (office720p)", **_component_cost(*webcam, estimator, cfg, runs)})
    return rows


def _component_cost(images: Sequence[np.ndarray], mattes: Sequence[np.ndarray], estimator: DepthEstimator,
                    cfg: RenderConfig, runs: int) -> dict:
    depth_cfg = dataclasses.replace(cfg, depth=True)
    tracker = DepthTracker(estimator, live=True)
    proc = processor(_GivenMatte(mattes), depth_cfg, tracker, live=True)
    frames = [Frame(im, i, round(i * 1e9 / 30)) for i, im in enumerate(images)]
    first = proc.segment(frames[0])
    item = proc.follow(first, frames[1])
    plain = dataclasses.replace(item, depth=None)
    out: dict[str, float] = {}
    on, off = [], []
    for _ in range(3):  # in turn, so that the machine's drift falls on both
        on.append(_cpu_ms(lambda: proc.render(item), runs))
        off.append(_cpu_ms(lambda: proc.render(plain), runs))
    out["render_ms_depth"], out["render_ms_plain"] = float(np.median(on)), float(np.median(off))
    alpha = item.mask.data
    far, top = far_and_max_radius(depth_cfg, 720)
    coc = circle_of_confusion(item.depth, far, top)
    out["plate_ms_levels"] = _cpu_ms(lambda: defocus_background(images[1], alpha, coc, top, depth_cfg), runs)
    out["plate_ms_gather"] = _cpu_ms(lambda: gather_plate(images[1], alpha, coc, top, depth_cfg), max(3, runs // 5))
    out["plate_ms_uniform"] = _cpu_ms(lambda: blur_background(images[1], alpha, far, depth_cfg), runs)
    out["model_ms"] = _cpu_ms(lambda: estimator.estimate(images[1]), runs)
    raw = estimator.estimate(images[1])
    out["update_ms_run"] = _cpu_ms(lambda: tracker.update(frames[1], raw, mattes[1]), runs)
    shifted = Frame(np.roll(images[2], 3, axis=1), 2, frames[2].capture_ns)  # a move: the flow runs
    out["update_ms_moved"] = _cpu_ms(lambda: tracker.update(shifted, None, mattes[2]), runs)
    out.update(_follow_cost(images, mattes, estimator, depth_cfg, runs))
    fps, model_rate = 30.0, 30.0 / MODEL_EVERY
    per_second = (fps * (out["render_ms_depth"] - out["render_ms_plain"] + out["follow_ms_depth"] - out["follow_ms_plain"])
                  + LIVE_RATE * (out["model_ms"] + out["update_ms_run"])
                  + (model_rate - LIVE_RATE) * out["update_ms_moved"])
    out["live_cores"] = per_second / 1e3
    out["files_ms_per_frame"] = (out["render_ms_depth"] - out["render_ms_plain"] + out["model_ms"]
                                 + out["update_ms_run"])
    return out


def _follow_cost(images: Sequence[np.ndarray], mattes: Sequence[np.ndarray], estimator: DepthEstimator,
                 cfg: RenderConfig, frames: int) -> dict[str, float]:
    """CPU ms of :meth:`FrameProcessor.follow` a frame, with and without depth, in turn, on a
    picture panning 2 px a frame (the flow runs every frame) with a model result every second
    frame."""
    image, matte = images[0], mattes[0]
    procs = {"depth": processor(_GivenMatte([matte]), cfg, DepthTracker(estimator, live=True), live=True),
             "plain": processor(_GivenMatte([matte]), dataclasses.replace(cfg, depth=False), None, live=True)}
    times: dict[str, list[int]] = {k: [] for k in procs}
    latest: dict[str, Any] = {k: None for k in procs}
    for i in range(frames + 2):
        frame = Frame(np.roll(image, 2 * i, axis=1), i, round(i * 1e9 / 30))
        for name, proc in procs.items():
            if i % MODEL_EVERY == 0:
                latest[name] = proc.segment(frame)
            t0 = time.thread_time_ns()
            proc.follow(latest[name], frame)
            if i >= 2:
                times[name].append(time.thread_time_ns() - t0)
    return {f"follow_ms_{k}": float(np.median(v)) / 1e6 for k, v in times.items()}


def pipeline_cost(data: Path, cfg: Config, paced_frames: int, file_frames: int, repeats: int = 2) -> list[dict]:
    """The whole pipeline with and without depth, in turn: office720p paced at 30 fps (cores,
    output fps, drops) and as a file into a null sink (fps, CPU ms a frame). The live controller
    is off (``[live] adapt``): under load it would make the two runs' work differ (its lighter
    render leaves the depth out)."""
    from livebokeh.bench.pipeline import _Limited, _run_pipeline
    from livebokeh.sources.clip import ClipCamera

    clip = data / "videos" / "office720p.mp4"
    if not clip.is_file():
        return []
    rows = []
    for label, make, limit in (("paced 30 fps", lambda: ClipCamera(clip, loop=True, fps=30.0), paced_frames),
                               ("file", lambda: _Limited(clip, file_frames), None)):
        if (limit if limit is not None else file_frames) <= 0:
            continue
        for _ in range(max(1, repeats)):
            for depth in (False, True):
                run_cfg = dataclasses.replace(cfg, render=dataclasses.replace(cfg.render, depth=depth),
                                              live=dataclasses.replace(cfg.live, adapt=False))
                r = _run_pipeline(make(), run_cfg.segmenter.backend, run_cfg, limit)
                rows.append({"case": label, "depth": "on" if depth else "off", **r})
    return rows


# -- the whole bench ----------------------------------------------------------------------


def run(data: Path, cfg: Config | None = None, flicker_frames: int = 60, paced_frames: int = 300,
        file_frames: int = 120, repeats: int = 2, clips: Sequence[str] = CLIPS) -> dict:
    cfg = cfg or Config()
    check_portraits(data / "portraits")  # before the model loads
    options = DepthOptions(weights=cfg.render.depth_weights, download=False)
    report: dict[str, Any] = {"machine": machine(), "render": dataclasses.asdict(cfg.render),
                              "backend": cfg.segmenter.backend}
    with DepthEstimator(options) as estimator:
        report["scene"] = blur_vs_depth(data / "portraits", estimator, cfg.render)
        report["flicker"] = flicker(data, estimator, cfg, flicker_frames, clips)
        report["cost"] = component_cost(data, estimator, cfg.render, cfg)
    if paced_frames > 0 or file_frames > 0:
        report["pipeline"] = pipeline_cost(data, cfg, paced_frames, file_frames, repeats)
    return report


def render(report: dict) -> str:
    parts = [
        f"blur against depth, generated room, person at {DISTANCE:g} m, back wall at {WALL:g} m in the middle "
        f"(targets, model depth: rank correlation >= 0.9, near floor / far wall detail >= 2, person within 2%):\n"
        + table(report["scene"], [("wall", "wall", ""), ("portrait", "portrait", ""), ("depth", "depth", ""),
                                  ("patches", "patches", "d"), ("rank_correlation", "rank corr.", ".3f"),
                                  ("rank_correlation_binned", f"in {BINS} bins", ".3f"), ("radius_near", "r near px", ".1f"),
                                  ("radius_wall", "r far px", ".1f"), ("near_kept", "near floor kept", ".3f"),
                                  ("wall_kept", "far wall kept", ".3f"), ("detail_ratio", "ratio", ".1f"),
                                  ("person_vs_no_depth", "person detail vs no depth", "+.2%"),
                                  ("person_matte_vs_no_depth", "(scene's matte)", "+.2%")]),
        "flicker of the blur on still background pixels, frame to frame, share of its radius (target < 2%):\n"
        + table(report["flicker"], [("clip", "clip", ""), ("mode", "mode", ""), ("pairs", "frame pairs", "d"),
                                    ("mean", "mean", ".2%"), ("p95", "p95", ".2%")]),
    ]
    costs = report["cost"]
    parts_rows = [("render step, depth / plain", "render_ms_depth", "render_ms_plain"),
                  ("plate: levels / per-pixel gather", "plate_ms_levels", "plate_ms_gather"),
                  ("plate: levels / uniform (no depth)", "plate_ms_levels", "plate_ms_uniform"),
                  ("follow (live, a panning picture), depth / plain", "follow_ms_depth", "follow_ms_plain"),
                  ("depth model call / tracker update", "model_ms", "update_ms_run"),
                  ("tracker: map moved by flow", "update_ms_moved", None)]
    columns = [("part", "part", "")]
    rows = [{"part": label} for label, _, _ in parts_rows]
    for i, c in enumerate(costs):
        columns.append((f"s{i}", c["scene"], ""))
        for row, (_, a, b) in zip(rows, parts_rows):
            row[f"s{i}"] = f"{c[a]:.2f}" + (f" / {c[b]:.2f}" if b else "")
    parts.append(
        "cost, CPU ms of one thread at 1280x720 (median):\n" + table(rows, columns) + "\n"
        + "\n".join(f"{c['scene']}: live 720p30 +{c['live_cores']:.3f} core (target <= 0.1); files +"
                    f"{c['files_ms_per_frame']:.1f} ms CPU a frame" for c in costs)
    )
    if report.get("pipeline"):
        parts.append(
            f"whole pipeline ({report['backend']}), with and without depth in turn:\n"
            + table(report["pipeline"], [("case", "case", ""), ("depth", "depth", ""), ("fps", "fps", ".1f"),
                                         ("dropped", "dropped", "d"), ("cores", "cores", ".2f"),
                                         ("cpu_ms_per_frame", "CPU ms/frame", ".1f")])
        )
    parts.append(report["machine"])
    return "\n\n".join(parts)
