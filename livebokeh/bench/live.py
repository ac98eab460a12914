"""``livebokeh bench live``: the live path as a call uses it, fed real footage, quiet and under load.

Each clip is played as a camera (:class:`~livebokeh.sources.clip.ClipCamera`, looped, at 30 fps
by default) through the run the command assembles (:func:`livebokeh.app.open_run`: the
settings' backend, its pacing, the live controller) into a stand-in virtual camera (each frame
converted to I420 as pyvirtualcam's v4l2loopback backend does) and a recorder of the masks that
went out. Beside it run ``load`` busy processes (a call app's share of the machine: one spins a
core). Reported per case, as ``--stats-json`` reports a live run: frames in, out and dropped,
output fps, latency p50 and p95, cores used, model runs a second, masks moved by flow, and the
time at each level of the controller; and the live matte against the file mode on the same
frames (the clip run through the file pipeline with the same settings: every frame through the
model, nothing dropped):

- flicker on still content (per mille, ``../shared/data/README.md``) of the live and the file masks;
- where the clip has a reference, IoU and Boundary IoU of the live and the file masks against it
  on the frames that went out: the green-screen clip's chroma key, and a clip made here, a
  moving camera over photos of people (:func:`moving_camera_clip`: each photo panned and zoomed
  for :data:`SECONDS_A_PHOTO` s, its mask moved alike), what a hand-held phone or a laptop on a
  knee gives;
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

from livebokeh.bench.common import machine, null_outputs, table
from livebokeh.bench.metrics import boundary_iou, chroma_key, iou, picture_area
from livebokeh.config import Config, with_backend
from livebokeh.errors import LivebokehError
from livebokeh.sinks.base import Sink
from livebokeh.sources.clip import ClipCamera
from livebokeh.types import Composite

log = logging.getLogger(__name__)

#: The clips played when none is given: a 720p talking head (speed) and the green-screen clip
#: (a reference mask for every frame); the moving-camera clip is made besides.
DEFAULT_CLIPS = ("office720p.mp4", "d0_greenscreen.mp4")
#: The moving-camera clip: photos (every n-th of the stills, people in every framing) and seconds each.
MOVING_PHOTOS, SECONDS_A_PHOTO = 8, 1.5
#: Its name, which the references are kept under.
MOVING_NAME = "moving camera over photos"
#: Frames after each change of photo (a scene cut, which a camera seldom gives) left out of the scores.
AFTER_CUT = 6
#: Side of the masks the recorder keeps (the long side; metrics are computed there, on the
#: clips' frames brought to the same size).
MASK_SIDE = 320


def small_size(width: int, height: int) -> tuple[int, int]:
    """``(w, h)`` of a picture brought to :data:`MASK_SIDE` on its long side."""
    s = MASK_SIDE / max(width, height)
    return max(1, round(width * s)), max(1, round(height * s))


def small_frames(clip: Path) -> list[np.ndarray]:
    """Every frame of ``clip`` at :func:`small_size` (what the metrics compare)."""
    from livebokeh.sources.video import VideoFileSource

    out = []
    with VideoFileSource(clip) as src:
        size = small_size(src.info.width, src.info.height)
        while (f := src.read()) is not None:
            out.append(cv2.resize(f.image, size, interpolation=cv2.INTER_AREA))
    return out


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
        small = cv2.resize(m, small_size(item.frame.width, item.frame.height), interpolation=cv2.INTER_AREA)
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


def _live(cfg: Config, clip: Path, seconds: float, fps: float | None) -> tuple[dict, dict[int, np.ndarray]]:
    """One case: ``clip`` played as a camera at ``fps`` (None: its own rate) for ``seconds``."""
    from livebokeh.app import Job, open_run

    recorder = MaskRecorder()
    source = ClipCamera(clip, loop=True, fps=fps)
    rate = fps or float(source.open().fps)
    with open_run(null_outputs(cfg), Job(max_frames=round(seconds * rate)), source=source,
                  sinks=[CameraStandIn(), recorder]) as live:
        report = live.run()
    p = live.pipeline
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


def _file_masks(cfg: Config, clip: Path) -> dict[int, np.ndarray]:
    """The file mode's masks of every frame of the clip, with the same settings."""
    from livebokeh.app import Job, open_run
    from livebokeh.sources.video import VideoFileSource

    recorder = MaskRecorder()
    with open_run(null_outputs(cfg), Job(), source=VideoFileSource(clip), sinks=[recorder]) as run:
        run.run()
    return recorder.masks


