"""capture -> inference -> render -> sinks, each stage a thread, joined by small queues.

Live sources use :class:`LatestQueue` between stages: a stage always takes the newest item and
stale ones are dropped and counted, so latency stays low when a stage falls behind. File
sources use bounded :class:`FifoQueue` s: nothing is dropped and the output is the same on
every run. An exception in any stage stops every stage and is raised from :meth:`Pipeline.wait`,
except a :class:`~livebokeh.errors.LivebokehError` of the input itself (a truncated or corrupt
file, given masks that run out): the stream then ends there as if the input had, every frame
read before is rendered and written, and the error is raised once they are.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

import cv2
import numpy as np

from livebokeh.config import MaskConfig, RenderConfig
from livebokeh.errors import LivebokehError
from livebokeh.mask import (
    FlowEstimator,
    LookaheadSmoother,
    MaskSmoother,
    refine_alpha,
    resolve_auto,
    small_gray,
    upsample,
    warp,
)
from livebokeh.controls import LiveControls
from livebokeh.queues import END, Empty, FanIn, FanOut, FifoQueue, Full, InOrder, LatestQueue
from livebokeh.pipeline.stats import LatencyLog, Report, StageReport, StageTimer, percentile_ms
from livebokeh.render import Background, render_bokeh
from livebokeh.sinks.base import Sink
from livebokeh.sources.base import Source
from livebokeh.types import Composite, Frame, Mask, SegmenterTraits

log = logging.getLogger(__name__)

_TICK = 0.05  # seconds: how often a waiting stage looks at the stop flag
_JOIN_TIMEOUT = 2.0


class SupportsSegment(Protocol):
    """What the pipeline needs of a segmenter: its declared traits and ``segment_frame`` (a
    model segments the frame's picture; given masks read the frame's index)."""

    traits: SegmenterTraits

    def segment_frame(self, frame: Frame) -> Mask: ...


@dataclass(frozen=True)
class Segmented:
    """A frame and its person mask at model resolution (smoothed, or the model's own before the
    smoother).

    ``gray`` is the frame as uint8 gray at the mask's size, when optical flow needs it.
    """

    frame: Frame
    mask: Mask
    gray: Any = None


def pacing(rate: float, traits: SegmenterTraits) -> dict[str, float]:
    """The live model pacing for :class:`Pipeline` (``model_rate``, ``model_duty``): the
    ``[segmenter] rate`` when the user set one, else the backend's own duty cycle."""
    return {"model_rate": rate, "model_duty": 1.0} if rate > 0 else {"model_rate": 0.0, "model_duty": traits.live_duty}


class MaskSlot:
    """The newest inference result, shared with the renderer of a live pipeline.

    It also follows the model (which frame it works on, since when, how long a run takes), so
    that a renderer waits for the mask of its own frame only when that mask can come in time.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._latest: Segmented | None = None
        self._ended = False
        self._resting = False
        self._working: tuple[int, float] | None = None  # (frame index, start) of the run under way
        self._run_s: float | None = None  # a run's duration, smoothed
        self.dropped = 0

    def started(self, index: int) -> None:
        """The model took frame ``index``."""
        with self._cond:
            self._working = (index, time.monotonic())

    def resting(self, value: bool) -> None:
        """The model is (or is no longer) resting between runs to keep its rate: no result comes
        until it takes the next frame, so a renderer waiting for one stops waiting."""
        with self._cond:
            self._resting = value
            self._cond.notify_all()

    def put(self, item: Any, timeout: float = 0.0) -> None:
        with self._cond:
            if item is END:
                self._ended = True
            else:
                self._latest = item
                if self._working is not None:
                    took = time.monotonic() - self._working[1]
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
        left = max(0.0, self._run_s - (time.monotonic() - since))
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


def _put(outbox: Any, item: Any, halt: threading.Event) -> None:
    """Put ``item`` into ``outbox``, waiting for room in ticks, until the pipeline halts."""
    while not halt.is_set():
        try:
            outbox.put(item, timeout=_TICK)
            return
        except Full:
            continue


class Batch(list):
    """A stage's work may give several items at once (or none: an empty batch)."""


