"""One assembly: settings, an open source and its outputs -> a pipeline ready to run
(:func:`open_sinks`, then :func:`open_pipeline`).

The command line and every benchmark build their runs here, so a run measured by ``livebokeh
bench`` is the run a user gets: the same thread plan (resolved once, into plain numbers), the
same segmenter options, the same model pacing.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from livebokeh.config import Config
from livebokeh.controls import LiveControls
from livebokeh.pipeline import Pipeline, pacing
from livebokeh.render import Background
from livebokeh.sinks import Sink
from livebokeh.sources import Source
from livebokeh.threads import ThreadPlan, opencv_threads, plan_threads
from livebokeh.types import StreamInfo

log = logging.getLogger(__name__)


def open_sinks(cfg: Config, info: StreamInfo, stack: ExitStack, *, controls: LiveControls | None = None,
               output: str | Path | None = None, save_mask: str | Path | None = None,
               alpha_output: str | Path | None = None, audio_from: str | Path | None = None,
               overwrite: bool = False, explicit_preview: bool = False) -> list[Sink]:
    """The outputs of a run, each registered on ``stack`` to be closed (finalised) even when a
    later one cannot be opened.

    Args:
        info: the open source's stream (a still image, a file, or live).
        output, save_mask, alpha_output: files to write (``--output``, ``--save-mask``,
            ``--alpha-output``); checked beforehand by :func:`livebokeh.sinks.files.check_outputs`.
        audio_from: the input file whose sound the videos keep (when ``[output] audio`` is on).
        overwrite: existing files may be replaced.
        explicit_preview: the preview was asked for, so it opens for files and without a display too.
    """
    from livebokeh.sinks import SINKS, display_available
    from livebokeh.sinks.decoupled import Decoupled

    sinks: list[Sink] = []

    def add(sink: Sink) -> None:
        sinks.append(sink)
        stack.callback(sink.close)

    oc = cfg.output
    audio = audio_from if (audio_from and oc.audio and not info.still) else None
    if output:
        if info.still:
            add(SINKS.get("image")(output, overwrite=overwrite))
        else:
            add(SINKS.get("video")(output, info, crf=oc.crf, preset=oc.preset, audio_from=audio, overwrite=overwrite,
                                   threads=plan_threads(cfg.segmenter.threads).encoder))
    if save_mask:
        add(SINKS.get("mask")(save_mask, info, overwrite=overwrite))
    if alpha_output:
        add(SINKS.get("alpha")(alpha_output, info, overwrite=overwrite, unmix=cfg.render.unmix, audio_from=audio))
    if info.live and cfg.virtual_camera.enabled:
        vc = cfg.virtual_camera
        # on its own thread, so a slow reader never holds up the preview or a recording
        add(Decoupled(SINKS.get("virtual-camera")(info, vc.device, vc.backend, vc.fps, required=vc.on_demand)))
    if cfg.preview.enabled and (info.live or explicit_preview):
        if display_available() or explicit_preview:
            add(SINKS.get("preview")(controls=controls))
        else:
            log.info("no display: preview window off (pass --no-preview to silence this)")
    return sinks


def virtual_camera_device(sinks: Sequence[Sink]) -> str:
    """The device of the virtual camera among ``sinks`` (raises ConfigError when there is none)."""
    from livebokeh.errors import ConfigError
    from livebokeh.sinks.decoupled import Decoupled

    for sink in sinks:
        inner = sink.inner if isinstance(sink, Decoupled) else sink
        if inner.name == "virtual-camera":
            return str(inner.device)
    raise ConfigError("no virtual camera is open; --on-demand needs one")


def open_segmenter(cfg: Config, info: StreamInfo, backend: str, plan: ThreadPlan | None = None) -> Any:
    """The segmenter ``backend`` with the settings' options, for frames of the stream ``info``
    (open: the caller closes it, or hands it to a live pipeline's
    :meth:`~livebokeh.pipeline.Pipeline.swap_segmenter`, which then does)."""
    from livebokeh.segment import SegmenterOptions, create_segmenter

    plan = plan or plan_threads(cfg.segmenter.threads)
    options = SegmenterOptions.from_config(cfg.segmenter, (info.width, info.height), info.still, info.live, plan,
                                           backend=backend)
    return create_segmenter(backend, options)


@contextmanager
def open_pipeline(cfg: Config, source: Source, sinks: Sequence[Sink], *, backend: str | None = None,
                  masks: str | None = None, background: Background | None = None,
                  controls: LiveControls | None = None, max_frames: int | None = None) -> Iterator[Pipeline]:
    """A :class:`Pipeline` for ``source`` (open) into ``sinks``, with the segmenter and thread plan
    the settings give; on exit the pipeline is stopped and the segmenter closed (the source,
    background and sinks stay the caller's).

    Args:
        cfg: the settings.
        source: an open source.
        sinks: the outputs, in order.
        backend: a segmentation backend other than ``cfg.segmenter.backend`` (benchmarks).
        masks: ``--mask``: render these given masks instead of segmenting (they are the final
            alpha: no remapping, feathering or smoothing is added).
        background, controls, max_frames: as :class:`Pipeline` takes them.
    """
    from livebokeh.segment.given import GivenMasks

    info = source.info
    plan = plan_threads(cfg.segmenter.threads)
    with ExitStack() as stack:
        stack.enter_context(opencv_threads(plan))
        depth = open_depth(cfg, info, stack)  # first: missing weights stop the run before a model loads
        mask_cfg = cfg.mask
        segmenter: Any
        if masks:
            segmenter = stack.enter_context(GivenMasks(masks))
            frames = min(info.frame_count or 0, max_frames or info.frame_count or 0) or None
            segmenter.check_frames(frames)
            mask_cfg = dataclasses.replace(mask_cfg, low=0.0, high=1.0, feather=0.0, smoothing=0.0,
                                           guided="off", islands=0.0, lookahead=0)
        else:
            name = backend or cfg.segmenter.backend
            segmenter = stack.enter_context(open_segmenter(cfg, info, name, plan))
        fallback = cfg.live.fallback if info.live and cfg.live.fallback not in ("", backend or cfg.segmenter.backend) \
            and not masks else None
        pipeline = Pipeline(
            source, segmenter, sinks, mask_cfg, cfg.render,
            queue_size=cfg.pipeline.queue_size, max_frames=max_frames,
            background=background, controls=controls, workers=plan.workers,
            segment_workers=plan.segment_workers(segmenter.traits), framing=cfg.framing, depth=depth,
            adapt=cfg.live.adapt and not masks,
            fallback=(lambda: open_segmenter(cfg, info, fallback, plan)) if fallback else None, fallback_name=fallback,
            **pacing(cfg.segmenter.rate, segmenter.traits),
        )
        for sink in sinks:
            sink.status = pipeline.live_status
        stack.callback(pipeline.stop)
        yield pipeline


def open_depth(cfg: Config, info: StreamInfo, stack: ExitStack) -> Any:
    """With ``[render] depth`` on, the stream's :class:`~livebokeh.depth.DepthTracker` (its model
    loaded now, so that missing weights stop the run before it starts, in one line), registered
    on ``stack`` to be closed; else None."""
    if not cfg.render.depth:
        return None
    from livebokeh.depth import DepthEstimator, DepthOptions, DepthTracker

    estimator = DepthEstimator(DepthOptions(weights=cfg.render.depth_weights))
    return stack.enter_context(DepthTracker(estimator, live=info.live, fps=float(info.fps or 30)))
