"""Files: one ordered, bounded parallel map over a pool of worker threads.

A frame goes through five steps: read, segment, smooth, render, write. Steps that carry state
(reading, a recurrent model, the smoother, the sinks) take their items in stream order, one at
a time; pure steps (rendering, a stateless heavy model) take any waiting item, several at
once. Any free worker takes the next step that can run: the serial steps first (from the
sinks back, so frames leave before new ones come in; a serial step is the pipeline's narrowest
point whenever it has work), then the pure ones, then a new frame while fewer than ``limit``
are in flight. So the cores stay busy whichever step is heaviest (the model with RVM or DeepLab,
the renderer and the encoder with MediaPipe at 1080p), the output is the same on every run,
and nothing is dropped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from livebokeh.errors import LivebokehError
from livebokeh.pipeline.processor import FrameProcessor
from livebokeh.pipeline.run import TICK, Run
from livebokeh.pipeline.stats import StageReport

log = logging.getLogger(__name__)


@dataclass
class Step:
    """One step of the map.

    Attributes:
        name: the stage it counts under in the report.
        work: one item in, the items it gives out (a pure step: exactly one).
        serial: items in stream order, one at a time; else any order, up to ``concurrency``.
        flush: a serial step's items still held when its input has ended.
        input_step: a :class:`~livebokeh.errors.LivebokehError` here is the input's (given
            masks that run out): the stream ends before the item, like a source ending.
    """

    name: str
    work: Callable[[Any], list[Any]]
    serial: bool = True
    concurrency: int = 1
    flush: Callable[[], list[Any]] | None = None
    input_step: bool = False
    counts: bool = True  # its items are the stage's frames in the report (the smoother's are not)
    # the scheduler's bookkeeping, under its lock
    waiting: dict[int, Any] = field(default_factory=dict)  # sequence number -> item
    taken: int = 0  # serial: the next sequence number to take
    running: int = 0
    done: int = 0  # every item below this sequence number is finished
    done_ahead: set[int] = field(default_factory=set)  # finished above ``done`` (pure steps)
    given: int = 0  # items given to the next step (a serial step numbers them)
    total: int | None = None  # items this step gets, once the step before has ended
    flushed: bool = False

    def ended(self) -> bool:
        return self.total is not None and self.done >= self.total and self.flushed and self.running == 0


def _mark_done(step: Step, seq: int) -> None:
    """Item ``seq`` of ``step`` is finished: ``done`` moves past every finished item in a row."""
    step.done_ahead.add(seq)
    while step.done in step.done_ahead:
        step.done_ahead.remove(step.done)
        step.done += 1


_READ, _ITEM, _FLUSH = "read", "item", "flush"


class FileScheduler:
    """Runs ``processor`` over a file source on ``workers`` threads (see the module's docstring).

    Args:
        run: the run's shared state (source, sinks, stop flags).
        processor: the frame work.
        workers: threads in the pool.
        segment_workers: most model runs at once, when the model may run side by side
            (:attr:`FrameProcessor.segment_in_parallel`).
        limit: most frames read and not yet written (besides those the smoother holds back).
    """

    def __init__(self, run: Run, processor: FrameProcessor, workers: int = 2, segment_workers: int = 1,
                 limit: int = 8) -> None:
        if workers < 1 or segment_workers < 1 or limit < 1:
            raise ValueError(f"need workers, segment_workers and limit >= 1, got {workers}, {segment_workers}, {limit}")
        self.run, self.processor = run, processor
        self.limit = limit + processor.holds
        parallel = processor.segment_in_parallel
        if parallel and segment_workers > 1:
            log.info("the model runs on %d threads side by side (it outweighs the rendering)", segment_workers)
        self.steps = [
            Step("capture", lambda _: [], input_step=True),  # reading has its own job kind
            Step("inference", lambda f: [processor.segment(f)], serial=not parallel,
                 concurrency=segment_workers if parallel else 1, input_step=True),
            Step("inference", processor.smooth, flush=processor.flush, counts=False),
            Step("render", lambda s: [processor.render(s)], serial=False, concurrency=workers),
            Step("sinks", self._write),
        ]
        for step in self.steps:
            step.flushed = step.flush is None
        # serial steps first, from the sinks back; then the pure ones; reading last
        later_first = list(reversed(range(1, len(self.steps))))
        self._order = [i for i in later_first if self.steps[i].serial] + [i for i in later_first if not self.steps[i].serial]
        self._cond = threading.Condition()
        self._timers = {s.name: run.timer(s.name) for s in self.steps}
        self.threads = [threading.Thread(target=self._worker, name=f"livebokeh-worker-{i}", daemon=True)
                        for i in range(workers)]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def _write(self, item: Any) -> list[Any]:
        self.run.write(item)
        return []

    # -- the workers ------------------------------------------------------------------------

    def _worker(self) -> None:
        step_name = "capture"
        try:
            while True:
                with self._cond:
                    while True:
                        if self.run.halt.is_set() or self.steps[-1].ended():
                            self._cond.notify_all()
                            return
                        job = self._next_job()
                        if job is not None:
                            break
                        self._cond.wait(TICK)
                kind, i, seq, item = job
                step = self.steps[i]
                step_name = step.name
                t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
                try:
                    if kind == _READ:
                        frame = self.run.read()
                        out = [] if frame is None else [frame]
                    elif kind == _FLUSH:
                        out = step.flush() if step.flush else []
                    else:
                        out = step.work(item)
                except LivebokehError as err:
                    if not step.input_step:
                        raise
                    index = self.run.frames_in if kind == _READ else item.index
                    self.run.input_failed(step.name, err, index)
                    with self._cond:
                        self._cut(i, seq)
                        self._cond.notify_all()
                    continue
                dt, dc = time.perf_counter_ns() - t0, time.thread_time_ns() - c0
                with self._cond:
                    counted = (kind == _READ and bool(out)) or (kind == _ITEM and step.counts)
                    self._timers[step.name].add(dt, dc, items=int(counted))
                    self._finish(kind, i, seq, out)
                    self._cond.notify_all()
        except BaseException as err:  # noqa: BLE001 - every failure must reach the caller
            self.run.fail(step_name, err)
            with self._cond:
                self._cond.notify_all()

    def _next_job(self) -> tuple[str, int, int, Any] | None:
        """The job a free worker takes now, or None. Called with the lock held."""
        steps = self.steps
        for i in self._order:
            step = steps[i]
            if step.serial:
                if step.running:
                    continue
                if step.taken in step.waiting:
                    seq = step.taken
                    step.taken += 1
                    step.running += 1
                    return _ITEM, i, seq, step.waiting.pop(seq)
                if not step.flushed and step.total is not None and step.done >= step.total:
                    step.running += 1
                    return _FLUSH, i, -1, None
            elif step.waiting and step.running < step.concurrency:
                seq = min(step.waiting)
                step.running += 1
                return _ITEM, i, seq, step.waiting.pop(seq)
        read = steps[0]
        if not read.running and read.total is None and read.given - steps[-1].done < self.limit:
            read.running += 1
            return _READ, 0, read.given, None
        return None

    def _finish(self, kind: str, i: int, seq: int, out: list[Any]) -> None:
        """A job ended with ``out``: hand it on, count it, end the steps whose input has ended.
        Called with the lock held."""
        steps = self.steps
        step = steps[i]
        step.running -= 1
        if kind == _READ:
            if out:
                self._hand_on(i, step.given, out[0])
                step.given += 1
            else:
                step.total = step.done = step.given  # the source has ended
        elif kind == _FLUSH:
            step.flushed = True
            self._give(i, out)
        else:
            if step.serial:
                self._give(i, out)
            elif step.total is None or seq < step.total:
                self._hand_on(i, seq, out[0])  # a pure step keeps the numbering
            _mark_done(step, seq)
        self._end_steps()

    def _give(self, i: int, out: list[Any]) -> None:
        """A serial step's results, numbered on."""
        step = self.steps[i]
        for item in out:
            self._hand_on(i, step.given, item)
            step.given += 1

    def _hand_on(self, i: int, seq: int, item: Any) -> None:
        if i + 1 < len(self.steps):
            nxt = self.steps[i + 1]
            if nxt.total is None or seq < nxt.total:
                nxt.waiting[seq] = item

    def _end_steps(self) -> None:
        """Each step whose input has ended and that has finished everything ends its output."""
        steps = self.steps
        for i in range(len(steps) - 1):
            step, nxt = steps[i], steps[i + 1]
            if nxt.total is None and step.ended():
                nxt.total = step.given if step.serial else step.total
        if steps[-1].ended():
            self.run.finished.set()

    def _cut(self, i: int, seq: int) -> None:
        """The input failed at step ``i``'s item ``seq``: the stream ends before it there (the
        items after it are dropped, however far they went; none was written: the sinks take
        the frames in order). Called with the lock held."""
        step = self.steps[i]
        step.running -= 1
        if i == 0:
            step.total = step.done = step.given
        else:
            step.total = seq if step.total is None else min(step.total, seq)
            for later in range(i, len(self.steps)):
                s = self.steps[later]
                for k in [k for k in s.waiting if k >= seq]:
                    del s.waiting[k]
            _mark_done(step, seq)
        self._end_steps()

    def stage_reports(self) -> list[StageReport]:
        """One report per stage (the model and the smoother count as ``inference``); files drop nothing."""
        return [t.report() for t in self._timers.values()]
