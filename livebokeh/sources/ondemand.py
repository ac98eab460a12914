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

from livebokeh.errors import ConfigError
from livebokeh.sources.base import Source
from livebokeh.types import Frame, StreamInfo

log = logging.getLogger(__name__)

#: Seconds without a reader before the camera is released (a call app reopening the device, as
#: some do when they switch resolution, keeps the camera on).
GRACE_S = 1.0
#: Seconds an idle wait lasts before it looks at the stop flag again.
IDLE_WAIT_S = 0.25


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
    """

    def __init__(self, path: str | Path) -> None:
        from inotify_simple import INotify, flags

        self.path = Path(path)
        self._ours = openers(path, iter([str(os.getpid())]))  # the writer's own, held from before
        self._inotify = INotify()
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

    The inner source is opened once at :meth:`open` to learn its stream (the virtual camera is
    set up with it), and closed at once if nobody reads yet. Frames are numbered on across
    sessions. Call :meth:`watch` with the virtual camera's device after it is open, before the
    first :meth:`read`.

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
        self._path: Path | None = None
        self._interrupted = threading.Event()
        self._index = 0
        self._no_reader_since: float | None = None
        self.sessions = 0  # times the inner source was opened for a reader

    def watch(self, device: str | Path) -> None:
        """The device whose readers turn the source on and off (open it before this)."""
        self._path = Path(device)

    def _open(self) -> StreamInfo:
        inner = self._make()
        info = inner.open()
        self._inner = inner
        return info

    def interrupt(self) -> None:
        self._interrupted.set()

    def read(self) -> Frame | None:
        if self._watch is None:
            if self._path is None:
                raise RuntimeError("OnDemand.watch(device) must be called before reading")
            self._watch = ReaderWatch(self._path)
            log.info("on demand: the camera runs while an app reads %s (%d now)", self._path, self._watch.readers)
        watch = self._watch
        while not self._interrupted.is_set():
            readers = watch.wait(0.0 if self._inner is not None and watch.readers else IDLE_WAIT_S)
            if readers:
                self._no_reader_since = None
                if self._inner is None:
                    self._inner = self._make()
                    self._inner.open()
                    self.sessions += 1
                    log.info("on demand: %d reader(s) of %s; camera on", readers, self._path)
                frame = self._inner.read()
                if frame is None:
                    return None
                frame = Frame(frame.image, self._index, frame.capture_ns)
                self._index += 1
                return frame
            if self._inner is not None:
                now = self._clock()
                if self._no_reader_since is None:
                    self._no_reader_since = now
                if now - self._no_reader_since >= self.grace_s:
                    self._close_inner()
                    log.info("on demand: no reader of %s; camera off", self._path)
                else:
                    self._inner.read()  # keep the camera's buffer fresh during the grace
        return None

    def _close_inner(self) -> None:
        inner, self._inner = self._inner, None
        if inner is not None:
            inner.close()

    def _release(self) -> None:
        self._close_inner()
        if self._watch is not None:
            self._watch.close()
            self._watch = None
