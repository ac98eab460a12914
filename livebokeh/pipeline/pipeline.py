"""capture -> inference -> render -> sinks.

One :class:`~livebokeh.pipeline.processor.FrameProcessor` does the work of every frame; a
scheduler decides when and on which thread:

- live sources (:mod:`livebokeh.pipeline.live`): four threads at their own rates, the newest
  frame winning at each (latency stays low, drops are counted), masks moved by optical flow to
  the frames the model did not see;
- files (:mod:`livebokeh.pipeline.files`): an ordered, bounded parallel map over a pool of
  workers: nothing is dropped and the output is the same on every run.

An exception anywhere stops every thread and is raised from :meth:`Pipeline.wait`, except a
:class:`~livebokeh.errors.LivebokehError` of the input itself (a truncated or corrupt file,
given masks that run out): the stream then ends there as if the input had, every frame read
before is rendered and written, and the error is raised once they are.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from livebokeh.closing import Closeable
from livebokeh.config import FramingConfig, MaskConfig, RenderConfig
from livebokeh.controls import LiveControls
from livebokeh.mask import LookaheadSmoother, MaskSmoother
from livebokeh.pipeline.files import FileScheduler
from livebokeh.pipeline.controller import ControllerState
from livebokeh.pipeline.live import LiveScheduler, Pacing
from livebokeh.pipeline.processor import FrameProcessor, SupportsSegment
from livebokeh.pipeline.run import Run
from livebokeh.pipeline.stats import LatencyLog, Report, percentile_ms
from livebokeh.render import Background
from livebokeh.sinks.base import Sink
from livebokeh.sources.base import Source
from livebokeh.types import SegmenterTraits

if TYPE_CHECKING:
    from livebokeh.depth import DepthTracker

log = logging.getLogger(__name__)

_JOIN_TIMEOUT = 2.0


def pacing(rate: float, traits: SegmenterTraits) -> dict[str, float]:
    """The live model pacing for :class:`Pipeline` (``model_rate``, ``model_duty``): the
    ``[segmenter] rate`` when the user set one, else the backend's own duty cycle."""
    return {"model_rate": rate, "model_duty": 1.0} if rate > 0 else {"model_rate": 0.0, "model_duty": traits.live_duty}


