"""Live sources: four threads at their own rates, the newest frame winning at every step.

::

    capture --newest--> inference --> MaskSlot (the newest mask)
       `----every frame, newest--> render (the newest mask moved to its frame) --newest--> sinks

Every captured frame goes to the renderer; the newest also to the model. The renderer takes
the newest mask, moved to its frame by optical flow when the model has not reached that frame
yet, so the output keeps the camera's rate whatever the model's. Frames a stage had no time
for are dropped and counted (the model's as skipped: they still go out). A model may rest
between runs (``model_rate``, ``model_duty``) to leave cores for the rest.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from livebokeh.errors import LivebokehError
from livebokeh.pipeline.processor import FrameProcessor, Segmented
from livebokeh.pipeline.run import TICK, Run
from livebokeh.pipeline.stats import StageReport
from livebokeh.queues import END, Empty, LatestQueue

#: Seconds a thread waiting for its next item sleeps between looks at the stop flag: long enough
#: that an idle pipeline (``--on-demand`` with no reader) costs next to nothing, short enough
#: that a second Ctrl-C stops at once to a person.
WAIT_S = 0.25


class MaskSlot:
    """The newest model result, shared with the renderer.

    It also follows the model (which frame it works on, since when, how long a run takes), so
    that a renderer waits for the mask of its own frame only when that mask can come in time.

    Args:
        clock: seconds, monotonic (injectable for tests).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._cond = threading.Condition()
        self._latest: Segmented | None = None
        self._ended = False
        self._resting = False
        self._working: tuple[int, float] | None = None  # (frame index, start) of the run under way
        self._run_s: float | None = None  # a run's duration, smoothed
        self._from = 0  # results of earlier frames are stale (the stream started again)

    def cut(self, index: int) -> None:
        """The stream starts again at frame ``index``: earlier results are dropped, and any
        still to come from a run on an earlier frame are ignored."""
        with self._cond:
            self._from = index
            if self._latest is not None and self._latest.frame.index < index:
                self._latest = None

    def started(self, index: int) -> None:
        """The model took frame ``index``."""
        with self._cond:
            self._working = (index, self._clock())

    def resting(self, value: bool) -> None:
        """The model is (or is no longer) resting between runs to keep its rate: no result comes
        until it takes the next frame, so a renderer waiting for one stops waiting."""
        with self._cond:
            self._resting = value
            self._cond.notify_all()

    def put(self, item: Any) -> None:
        """A model result, or END."""
        with self._cond:
            if item is END:
                self._ended = True
            elif item.frame.index >= self._from:
                self._latest = item
                if self._working is not None:
                    took = self._clock() - self._working[1]
                    self._run_s = took if self._run_s is None else 0.8 * self._run_s + 0.2 * took
                    self._working = None
            self._cond.notify_all()

    def _eta(self, index: int) -> float:
        """Seconds until a result of frame ``index`` or later can come (inf: not before the model
        rests and takes a later frame). Called with the lock held."""
        if self._resting:
            return float("inf")
        if self._run_s is None:
            return 0.0  # nothing known yet: wait as long as the caller allows
        if self._working is None:
            return self._run_s  # it takes the newest frame next
        working, since = self._working
        left = max(0.0, self._run_s - (self._clock() - since))
        return left if working >= index else left + self._run_s

    def wait_for(self, index: int, timeout: float) -> Segmented | None:
        """The newest result, after waiting up to ``timeout`` s for one of frame ``index`` or later
        when the model can give it within that time (not while it rests, nor behind a long run)."""
        with self._cond:
            if self._eta(index) <= timeout:
                self._cond.wait_for(
                    lambda: self._ended or self._resting
                    or (self._latest is not None and self._latest.frame.index >= index), timeout
                )
            return self._latest


