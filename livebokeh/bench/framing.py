"""``livebokeh bench framing``: the auto-framing operator on clips with known motion.

Each clip is made here: a portrait from ``portraits/`` (cut out with its matte) is placed,
half-body, in a 1280x720 room and moved along a known path at 30 fps: a still speaker, a pan, a
step to one side, a walk out of the picture and back, and an approach (a zoom). The model
(MediaPipe, the fastest backend, with the settings' options) segments every frame; the crops come from three operators fed
the same masks: livebokeh live (causal), livebokeh for files (look-ahead both ways) and a naive
one that centres a crop on the mask's bounding box every frame. Against the crop the known
position asks for (:func:`~livebokeh.framing.ideal_crop` of the portrait's own matte, placed):

- framing error: how far the head sits from where that crop puts it, as a share of the output
  height (median over the frames 1 s or more after a move ended);
- jerk: the mean absolute third difference of the crop's centre and size, per second cubed,
  from 1 s on (each path starts with the operator framing the person from the whole picture);
- lag: the shift that best aligns the crop's path with the known one during the moves;
- zoom pumping: how much the crop's size varies over the still speaker's last 10 s.
- judder, on the pan and a slow pan: how much the room's velocity in the output changes from one
  frame to the next, as a share of the output width (the mean and the 95th percentile over the
  move), for the crop placed as the renderer places it (sub-pixel,
  :func:`~livebokeh.framing.crop.shown_rect`) and rounded to whole pixels of the picture, as it
  was placed before.

Live, the operator's masks are the model's own, unsmoothed: mask noise reaches it as it is.

It also times the framing itself, the renderer on a 2x crop against the whole frame, and the
crop's sub-pixel placement against a whole-pixel resize.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from livebokeh.bench.common import machine, missing_data
from livebokeh.config import Config, FramingConfig, with_backend
from livebokeh.errors import ConfigError
from livebokeh.framing import (
    WHOLE,
    Crop,
    LookaheadFraming,
    Observation,
    Operator,
    ideal_crop,
    observe,
)
from livebokeh.framing.crop import pixel_box, shown_rect
from livebokeh.framing.operator import clamp

log = logging.getLogger(__name__)

W, H, FPS = 1280, 720, 30.0
ASPECT = W / H


@dataclass(frozen=True)
class MotionPath:
    """A known motion: ``(x, scale)`` of the person at each frame (None: out of the picture), and
    the frames where the motion changes (a path with only ``[0]`` is a still speaker)."""

    name: str
    keys: list[tuple[float, float] | None]
    changes: list[int]


def _ramp(a: float, b: float, n: int) -> list[float]:
    return list(np.linspace(a, b, n))


def paths(seconds: float = 1.0) -> list[MotionPath]:
    """The bench's paths (``seconds`` scales their lengths)."""
    def f(s: float) -> int:
        return max(1, round(s * seconds * FPS))

    still = [(0.45, 0.62)] * f(12)
    pan = [(0.3, 0.62)] * f(2) + [(x, 0.62) for x in _ramp(0.3, 0.7, f(4))] + [(0.7, 0.62)] * f(2)
    step = [(0.35, 0.62)] * f(3) + [(0.66, 0.62)] * f(3)
    walk = ([(0.45, 0.62)] * f(2) + [(x, 0.62) for x in _ramp(0.45, 1.3, f(1.5))] + [None] * f(2)
            + [(0.4, 0.62)] * f(3))
    approach = [(0.5, 0.5)] * f(2) + [(0.5, s) for s in _ramp(0.5, 0.85, f(3))] + [(0.5, 0.85)] * f(2)
    return [
        MotionPath("still speaker", still, [0]),
        MotionPath("pan", pan, [0, f(2), f(6)]),
        MotionPath("step to one side", step, [0, f(3)]),
        MotionPath("walk out and back", walk, [0, f(2), f(3.5), f(5.5)]),
        MotionPath("approach (zoom)", approach, [0, f(2), f(5)]),
    ]


