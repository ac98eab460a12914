"""Live sources: four threads at their own rates, the newest frame winning at every step.

::

    capture --newest--> inference --> MaskSlot (the newest mask)
       `----every frame, newest--> render (the newest mask moved to its frame) --newest--> sinks

Every captured frame goes to the renderer; the newest also to the model. The renderer carries
the mask shown from frame to frame by optical flow and blends each new model result into it
(:class:`~livebokeh.mask.tracker.LiveMatte`), so the output keeps the camera's rate whatever the
model's. Frames a stage had no time for are dropped and counted (the model's as skipped: they
still go out).

The camera's rate comes first: the model's thread runs at a lower scheduling priority than the
others (:func:`livebokeh.threads.lower_priority`), so on a busy machine it is the model that
waits, not the frames. It runs when the picture asks for it (:class:`Pacing`): as soon as the
person's edge moved or the picture changed enough since its last frame, at most as often as its
share of the time (``model_duty``) and ``model_rate`` allow, and at least :data:`MIN_RATE`
times a second; a still talking head needs few runs, a person moving many.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from livebokeh.errors import LivebokehError
from livebokeh.pipeline.controller import Level, LiveController, ladder
from livebokeh.pipeline.processor import FrameProcessor, Segmented
from livebokeh.pipeline.run import TICK, Run
from livebokeh.pipeline.stats import StageReport
from livebokeh.queues import END, Empty, LatestQueue
from livebokeh.threads import lower_priority

log = logging.getLogger(__name__)

#: Seconds a thread waiting for its next item sleeps between looks at the stop flag: long enough
#: that an idle pipeline (``--on-demand`` with no reader) costs next to nothing, short enough
#: that a second Ctrl-C stops at once to a person.
WAIT_S = 0.25
#: Fewest model runs a second, however still the picture (what is new in it shows within this).
MIN_RATE = 2.0
#: Pixels of the mask (summed over frames) the person's edge may move before the model runs again.
MOTION_PX = 2.0
#: Share of the picture (summed over frames) that may change before the model runs again.
CHANGE_SHARE = 0.05


@dataclass
class Pacing:
    """When a live model runs: after each run it rests until the picture asks for another.

    Attributes:
        max_rate: most runs a second (0: no ceiling but ``duty``).
        duty: the share of the time the model may run: a run of ``t`` seconds is followed by at
            least ``t * (1 / duty - 1)`` of rest.
        min_rate: fewest runs a second, however still the picture.
        motion: pixels of the mask the person's edge may move (summed over frames) before
            the next run; 0 runs as often as the two limits above allow.
        change: share of the picture that may change (summed over frames) before the next run.
    """

    max_rate: float = 0.0
    duty: float = 1.0
    min_rate: float = MIN_RATE
    motion: float = MOTION_PX
    change: float = CHANGE_SHARE

    def earliest(self, run_s: float) -> float:
        """Seconds from a run's start before the next may start."""
        return max(1.0 / self.max_rate if self.max_rate > 0 else 0.0, run_s / self.duty)

    def latest(self) -> float:
        """Seconds from a run's start after which the next starts, whatever the picture (never
        before the ceiling allows: a ``max_rate`` below ``min_rate`` wins)."""
        floor = 1.0 / self.min_rate if self.min_rate > 0 else float("inf")
        return max(floor, 1.0 / self.max_rate) if self.max_rate > 0 else floor


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
        processor: the frame work (made ``live``).
        fps: the camera's rate (the renderer waits up to half a frame for its own frame's mask).
        pacing: when the model runs (:class:`Pacing`).
        clock: seconds, monotonic (injectable for tests).
    """

    def __init__(self, run: Run, processor: FrameProcessor, fps: float, pacing: Pacing | None = None,
                 clock: Callable[[], float] = time.monotonic, adapt: bool = True,
                 fallback: Callable[[], Any] | None = None, fallback_name: str | None = None) -> None:
        self.run, self.processor = run, processor
        self.pacing = pacing or Pacing()
        self._user_rate = self.pacing.max_rate
        self._clock = clock
        self._frame_period = 1.0 / fps if fps > 0 else 1 / 30
        self.slot = MaskSlot(clock)
        self._to_model, self._to_render, self._to_sinks = LatestQueue(), LatestQueue(), LatestQueue()
        self._cut_at = -1  # the newest frame that started the stream again (capture thread)
        self._rendered = threading.Condition()  # notified after each frame's mask is made
        self._swap: Any = None  # a segmenter to take over at the next model run
        self._swapped = threading.Event()
        #: Model runs so far.
        self.model_runs = 0
        #: What called each run after a rest: "motion" (the person's edge moved), "change" (the
        #: picture did), "floor" (the fewest runs a second), "always" (no pacing by the picture).
        self.asked_by: dict[str, int] = {}
        #: Whether the model's thread got a lower scheduling priority than the others.
        self.model_deprioritised = False
        self._primary = processor.segmenter
        self._fallback_factory = fallback
        self._on_fallback = False
        self._cost = self._cost_applied = 0
        levels = ladder(_cost_levels(processor.segmenter), fallback_name if fallback is not None else None)
        self.controller = LiveController(levels, fps or 30.0, self._apply_level, enabled=adapt)
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

    def swap(self, segmenter: Any, close_old: bool = True) -> None:
        """Another segmenter (built by the caller, open) takes over at the model's next run; the
        one it replaces is closed there (unless ``close_old`` is False). What is shown goes on
        without a jump: the new model's results are blended into it (:meth:`FrameProcessor.follow`).
        It becomes the run's own model: the controller's fallback steps back to it."""
        self._swapped.clear()
        self._swap = (segmenter, close_old)
        if segmenter is not self._primary and not self._on_fallback:
            self._primary = segmenter

    def wait_swapped(self, timeout: float) -> bool:
        """Whether the last :meth:`swap` took effect within ``timeout`` seconds."""
        return self._swapped.wait(timeout)

    def _take_swap(self) -> None:
        swap, self._swap = self._swap, None
        if swap is not None:
            new, close_old = swap
            if getattr(new.traits, "stateful", False):
                new.reset()  # what it remembers of the stream is old by now
            old = self.processor.use_segmenter(new)
            self._cost_applied = 0
            if close_old and old is not new and old is not self._primary and hasattr(old, "close"):
                old.close()
            self._swapped.set()
        if self._cost != self._cost_applied:
            self.processor.segmenter.set_cost_level(self._cost) if hasattr(self.processor.segmenter,
                                                                            "set_cost_level") else None
            self._cost_applied = self._cost

    # -- the controller's levels ---------------------------------------------------------------

    def _apply_level(self, level: Level) -> None:
        """Make ``level`` the run's (called by the controller from the sinks' thread)."""
        caps = [r for r in (self._user_rate, level.max_rate) if r > 0]
        self.pacing.max_rate = min(caps) if caps else 0.0
        self._cost = level.cost
        self.processor.controls.light = level.light
        if level.fallback != self._on_fallback and self._fallback_factory is not None:
            self._on_fallback = level.fallback
            if level.fallback:
                threading.Thread(target=self._swap_to_fallback, name="livebokeh-fallback", daemon=True).start()
            else:
                self._swap = (self._primary, True)  # the fallback is closed, the run's own model comes back
                self._swapped.clear()
        with self._rendered:
            self._rendered.notify_all()

    def _swap_to_fallback(self) -> None:
        try:
            fallback = self._fallback_factory()
        except Exception as err:  # noqa: BLE001 - the run goes on with its own model
            log.warning("live: the fallback backend could not be started (%s); staying with the run's own", err)
            self._on_fallback = False
            return
        if not self._on_fallback or self.run.halt.is_set():  # stepped up again meanwhile, or stopping
            fallback.close()
            return
        self._swap = (fallback, False)  # the run's own model stays open, to come back to
        self._swapped.clear()

    def close_models(self, keep: Any) -> None:
        """Close the models the run took on (swapped in, a fallback), all but ``keep`` (the one
        the caller made and closes). Call once the threads have ended."""
        for seg in (self.processor.segmenter, self._primary):
            if seg is not keep and hasattr(seg, "close"):
                seg.close()

    def _infer(self) -> None:
        processor, slot = self.processor, self.slot
        self.model_deprioritised = lower_priority()
        restarted = -1
        while (frame := self._take(self._to_model)) is not None:
            if frame is END:
                slot.put(END)
                return
            self._take_swap()
            if restarted < self._cut_at <= frame.index:  # the cut frame itself may have been skipped
                processor.restart_model()
                restarted = self._cut_at
            started = self._clock()
            matte = processor.matte
            moved, changed = (matte.motion, matte.change) if matte is not None else (0.0, 0.0)
            slot.started(frame.index)
            try:
                result = self._timed("inference", lambda: processor.segment(frame))
            except LivebokehError as err:
                self.run.input_failed("inference", err, frame.index)
                slot.put(END)
                return
            self.model_runs += 1
            slot.put(result)
            self._rest(started, moved, changed)

    def _rest(self, started: float, moved: float, changed: float) -> None:
        """Rest after the model run that ``started`` (and has just ended), until the picture
        asks for the next one (:class:`Pacing`); the next run then takes the newest frame.
        ``moved`` and ``changed`` are the live matte's totals when the run started."""
        pacing, matte = self.pacing, self.processor.matte
        run_s = self._clock() - started
        earliest, latest = started + pacing.earliest(run_s), started + pacing.latest()

        def asked() -> str | None:
            if pacing.motion <= 0 or matte is None:
                return "always"
            if matte.motion - moved >= pacing.motion:
                return "motion"
            return "change" if matte.change - changed >= pacing.change else None

        self.slot.resting(True)
        try:
            with self._rendered:
                while not self.run.halt.is_set() and self._swap is None:
                    now = self._clock()
                    why = "floor" if now >= latest else asked() if now >= earliest else None
                    if why is not None:
                        self.asked_by[why] = self.asked_by.get(why, 0) + 1
                        return
                    wake = latest if now >= earliest else earliest
                    self._rendered.wait(min(wake - now, TICK))
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
                processor.restart_shown(self._cut_at)
                restarted = self._cut_at

            def work(frame: Any = frame) -> Any:
                # wait up to half a frame for this frame's own mask, then carry the shown one to it
                result = self.slot.wait_for(frame.index, 0.5 * self._frame_period)
                shown = processor.follow(result, frame)
                with self._rendered:
                    self._rendered.notify_all()  # the model's pacing looks at the picture's motion
                return processor.render(shown)

            self._to_sinks.put(self._timed("render", work))

    def _write(self) -> None:
        run, controller = self.run, self.controller
        model = run.timer("inference")
        while (item := self._take(self._to_sinks)) is not None:
            if item is END:
                self.run.finished.set()
                return
            self._timed("sinks", lambda: run.write(item))
            controller.frame_out(run.latency.values_ns[-1], self.dropped, model.items, model.busy_ns, model.cpu_ns)


def _cost_levels(segmenter: Any) -> tuple[str, ...]:
    """The segmenter's live cost levels (none for one that declares no such method)."""
    levels = getattr(segmenter, "cost_levels", None)
    return tuple(levels()) if callable(levels) else ()
