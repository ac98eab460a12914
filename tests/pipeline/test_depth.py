"""--depth in the pipeline: the processor's depth hook, files repeatable, live moved by flow."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from livebokeh.config import MaskConfig, RenderConfig
from livebokeh.controls import LiveControls
from livebokeh.depth import DepthTracker
from livebokeh.framing import Crop
from livebokeh.mask import LookaheadSmoother
from livebokeh.pipeline import Pipeline
from livebokeh.pipeline.processor import FrameProcessor
from livebokeh.types import Frame
from tests.conftest import FakeDepthModel, FakeSegmenter, FakeSource, ListSink, synthetic_frame

DEPTH = RenderConfig(depth=True, light_wrap=0.0)


def _run(source, render=DEPTH, workers=2, model=None, **kw):
    model = model or FakeDepthModel()
    sink = ListSink()
    with source, DepthTracker(model, live=source.live) as tracker:
        with Pipeline(source, FakeSegmenter(), [sink], MaskConfig(), render, workers=workers, depth=tracker,
                      **kw) as p:
            p.run()
    assert model.closed == 1
    return sink, model


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_file_runs_with_depth_are_identical_whatever_the_pool(workers):
    ref, model = _run(FakeSource(count=12), workers=2)
    again, _ = _run(FakeSource(count=12), workers=workers)
    assert model.calls == 12  # files: the model on every frame
    assert [c.frame.index for c in again.items] == list(range(12))
    for a, b in zip(ref.items, again.items):
        np.testing.assert_array_equal(a.image, b.image)
    plain, _ = _run(FakeSource(count=12), render=dataclasses.replace(DEPTH, depth=False))
    assert any(not np.array_equal(a.image, b.image) for a, b in zip(ref.items, plain.items))


def test_depth_off_in_the_settings_never_runs_the_model():
    sink, model = _run(FakeSource(count=5), render=dataclasses.replace(DEPTH, depth=False))
    assert model.calls == 0 and len(sink.items) == 5


def _processor(render=DEPTH, live=False, smoother=None, model=None):
    tracker = DepthTracker(model or FakeDepthModel(), live=live)
    controls = LiveControls(render, can_depth=True)
    return FrameProcessor(FakeSegmenter(), MaskConfig(), controls, live=live, smoother=smoother,
                          depth=tracker), tracker


def _frame(i, fps=30.0):
    return Frame(synthetic_frame(i, moving=False), i, round(i * 1e9 / fps))


def test_look_ahead_keeps_each_frames_own_depth():
    proc, tracker = _processor(smoother=LookaheadSmoother(1.0, 2))
    made = {}
    update = tracker.update

    def recording(frame, raw, alpha):
        made[frame.index] = update(frame, raw, alpha)
        return made[frame.index]

    tracker.update = recording
    out = []
    for i in range(6):
        out += proc.smooth(proc.segment(_frame(i)))
    out += proc.flush()
    assert [s.frame.index for s in out] == list(range(6))
    assert all(s.depth is made[s.frame.index] for s in out)
    assert not proc._depths  # nothing left held


def test_live_runs_the_model_at_its_rate_and_every_frame_shows_a_map():
    model = FakeDepthModel()
    proc, tracker = _processor(live=True, model=model)
    latest = None
    for i in range(31):
        f = _frame(i)
        if i % 2 == 0:
            latest = proc.segment(f)  # live, the scheduler calls segment, then follow
        item = proc.follow(latest, f)
        assert item.depth is not None and item.depth.shape == (120, 160)
        # a still picture: the map shown is the tracker's newest, exactly (no flow noise moves it)
        np.testing.assert_array_equal(item.depth, latest.depth)
        proc.render(item)
    # 2 a second, on frames the segmenter takes: 0 and 16 (0.5 s after 0 is frame 15, which it skips)
    assert model.calls == 2
    assert tracker.moved == 14  # the segmenter's other frames got the last map moved to them


def test_turning_depth_off_stops_the_model_and_on_again_starts_afresh():
    model = FakeDepthModel()
    proc, tracker = _processor(live=True, model=model)
    proc.segment(_frame(0))
    assert model.calls == 1
    assert proc.controls.handle_key("d") == "effect blur, blur 0.030, disc"
    item = proc.segment(_frame(40))
    assert model.calls == 1 and item.depth is None
    proc.controls.handle_key("d")
    item = proc.segment(_frame(41))  # the tracker was reset: due at once
    assert model.calls == 2 and item.depth is not None and tracker.runs == 2


def test_without_a_tracker_the_key_says_how_to_get_depth():
    controls = LiveControls(RenderConfig())
    assert controls.handle_key("d") == "depth: start with --depth to use it"
    assert not controls.render.depth


def test_a_cropped_frame_renders_with_its_depth():
    proc, _ = _processor()
    item = proc.smooth(proc.segment(_frame(0)))[0]
    cropped = proc.render(dataclasses.replace(item, crop=Crop(0.5, 0.5, 0.5)))
    plain = proc.render(dataclasses.replace(item, crop=Crop(0.5, 0.5, 0.5), depth=None))
    assert cropped.image.shape == item.frame.image.shape
    assert not np.array_equal(cropped.image, plain.image)


def test_a_cut_forgets_the_depth():
    proc, tracker = _processor(live=True)
    proc.segment(_frame(0))
    proc.restart_model()
    assert tracker.update(_frame(1), None, np.zeros((4, 4), np.float32)) is None


def test_a_lighter_render_under_load_rests_the_depth_model():
    model = FakeDepthModel()
    proc, _ = _processor(live=True, model=model)
    proc.segment(_frame(0))
    proc.controls.light = True  # the live controller is short of CPU
    item = proc.segment(_frame(40))
    assert model.calls == 1 and item.depth is None
    proc.controls.light = False
    assert proc.segment(_frame(41)).depth is not None and model.calls == 2


def test_a_live_pipeline_runs_the_depth_model_through_its_scheduler():
    model = FakeDepthModel()
    sink, _ = _run(FakeSource(count=40, live=True, fps=100.0), model=model)
    assert sink.items and model.calls >= 1  # 0.4 s at 2 runs a second: the first frame's at least
    indexes = [c.frame.index for c in sink.items]
    assert indexes == sorted(indexes)
