"""A video file played as a camera (``--camera FILE``): in real time, at the file's own pace.

A webcam does not wait for its reader: it delivers a frame every frame period, and a reader that
falls behind finds the newer frame, never the old one. :class:`ClipCamera` does the same with a
file, so that recordings can be fed through the live path exactly as a webcam feeds it (newest
frame wins, drops counted, latency measured): the clip starts playing at the first read, and each
frame is due at its own presentation time after that; a frame whose successor is already due when the reader asks is
skipped, as a camera's driver would have replaced it (:attr:`ClipCamera.skipped`). Frame indices
are the clip's frame numbers (0-based; with ``loop`` they go on counting over the repeats), so a
skipped frame leaves a gap that outputs named by frame number show.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

from livebokeh.sources.animation import AnimationSource, is_animation
from livebokeh.errors import SourceError
from livebokeh.sources.base import SOURCES, Source
from livebokeh.sources.video import VideoFileSource
from livebokeh.types import Frame, StreamInfo

log = logging.getLogger(__name__)


@SOURCES.register("clip")
class ClipCamera(Source):
    """A video file as a live camera (see the module text).

    Args:
        path: any video the file input reads, or an animated PNG or WebP.
        loop: start again at the end, as a camera whose picture jumps: no new stream begins (a
            cut would show the picture all background until the model's next mask; the live
            matte and RVM's memory see the jump by themselves); without it the stream ends with
            the file.
        fps: play at this rate, one frame every ``1 / fps`` seconds, instead of the file's own
            timing (benchmarks: a 25 fps clip as a 30 fps camera).
        clock_ns, sleep: monotonic clock and sleep (injectable for tests).
    """

    def __init__(self, path: str | Path, loop: bool = False, fps: float | None = None,
                 clock_ns: Callable[[], int] = time.monotonic_ns, sleep: Callable[[float], None] | None = None) -> None:
        self.path = Path(path)
        self.loop = loop
        self.fps = fps
        self._clock_ns = clock_ns
        self._wake = threading.Event()
        self._sleep = sleep or (lambda s: self._wake.wait(s))
        self._inner: Source | None = None  # the file: a video, or an animated PNG or WebP
        self._t0: int | None = None
        self._offset = 0.0  # seconds of the repeats played before this one
        self._base = 0  # frames of the repeats played before this one
        self._period = 1 / 30
        self._last_t = 0.0  # time of the last frame decoded in this repeat
        self._in_repeat = 0  # frames decoded in this repeat
        #: Frames passed over because the next one was already due (a camera would have replaced them).
        self.skipped = 0
        #: Frames delivered.
        self.delivered = 0
        self._warned = False

    def _open(self) -> StreamInfo:
        inner: Source = AnimationSource(self.path) if is_animation(self.path) else VideoFileSource(self.path)
        info = inner.open()
        self._inner = inner
        if self.fps:
            info = dataclasses.replace(info, fps=Fraction(self.fps).limit_denominator(1001))
        self._period = 1.0 / float(info.fps) if info.fps else 1 / 30
        self._offset, self._base, self._last_t, self._in_repeat = 0.0, 0, 0.0, 0
        self._first_t: float | None = None  # the first picture's time in the file
        self._wake.clear()
        self._t0 = None  # the clip starts playing at the first read (not while a model loads)
        log.info("playing %s as a camera%s", self.path.name, ", looped" if self.loop else "")
        return dataclasses.replace(info, name=f"{info.name} (as a camera)", live=True,
                                   frame_count=None if self.loop else info.frame_count)

    def _next_decoded(self) -> Frame | None:
        """The next frame of the file (a new repeat when looping), or None at its end. Looping,
        a file that ends early (truncated, damaged at the end) starts again where it stops."""
        try:
            frame = self._inner.read() if self._inner is not None else None
        except SourceError as err:
            if not (self.loop and self._in_repeat):
                raise
            if not self._warned:
                log.warning("%s ends early (%s); playing it again from there", self.path.name, err)
                self._warned = True
            frame = None
        if frame is None and self.loop and self._inner is not None:
            span = self._last_t + self._period
            count = self._base + self._in_repeat
            self._inner.close()
            self._inner.open()
            self._offset += span
            self._base = count
            self._last_t, self._in_repeat = 0.0, 0
            frame = self._inner.read()
        return frame

    def read(self) -> Frame | None:
        while not self._wake.is_set():
            frame = self._next_decoded()
            if frame is None:
                return None
            t = frame.time_s if frame.time_s is not None and not self.fps else frame.index * self._period
            if self._first_t is None:
                self._first_t = t
            t -= self._first_t  # from the first picture (a file's sound may start before it)
            self._last_t, self._in_repeat = t, frame.index + 1
            if self._t0 is None:
                self._t0 = self._clock_ns() - int((self._offset + t) * 1e9)
            due_ns = self._t0 + int((self._offset + t) * 1e9)
            late_ns = self._clock_ns() - due_ns
            if late_ns > self._period * 1e9:  # the next frame is due already: this one is gone
                self.skipped += 1
                continue
            if late_ns < 0:
                self._sleep(-late_ns / 1e9)
                if self._wake.is_set():
                    return None
            self.delivered += 1
            return Frame(frame.image, self._base + frame.index, self._clock_ns(), None)
        return None

    def interrupt(self) -> None:
        self._wake.set()

    def _release(self) -> None:
        if self._inner is not None:
            self._inner.close()
        self._inner = None