def judder_paths(seconds: float = 1.0) -> list[MotionPath]:
    """The pans the judder is measured on: the bench's pan and a slow one (a sixth of the width in
    6 s: about 1.2 pixels of the picture a frame, where whole-pixel steps show most)."""
    def f(s: float) -> int:
        return max(1, round(s * seconds * FPS))

    slow = [(0.36, 0.62)] * f(2) + [(x, 0.62) for x in _ramp(0.36, 0.52, f(6))] + [(0.52, 0.62)] * f(2)
    pan = next(p for p in paths(seconds) if p.name == "pan")
    return [pan, MotionPath("slow pan", slow, [0, f(2), f(8)])]


def judder(crops: list[Crop], path: MotionPath, whole_pixels: bool = False) -> dict:
    """How much the room's velocity in the output changes from frame to frame over the move, as a
    share of the output width: ``{"mean", "p95"}``, for the crops placed as the renderer does
    (sub-pixel) or rounded to whole pixels of the picture."""
    size = (W, H)
    rects = [pixel_box(c, size) if whole_pixels else shown_rect(c, size) for c in crops]
    left = np.array([r[0] for r in rects], np.float64)
    width = np.array([r[2] for r in rects], np.float64)
    # three points of the room: where each shows in the output, frame by frame
    shown = np.stack([(x - left) * W / width for x in (0.25 * W, 0.5 * W, 0.75 * W)])
    change = np.abs(np.diff(shown, n=2, axis=1)).mean(axis=0) / W
    moving = slice(max(0, path.changes[1] - 2), min(len(change), path.changes[-1] + int(FPS)))
    part = change[moving]
    return {"mean": float(part.mean()), "p95": float(np.percentile(part, 95))}


