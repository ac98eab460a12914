"""``livebokeh bench ondemand``: what ``--on-demand`` costs while nobody watches, and how fast it
wakes up.

The command's own assembly (:mod:`livebokeh.app`) runs on a synthetic camera at 30 fps into a
virtual camera whose device is a plain file standing in for ``/dev/videoN``; the inotify watch
is real. The bench measures the process's CPU while no app reads the device, opens the file as
a call app would (time to the first frame sent to the virtual camera), reads for a while (CPU
while active), closes it (time until the camera is released), and idles again.
"""

from __future__ import annotations

import dataclasses
import time
from contextlib import ExitStack
from fractions import Fraction

import numpy as np

from livebokeh.app import Job, open_run
from livebokeh.bench.common import machine, scratch_dir
from livebokeh.config import Config
from livebokeh.sources.base import Source
from livebokeh.types import Frame, StreamInfo


class SyntheticCamera(Source):
    """A 1280x720 camera at ``fps``: a bright block moving over a textured room."""

    def __init__(self, fps: float = 30.0) -> None:
        self.fps = fps
        self.is_open = False
        self._next = 0.0
        self._i = 0
        rng = np.random.default_rng(0)
        self._room = rng.integers(40, 120, (720, 1280, 3), dtype=np.uint8)

    def _open(self) -> StreamInfo:
        self.is_open = True
        self._next = time.monotonic()
        return StreamInfo("synthetic camera", 1280, 720, Fraction(self.fps), live=True)

    def read(self) -> Frame | None:
        self._next += 1.0 / self.fps
        time.sleep(max(0.0, self._next - time.monotonic()))
        img = self._room.copy()
        x = 300 + (self._i * 4) % 400
        img[150:720, x:x + 400] = 200
        self._i += 1
        return Frame(img, self._i - 1, time.monotonic_ns())

    def _release(self) -> None:
        self.is_open = False


def _wait(condition, timeout: float = 60.0) -> float:
    """Seconds until ``condition()`` holds (inf after ``timeout``)."""
    t0 = time.monotonic()
    while not condition():
        if time.monotonic() - t0 > timeout:
            return float("inf")
        time.sleep(0.002)
    return time.monotonic() - t0


def _cpu_share(seconds: float) -> float:
    """This process's CPU over ``seconds`` of wall time, in cores."""
    c0, t0 = time.process_time(), time.monotonic()
    time.sleep(seconds)
    return (time.process_time() - c0) / (time.monotonic() - t0)


def run(cfg: Config | None = None, idle_s: float = 60.0, active_s: float = 5.0) -> dict:
    import pyvirtualcam
    from pyvirtualcam import camera as pvc

    sent: list[float] = []
    cams: list[SyntheticCamera] = []

    class FileCamera:
        """A virtual camera whose device is the stand-in file; notes when each frame is sent."""

        def __init__(self, *, width: int, height: int, fps: float, fourcc: int, device: str, **kw: object) -> None:
            self.fourcc, self.path = fourcc, device

        def send(self, frame: np.ndarray) -> None:
            sent.append(time.monotonic())

        def device(self) -> str:
            return self.path

        def native_fourcc(self) -> int:
            return self.fourcc

        def close(self) -> None:
            pass

    def camera() -> SyntheticCamera:
        cams.append(SyntheticCamera())
        return cams[-1]

    def camera_on() -> bool:
        return any(c.is_open for c in cams)

    saved = dict(pvc.BACKENDS)
    pyvirtualcam.register_backend("bench-file", FileCamera)
    try:
        with scratch_dir() as tmp, ExitStack() as stack:  # removed however the bench ends (Ctrl-C too)
            device = tmp / "video10"
            device.write_bytes(b"")
            base = cfg or Config()
            cfg = dataclasses.replace(
                base, preview=dataclasses.replace(base.preview, enabled=False),
                virtual_camera=dataclasses.replace(base.virtual_camera, enabled=True, backend="bench-file",
                                                   device=str(device), on_demand=True))
            # the command's run: the camera reconnecting and on demand, the virtual camera watched
            run = stack.enter_context(open_run(cfg, Job(), camera=camera))
            run.start()
            result: dict = {"machine": machine(), "backend": cfg.segmenter.backend}
            result["start_release_s"] = _wait(lambda: not camera_on())
            result["idle_cores"] = _cpu_share(idle_s)
            with open(device, "rb"):
                t_open = time.monotonic()
                result["first_frame_s"] = _wait(lambda: bool(sent) and sent[-1] > t_open)
                result["active_cores"] = _cpu_share(active_s)
                result["active_fps"] = sum(1 for t in sent if t > time.monotonic() - active_s) / active_s
            result["release_s"] = _wait(lambda: not camera_on())  # from the close
            result["idle_again_cores"] = _cpu_share(min(idle_s, 10.0))
            run.request_stop()
            report = run.wait()
            result["frames_out"] = report.frames_out
            result["idle_s"], result["active_s"] = idle_s, active_s
            return result
    finally:
        pvc.BACKENDS.clear()
        pvc.BACKENDS.update(saved)


def render(r: dict) -> str:
    return (
        f"on demand ({r['backend']}, synthetic 1280x720 camera at 30 fps, a file standing in for the device):\n"
        f"  camera released {r['start_release_s']:.2f} s after start (opened once to learn its stream)\n"
        f"  idle, no reader, {r['idle_s']:.0f} s: {100 * r['idle_cores']:.2f}% of a core (target < 1%)\n"
        f"  a reader opens the device: first frame sent {1e3 * r['first_frame_s']:.0f} ms later (target < 1000 ms)\n"
        f"  while read: {r['active_fps']:.1f} fps, {100 * r['active_cores']:.0f}% of a core\n"
        f"  the reader closes it: camera released {r['release_s']:.2f} s later (target < 2 s)\n"
        f"  idle again: {100 * r['idle_again_cores']:.2f}% of a core\n{r['machine']}"
    )