class LiveScheduler:
    """Runs ``processor`` over a live source (see the module's docstring).

    Args:
        run: the run's shared state.
        processor: the frame work.
        fps: the camera's rate (the renderer waits up to half a frame for its own frame's mask).
        model_rate: most model runs a second (0 = as many as it can).
        model_duty: the share of the time the model may run (1 = no rest): after a run of ``t``
            seconds it rests ``t * (1 / model_duty - 1)``.
        clock, sleep: seconds, monotonic, and a sleep (injectable for tests).
    """

    def __init__(self, run: Run, processor: FrameProcessor, fps: float, model_rate: float = 0.0,
                 model_duty: float = 1.0, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.run, self.processor = run, processor
        self.model_rate, self.model_duty = model_rate, model_duty
        self._clock, self._sleep = clock, sleep
        self._frame_period = 1.0 / fps if fps > 0 else 1 / 30
        self.slot = MaskSlot(clock)
        self._to_model, self._to_render, self._to_sinks = LatestQueue(), LatestQueue(), LatestQueue()
        self._cut_at = -1  # the newest frame that started the stream again (capture thread)
        self.threads = [threading.Thread(target=self._guarded, args=(name, loop), name=f"livebokeh-{name}", daemon=True)
                        for name, loop in (("capture", self._capture), ("inference", self._infer),
                                           ("render", self._render), ("sinks", self._write))]

    def start(self) -> None:
        for t in reversed(self.threads):
            t.start()

    @property
    def dropped(self) -> int:
        """Captured frames that never reached the outputs (those the source passed over included)."""
        return self.run.skipped + self._to_render.dropped + self._to_sinks.dropped

    @property
    def skipped(self) -> int:
        """Frames the model did not see (their masks came from an earlier frame by flow)."""
        return self._to_model.dropped

    def stage_reports(self) -> list[StageReport]:
        dropped = {"capture": self.run.skipped, "inference": self.skipped, "render": self._to_render.dropped,
                   "sinks": self._to_sinks.dropped}
        return [self.run.timer(name).report(n) for name, n in dropped.items()]

    # -- the threads ------------------------------------------------------------------------

    def _guarded(self, name: str, loop: Callable[[], None]) -> None:
        try:
            loop()
        except BaseException as err:  # noqa: BLE001 - every failure must reach the caller
            self.run.fail(name, err)

    def _take(self, queue: LatestQueue) -> Any:
        """The next item, END, or None when the run halts first."""
        while not self.run.halt.is_set():
            try:
                return queue.get(timeout=WAIT_S)
            except Empty:
                continue
        return None

    def _timed(self, stage: str, work: Callable[[], Any]) -> Any:
        t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
        out = work()
        self.run.timer(stage).add(time.perf_counter_ns() - t0, time.thread_time_ns() - c0)
        return out

    def _capture(self) -> None:
        while not self.run.halt.is_set():
            try:
                frame = self._timed("capture", self.run.read)
            except LivebokehError as err:  # the camera failed: the frames read so far still go out
                self.run.input_failed("capture", err, self.run.frames_in)
                frame = None
            if frame is None:
                self._to_model.put(END)
                self._to_render.put(END)
                return
            if frame.cut:  # before any thread sees the frame: no stale mask reaches it
                self._cut_at = frame.index
                self.slot.cut(frame.index)
            self._to_model.put(frame)
            self._to_render.put(frame)

    def _infer(self) -> None:
        processor, slot = self.processor, self.slot
        resting = self.model_rate > 0 or self.model_duty < 1
        restarted = -1
        while (frame := self._take(self._to_model)) is not None:
            if frame is END:
                slot.put(END)
                return
            if restarted < self._cut_at <= frame.index:  # the cut frame itself may have been skipped
                processor.restart_model()
                restarted = self._cut_at
            started = self._clock()
            slot.started(frame.index)
            try:
                result = self._timed("inference", lambda: processor.smooth(processor.segment(frame))[0])
            except LivebokehError as err:
                self.run.input_failed("inference", err, frame.index)
                slot.put(END)
                return
            slot.put(result)
            if resting:
                self._rest(started)

    def _rest(self, started: float) -> None:
        """Rest after the model run that ``started`` (and has just ended) so that the model keeps
        to ``model_rate`` and ``model_duty``; the next run then takes the newest frame."""
        now = self._clock()
        interval = max(1.0 / self.model_rate if self.model_rate else 0.0, (now - started) / self.model_duty)
        due = started + interval
        if due <= now:
            return
        self.slot.resting(True)
        try:
            while not self.run.halt.is_set() and (left := due - self._clock()) > 0:
                self._sleep(min(left, TICK))
        finally:
            self.slot.resting(False)

    def _render(self) -> None:
        processor = self.processor
        restarted = -1
        while (frame := self._take(self._to_render)) is not None:
            if frame is END:
                self._to_sinks.put(END)
                return
            if restarted < self._cut_at <= frame.index:
                processor.restart_shown()
                restarted = self._cut_at

            def work(frame: Any = frame) -> Any:
                # wait up to half a frame for this frame's own mask, then move the newest one to it
                result = self.slot.wait_for(frame.index, 0.5 * self._frame_period)
                return processor.render(processor.follow(result, frame))

            self._to_sinks.put(self._timed("render", work))

    def _write(self) -> None:
        while (item := self._take(self._to_sinks)) is not None:
            if item is END:
                self.run.finished.set()
                return
            self._timed("sinks", lambda: self.run.write(item))
