"""What the threads of one run share, whichever scheduler made them: the stop flags, the first
error, the source read and the sinks written (with the counts and latencies the report gives)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from livebokeh.pipeline.stats import LatencyLog, StageTimer
from livebokeh.sinks.base import Sink
from livebokeh.sources.base import Source
from livebokeh.types import Composite, Frame

log = logging.getLogger(__name__)

#: Seconds a waiting thread sleeps between looks at the stop flags (every queue op has a timeout).
TICK = 0.05


class Run:
    """One run's shared state.

    Three ways to end: the stream ends (the source, ``max_frames``, or :meth:`request_stop`:
    reading stops and every frame read is still written); the input fails
    (:meth:`input_failed`: the same, then its error is raised); anything else fails
    (:meth:`fail`: every thread stops at once, ``halt``).
    """

    def __init__(self, source: Source, sinks: Sequence[Sink], max_frames: int | None,
                 clock_ns: Callable[[], int] = time.monotonic_ns) -> None:
        self.source = source
        self.sinks = list(sinks)
        self.max_frames = max_frames
        self._clock_ns = clock_ns
        self.halt = threading.Event()  # every thread stops now
        self.drain = threading.Event()  # reading stops; what was read is finished
        self.finished = threading.Event()  # the last frame was written (or a thread failed)
        self.error: tuple[str, BaseException] | None = None
        self.input_error: tuple[str, BaseException] | None = None  # raised once the stream drained
        self._input_error_at = 0
        self._lock = threading.Lock()
        self.frames_in = 0
        #: Frames the source passed over before they were read (gaps in its frame numbers: a
        #: camera replacing a frame its reader came too late for); captured, and dropped.
        self.skipped = 0
        self._last_index = -1
        self.latency = LatencyLog()
        self.timers: dict[str, StageTimer] = {}

    def timer(self, stage: str) -> StageTimer:
        """The timer of ``stage`` (one per stage name, shared by the threads that do its work:
        add to it under a lock of the caller's, or from one thread)."""
        return self.timers.setdefault(stage, StageTimer(stage))

    def read(self) -> Frame | None:
        """The next frame, or None at the end (of the source, of ``max_frames`` frames captured:
        read, or passed over by a live source, or when told to stop reading). Call from one
        thread at a time."""
        limit = self.max_frames
        if self.drain.is_set() or (limit is not None and self.frames_in + self.skipped >= limit):
            return None
        frame = self.source.read()
        if frame is not None:
            gap = max(0, frame.index - self._last_index - 1)
            self._last_index = frame.index
            if limit is not None and self.frames_in + self.skipped + gap >= limit:
                self.skipped = limit - self.frames_in  # the frames up to the limit passed over; this one is past it
                return None
            self.frames_in += 1
            self.skipped += gap
        return frame

    def write(self, item: Composite) -> None:
        """``item`` to every sink, in order. Call from one thread at a time, in stream order."""
        for sink in self.sinks:
            sink.write(item)
        self.latency.add(item.frame.capture_ns, self._clock_ns())

    def input_failed(self, stage: str, err: BaseException, index: int) -> None:
        """The input failed in ``stage`` at frame ``index``: stop reading, finish what came
        before, then raise ``err``. Of several, the earliest frame's is the one the stream ends at."""
        with self._lock:
            if self.input_error is None or index < self._input_error_at:
                self.input_error, self._input_error_at = (stage, err), index
        log.debug("the input failed in the %s stage; finishing the frames read before", stage, exc_info=err)
        self.stop_reading()

    def stop_reading(self) -> None:
        """Reading stops; a read waiting for something (an on-demand source idle) is woken."""
        self.drain.set()
        self.source.interrupt()

    def halt_now(self) -> None:
        """Every thread stops now, and :meth:`Pipeline.wait` returns (safe in a signal handler)."""
        self.halt.set()
        self.source.interrupt()
        self.finished.set()

    def fail(self, stage: str, err: BaseException) -> None:
        """``stage`` failed: every thread stops now; ``err`` is raised to the caller (the first
        one only)."""
        with self._lock:
            if self.error is None:
                self.error = (stage, err)
                log.debug("%s stage failed", stage, exc_info=err)
        self.halt_now()