class _Stage:
    """One worker thread: takes from ``inbox``, applies ``work``, puts into ``outbox``.

    ``work`` returns one item or a :class:`Batch`; ``flush`` (optional) gives the items still
    held when the stream ends.
    """

    def __init__(self, pipeline: Pipeline, name: str, work: Callable[[Any], Any],
                 inbox: FifoQueue | LatestQueue | None, outbox: Any,
                 flush: Callable[[], Batch] | None = None, final: bool = False,
                 pace: Callable[[float], None] | None = None) -> None:
        self.pipeline = pipeline
        self.pace = pace  # called before each take with the start of the previous item's work
        self.name = name
        self.work = work
        self.flush = flush
        self.inbox = inbox
        # one queue, several (the capture stage of a live pipeline feeds two), or none
        self.outboxes = [] if outbox is None else list(outbox) if isinstance(outbox, (list, tuple)) else [outbox]
        self.final = final
        # the model's input failing (given masks that run out) ends the stream like the source's
        # would; a stage between threads sharing a stage cannot (its turn would be lost)
        self.input_fails_softly = name == "inference"
        self.timer = StageTimer(name)
        self.thread = threading.Thread(target=self._run, name=f"livebokeh-{name}", daemon=True)

    def _next(self) -> Any:
        """The next input, END, or None when the pipeline halts first."""
        halt = self.pipeline._halt
        if self.inbox is None:  # the capture stage pulls from the source
            if self.pipeline._drain.is_set():
                return END
            try:
                return self.work(None)
            except LivebokehError as err:  # the input failed: the frames read so far still go out
                self.pipeline._input_failed(self.name, err, self.pipeline.frames_in)
                return END
        while not halt.is_set():
            try:
                return self.inbox.get(timeout=_TICK)
            except Empty:
                continue
        return None

    def _emit(self, item: Any) -> None:
        for outbox in self.outboxes:
            _put(outbox, item, self.pipeline._halt)

    def _end(self) -> None:
        """The stream ends here: what the stage still holds (``flush``), then END."""
        for rest in self.flush() if self.flush else ():
            self._emit(rest)
        self._emit(END)

    def _run(self) -> None:
        started = 0.0
        try:
            while not self.pipeline._halt.is_set():
                if self.pace is not None and started:
                    self.pace(started)
                t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
                item = self._next()
                if item is None and self.inbox is not None:
                    return  # halted
                if item is END or item is None:
                    self._end()
                    return
                if self.inbox is None:
                    out = item  # the capture stage's work was the read itself
                else:
                    t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
                    started = time.monotonic()
                    try:
                        out = self.work(item)
                    except LivebokehError as err:
                        if not self.input_fails_softly:
                            raise
                        self.pipeline._input_failed(self.name, err, item.index)  # inference takes frames
                        self._end()  # the stream ends here: what came before is finished
                        return
                self.timer.add(time.perf_counter_ns() - t0, time.thread_time_ns() - c0)
                if isinstance(out, Batch):
                    for one in out:
                        self._emit(one)
                else:
                    self._emit(out)
        except BaseException as err:  # noqa: BLE001 - every failure must reach the caller
            self.pipeline._fail(self.name, err)
        finally:
            if self.final:
                self.pipeline._finished.set()


