"""On demand: the webcam and the model run only while some application has the virtual camera open.

:class:`ReaderWatch` tells who has the virtual camera's device open: inotify wakes it when the
device is opened or closed, and it then counts the descriptors that point at the device in
``/proc`` (every process of the user's), besides those this process held when the watch began
(the virtual camera's own writer). So it needs no event bookkeeping that a missed event could
skew, and a reader that opened the device before livebokeh started is seen too.

:class:`OnDemand` wraps the camera source: while nobody reads the virtual camera, the camera is
closed (its light goes off) and :meth:`OnDemand.read` waits on the watch, so the whole pipeline
idles; when a call app opens the device, the camera opens and frames flow again. Linux only
(v4l2loopback): OBS Virtual Camera on Windows and macOS gives no way to see its readers.
"""

from __future__ import annotations

import logging
import os
import platform
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

from livebokeh.errors import ConfigError, LivebokehError, one_line
from livebokeh.sources.base import Source
from livebokeh.sources.resilient import placeholder
from livebokeh.types import Frame, StreamInfo

log = logging.getLogger(__name__)

#: Seconds without a reader before the camera is released (a call app reopening the device, as
#: some do when they switch resolution, keeps the camera on).
GRACE_S = 1.0
#: Seconds an idle wait lasts before it looks at the stop flag again.
IDLE_WAIT_S = 0.25
#: Seconds between tries to open a camera that could not be opened when a reader came.
RETRY_S = 2.0


def check_supported(system: str | None = None) -> None:
    """Raises ConfigError where on-demand cannot work (it needs Linux's inotify and /proc)."""
    system = system or platform.system()
    if system != "Linux":
        raise ConfigError(
            f"--on-demand needs Linux (v4l2loopback): on {system} the virtual camera does not tell "
            "when an app reads it; run without --on-demand"
        )


def openers(path: str | Path, pids: Iterator[str] | None = None) -> set[tuple[str, str]]:
    """``(pid, fd)`` of every descriptor that points at ``path``, among the processes whose
    ``/proc/PID/fd`` this user may read (``pids``: only these)."""
    target = os.path.realpath(path)
    found: set[tuple[str, str]] = set()
    for pid in pids if pids is not None else (p for p in os.listdir("/proc") if p.isdigit()):
        fd_dir = f"/proc/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:  # gone, or another user's
            continue
        for fd in fds:
            try:
                if os.readlink(f"{fd_dir}/{fd}") == target:
                    found.add((pid, fd))
            except OSError:
                continue
    return found


class ReaderWatch:
    """Counts the readers of a device (see the module's docstring); :meth:`close` is safe twice.

    Args:
        path: the device (``/dev/video10``), or any file standing in for it.

    Raises:
        ConfigError: the device cannot be watched (missing, or the user's inotify instances used up).
    """

    def __init__(self, path: str | Path) -> None:
        from inotify_simple import INotify, flags

        self.path = Path(path)
        self._ours = openers(path, iter([str(os.getpid())]))  # the writer's own, held from before
        try:
            self._inotify = INotify()
        except OSError as err:
            raise ConfigError(f"cannot watch {path} for readers ({err.strerror}; the limit is "
                              "fs.inotify.max_user_instances); run without --on-demand") from None
        try:
            self._inotify.add_watch(str(path), flags.OPEN | flags.CLOSE_WRITE | flags.CLOSE_NOWRITE)
        except OSError as err:
            self._inotify.close()
            raise ConfigError(f"cannot watch {path} for readers ({err.strerror}); run without --on-demand") from None
        self.readers = self._count()

    def _count(self) -> int:
        return len(openers(self.path) - self._ours)

    def wait(self, timeout: float) -> int:
        """Wait up to ``timeout`` seconds (0: only look) for the device to be opened or closed;
        returns the readers now."""
        if self._inotify.read(timeout=int(timeout * 1000)):
            self.readers = self._count()
        return self.readers

    def close(self) -> None:
        if not self._inotify.closed:
            self._inotify.close()


