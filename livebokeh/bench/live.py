"""``livebokeh bench live``: the live path as a call uses it, fed real footage, quiet and under load.

Each clip is played as a camera (:class:`~livebokeh.sources.clip.ClipCamera`, looped, at 30 fps
by default) through the run the command assembles (:func:`livebokeh.app.open_pipeline`: the
settings' backend, its pacing, the live controller) into a stand-in virtual camera (each frame
converted to I420 as pyvirtualcam's v4l2loopback backend does) and a recorder of the masks that
went out. Beside it run ``load`` busy processes (a call app's share of the machine: one spins a
core). Reported per case, as ``--stats-json`` reports a live run: frames in, out and dropped,
output fps, latency p50 and p95, cores used, model runs a second, masks moved by flow, and the
time at each level of the controller; and the live matte against the file mode on the same
frames (the clip run through the file pipeline with the same settings: every frame through the
model, nothing dropped):

- flicker on still content (per mille, ``../shared/data/README.md``) of the live and the file masks;
- where the clip has a reference (``*greenscreen*``: its chroma key), IoU and Boundary IoU of
  the live and the file masks against it on the frames that went out;
- the live masks' IoU with the file mode's, on every clip.

The cases of one run are measured in turn, so their figures compare; absolute speeds depend on
the machine and what else runs on it.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from livebokeh.bench.common import machine, table, video_frames
from livebokeh.bench.metrics import boundary_iou, chroma_key, iou, picture_area
from livebokeh.config import Config
from livebokeh.errors import LivebokehError
from livebokeh.sinks.base import Sink
from livebokeh.sources.clip import ClipCamera
from livebokeh.types import Composite

log = logging.getLogger(__name__)

#: The clips played when none is given: a 720p talking head (speed) and the green-screen clip
#: (a reference mask for every frame).
DEFAULT_CLIPS = ("office720p.mp4", "d0_greenscreen.mp4")
#: Frames of a clip kept for the file mode's reference masks (longer clips are looped live
#: over their first frames).
MAX_CLIP_FRAMES = 300
#: Side of the masks the recorder keeps (the long side; metrics are computed there).
MASK_SIDE = 320


class MaskRecorder(Sink):
    """Keeps each mask that went out (small, uint8) by its frame's number; the frames of a
    stream's start shown before its first mask (all background, while the model warms up) are
    counted in :attr:`warmup` instead, so that they count neither as flicker nor as misses."""

    name = "mask-recorder"

    def __init__(self) -> None:
        self.masks: dict[int, np.ndarray] = {}
        self.warmup = 0
        self._warming = True

    def write(self, item: Composite) -> None:
        m = item.mask.data
        if item.frame.cut:
            self._warming = True
        if self._warming and not m.any():
            self.warmup += 1
            return
        self._warming = False
        h, w = m.shape
        s = MASK_SIDE / max(h, w)
        small = cv2.resize(m, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
        self.masks[item.frame.index] = (small * 255 + 0.5).astype(np.uint8)


class CameraStandIn(Sink):
    """A virtual camera that takes everything: the I420 conversion pyvirtualcam does, then nothing."""

    name = "virtual-camera (stand-in)"

    def write(self, item: Composite) -> None:
        cv2.cvtColor(np.asarray(item.image), cv2.COLOR_BGR2YUV_I420)


def _spin(stop) -> None:  # a busy process: one core's worth of work until told to stop
    x = 0
    while not stop.is_set():
        for _ in range(20000):
            x += 1


@contextmanager
def busy_processes(n: int) -> Iterator[None]:
    """``n`` processes that each keep a core busy while inside."""
    if n <= 0:
        yield
        return
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    procs = [ctx.Process(target=_spin, args=(stop,), daemon=True) for _ in range(n)]
    for p in procs:
        p.start()
    try:
        time.sleep(0.5)  # let them take their cores
        yield
    finally:
        stop.set()
        for p in procs:
            p.join(5)
            if p.is_alive():
                p.terminate()


def _live(cfg: Config, clip: Path, seconds: float, fps: float) -> tuple[dict, dict[int, np.ndarray]]:
    from livebokeh.app import open_pipeline

    recorder = MaskRecorder()
    source = ClipCamera(clip, loop=True, fps=fps)
    with source:
        with open_pipeline(cfg, source, [CameraStandIn(), recorder], max_frames=round(seconds * fps)) as p:
            report = p.run()
    lat = np.fromiter(p.latency.values_ns, dtype=np.int64) / 1e6
    captured = max(1, report.frames_in)
    figures = {
        "frames_in": report.frames_in, "frames_out": report.frames_out, "dropped": report.dropped,
        "dropped_share": report.dropped / captured, "fps": report.output_fps,
        "latency_p50": float(np.percentile(lat, 50)) if lat.size else 0.0,
        "latency_p95": float(np.percentile(lat, 95)) if lat.size else 0.0,
        "cores": report.cores, "model_rate": report.model_rate, "propagated": report.propagated,
        "levels": report.levels, "level": report.level, "level_changes": report.level_changes,
        "warmup_frames": recorder.warmup,
    }
    return figures, recorder.masks


def _file_masks(cfg: Config, clip: Path, frames: int) -> dict[int, np.ndarray]:
    """The file mode's masks of the clip's first ``frames`` frames, with the same settings."""
    from livebokeh.app import open_pipeline
    from livebokeh.sources.video import VideoFileSource

    recorder = MaskRecorder()
    with VideoFileSource(clip) as source, open_pipeline(cfg, source, [recorder], max_frames=frames) as p:
        p.run()
    return recorder.masks


def _small(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return cv2.resize(image, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)


def matte_figures(live: dict[int, np.ndarray], file: dict[int, np.ndarray], frames: list[np.ndarray],
                  keyed: bool) -> dict:
    """The live masks (by frame number; a looped clip's frame ``i`` is its frame ``i % len(frames)``)
    against the file mode's on the same frames: flicker on still content, IoU and Boundary IoU
    against the chroma key (``keyed``), and agreement with the file masks."""
    n = len(frames)
    area = picture_area(frames)
    out: dict[str, list[float]] = {k: [] for k in ("live_flicker", "file_flicker", "agreement", "live_iou",
                                                     "file_iou", "live_biou", "file_biou")}
    lumas: dict[int, np.ndarray] = {}
    refs: dict[int, np.ndarray] = {}

    def luma(i: int, shape: tuple[int, int]) -> np.ndarray:
        if i not in lumas:
            lumas[i] = _small(cv2.cvtColor(frames[i], cv2.COLOR_BGR2GRAY), shape)
        return lumas[i]

    def ref(i: int, shape: tuple[int, int]) -> np.ndarray:
        if i not in refs:
            refs[i] = _small(chroma_key(frames[i]), shape) > 0.5
        return refs[i]

    def crop(m: np.ndarray, full: tuple[int, int]) -> tuple[slice, slice]:
        sy = m.shape[0] / full[0]
        sx = m.shape[1] / full[1]
        ys, xs = area
        return (slice(int((ys.start or 0) * sy), int(round((ys.stop or full[0]) * sy))),
                slice(int((xs.start or 0) * sx), int(round((xs.stop or full[1]) * sx))))

    full = frames[0].shape[:2]
    for index in sorted(live):
        i = index % n
        m = live[index]
        shape = m.shape
        box = crop(m, full)
        fm = file.get(i)
        if fm is not None and fm.shape == shape:
            out["agreement"].append(iou(m[box] > 127, fm[box] > 127))
        prev = live.get(index - 1)
        if prev is not None and i > 0:  # two frames in a row went out (not across a repeat)
            still = cv2.absdiff(luma(i, shape), luma(i - 1, shape)) < 2
            if still[box].any():
                out["live_flicker"].append(float(np.abs(m.astype(np.float32) - prev)[box][still[box]].mean()) / 255)
                fprev = file.get(i - 1)
                if fm is not None and fprev is not None:
                    out["file_flicker"].append(
                        float(np.abs(fm.astype(np.float32) - fprev)[box][still[box]].mean()) / 255)
        if keyed:
            g = ref(i, shape)[box]
            out["live_iou"].append(iou(m[box] > 127, g))
            out["live_biou"].append(boundary_iou(m[box] > 127, g))
            if fm is not None:
                out["file_iou"].append(iou(fm[box] > 127, g))
                out["file_biou"].append(boundary_iou(fm[box] > 127, g))
    figures = {k: (float(np.mean(v)) if v else None) for k, v in out.items()}
    for k in ("live_flicker", "file_flicker"):
        if figures[k] is not None:
            figures[k] *= 1000.0  # per mille
    return figures


def run(clips: Sequence[Path], cfg: Config, backends: Sequence[str], loads: Sequence[int] = (0, 1),
        adapt: Sequence[bool] = (True, False), seconds: float = 20.0, fps: float = 30.0) -> dict:
    """Every case (clip x backend x controller on/off x load), measured in turn."""
    report: dict = {"machine": machine(), "seconds": seconds, "fps": fps, "cases": []}
    for clip in clips:
        frames = video_frames(clip, MAX_CLIP_FRAMES)
        if len(frames) < 2:
            log.warning("%s: skipped (fewer than 2 frames)", clip.name)
            continue
        keyed = "greenscreen" in clip.stem
        for backend in backends:
            bcfg = dataclasses.replace(cfg, segmenter=dataclasses.replace(cfg.segmenter, backend=backend))
            try:
                reference = _file_masks(bcfg, clip, len(frames))
            except LivebokehError as err:
                log.warning("%s: skipped (%s)", backend, err)
                continue
            for on in adapt:
                ccfg = dataclasses.replace(bcfg, live=dataclasses.replace(bcfg.live, adapt=on))
                for load in loads:
                    log.info("%s, %s, controller %s, %d busy: %.0f s", clip.name, backend, "on" if on else "off",
                             load, seconds)
                    with busy_processes(load):
                        figures, masks = _live(ccfg, clip, seconds, fps)
                    figures.update(matte_figures(masks, reference, frames, keyed))
                    report["cases"].append({"clip": clip.name, "backend": backend, "controller": on, "load": load,
                                            **figures})
    return report


COLUMNS = [
    ("case", "case", ""),
    ("fps", "fps out", ".1f"),
    ("dropped_pct", "dropped", ".1f"),
    ("latency_p50", "latency p50 ms", ".0f"),
    ("latency_p95", "p95 ms", ".0f"),
    ("cores", "cores", ".2f"),
    ("model_rate", "model runs/s", ".1f"),
    ("level_text", "controller", ""),
    ("live_flicker", "flicker live ‰", ".2f"),
    ("file_flicker", "flicker file ‰", ".2f"),
    ("agreement", "IoU with file", ".3f"),
    ("iou_text", "IoU / BIoU live (file)", ""),
]


def _row(c: dict) -> dict:
    levels = {k: v for k, v in (c.get("levels") or {}).items() if v >= 0.05}
    total = sum(levels.values()) or 1.0
    level_text = "off" if not c["controller"] else "; ".join(f"{k} {100 * v / total:.0f}%" for k, v in levels.items())
    iou_text = ""
    if c.get("live_iou") is not None:
        iou_text = (f"{c['live_iou']:.3f} / {c['live_biou']:.3f} ({c['file_iou']:.3f} / {c['file_biou']:.3f})"
                    if c.get("file_iou") is not None else f"{c['live_iou']:.3f} / {c['live_biou']:.3f}")
    return {**c, "case": f"{c['clip']}, {c['backend']}, {c['load']} busy", "dropped_pct": 100 * c["dropped_share"],
            "level_text": level_text, "iou_text": iou_text}


def render(report: dict) -> str:
    rows = [_row(c) for c in report["cases"]]
    return (f"{table(rows, COLUMNS)}\n\n{report['seconds']:g} s a case at {report['fps']:g} fps; "
            f"dropped in per cent of the frames captured; {report['machine']}")