class _Overflow:
    """The inference stage's outbox in a file pipeline with one render worker: when the render
    stage's inbox is full, the inference thread renders the frame itself instead of waiting.

    Whichever stage is heavier, both threads then stay busy: at 1280x720 on 2 cores the
    renderer and the model each fill about a core, at 1920x1080 the renderer outweighs the
    model, with DeepLab the model outweighs the renderer (its inbox is never full, so the
    inference thread never helps). Frames rendered out of turn are put back in order before the
    sinks by :class:`InOrder`; at most ``limit`` frames are in flight, beyond that the inference
    thread waits as a plain queue makes it.
    """

    def __init__(self, pipeline: Pipeline, queue: FifoQueue, work: Callable[[Any], Any], outbox: FifoQueue,
                 order: InOrder, limit: int) -> None:
        self.pipeline, self.queue, self.work, self.outbox = pipeline, queue, work, outbox
        self.order, self.limit = order, limit
        self.timer = StageTimer("render")

    def put(self, item: Any, timeout: float) -> None:
        """Hands ``item`` to the render stage, or renders it here when that stage is behind."""
        if item is END:
            self.queue.put(END, timeout=timeout)  # Full: the stage retries
            return
        self.order.started(item)
        halt = self.pipeline._halt
        while not halt.is_set():
            room = self.order.in_flight <= self.limit
            try:
                self.queue.put(item, timeout=0.0 if room else _TICK)
                return
            except Full:
                if room:
                    self._render_here(item)
                    return

    def _render_here(self, item: Any) -> None:
        t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
        try:
            out = self.work(item)
        except BaseException as err:  # reported as the render stage's failure, then stops this one
            self.pipeline._fail("render", err)
            raise
        self.timer.add(time.perf_counter_ns() - t0, time.thread_time_ns() - c0)
        _put(self.outbox, out, self.pipeline._halt)


