"""The live scheduler: the model at a lower priority, runs where the picture changes, backends swapped live."""

from __future__ import annotations

import os
import sys
import threading

import numpy as np
import pytest

from livebokeh.closing import Closeable
from livebokeh.config import MaskConfig, RenderConfig
from livebokeh.pipeline import Pipeline
from livebokeh.pipeline.live import MIN_RATE
from livebokeh.types import Frame, Mask, SegmenterTraits
from tests.conftest import FakeSegmenter, FakeSource, ListSink, synthetic_frame


class StillSource(FakeSource):
    """A camera pointed at a still scene: the same picture every frame (a level of sensor noise)."""

    def read(self):
        frame = super().read()
        if frame is None:
            return None
        img = synthetic_frame(0, *self.size, moving=False)
        noise = np.random.default_rng(frame.index).integers(0, 2, img.shape, dtype=np.uint8)
        return Frame(img + noise, frame.index, frame.capture_ns)


def _runs(source) -> tuple[int, float]:
    seg = FakeSegmenter()
    with source, Pipeline(source, seg, [ListSink()], MaskConfig(), RenderConfig()) as p:
        report = p.run()
    assert report.frames_out + report.dropped == report.frames_in
    assert report.model_runs == seg.calls
    return seg.calls, report.wall_s


def test_the_model_rests_on_a_still_picture_and_runs_when_it_moves():
    still, wall = _runs(StillSource(count=90, live=True, fps=60))
    # nothing moves: the model runs at its floor rate (plus the first run), however fast the machine
    assert still <= 2 + wall * MIN_RATE
    moving, _ = _runs(FakeSource(count=90, live=True, fps=60))  # a person moving 2 px a frame
    assert moving > 2 * still


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priorities are Linux's")
def test_the_models_thread_runs_at_a_lower_priority_than_the_frames():
    sink = ListSink()
    src = FakeSource(count=10**6, live=True, fps=100)
    seen: dict[str, int] = {}
    with src, Pipeline(src, FakeSegmenter(), [sink], MaskConfig(), RenderConfig()) as p:

        def poll():
            if len(sink.items) >= 5 and not seen:
                for t in threading.enumerate():
                    if t.name in ("livebokeh-inference", "livebokeh-render", "livebokeh-capture"):
                        seen[t.name] = os.getpriority(os.PRIO_PROCESS, t.native_id)
                p.request_stop()
            return True

        p.wait(poll)
    base = os.getpriority(os.PRIO_PROCESS, 0)
    assert seen["livebokeh-render"] == seen["livebokeh-capture"] == base
    assert seen["livebokeh-inference"] == min(19, base + 10)


class Half(Closeable):
    """Says the left or the right half of every picture is the person; remembers its calls."""

    def __init__(self, side: str) -> None:
        self.side, self.calls, self.closed_at = side, 0, None
        self.traits = SegmenterTraits()

    def segment_frame(self, frame: Frame) -> Mask:
        self.calls += 1
        m = np.zeros((frame.height, frame.width), np.float32)
        half = frame.width // 2
        if self.side == "left":
            m[:, :half] = 1.0
        else:
            m[:, half:] = 1.0
        return Mask(m)

    def _release(self) -> None:
        self.closed_at = self.calls


def test_a_backend_swapped_live_takes_over_without_a_dropped_frame_and_the_old_one_is_closed():
    sink = ListSink()
    left, right = Half("left"), Half("right")
    src = StillSource(count=10**6, live=True, fps=60)
    swapped: list[bool] = []
    with src, Pipeline(src, left, [sink], MaskConfig(smoothing=0.0), RenderConfig()) as p:

        def poll():
            if len(sink.items) >= 10 and not swapped:
                swapped.append(p.swap_segmenter(right, timeout=30))
            if swapped and right.calls >= 3 and sum(c.mask.data[:, -1].mean() > 0.9 for c in sink.items[-3:]) == 3:
                p.request_stop()
            return True

        report = p.wait(poll)
    assert swapped == [True] and p.segmenter is right
    assert left.closed_at is not None and left.calls == left.closed_at  # closed by the pipeline, not run after
    assert report.frames_out + report.dropped == report.frames_in
    last = sink.items[-1].mask.data
    assert last[:, -1].mean() > 0.9 and last[:, 0].mean() < 0.1  # the new model's masks are shown
    assert right.closed_at is not None  # handed over: the pipeline closes it when it stops


def test_a_file_cannot_swap_its_model():
    with FakeSource(count=3) as src, Pipeline(src, FakeSegmenter(), [ListSink()]) as p:
        with pytest.raises(RuntimeError, match="one model"):
            p.swap_segmenter(FakeSegmenter())


def test_max_frames_counts_the_frames_a_live_source_passed_over():
    from livebokeh.pipeline.run import Run

    class Gappy(FakeSource):
        def read(self):
            frame = super().read()
            return None if frame is None else Frame(frame.image, [0, 1, 5, 6, 7][frame.index], frame.capture_ns)

    src = Gappy(count=5, live=True, fps=1000)
    with src:
        run = Run(src, [], max_frames=4)
        read = [f.index for f in iter(run.read, None)]
    assert read == [0, 1] and run.frames_in + run.skipped == 4  # frame 5 is the sixth captured: past the limit


def test_the_rate_ceiling_wins_over_the_floor():
    from livebokeh.pipeline.live import Pacing

    assert Pacing().latest() == 1 / MIN_RATE
    assert Pacing(max_rate=10).latest() == 1 / MIN_RATE
    assert Pacing(max_rate=0.5).latest() == 2.0  # --model-rate 0.5: once in 2 s, whatever the floor