class OnDemand(Source):
    """A live source opened only while the virtual camera has a reader (see the module's
    docstring).

    The inner source is opened at :meth:`open` to learn its stream (the virtual camera is set up
    with it) and stays open until the first :meth:`read` has found no reader for ``grace_s``.
    Call :meth:`watch` with the virtual camera's device once it is open (its descriptors are the
    writer's, not readers). Frames are numbered on across sessions and brought to the first
    stream's size; the first frame of each session has ``cut`` set, so that no mask, smoothing or
    model memory of an earlier session reaches it. A camera that cannot be opened when a reader
    comes (busy in another app, unplugged) gives placeholder frames, with a warning, and is tried
    again every :data:`RETRY_S` seconds.

    Args:
        make: builds a fresh (unopened) inner source, for every session.
        grace_s: seconds without a reader before the inner source is closed.
        clock: seconds, monotonic (injectable for tests).
    """

    def __init__(self, make: Callable[[], Source], grace_s: float = GRACE_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._make = make
        self.grace_s = grace_s
        self._clock = clock
        self._inner: Source | None = None
        self._watch: ReaderWatch | None = None
        self._interrupted = threading.Event()
        self._index = 0
        self._no_reader_since: float | None = None
        self._session_open = False  # frames are going to a reader now
        self._retry_at = 0.0
        self._last_image: np.ndarray | None = None
        self.sessions = 0  # times frames started to go to a reader

    def watch(self, device: str | Path) -> None:
        """Start watching ``device`` for readers (open the virtual camera on it before this)."""
        if self._watch is not None:
            self._watch.close()
        self._watch = ReaderWatch(device)
        log.info("on demand: the camera runs while an app reads %s (%d now)", device, self._watch.readers)

    @property
    def readers(self) -> int | None:
        """Apps reading the virtual camera (None before :meth:`watch`)."""
        return self._watch.readers if self._watch is not None else None

    def on_demand_state(self) -> dict[str, object]:
        """Whether frames go to a reader now, whether the camera is open, and the sessions so far."""
        return {"active": self._session_open, "camera_open": self._inner is not None, "sessions": self.sessions}

    def _open(self) -> StreamInfo:
        inner = self._make()
        info = inner.open()
        self._inner = inner
        return info

    def interrupt(self) -> None:
        self._interrupted.set()

    def read(self) -> Frame | None:
        watch = self._watch
        if watch is None:
            raise RuntimeError("OnDemand.watch(device) must be called before reading")
        while not self._interrupted.is_set():
            readers = watch.wait(0.0 if self._session_open and watch.readers else IDLE_WAIT_S)
            if readers:
                return self._serve(readers)
            if self._session_open:
                self._session_open = False
                self._no_reader_since = self._clock()
            if self._inner is not None:
                if self._no_reader_since is None:
                    self._no_reader_since = self._clock()
                if self._clock() - self._no_reader_since >= self.grace_s:
                    self._close_inner()
                    log.info("on demand: no reader of %s; camera off", watch.path)
        return None

    def _serve(self, readers: int) -> Frame | None:
        """A frame for the reader(s): the camera's, or a placeholder while it cannot be opened."""
        cut = not self._session_open
        if cut:
            self._session_open, self._no_reader_since = True, None
            self.sessions += 1
            log.info("on demand: %d reader(s) of %s; camera on", readers, self._watch.path if self._watch else "")
        if self._inner is None and self._clock() >= self._retry_at:
            inner = self._make()
            try:
                inner.open()
                self._inner = inner
            except LivebokehError as err:
                self._retry_at = self._clock() + RETRY_S
                log.warning("on demand: %s; sending a placeholder and trying again in %.0f s", one_line(err), RETRY_S)
        info = self.info
        if self._inner is None:
            time.sleep(1.0 / float(info.fps or 30))
            image = placeholder(self._last_image, (info.width, info.height), "camera unavailable")
            frame = Frame(image, 0, time.monotonic_ns())
        else:
            frame = self._inner.read()
            if frame is None:
                return None
        image = frame.image
        if image.shape[:2] != (info.height, info.width):  # another camera, or another mode, this session
            image = cv2.resize(image, (info.width, info.height), interpolation=cv2.INTER_AREA)
        self._last_image = image
        out = Frame(image, self._index, frame.capture_ns, cut=cut)
        self._index += 1
        return out

    def _close_inner(self) -> None:
        inner, self._inner = self._inner, None
        if inner is not None:
            inner.close()

    def _release(self) -> None:
        self._close_inner()
        if self._watch is not None:
            self._watch.close()
            self._watch = None
