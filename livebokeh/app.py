"""One assembly: settings, an open source and its outputs -> a pipeline ready to run.

The command line and every benchmark build their runs here, so a run measured by ``livebokeh
bench`` is the run a user gets: the same thread plan (resolved once, into plain numbers), the
same segmenter options, the same model pacing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

from livebokeh.config import Config
from livebokeh.controls import LiveControls
from livebokeh.pipeline import Pipeline, pacing
from livebokeh.render import Background
from livebokeh.sinks import Sink
from livebokeh.sources import Source
from livebokeh.threads import opencv_threads, plan_threads


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
    from livebokeh.segment import SegmenterOptions, create_segmenter
    from livebokeh.segment.given import GivenMasks

    info = source.info
    plan = plan_threads(cfg.segmenter.threads)
    with ExitStack() as stack:
        stack.enter_context(opencv_threads(plan))
        mask_cfg = cfg.mask
        segmenter: Any
        if masks:
            segmenter = stack.enter_context(GivenMasks(masks))
            frames = min(info.frame_count or 0, max_frames or info.frame_count or 0) or None
            segmenter.check_frames(frames)
            mask_cfg = dataclasses.replace(mask_cfg, low=0.0, high=1.0, feather=0.0, smoothing=0.0,
                                           guided="off", islands=0.0, lookahead=0)
        else:
            options = SegmenterOptions.from_config(cfg.segmenter, (info.width, info.height), info.still, info.live)
            segmenter = stack.enter_context(create_segmenter(backend or cfg.segmenter.backend, options))
        pipeline = Pipeline(
            source, segmenter, sinks, mask_cfg, cfg.render,
            queue_size=cfg.pipeline.queue_size, max_frames=max_frames,
            background=background, controls=controls, render_workers=plan.render_workers,
            inference_workers=plan.inference_workers(segmenter.traits),
            **pacing(cfg.segmenter.rate, segmenter.traits),
        )
        for sink in sinks:
            sink.status = pipeline.live_status
        stack.callback(pipeline.stop)
        yield pipeline