def matte_figures(live: dict[int, np.ndarray], file: dict[int, np.ndarray], frames: list[np.ndarray],
                  refs: Sequence[np.ndarray] | None = None) -> dict:
    """The live masks (by frame number; a looped clip's frame ``i`` is its frame ``i % len(frames)``)
    against the file mode's on the same frames: flicker on still content, IoU and Boundary IoU
    against the references (``refs``: one mask per frame, true or 1 = person; None: a frame not
    scored), and agreement with the file masks. Every picture at :data:`MASK_SIDE` (:func:`small_frames`); the scores are
    taken inside the picture, without letterbox bars (:func:`~livebokeh.bench.metrics.picture_area`)."""
    n = len(frames)
    box = picture_area(frames)
    out: dict[str, list[float]] = {k: [] for k in ("live_flicker", "file_flicker", "agreement", "live_iou",
                                                     "file_iou", "live_biou", "file_biou")}
    lumas = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in frames]
    for index in sorted(live):
        i = index % n
        m = live[index]
        if m.shape != lumas[i].shape:
            continue
        fm = file.get(i)
        if fm is not None and fm.shape == m.shape:
            out["agreement"].append(iou(m[box] > 127, fm[box] > 127))
        prev = live.get(index - 1)
        if prev is not None and i > 0:  # two frames in a row went out (not across a repeat)
            still = cv2.absdiff(lumas[i], lumas[i - 1]) < 2
            if still[box].any():
                out["live_flicker"].append(float(np.abs(m.astype(np.float32) - prev)[box][still[box]].mean()) / 255)
                fprev = file.get(i - 1)
                if fm is not None and fprev is not None:
                    out["file_flicker"].append(
                        float(np.abs(fm.astype(np.float32) - fprev)[box][still[box]].mean()) / 255)
        if refs is not None and refs[i] is not None:
            g = np.asarray(refs[i])[box] > 0.5
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


def moving_camera_clip(data: Path, folder: Path, fps: float = 30.0,
                       size: tuple[int, int] = (1280, 720)) -> tuple[Path, list[np.ndarray]] | None:
    """A clip of a moving camera over :data:`MOVING_PHOTOS` of the data's stills (evenly picked,
    people in every framing), each panned and zoomed for :data:`SECONDS_A_PHOTO` s, written
    near-losslessly into ``folder``; and its reference masks, one per frame (None without a still
    that can be used)."""
    from fractions import Fraction

    from livebokeh.bench.common import read_pairs, still_pairs
    from livebokeh.bench.quality import camera_move
    from livebokeh.sinks.video import VideoWriter

    pairs = still_pairs(data)
    step = max(1, len(pairs) // MOVING_PHOTOS)
    photos = list(read_pairs(pairs[::step][:MOVING_PHOTOS]))  # those that cannot be used: said, left out
    if not photos:
        return None
    small = small_size(*size)
    path = folder / "moving_camera.mkv"
    writer = VideoWriter(path, size[0], size[1], Fraction(fps).limit_denominator(1001), crf=12, preset="ultrafast",
                         overwrite=True)
    refs: list[np.ndarray] = []
    try:
        for k, (image, ref, _photo) in enumerate(photos):
            for j, (frame, moved) in enumerate(camera_move(image, ref, round(SECONDS_A_PHOTO * fps), size, seed=k)):
                writer.write(frame)
                refs.append(None if j < AFTER_CUT else cv2.resize(moved, small, interpolation=cv2.INTER_AREA) > 127)
    finally:
        writer.close()
    return path, refs


def _references(clip: Path, frames: list[np.ndarray], known: dict[str, list[np.ndarray]]) -> list[np.ndarray] | None:
    """A clip's reference masks: given (a clip made here), its chroma key (a green-screen clip), or none."""
    if str(clip) in known:
        return known[str(clip)]
    if "greenscreen" in clip.stem:
        return [chroma_key(f) > 0.5 for f in frames]  # (the key is the same at the small size)
    return None


def run(clips: Sequence[Path], cfg: Config, backends: Sequence[str], loads: Sequence[int] = (0, 1),
        adapt: Sequence[bool] = (True, False), seconds: float = 20.0, fps: float | None = 30.0,
        references: dict[str, list[np.ndarray]] | None = None) -> dict:
    """Every case (clip x backend x controller on/off x load), measured in turn; ``references``
    gives clips' reference masks by path (a green-screen clip's are its chroma key)."""
    report: dict = {"machine": machine(), "seconds": seconds, "fps": fps, "cases": []}
    for clip in clips:
        frames = small_frames(clip)
        if len(frames) < 2:
            log.warning("%s: skipped (fewer than 2 frames)", clip.name)
            continue
        refs = _references(clip, frames, references or {})
        name = MOVING_NAME if str(clip) in (references or {}) else clip.name
        for backend in backends:
            bcfg = with_backend(cfg, backend)
            try:
                reference = _file_masks(bcfg, clip)
            except LivebokehError as err:
                log.warning("%s: skipped (%s)", backend, err)
                continue
            for on in adapt:
                ccfg = dataclasses.replace(bcfg, live=dataclasses.replace(bcfg.live, adapt=on))
                for load in loads:
                    log.info("%s, %s, controller %s, %d busy: %.0f s", name, backend, "on" if on else "off",
                             load, seconds)
                    with busy_processes(load):
                        figures, masks = _live(ccfg, clip, seconds, fps)
                    figures.update(matte_figures(masks, reference, frames, refs))
                    report["cases"].append({"clip": name, "backend": backend, "controller": on, "load": load,
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
    at = f"{report['fps']:g} fps" if report["fps"] else "each clip's own rate"
    return (f"{table(rows, COLUMNS)}\n\n{report['seconds']:g} s a case at {at}; "
            f"dropped in per cent of the frames captured; {report['machine']}")