def _room(rng: np.random.Generator) -> np.ndarray:
    """A room: a soft wall, a few furniture-like shapes, grain (no person in it)."""
    small = rng.integers(90, 170, (3, 5, 3), dtype=np.uint8)
    room = cv2.resize(small, (W, H), interpolation=cv2.INTER_CUBIC)
    for _ in range(5):
        x, y = int(rng.integers(0, W - 200)), int(rng.integers(0, H // 2))
        shade = tuple(int(c) for c in rng.integers(60, 200, 3))
        cv2.rectangle(room, (x, y), (x + int(rng.integers(80, 260)), y + int(rng.integers(60, 160))), shade, -1)
    room = cv2.GaussianBlur(room, (0, 0), 2)
    noise = rng.normal(0, 4, room.shape)
    return np.clip(room + noise, 0, 255).astype(np.uint8)


def _portrait(data: Path) -> tuple[np.ndarray, np.ndarray]:
    """The first portrait that can be used (``portraits/p_*.jpg`` with its ``.png`` matte, by
    name), as (photo, alpha in [0, 1]); each one before it left out with a warning saying why
    (:func:`~livebokeh.bench.common.read_pair`), one line (exit 2) when none can be."""
    from livebokeh.bench.common import read_pair
    from livebokeh.errors import printable

    files = sorted((data / "portraits").glob("p_*.jpg"))
    if not files:
        raise missing_data("portraits", data / "portraits", "portraits/p_*.jpg and their .png mattes")
    for photo in files:
        pair = read_pair(photo, photo.with_suffix(".png"), "matte")
        if not isinstance(pair, str):
            return pair[0], pair[1].astype(np.float32) / 255.0
        log.warning("left out %s: %s", printable(str(photo), newlines=False), printable(pair, newlines=False))
    raise ConfigError(f"no portrait of {data / 'portraits'} can be used (each is said above); pass --data DIR "
                      "with portraits/p_*.jpg and their .png mattes")


def _place(room: np.ndarray, person: np.ndarray, matte: np.ndarray, key: tuple[float, float] | None
           ) -> tuple[np.ndarray, np.ndarray]:
    """The room with the person placed at ``key = (x, scale)`` (centre, height as a share of the
    picture; bottom-aligned), and the placed matte at the picture's size."""
    if key is None:
        return room.copy(), np.zeros((H, W), np.float32)
    x, scale = key
    ph = max(2, round(scale * H))
    pw = max(2, round(person.shape[1] * ph / person.shape[0]))
    p = cv2.resize(person, (pw, ph), interpolation=cv2.INTER_AREA).astype(np.float32)
    m = cv2.resize(matte, (pw, ph), interpolation=cv2.INTER_AREA)
    x0, y0 = round(x * W - pw / 2), H - ph
    canvas = room.astype(np.float32)
    full = np.zeros((H, W), np.float32)
    sx0, sx1 = max(0, -x0), min(pw, W - x0)
    if sx1 > sx0:
        dx0, dx1 = x0 + sx0, x0 + sx1
        a = m[:, sx0:sx1, None]
        canvas[y0:, dx0:dx1] = a * p[:, sx0:sx1] + (1 - a) * canvas[y0:, dx0:dx1]
        full[y0:, dx0:dx1] = m[:, sx0:sx1]
    return np.clip(canvas, 0, 255).astype(np.uint8), full


def naive_crop(obs: Observation | None, cfg: FramingConfig) -> Crop:
    """Per-frame centring on the mask's bounding box, the same size rule, no dead zone, no motion."""
    if obs is None:
        return WHOLE
    h = max((obs.bottom - obs.top) / cfg.share, (obs.right - obs.left) / 0.9)
    h = min(1.0, max(1.0 / cfg.zoom_max, h))
    return clamp(Crop((obs.left + obs.right) / 2, (obs.top + obs.bottom) / 2, h), cfg.zoom_max)


def _head_in(crop: Crop, truth: Observation) -> tuple[float, float]:
    """Where the true head (its top, across its centre) sits in ``crop``'s output, in output heights."""
    return ((truth.head_x - (crop.cx - crop.h / 2)) / crop.h * ASPECT, (truth.top - (crop.cy - crop.h / 2)) / crop.h)


def _metrics(crops: list[Crop], truth: list[Observation | None], ideal: list[Crop], path: MotionPath) -> dict:
    # settled: the known crop has not changed for a second (a move ended at least 1 s ago)
    want = np.array([[i.cx * ASPECT, i.cy, i.h] for i in ideal])
    still_for = np.zeros(len(want))
    for k in range(1, len(want)):
        still_for[k] = still_for[k - 1] + 1 if np.abs(want[k] - want[k - 1]).max() < 1e-9 else 0
    settled = still_for >= FPS
    errors = []
    for c, t, i, ok in zip(crops, truth, ideal, settled):
        if ok and t is not None:
            (ax, ay), (ix, iy) = _head_in(c, t), _head_in(i, t)
            errors.append(float(np.hypot(ax - ix, ay - iy)))
    track = np.array([[c.cx * ASPECT, c.cy, c.h] for c in crops])
    later = track[int(FPS):]  # the first framing, from the whole picture, is every path's and left out
    jerk = float(np.abs(np.diff(later, n=3, axis=0)).sum(axis=1).mean() * FPS**3) if len(later) > 3 else 0.0
    # lag: the shift that best aligns the crop's path with the known one, around the moves
    moving = np.zeros(len(want), bool)
    for k in np.nonzero(np.abs(np.diff(want, axis=0)).sum(axis=1) > 1e-9)[0]:
        moving[max(0, k - int(FPS)):k + int(FPS)] = True
    lag = None
    if moving.any():
        best = float("inf")
        n, idx = len(track), np.nonzero(moving)[0]
        for s in range(-int(FPS), int(FPS) + 1):
            ok = idx[(idx + s >= 0) & (idx + s < n)]
            d = float(np.abs(track[ok + s] - want[ok]).mean())
            if d < best:
                best, lag = d, s / FPS
    # zoom pumping: how much the crop's size varies once it has settled on a still speaker
    still = track[int(2 * FPS):, 2] if path.changes == [0] and len(track) > 2 * FPS else None
    return {"error_median": float(np.median(errors)) if errors else None,  # None: no frame had settled
            "error_p90": float(np.percentile(errors, 90)) if errors else None,
            "jerk": jerk, "lag_s": lag,
            "size_range": float((still.max() - still.min()) / still.mean()) if still is not None else None}


def run(data: Path, cfg: Config | None = None, seconds: float = 1.0) -> dict:
    from livebokeh.segment import SegmenterOptions, create_segmenter

    cfg = cfg or Config()
    fc = cfg.framing
    person, matte = _portrait(data)
    room = _room(np.random.default_rng(0))
    report: dict = {"machine": machine(), "framing": fc.__dict__, "paths": {}}
    options = SegmenterOptions.from_config(with_backend(cfg, "mediapipe"), (W, H), live=True)
    observe_ns = operate_ns = frames = 0
    with create_segmenter("mediapipe", options) as seg:
        measured = paths(seconds)
        for path in measured + [p for p in judder_paths(seconds) if p.name not in {m.name for m in measured}]:
            truth, ideal, seen = [], [], []
            for key in path.keys:
                image, true_alpha = _place(room, person, matte, key)
                t = observe(cv2.resize(true_alpha, (320, 180), interpolation=cv2.INTER_AREA))
                truth.append(t)
                ideal.append(ideal_crop(t, fc) if t is not None else WHOLE)
                mask = seg.segment(image).data
                t0 = time.perf_counter_ns()
                seen.append(observe(mask))
                observe_ns += time.perf_counter_ns() - t0
                frames += 1
            live, files = Operator(fc, FPS), LookaheadFraming(fc, FPS)
            t0 = time.perf_counter_ns()
            live_crops = [live.update(o) for o in seen]
            operate_ns += time.perf_counter_ns() - t0
            file_crops = [c for _, c in [x for i, o in enumerate(seen) for x in files.push(i, o)] + files.flush()]
            naive = [naive_crop(o, fc) for o in seen]
            if path in measured:
                report["paths"][path.name] = {
                    "frames": len(path.keys),
                    "live": _metrics(live_crops, truth, ideal, path),
                    "files": _metrics(file_crops, truth, ideal, path),
                    "naive": _metrics(naive, truth, ideal, path),
                }
            if path.name in {p.name for p in judder_paths(seconds)}:
                report.setdefault("judder", {})[path.name] = {
                    op: {"sub_pixel": judder(crops, path), "whole_pixels": judder(crops, path, whole_pixels=True)}
                    for op, crops in (("live", live_crops), ("files", file_crops), ("naive", naive))}
            log.info("%s: done", path.name)
    report["framing_us_per_frame"] = (observe_ns + operate_ns) / max(1, frames) / 1e3
    report.update(_render_cost(room, person, matte, cfg))
    return report


def _render_cost(room: np.ndarray, person: np.ndarray, matte: np.ndarray, cfg: Config, repeats: int = 30) -> dict:
    """CPU ms of the renderer on one 720p frame: the whole frame, a 2x crop rendered at its own
    resolution and resampled (livebokeh), and the whole frame rendered then cropped and scaled."""
    from livebokeh.controls import LiveControls
    from livebokeh.pipeline.processor import FrameProcessor, Segmented
    from livebokeh.types import Frame, Mask

    image, alpha = _place(room, person, matte, (0.5, 0.62))
    frame = Frame(image, 0, 0)
    mask = Mask(cv2.resize(alpha, (256, 144), interpolation=cv2.INTER_AREA))

    class _Given:
        from livebokeh.types import SegmenterTraits

        traits = SegmenterTraits(matte=True)

        def segment_frame(self, f: Frame) -> Mask:
            return mask

    proc = FrameProcessor(_Given(), cfg.mask, LiveControls(cfg.render))
    crop = Crop(0.5, 0.75, 0.5)

    def whole() -> None:
        proc.render(Segmented(frame, mask))

    def cropped() -> None:
        proc.render(Segmented(frame, mask, crop=crop))

    def after() -> None:
        out = proc.render(Segmented(frame, mask)).image
        cv2.resize(out[360:720, 320:960], (W, H), interpolation=cv2.INTER_CUBIC)

    def cpu_ms(fn) -> float:
        fn()
        best = float("inf")
        for _ in range(3):
            c0 = time.thread_time()
            for _ in range(repeats // 3):
                fn()
            best = min(best, (time.thread_time() - c0) / (repeats // 3) * 1e3)
        return best

    from livebokeh.framing.crop import covering_box, cut, place, scaled

    rendered = proc.render(Segmented(frame, mask)).image
    rect = shown_rect(Crop(0.5, 0.75, 0.6213), (W, H))  # 1.6x, at a sub-pixel position
    box = covering_box(rect, (W, H))
    inner = pixel_box(Crop(0.5, 0.75, 0.6213), (W, H))

    def sub_pixel() -> None:
        place(cut(rendered, box), box, rect, (W, H))

    def whole_pixels() -> None:
        scaled(cut(rendered, inner), (W, H))

    return {"render_whole_ms": cpu_ms(whole), "render_crop_2x_ms": cpu_ms(cropped),
            "render_then_crop_2x_ms": cpu_ms(after), "place_sub_pixel_ms": cpu_ms(sub_pixel),
            "place_whole_pixels_ms": cpu_ms(whole_pixels)}


def render(r: dict) -> str:
    lines = [
        "auto-framing on clips with known motion (1280x720, 30 fps; MediaPipe masks; error: the head's distance "
        "from where the known position puts it, in output heights, 1 s or more after a move ended):",
        "| path | operator | error median | error p90 | jerk (1/s^3) | lag s | crop size range, settled |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, p in r["paths"].items():
        for op in ("live", "files", "naive"):
            m = p[op]
            lag = "" if m["lag_s"] is None else f"{m['lag_s']:+.2f}"
            med = "-" if m["error_median"] is None else f"{m['error_median']:.3f}"
            p90 = "-" if m["error_p90"] is None else f"{m['error_p90']:.3f}"
            size = "" if m["size_range"] is None else f"{100 * m['size_range']:.2f}%"
            lines.append(f"| {name} | {op} | {med} | {p90} | {m['jerk']:.2f} | "
                         f"{lag} | {size} |")
    if r.get("judder"):
        lines += ["", "judder: how much the room's velocity in the output changes from frame to frame during the move, "
                      "as a share of the output width (mean / 95th percentile), the crop placed sub-pixel (as rendered) "
                      "and rounded to whole pixels of the picture:",
                  "| path | operator | sub-pixel | whole pixels |", "| --- | --- | --- | --- |"]
        for name, ops in r["judder"].items():
            for op, m in ops.items():
                sub, whole = m["sub_pixel"], m["whole_pixels"]
                lines.append(f"| {name} | {op} | {sub['mean']:.5f} / {sub['p95']:.5f} | "
                             f"{whole['mean']:.5f} / {whole['p95']:.5f} |")
    lines.append(f"framing itself: {r['framing_us_per_frame']:.0f} us a frame (observe + operator)")
    lines.append(f"renderer, CPU ms a 720p frame: whole frame {r['render_whole_ms']:.1f}; 2x crop rendered at its "
                 f"own size and resampled {r['render_crop_2x_ms']:.1f}; whole frame rendered, then cropped and scaled "
                 f"{r['render_then_crop_2x_ms']:.1f}")
    if "place_sub_pixel_ms" in r:
        lines.append(f"placing a 1.6x crop at 720p: sub-pixel {r['place_sub_pixel_ms']:.2f} ms, a whole-pixel resize "
                     f"{r['place_whole_pixels_ms']:.2f} ms (CPU)")
    lines.append(r["machine"])
    return "\n".join(lines)