class Pipeline(Closeable):
    """Runs a source through segmentation and rendering into sinks.

    The pipeline does not own its parts: open the source, segmenter and sinks before, and close
    them after (``contextlib.ExitStack`` does this well; :func:`livebokeh.app.open_run`
    does it all), so that recordings are finalised even when a stage fails.

    Args:
        source: an open source; its ``info.live`` picks the live or the file scheduler.
        segmenter: anything with ``traits`` and ``segment_frame(frame) -> Mask``.
        sinks: where the composites go, in order.
        mask_cfg, render_cfg: mask refinement and rendering settings.
        smoother: temporal smoothing state (default: from ``mask_cfg``, see
            :class:`~livebokeh.pipeline.processor.FrameProcessor`).
        queue_size: files: frames read ahead of the sinks, besides those the smoother holds.
        max_frames: stop after this many captured frames (None = until the source ends).
        clock_ns: the clock of the latencies (capture times are the source's).
        background: replacement plates for ``effect = "replace"``.
        controls: live settings (built from ``render_cfg`` when None), read for every frame.
        workers: files: threads in the pool (see :func:`livebokeh.threads.plan_threads`).
        segment_workers: files: most model runs at once for a stateless heavy model
            (:meth:`livebokeh.threads.ThreadPlan.segment_workers`); others run one at a time.
        model_rate: live: most model runs a second (0 = as many as ``model_duty`` allows). Files ignore it.
        model_duty: live: the share of the time the model may run (1 = no rest; see
            :attr:`~livebokeh.types.SegmenterTraits.live_duty`). Between those bounds it runs
            when the picture changes (:class:`~livebokeh.pipeline.live.Pacing`). Files ignore it.
        framing: auto-framing settings; it runs while ``controls.framing`` is on (by default
            ``framing.enabled``).
        depth: depth maps for a blur that grows with distance (``[render] depth``), used while
            the controls ask for it; not owned (see :class:`~livebokeh.pipeline.processor.FrameProcessor`).
        adapt: live: the controller keeps the camera's frame rate first, stepping the model's
            work down under load and back up when there is room
            (:mod:`livebokeh.pipeline.controller`). Files ignore it.
        fallback, fallback_name: live: makes (open) the backend the controller falls back to as
            its last resort, and its name; None: no fallback.
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
        workers: int = 2,
        segment_workers: int = 1,
        model_rate: float = 0.0,
        model_duty: float = 1.0,
        framing: FramingConfig | None = None,
        depth: DepthTracker | None = None,
        adapt: bool = True,
        fallback: Callable[[], SupportsSegment] | None = None,
        fallback_name: str | None = None,
    ) -> None:
        if not 0.0 < model_duty <= 1.0 or model_rate < 0:
            raise ValueError(f"need model_rate >= 0 and 0 < model_duty <= 1, got {model_rate}, {model_duty}")
        self.info = info = source.info
        framing = framing or FramingConfig()
        self.controls = controls or LiveControls(render_cfg or RenderConfig(), can_replace=background is not None,
                                                 framing=framing.enabled, can_depth=depth is not None)
        self.processor = FrameProcessor(segmenter, mask_cfg or MaskConfig(), self.controls, background,
                                        live=info.live, smoother=smoother, framing=framing, fps=float(info.fps or 30),
                                        depth=depth)
        self.mask_cfg = self.processor.mask_cfg
        self._segmenter = segmenter
        self._run = Run(source, sinks, max_frames, clock_ns)
        self._scheduler: LiveScheduler | FileScheduler
        if info.live:
            self._scheduler = LiveScheduler(self._run, self.processor, float(info.fps or 0),
                                            Pacing(max_rate=model_rate, duty=model_duty), adapt=adapt,
                                            fallback=fallback, fallback_name=fallback_name)
        else:
            self._scheduler = FileScheduler(self._run, self.processor, workers, segment_workers, queue_size)
        self._started = False
        self._t_start = self._t_end = self._cpu_start = self._cpu_end = 0.0

    # -- running ----------------------------------------------------------------------------

    def start(self) -> Pipeline:
        if self._started:
            raise RuntimeError("a pipeline runs once")
        self._started = True
        self._t_start, self._cpu_start = time.perf_counter(), time.process_time()
        self._scheduler.start()
        return self

    def request_stop(self) -> None:
        """Stop reading the source; frames already read are still rendered and written (Ctrl-C)."""
        self._run.stop_reading()

    def abort(self) -> None:
        """Stop every thread now, without waiting (a second Ctrl-C; safe in a signal handler).
        Frames in flight are not written; :meth:`wait` returns the report."""
        self._run.halt_now()

    def stop(self) -> None:
        """Stop every thread now and wait for them (safe to call twice; also :meth:`close` and
        leaving a ``with`` block)."""
        self.close()

    def _release(self) -> None:
        self._run.halt_now()
        self._join()
        if isinstance(self._scheduler, LiveScheduler):
            self._scheduler.close_models(keep=self._segmenter)

    def _join(self) -> None:
        deadline = time.monotonic() + _JOIN_TIMEOUT
        for thread in self._scheduler.threads:
            if thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                log.warning("the %s thread did not stop within %.0f s", thread.name, _JOIN_TIMEOUT)
        if not self._t_end:
            self._t_end, self._cpu_end = time.perf_counter(), time.process_time()

    def wait(self, poll: Callable[[], bool] | None = None, poll_interval: float = 0.01) -> Report:
        """Block until the stream ends, a thread fails or ``poll`` returns False.

        Args:
            poll: called about every ``poll_interval`` seconds on this (the main) thread; GUI
                sinks draw here. Returning False stops the source, as Ctrl-C does.

        Raises:
            The first exception raised in any thread (after every thread has stopped), with a
            note naming its stage.
        """
        if not self._started:
            self.start()
        run = self._run
        while not run.finished.wait(poll_interval if poll else 0.1):
            if poll is not None and not poll():
                self.request_stop()
                poll = None
        if run.error is None:
            self._join()  # every frame is out: the threads end by themselves
        self.stop()
        if run.error is not None or run.input_error is not None:
            stage, err = run.error or run.input_error
            if f"in the {stage} stage" not in getattr(err, "__notes__", ()):
                err.add_note(f"in the {stage} stage")
            raise err
        return self.report()

    def run(self, poll: Callable[[], bool] | None = None) -> Report:
        """:meth:`start`, then :meth:`wait`."""
        self.start()
        return self.wait(poll)

    # -- what it did ------------------------------------------------------------------------

    @property
    def render_cfg(self) -> RenderConfig:
        return self.controls.render

    @property
    def latency(self) -> LatencyLog:
        """Capture-to-sink latencies of the frames written so far."""
        return self._run.latency

    @property
    def frames_in(self) -> int:
        """Frames captured: read, and (live) passed over by the source before they could be."""
        return self._run.frames_in + self._run.skipped

    def stage_items(self, stage: str) -> int:
        """Items the stage ``stage`` has done so far (``inference``: model runs)."""
        timer = self._run.timers.get(stage)
        return timer.items if timer is not None else 0

    @property
    def dropped(self) -> int:
        """Captured frames that never reached the outputs (live only)."""
        return self._scheduler.dropped if isinstance(self._scheduler, LiveScheduler) else 0

    def swap_segmenter(self, segmenter: SupportsSegment, timeout: float | None = None) -> bool:
        """Live: ``segmenter`` (built by the caller, open) takes over from the model's next run
        without stopping the camera; the one it replaces is closed by the pipeline. What is
        shown is blended into the new model's masks, nothing jumps and no frame is dropped for
        it. With ``timeout``, waits that long for it to take effect and says whether it did.

        Raises:
            RuntimeError: the stream is a file (one model reads it from its first frame to its last).
        """
        if not isinstance(self._scheduler, LiveScheduler):
            raise RuntimeError("a file is segmented by one model from its first frame to its last")
        self._scheduler.swap(segmenter)
        return self._scheduler.wait_swapped(timeout) if timeout is not None else True

    @property
    def segmenter(self) -> SupportsSegment:
        """The segmenter in use (live, it may have been swapped)."""
        return self.processor.segmenter

    @property
    def inference_skipped(self) -> int:
        """Live: frames the model did not see (their masks came from an earlier frame by flow)."""
        return self._scheduler.skipped if isinstance(self._scheduler, LiveScheduler) else 0

    def live_status(self) -> str:
        """One line for the overlay: output fps and latency over the last frames, and the live
        controller's level when it is not the best."""
        lat = self._run.latency
        p50 = percentile_ms(list(lat.values_ns)[-30:], 50)
        line = f"{lat.recent_fps():.1f} fps, latency {p50:.0f} ms, dropped {self.dropped}"
        state = self.controller_state()
        if state is not None and state.level > 0:
            line += f"; {state.name} ({state.why})"
        return line

    def controller_state(self) -> ControllerState | None:
        """Live: the controller's level, why, and the seconds spent at each level (None for files)."""
        return self._scheduler.controller.state() if isinstance(self._scheduler, LiveScheduler) else None

    def report(self) -> Report:
        wall = (self._t_end or time.perf_counter()) - self._t_start if self._t_start else 0.0
        lat = self._run.latency
        span = ((lat.last_out_ns or 0) - (lat.first_out_ns or 0)) / 1e9
        stages = tuple(self._scheduler.stage_reports())
        inferred = next(s.frames for s in stages if s.name == "inference")
        return Report(
            source=self.info.name,
            live=self.info.live,
            frames_in=self.frames_in,
            frames_out=lat.frames_out,
            dropped=self.dropped,
            output_fps=(lat.frames_out - 1) / span if lat.frames_out > 1 and span > 0 else 0.0,
            wall_s=wall,
            latency_ms_p50=percentile_ms(lat.values_ns, 50),
            latency_ms_p95=percentile_ms(lat.values_ns, 95),
            stages=stages,
            inference_fps=inferred / wall if wall > 0 else 0.0,
            propagated=self.processor.propagated,
            cpu_s=(self._cpu_end or time.process_time()) - self._cpu_start if self._t_start else 0.0,
            **self._live_figures(inferred),
        )

    def _live_figures(self, inferred: int) -> dict:
        state = self.controller_state()
        if state is None or not isinstance(self._scheduler, LiveScheduler):
            return {"model_runs": inferred}
        return {"model_runs": self._scheduler.model_runs, "levels": state.seconds, "level": state.name,
                "level_changes": state.changes, "level_why": state.why, "model_asked_by": dict(self._scheduler.asked_by),
                "sink_dropped": {s.name: s.dropped for s in self._run.sinks if isinstance(getattr(s, "dropped", None), int)}}
