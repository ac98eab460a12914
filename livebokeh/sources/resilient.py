"""Keep a live source going through camera loss: placeholders while it is gone, reconnect with backoff.

A video-call app drops a virtual camera that stops sending frames, and peers crash or spin when
the webcam is unplugged. :class:`Reconnecting` wraps a live source: a reader thread reads it; when
reads fail, or no frame arrives for ``watchdog_s`` (a stall), :meth:`read` keeps delivering frames
at the stream's rate — the last good frame dimmed, with a "camera unavailable" note — while the
reader reopens the source with growing pauses. Frames resume by themselves when it is back. Each
loss and each return is logged once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import cv2
import numpy as np

from livebokeh.errors import LivebokehError
from livebokeh.sources.base import Source
from livebokeh.types import Frame, StreamInfo

log = logging.getLogger(__name__)

#: Pauses between reopen attempts (the last one repeats).
BACKOFF_S = (0.25, 0.5, 1.0, 2.0, 4.0)


def placeholder(last: np.ndarray | None, size: tuple[int, int], text: str) -> np.ndarray:
    """The last good frame dimmed (or a dark card) with ``text``, ``size = (w, h)`` (new array)."""
    w, h = size
    if last is not None and last.shape[:2] == (h, w):
        img = (last.astype(np.uint16) * 2 // 5).astype(np.uint8)
    else:
        img = np.full((h, w, 3), 32, np.uint8)
    scale = max(0.5, h / 720)
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 2)
    cv2.putText(img, text, ((w - tw) // 2, (h + th) // 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 2,
                cv2.LINE_AA)
    return img


class Reconnecting(Source):
    """A live source that survives loss of its device (see the module text).

    Args:
        make: builds a fresh (unopened) inner source; called again for every reconnect.
        watchdog_s: no frame for this long counts as a loss.
        backoff_s: pauses between reopen attempts.
    """

    def __init__(self, make: Callable[[], Source], watchdog_s: float = 2.0,
                 backoff_s: tuple[float, ...] = BACKOFF_S) -> None:
        self._make = make
        self.watchdog_s = watchdog_s
        self.backoff_s = backoff_s
        self._cond = threading.Condition()
        self._inner: Source | None = None
        self._latest: Frame | None = None
        self._served = -1  # capture_ns of the last real frame handed out
        self._last_real = time.monotonic()
        self._last_image: np.ndarray | None = None
        self._closing = threading.Event()
        self._reader: threading.Thread | None = None
        self._index = 0
        self._lost = False
        self._next_due = 0.0
        self.losses = 0
        self.placeholders = 0

    def _open(self) -> StreamInfo:
        inner = self._make()
        info = inner.open()  # the first open must work: errors here are the user's to fix
        self._inner = inner
        self._closing.clear()
        self._last_real = time.monotonic()
        self._reader = threading.Thread(target=self._read_loop, name="livebokeh-camera", daemon=True)
        self._reader.start()
        return info

    # -- reader thread --------------------------------------------------------------------

    def _read_loop(self) -> None:
        while not self._closing.is_set():
            inner = self._inner
            try:
                frame = inner.read() if inner is not None else None
                if frame is None:
                    raise LivebokehError("the source ended")
            except Exception as err:  # noqa: BLE001 - any failure of the device means: reconnect
                if self._closing.is_set():
                    return
                self._mark_lost(str(err))
                self._reconnect()
                continue
            with self._cond:
                self._latest = frame
                self._last_real = time.monotonic()
                self._cond.notify_all()

    def _mark_lost(self, why: str) -> None:
        with self._cond:
            if not self._lost:
                self._lost = True
                self.losses += 1
                log.warning("%s lost (%s); sending a placeholder and reconnecting", self.info.name, why)
            self._cond.notify_all()

    def _close_inner(self) -> None:
        """Close the device (it may be gone or hung: any error is ignored)."""
        inner = self._inner
        if inner is not None:
            try:
                inner.close()
            except Exception:  # noqa: BLE001 - it is gone anyway
                pass

    def _reconnect(self) -> None:
        self._close_inner()
        self._inner = None
        attempt = 0
        while not self._closing.is_set():
            pause = self.backoff_s[min(attempt, len(self.backoff_s) - 1)]
            if self._closing.wait(pause):
                return
            attempt += 1
            inner = self._make()
            try:
                inner.open()
            except Exception as err:  # noqa: BLE001
                log.debug("reopen attempt %d failed: %s", attempt, err)
                continue
            self._inner = inner
            with self._cond:
                self._lost = False
                self._last_real = time.monotonic()  # the watchdog starts again
            log.warning("%s is back after %d attempt(s)", self.info.name, attempt)
            return

    # -- consumer side ----------------------------------------------------------------------

    def read(self) -> Frame | None:
        info = self.info
        period = 1.0 / float(info.fps) if info.fps else 1 / 30
        with self._cond:
            while True:
                fresh = self._latest is not None and self._latest.capture_ns != self._served
                if fresh:
                    frame = self._latest
                    self._served = frame.capture_ns
                    self._last_image = frame.image
                    return self._renumber(frame.image, frame.capture_ns)
                stalled = time.monotonic() - self._last_real > self.watchdog_s
                if (self._lost or stalled) and time.monotonic() >= self._next_due:
                    if stalled and not self._lost:
                        self._lost = True
                        self.losses += 1
                        log.warning("%s sent no frame for %.1f s; sending a placeholder", info.name, self.watchdog_s)
                        # a read that hangs: close the device so the reader returns and reconnects
                        threading.Thread(target=self._close_inner, daemon=True).start()
                    self._next_due = time.monotonic() + period
                    self.placeholders += 1
                    img = placeholder(self._last_image, (info.width, info.height), "camera unavailable - reconnecting")
                    return self._renumber(img, time.monotonic_ns())
                if self._closing.is_set():
                    return None
                self._cond.wait(min(period, self.watchdog_s) / 2)

    def _renumber(self, image: np.ndarray, capture_ns: int) -> Frame:
        info = self.info
        if image.shape[:2] != (info.height, info.width):
            image = cv2.resize(image, (info.width, info.height), interpolation=cv2.INTER_AREA)
        frame = Frame(image, self._index, capture_ns)
        self._index += 1
        return frame

    def _release(self) -> None:
        self._closing.set()
        with self._cond:
            self._cond.notify_all()
        self._close_inner()
        if self._reader is not None:
            self._reader.join(2.0)
        self._inner = None