class Pipeline:
    """Runs a source through segmentation and rendering into sinks.

    The pipeline does not own its parts: open the source, segmenter and sinks before, and close
    them after (``contextlib.ExitStack`` does this well), so that recordings are finalised even
    when a stage fails.

    Args:
        source: an open source; its ``info.live`` picks live or file behaviour.
        segmenter: anything with ``segment(image) -> Mask``.
        sinks: where the composites go, in order.
        mask_cfg, render_cfg: mask refinement and rendering settings.
        smoother: temporal smoothing state; built from ``mask_cfg`` when None (causal for live
            sources, with ``mask_cfg.lookahead`` frames of look-ahead for files).
        queue_size: capacity of the queues for file sources.
        max_frames: stop after this many captured frames (None = until the source ends).
        background: replacement plates for ``effect = "replace"``.
        controls: live settings (built from ``render_cfg`` when None); the render stage reads
            them for every frame.
        render_workers: threads sharing the render stage of a file pipeline (live pipelines
            use one); see :func:`livebokeh.threads.plan_threads`.
        inference_workers: threads running the model side by side in a file pipeline (live
            pipelines use one), for a model heavier than the rendering; the segmenter must be
            safe to call from several threads, so never stateful. See
            :meth:`livebokeh.threads.ThreadPlan.inference_workers`.
        model_rate: live pipelines: most model runs a second (0 = as many as it can); the frames
            between get the newest mask moved to them by optical flow. Files ignore it: every
            frame goes through the model.
        model_duty: live pipelines: the share of the time the model may run (1 = no rest): after
            a run of ``t`` seconds it rests ``t * (1 / model_duty - 1)`` (see
            :attr:`~livebokeh.types.SegmenterTraits.live_duty`). Files ignore it.
    """

    def __init__(
        self,
        source: Source,
        segmenter: SupportsSegment,
        sinks: Sequence[Sink],
        mask_cfg: MaskConfig | None = None,
        render_cfg: RenderConfig | None = None,
        smoother: MaskSmoother | LookaheadSmoother | None = None,
        queue_size: int = 4,
        max_frames: int | None = None,
        clock_ns: Callable[[], int] = time.monotonic_ns,
        background: Background | None = None,
        controls: LiveControls | None = None,
        render_workers: int = 1,
        inference_workers: int = 1,
        model_rate: float = 0.0,
        model_duty: float = 1.0,
    ) -> None:
        self.source = source
        self.info = source.info
        self.segmenter = segmenter
        if segmenter.traits.stateful and inference_workers > 1:
            raise ValueError("a stateful segmenter sees its frames in order: give it one inference worker")
        self.sinks = list(sinks)
        self.mask_cfg = resolve_auto(mask_cfg or MaskConfig(), segmenter.traits)
        if not 0.0 < model_duty <= 1.0 or model_rate < 0:
            raise ValueError(f"need model_rate >= 0 and 0 < model_duty <= 1, got {model_rate}, {model_duty}")
        self.model_rate, self.model_duty = model_rate, model_duty
        self.controls = controls or LiveControls(render_cfg or RenderConfig(), can_replace=background is not None)
        self.background = background
        mc = self.mask_cfg
        if smoother is None:
            if not self.info.live and mc.lookahead > 0 and mc.smoothing > 0:
                smoother = LookaheadSmoother(mc.smoothing, mc.lookahead, mc.flow)
            else:
                smoother = MaskSmoother(mc.smoothing, mc.flow)
        self.smoother = smoother
        self._needs_gray = (mc.smoothing > 0 and mc.flow) or self.info.live
        self.max_frames = max_frames
        self._clock_ns = clock_ns
        self._halt = threading.Event()  # every stage stops now
        self._drain = threading.Event()  # the source stops; what is in flight is finished
        self._finished = threading.Event()  # the sink stage ended (or a stage failed)
        self._error: tuple[str, BaseException] | None = None
        self._input_error: tuple[str, BaseException] | None = None  # raised after the stream drained
        self._input_error_at = 0  # the frame it came at
        self._error_lock = threading.Lock()
        self._started = False
        self._stopped = False
        self._t_start = 0.0
        self._t_end = 0.0
        self._cpu_start = 0.0
        self._cpu_end = 0.0
        self.frames_in = 0
        self.propagated = 0  # live frames whose mask came from an earlier frame by optical flow
        self.latency = LatencyLog()

        def make_queue() -> FifoQueue | LatestQueue:
            return LatestQueue() if self.info.live else FifoQueue(queue_size)

        q_frames = make_queue()
        self._flow = FlowEstimator()
        # a live model that rests between runs: the renderer smooths what it shows too, since
        # most of its masks are moved by optical flow and each new run would otherwise jump
        self._render_smoother = (MaskSmoother(mc.smoothing, mc.flow)
                                 if self.info.live and (model_rate > 0 or model_duty < 1) else None)
        self._overflow: _Overflow | None = None
        if self.info.live:
            # Decoupled rates: every captured frame goes to the renderer, the newest one also to
            # the model; the renderer takes the newest mask, moved to its frame with optical
            # flow when the model has not reached that frame yet.
            q_display, q_out = make_queue(), make_queue()
            self._slot = MaskSlot()
            self._frame_period = 1.0 / float(self.info.fps) if self.info.fps else 1 / 30
            self._stages = [
                _Stage(self, "capture", self._capture, None, [q_frames, q_display]),
                _Stage(self, "inference", self._infer_live, q_frames, self._slot,
                       pace=self._pace if model_rate > 0 or model_duty < 1 else None),
                _Stage(self, "render", self._render_live, q_display, q_out),
                _Stage(self, "sinks", self._write, q_out, None, final=True),
            ]
        elif inference_workers > 1:
            # Files with a model heavier than the rendering: the model runs on several threads,
            # frames dealt to them in turn and collected in the same turn; the render stage
            # then smooths the masks (in order: the smoother's state follows the stream) and
            # renders. Its timings include the smoothing.
            log.info("the model runs on %d threads side by side (it outweighs the rendering)", inference_workers)
            ins = [FifoQueue(queue_size) for _ in range(inference_workers)]
            outs = [FifoQueue(queue_size) for _ in range(inference_workers)]
            q_out = make_queue()
            self._stages = [
                _Stage(self, "capture", self._capture, None, FanOut(ins)),
                *(_Stage(self, "inference", self._segment_raw, i, o) for i, o in zip(ins, outs)),
                _Stage(self, "render", self._smooth_and_render, FanIn(outs), q_out, flush=self._render_flushed),
                _Stage(self, "sinks", self._write, q_out, None, final=True),
            ]
        elif render_workers > 1:
            # Files: rendering is pure, so several workers share it; frames are dealt to them in
            # turn and collected in the same turn, which keeps the order without any sorting.
            ins = [FifoQueue(queue_size) for _ in range(render_workers)]
            outs = [FifoQueue(queue_size) for _ in range(render_workers)]
            self._stages = [
                _Stage(self, "capture", self._capture, None, q_frames),
                _Stage(self, "inference", self._infer, q_frames, FanOut(ins), flush=self._flush_masks),
                *(_Stage(self, "render", self._render, i, o) for i, o in zip(ins, outs)),
                _Stage(self, "sinks", self._write, FanIn(outs), None, final=True),
            ]
        else:
            # Files, one render worker: the inference thread renders too when the renderer is
            # behind (see _Overflow); the sinks put the frames back in order.
            q_masks, q_out = make_queue(), make_queue()
            self._order = InOrder(lambda item: item.frame.index)
            self._overflow = _Overflow(self, q_masks, self._render, q_out, self._order, limit=4 * queue_size)
            self._stages = [
                _Stage(self, "capture", self._capture, None, q_frames),
                _Stage(self, "inference", self._infer, q_frames, self._overflow, flush=self._flush_masks),
                _Stage(self, "render", self._render, q_masks, q_out),
                _Stage(self, "sinks", self._write_in_order, q_out, None, flush=self._all_written, final=True),
            ]

    # -- stage work -------------------------------------------------------------------------

    def _capture(self, _: None) -> Frame | None:
        if self.max_frames is not None and self.frames_in >= self.max_frames:
            return None
        frame = self.source.read()
        if frame is not None:
            self.frames_in += 1
        return frame

    def _pace(self, started: float) -> None:
        """Live: rest after the model run that ``started`` (and has just ended) so that the model
        keeps to ``model_rate`` and ``model_duty``; the next run then takes the newest frame."""
        now = time.monotonic()
        interval = max(1.0 / self.model_rate if self.model_rate else 0.0, (now - started) / self.model_duty)
        due = started + interval
        if due <= now:
            return
        self._slot.resting(True)
        try:
            while not self._halt.is_set() and (left := due - time.monotonic()) > 0:
                time.sleep(min(left, _TICK))
        finally:
            self._slot.resting(False)

    def _infer_live(self, frame: Frame) -> Segmented | Batch:
        self._slot.started(frame.index)
        return self._infer(frame)

    def _infer(self, frame: Frame) -> Segmented | Batch:
        return self._smooth(self._segment_raw(frame))

    def _segment_raw(self, frame: Frame) -> Segmented:
        """The model's own mask for ``frame`` (and the gray picture the flow needs): no state."""
        mask = self.segmenter.segment_frame(frame)
        gray = None
        if self._needs_gray:
            h, w = mask.shape
            gray = small_gray(frame.image, (w, h))
        return Segmented(frame, mask, gray)

    def _smooth(self, raw: Segmented) -> Segmented | Batch:
        """``raw`` through the smoother; items must come in stream order."""
        frame, mask, gray = raw.frame, raw.mask, raw.gray
        if isinstance(self.smoother, LookaheadSmoother):
            return Batch(Segmented(f, m) for f, m in self.smoother.push(frame, mask, gray))
        return Segmented(frame, self.smoother.update(mask, gray), gray)

    def _smooth_and_render(self, raw: Segmented) -> Composite | Batch:
        smoothed = self._smooth(raw)
        if isinstance(smoothed, Batch):
            return Batch(self._render(s) for s in smoothed)
        return self._render(smoothed)

    def _render_flushed(self) -> Batch:
        return Batch(self._render(s) for s in self._flush_masks())

    def _flush_masks(self) -> Batch:
        if isinstance(self.smoother, LookaheadSmoother):
            return Batch(Segmented(f, m) for f, m in self.smoother.flush())
        return Batch()

    def _render_live(self, frame: Frame) -> Composite:
        """Render a live frame with the newest mask, moved to it by optical flow if older."""
        # wait up to half a frame for this frame's own mask, then move the newest one to it
        result = self._slot.wait_for(frame.index, 0.5 * self._frame_period)
        if result is None:
            # no mask yet (a model's first run: RVM warms up over ~0.2 s): the whole picture is
            # background, so the room never shows unblurred and no frame waits to be dropped
            h, w = max(1, frame.height // 8), max(1, frame.width // 8)
            return self._render(Segmented(frame, Mask(np.zeros((h, w), np.float32))))
        mask, gray = result.mask, result.gray
        if result.frame.index != frame.index and result.gray is not None:
            h, w = result.gray.shape
            gray = small_gray(frame.image, (w, h))
            mask = Mask(np.clip(warp(mask.data, self._flow.backward(gray, result.gray)), 0.0, 1.0))
            self.propagated += 1
        if self._render_smoother is not None:
            mask = self._render_smoother.update(mask, gray)
        return self._render(Segmented(frame, mask))

    def _render(self, item: Segmented) -> Composite:
        frame = item.frame
        size = (frame.width, frame.height)
        alpha = refine_alpha(item.mask.data, frame.image, self.mask_cfg, full_size=False)
        controls = self.controls
        if controls.show_mask:
            image = cv2.cvtColor(Mask(upsample(alpha, size)).to_uint8(), cv2.COLOR_GRAY2BGR)
        else:
            render_cfg = controls.render
            plate = None
            if render_cfg.effect == "replace" and self.background is not None:
                plate = self.background.plate(size, frame.index)
            image = render_bokeh(frame.image, alpha, render_cfg, plate)
        return Composite(frame, image, Mask(alpha))

    def _write_in_order(self, item: Composite) -> None:
        for due in self._order.finished(item):
            self._write(due)

    def _all_written(self) -> Batch:
        if self._order.in_flight:  # every frame reaches the sinks before END does
            raise RuntimeError(f"{self._order.in_flight} rendered frames never came back in order")
        return Batch()

    def _write(self, item: Composite) -> None:
        for sink in self.sinks:
            sink.write(item)
        now = self._clock_ns()
        if self.latency.frames_out == 0:
            log.debug("first frame out %.0f ms after start", (time.perf_counter() - self._t_start) * 1e3)
        self.latency.add(item.frame.capture_ns, now)

    # -- control ----------------------------------------------------------------------------

    def _input_failed(self, stage: str, err: BaseException, index: int) -> None:
        """The input failed in ``stage`` at frame ``index``: stop reading, finish what was read,
        then raise ``err``. Of several (inference workers side by side), the earliest frame's is
        the one the stream ends at."""
        with self._error_lock:
            if self._input_error is None or index < self._input_error_at:
                self._input_error, self._input_error_at = (stage, err), index
        log.debug("the input failed in the %s stage; finishing the frames read before", stage, exc_info=err)
        self._drain.set()

    def _fail(self, stage: str, err: BaseException) -> None:
        with self._error_lock:
            if self._error is None:
                self._error = (stage, err)
                log.debug("%s stage failed", stage, exc_info=err)
        self._halt.set()
        self._finished.set()

    def start(self) -> Pipeline:
        if self._started:
            raise RuntimeError("a pipeline runs once")
        self._started = True
        self._t_start = time.perf_counter()
        self._cpu_start = time.process_time()
        for stage in reversed(self._stages):
            stage.thread.start()
        return self

    def request_stop(self) -> None:
        """Stop reading the source; frames already read are still rendered and written (Ctrl-C)."""
        self._drain.set()

    def abort(self) -> None:
        """Stop every stage now, without waiting (a second Ctrl-C; safe in a signal handler).
        Frames in flight are not written; :meth:`wait` returns the report."""
        self._halt.set()

    def stop(self) -> None:
        """Stop every stage now and wait for the threads (safe to call twice)."""
        if self._stopped:
            return
        self._stopped = True
        self._halt.set()
        self._join()

    def _join(self) -> None:
        deadline = time.monotonic() + _JOIN_TIMEOUT
        for stage in self._stages:
            if stage.thread.is_alive():
                stage.thread.join(max(0.0, deadline - time.monotonic()))
            if stage.thread.is_alive():
                log.warning("the %s stage did not stop within %.0f s", stage.name, _JOIN_TIMEOUT)
        if not self._t_end:
            self._t_end = time.perf_counter()
            self._cpu_end = time.process_time()

    def wait(self, poll: Callable[[], bool] | None = None, poll_interval: float = 0.01) -> Report:
        """Block until the stream ends, a stage fails or ``poll`` returns False.

        Args:
            poll: called about every ``poll_interval`` seconds on this (the main) thread; GUI
                sinks draw here. Returning False stops the source, as Ctrl-C does.

        Raises:
            The first exception raised in any stage (after every stage has stopped).
        """
        if not self._started:
            self.start()
        while not self._finished.wait(poll_interval if poll else 0.1):
            if poll is not None and not poll():
                self.request_stop()
                poll = None
        if self._error is None and self._input_error is not None:
            self._halt.set()  # every frame is out; a capture stage still putting to a stopped stage stops
        if self._error is None:
            self._join()  # stages end by themselves after END
        self.stop()
        if self._error is not None or self._input_error is not None:
            stage, err = self._error or self._input_error
            if not hasattr(err, "__notes__") or f"in the {stage} stage" not in err.__notes__:
                err.add_note(f"in the {stage} stage")
            raise err
        return self.report()

    def run(self, poll: Callable[[], bool] | None = None) -> Report:
        """:meth:`start`, then :meth:`wait`."""
        self.start()
        return self.wait(poll)

    @property
    def render_cfg(self) -> RenderConfig:
        return self.controls.render

    def live_status(self) -> str:
        """One line for the overlay: output fps and latency over the last frames."""
        lat = self.latency
        recent = list(lat.values_ns)[-30:]
        p50 = percentile_ms(recent, 50)
        return f"{lat.recent_fps():.1f} fps, latency {p50:.0f} ms, dropped {self.dropped}"

    @property
    def dropped(self) -> int:
        """Captured frames that never reached the outputs."""
        return sum(s.inbox.dropped for s in self._stages if s.inbox is not None and not self._skips(s))

    @property
    def inference_skipped(self) -> int:
        """Live: frames the model did not see (their masks came from an earlier frame by flow)."""
        return sum(s.inbox.dropped for s in self._stages if s.inbox is not None and self._skips(s))

    def _skips(self, stage: _Stage) -> bool:
        return self.info.live and stage.name == "inference"

    def report(self) -> Report:
        wall = (self._t_end or time.perf_counter()) - self._t_start if self._t_start else 0.0
        lat = self.latency
        span = ((lat.last_out_ns or 0) - (lat.first_out_ns or 0)) / 1e9
        fps = (lat.frames_out - 1) / span if lat.frames_out > 1 and span > 0 else 0.0
        stages = self._stage_reports()
        inferred = next(s.frames for s in stages if s.name == "inference")
        return Report(
            source=self.info.name,
            live=self.info.live,
            frames_in=self.frames_in,
            frames_out=lat.frames_out,
            dropped=self.dropped,
            output_fps=fps,
            wall_s=wall,
            latency_ms_p50=percentile_ms(lat.values_ns, 50),
            latency_ms_p95=percentile_ms(lat.values_ns, 95),
            stages=stages,
            inference_fps=inferred / wall if wall > 0 else 0.0,
            propagated=self.propagated,
            cpu_s=(self._cpu_end or time.process_time()) - self._cpu_start if self._t_start else 0.0,
        )

    def _stage_reports(self) -> tuple[StageReport, ...]:
        """One report per stage name (the workers sharing a stage are summed)."""
        timers: dict[str, list[StageTimer]] = {}
        dropped: dict[str, int] = {}
        for s in self._stages:
            timers.setdefault(s.name, []).append(s.timer)
            dropped[s.name] = dropped.get(s.name, 0) + (s.inbox.dropped if s.inbox is not None else 0)
        if self._overflow is not None:  # frames the inference thread rendered count as rendered
            timers["render"].append(self._overflow.timer)
        reports = []
        for name, group in timers.items():
            items = sum(t.items for t in group)
            busy = sum(t.busy_ns for t in group)
            cpu = sum(t.cpu_ns for t in group)
            reports.append(StageReport(name, items, busy / items / 1e6 if items else 0.0, dropped[name],
                                       cpu / items / 1e6 if items else 0.0))
        return tuple(reports)

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
