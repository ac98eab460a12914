import threading
import time

import cv2
import numpy as np
import pytest

from livebokeh.config import MaskConfig, RenderConfig
from livebokeh.errors import SourceError
from livebokeh.pipeline import Pipeline
from livebokeh.types import SegmenterTraits
from tests.conftest import FakeSegmenter, FakeSource, ListSink, iou, until


def _run(source, segmenter, sinks, **kw):
    with source:
        with Pipeline(source, segmenter, sinks, MaskConfig(smoothing=0.0), RenderConfig(), **kw) as p:
            return p, p.run()


def _livebokeh_threads():
    return [t for t in threading.enumerate() if t.name.startswith("livebokeh-")]




def test_file_source_every_frame_in_order_none_dropped():
    sink = ListSink()
    p, report = _run(FakeSource(count=30), FakeSegmenter(), [sink], queue_size=2)
    assert [c.frame.index for c in sink.items] == list(range(30))
    assert report.frames_in == report.frames_out == 30 and report.dropped == 0
    assert [s.name for s in report.stages] == ["capture", "inference", "render", "sinks"]
    assert all(s.frames == 30 for s in report.stages)
    render = next(s for s in report.stages if s.name == "render")
    assert 0 < render.cpu_ms <= render.mean_ms * 1.5 + 1  # the stage thread's own CPU time, measured
    assert not _livebokeh_threads()


def test_output_is_rendered_from_the_mask():
    sink = ListSink()
    _run(FakeSource(count=3), FakeSegmenter(), [sink])
    c = sink.items[1]
    assert c.image.shape == c.frame.image.shape and c.alpha.shape == c.frame.image.shape[:2]
    person = cv2.erode((c.alpha.data > 0.99).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0  # inside the light wrap
    np.testing.assert_array_equal(c.image[person], c.frame.image[person])
    assert not np.array_equal(c.image, c.frame.image)  # the background is blurred


def test_file_runs_are_identical():
    runs = []
    for _ in range(2):
        sink = ListSink()
        _run(FakeSource(count=12), FakeSegmenter(), [sink])
        runs.append(np.stack([c.alpha.data for c in sink.items]))
    np.testing.assert_array_equal(runs[0], runs[1])


class Heavy(FakeSegmenter):
    """A stateless model heavier than the rendering: the file pool may run it side by side."""

    traits = SegmenterTraits(heavy=True)


class Plates:
    """Replacement plates; optionally failing at one frame, or holding the first two calls
    until both are inside (proof that two workers render at once)."""

    def __init__(self, fail_at=None, meet=False):
        self.fail_at = fail_at
        self.both_in = threading.Barrier(2, timeout=10) if meet else None
        self.threads = set()
        self.lock = threading.Lock()

    def plate(self, size, index):
        with self.lock:  # the first call of each of the first two threads waits for the other
            first = threading.get_ident() not in self.threads and len(self.threads) < 2
            self.threads.add(threading.get_ident())
        if self.both_in is not None and first:
            self.both_in.wait()
        if index == self.fail_at:
            raise ValueError("render exploded")
        return np.full((size[1], size[0], 3), 40, np.uint8)


@pytest.mark.parametrize("count", [1, 2, 7, 30])
def test_any_pool_size_gives_the_same_frames_in_order(count):
    """One worker or four: the same frames, in the same order, with the same pictures."""
    outs = []
    for workers in (1, 2, 4):
        sink = ListSink()
        _, report = _run(FakeSource(count=count), FakeSegmenter(), [sink], queue_size=2, workers=workers)
        assert [c.frame.index for c in sink.items] == list(range(count))
        assert report.frames_out == count and [s.name for s in report.stages] == ["capture", "inference", "render", "sinks"]
        assert all(s.frames == count for s in report.stages)
        outs.append(np.stack([c.image for c in sink.items]))
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(outs[0], outs[2])
    assert not _livebokeh_threads()


@pytest.mark.parametrize("lookahead", [0, 2])
@pytest.mark.parametrize("count", [1, 2, 7, 30])
def test_a_heavy_model_side_by_side_keeps_the_order_the_smoothing_and_the_pictures(count, lookahead):
    """A heavy model run two at a time: the same frames, masks and pictures, in the same order,
    as one at a time, with causal and look-ahead smoothing (the smoother sees the masks in
    stream order)."""
    outs = []
    for segment_workers in (1, 2):
        sink = ListSink()
        seg = Heavy()
        src = FakeSource(count=count)
        mask_cfg = MaskConfig(smoothing=1.0, lookahead=lookahead)
        with src, Pipeline(src, seg, [sink], mask_cfg, RenderConfig(), queue_size=2, workers=3,
                           segment_workers=segment_workers) as p:
            report = p.run()
        assert [c.frame.index for c in sink.items] == list(range(count))
        assert seg.calls == count and report.frames_out == count and report.dropped == 0
        assert report.inference_fps > 0 and next(s for s in report.stages if s.name == "inference").frames == count
        outs.append((np.stack([c.alpha.data for c in sink.items]), np.stack([c.image for c in sink.items])))
    np.testing.assert_array_equal(outs[0][0], outs[1][0])
    np.testing.assert_array_equal(outs[0][1], outs[1][1])
    assert not _livebokeh_threads()


def test_a_heavy_model_runs_side_by_side():
    """Two workers are inside the model at once (a gate lets no call finish until two are in)."""

    class Gate(Heavy):
        def __init__(self):
            super().__init__()
            self.both_in = threading.Barrier(2, timeout=10)
            self.threads = set()

        def segment(self, image):
            me = threading.get_ident()
            if me not in self.threads and len(self.threads) < 2:  # the first two wait for each other
                self.threads.add(me)
                self.both_in.wait()
            return super().segment(image)

    seg = Gate()
    src = FakeSource(count=10)
    with src, Pipeline(src, seg, [ListSink()], MaskConfig(smoothing=0.0), RenderConfig(), workers=3,
                       segment_workers=2) as p:
        assert p.run().frames_out == 10
    assert len(seg.threads) == 2


def test_rendering_runs_side_by_side_and_any_worker_renders():
    """Rendering is pure: two workers render at once (a gate lets no plate through until two
    are in), and the frames still leave once each, in order, each the same picture as with one
    worker."""
    outs = []
    for workers, plates in ((3, Plates(meet=True)), (1, Plates())):
        sink = ListSink()
        src = FakeSource(count=20)
        with src, Pipeline(src, FakeSegmenter(), [sink], MaskConfig(smoothing=0.0), RenderConfig(effect="replace"),
                           background=plates, workers=workers) as p:
            report = p.run()
        assert [c.frame.index for c in sink.items] == list(range(20)) and report.frames_out == 20
        assert len(plates.threads) >= 2 if workers > 1 else len(plates.threads) == 1
        outs.append(np.stack([c.image for c in sink.items]))
    np.testing.assert_array_equal(outs[0], outs[1])
    assert not _livebokeh_threads()


@pytest.mark.parametrize("queue_size", [1, 3])
@pytest.mark.parametrize("lookahead", [0, 3])
def test_frames_in_flight_stay_bounded(queue_size, lookahead):
    """A file never has more than ``queue_size`` frames read and not written, besides those the
    smoother holds back for its look-ahead: memory does not grow with a slow sink."""
    src = FakeSource(count=40)
    ahead = []

    class Slow(ListSink):
        def write(self, item):
            ahead.append(src.i - len(self.items) - 1)  # read, and not yet written, besides this one
            super().write(item)

    sink = Slow()
    with src, Pipeline(src, FakeSegmenter(), [sink], MaskConfig(smoothing=1.0, lookahead=lookahead),
                       queue_size=queue_size, workers=3) as p:
        assert p.run().frames_out == 40
    assert max(ahead) <= queue_size + lookahead - 1
    assert [c.frame.index for c in sink.items] == list(range(40))


def test_a_failing_model_run_side_by_side_stops_everything():
    src = FakeSource(count=500)
    seg = Heavy(fail_at=9)
    with src, Pipeline(src, seg, [ListSink()], MaskConfig(smoothing=0.0), RenderConfig(), workers=3,
                       segment_workers=2) as p:
        with pytest.raises(RuntimeError, match="segmenter exploded") as info:
            p.run()
    assert "in the inference stage" in info.value.__notes__
    assert src.i < 500
    assert not _livebokeh_threads()


@pytest.mark.parametrize("workers", [1, 3])
def test_a_failing_render_stops_everything(workers):
    src = FakeSource(count=500)
    sink = ListSink()
    with src, Pipeline(src, FakeSegmenter(), [sink], MaskConfig(smoothing=0.0), RenderConfig(effect="replace"),
                       background=Plates(fail_at=9), workers=workers) as p:
        with pytest.raises(ValueError, match="render exploded") as info:
            p.run()
    assert "in the render stage" in info.value.__notes__
    assert src.i < 500 and len(sink.items) <= 9
    assert not _livebokeh_threads()


def test_live_source_keeps_the_camera_rate_when_the_model_is_slower():
    """A model slower than the camera (made so by events, not by the clock: its run on frame m
    ends only once the renderer has put out frame m + 3 or later, which it could never do were
    it waiting for the model): every frame goes out or is counted as dropped, in order, with the
    newest mask moved to it by optical flow; the model sees the newest frames, the others are
    counted as skipped."""
    sink = ListSink()
    count = 44

    class Lagging(Recurrent):
        working = -1  # the frame the model took last

        def segment(self, image):
            m = self.working = int(image[0, 0, 0])  # FakeIndexSource writes the frame index there
            target = min(m + 3, count - 1)
            until(lambda: sink.items and sink.items[-1].frame.index >= target,
                   f"frame {target} rendered while the model works on frame {m}")
            return super().segment(image)

    seg = Lagging()

    class Camera(FakeIndexSource):
        """100 fps, but never more than 3 frames ahead of the frame the model took last, so that
        the masks moved to a frame are at most 6 frames old however the threads are scheduled."""

        def read(self):
            if self.i < self.count:
                until(lambda: self.i - seg.working <= 3, f"the model to take a frame near {self.i}")
            return super().read()

    p, report = _run(Camera(count=count, live=True, fps=100), seg, [sink])
    indexes = [c.frame.index for c in sink.items]
    assert indexes == sorted(set(indexes))
    assert indexes[-1] == count - 1  # the end of the stream is never dropped, nor is its last frame lost
    assert report.frames_out + report.dropped == report.frames_in == count
    # the model took the newest frame each time (three or more came during each run), every
    # other one is counted as skipped
    assert len(seg.seen) + p.inference_skipped == count and seg.seen[0] <= 2
    assert all(b >= min(a + 3, count - 1) for a, b in zip(seg.seen, seg.seen[1:])), seg.seen
    assert p.inference_skipped > 0 and report.propagated > 0
    # the propagated masks follow the moving square (2 px a frame; a mask 4 frames old left
    # unmoved would score about 0.67); the frames before the model's first mask are background
    scores = [iou(c.alpha.data > 0.5, c.frame.image.mean(axis=2) > 150) for c in sink.items if c.mask.data.max() > 0]
    assert len(scores) >= 5 and min(scores) > 0.5 and np.mean(scores) > 0.85, scores


def test_a_failing_stage_stops_everything_and_reaches_the_caller():
    sink = ListSink()
    src = FakeSource(count=10_000)
    with pytest.raises(RuntimeError, match="segmenter exploded") as info:
        _run(src, FakeSegmenter(fail_at=5), [sink])
    assert "in the inference stage" in info.value.__notes__
    assert len(sink.items) <= 5
    assert src.i < 10_000
    assert not _livebokeh_threads()


def test_source_and_sink_errors_propagate():
    with pytest.raises(SourceError, match="unplugged"):
        _run(FakeSource(count=50, fail_at=7), FakeSegmenter(), [ListSink()])
    with pytest.raises(OSError, match="disk full"):
        _run(FakeSource(count=50), FakeSegmenter(), [ListSink(fail_at=3)])
    assert not _livebokeh_threads()


def test_request_stop_finishes_frames_in_flight():
    """Stopping (q in the preview: the poll says False) reads at most the frame under way, then
    every frame read goes out or is counted as dropped, the last one always out, and every
    thread ends. The camera gives no frame after the poll said stop until the pipeline is asked
    to, so the count is the same however the threads are scheduled."""
    sink = ListSink()
    said_stop, asked = threading.Event(), threading.Event()
    read_when_told = []

    class Camera(FakeSource):
        def read(self):
            if said_stop.is_set():
                until(asked.is_set, "the pipeline to be asked to stop")
            return super().read()

    def poll():
        if len(sink.items) >= 10:
            read_when_told.append(src.i)
            said_stop.set()
            return False  # like pressing q in the preview
        return True

    src = Camera(count=100_000, live=True, fps=1000)
    with src, Pipeline(src, FakeSegmenter(), [sink]) as p:
        request_stop = p.request_stop

        def stop():
            request_stop()
            asked.set()

        p.request_stop = stop
        report = p.run(poll)
    # reads after the poll said stop: the one under way, and one that waited for the request
    assert report.frames_in <= read_when_told[0] + 2
    indexes = [c.frame.index for c in sink.items]
    assert 10 <= report.frames_out == len(sink.items) and indexes == sorted(set(indexes))
    assert report.frames_out + report.dropped == report.frames_in and indexes[-1] == report.frames_in - 1
    assert not _livebokeh_threads()


@pytest.mark.parametrize("pool", [{"workers": 1}, {"workers": 3}, {"workers": 3, "segment_workers": 2}])
def test_a_file_stopped_midway_writes_every_frame_it_read_in_order(pool):
    """Stopping a recording (q, Ctrl-C) finishes the frames in flight whatever the pool: what
    was read reaches the outputs, in order, once each."""
    sink = ListSink()
    src = FakeSource(count=100_000)

    def poll():
        return len(sink.items) < 10

    with src, Pipeline(src, Heavy(), [sink], MaskConfig(), RenderConfig(), queue_size=2, **pool) as p:
        report = p.run(poll)
    assert 10 <= report.frames_out < 100_000
    assert [c.frame.index for c in sink.items] == list(range(report.frames_in))
    assert not _livebokeh_threads()


def test_stop_is_safe_twice_and_max_frames_limits_the_run():
    sink = ListSink()
    src = FakeSource(count=100)
    with src:
        p = Pipeline(src, FakeSegmenter(), [sink], max_frames=7)
        report = p.run()
        p.stop()
        p.stop()
    assert report.frames_out == 7
    with pytest.raises(RuntimeError):
        p.start()


def test_report_serialises(tmp_path):
    _, report = _run(FakeSource(count=5), FakeSegmenter(), [ListSink()])
    path = tmp_path / "s.json"
    report.write_json(path)
    import json

    data = json.loads(path.read_text())
    assert data["frames_out"] == 5 and len(data["stages"]) == 4
    assert "latency capture->sink" in report.table()


def test_file_mode_lookahead_keeps_every_frame_in_order_and_is_repeatable():
    runs = []
    for _ in range(2):
        sink = ListSink()
        src = FakeSource(count=15)
        with src, Pipeline(src, FakeSegmenter(), [sink], MaskConfig(smoothing=1.0, lookahead=3)) as p:
            report = p.run()
        assert [c.frame.index for c in sink.items] == list(range(15)) and report.frames_out == 15
        runs.append(np.stack([c.alpha.data for c in sink.items]))
    np.testing.assert_array_equal(runs[0], runs[1])


class Recurrent(FakeSegmenter):
    """A stateful fake: records which frames reach it, in which order, and the most calls that
    were ever inside it at once."""

    traits = SegmenterTraits(stateful=True, heavy=True)

    def __init__(self, delay: float = 0.0):
        super().__init__(delay)
        self.seen: list[int] = []
        self.inside = self.most_inside = 0

    def segment(self, image):
        with self.lock:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        try:
            self.seen.append(int(image[0, 0, 0]))  # FakeIndexSource writes the frame index there
            time.sleep(0.001)  # gives another worker the chance to come in, were it allowed to
            return super().segment(image)
        finally:
            with self.lock:
                self.inside -= 1


class FakeIndexSource(FakeSource):
    def read(self):
        frame = super().read()
        if frame is None:
            return None
        img = frame.image.copy()
        img[0, 0, 0] = frame.index % 256
        return type(frame)(img, frame.index, frame.capture_ns)


@pytest.mark.parametrize("pool", [{"workers": 1}, {"workers": 4, "segment_workers": 2}])
def test_a_stateful_model_sees_every_frame_in_order_one_at_a_time(pool):
    """A recurrent model (declared heavy too) is never run side by side, whatever the pool."""
    seg, sink = Recurrent(), ListSink()
    _run(FakeIndexSource(count=40), seg, [sink], queue_size=2, **pool)
    assert seg.seen == list(range(40)) and seg.most_inside == 1
    assert [c.frame.index for c in sink.items] == list(range(40))


def test_live_model_rests_to_keep_its_duty_and_every_frame_is_still_rendered():
    """A model that runs 30 ms and may run a quarter of the time rests at least 90 ms after each
    run: it sees far fewer frames than the camera gives, the others get its newest mask moved to
    them, and every captured frame is rendered or counted as dropped."""
    seg, sink = Recurrent(delay=0.03), ListSink()
    src = FakeIndexSource(count=60, live=True, fps=100)
    with src, Pipeline(src, seg, [sink], MaskConfig(smoothing=0.0), RenderConfig(), model_duty=0.25) as p:
        report = p.run()
    assert len(seg.seen) <= report.wall_s / 0.12 + 1  # at most one run in 120 ms, however slow the machine
    assert len(seg.seen) < report.frames_out
    assert seg.seen == sorted(seg.seen) and len(set(seg.seen)) == len(seg.seen)  # in order, newest frames
    assert report.frames_out + report.dropped == report.frames_in == 60
    assert report.propagated > 0 and report.cpu_s > 0 and report.cores > 0


def test_live_model_rate_is_a_ceiling():
    seg = Recurrent()
    src = FakeIndexSource(count=60, live=True, fps=100)
    with src, Pipeline(src, seg, [ListSink()], MaskConfig(smoothing=0.0), RenderConfig(), model_rate=10) as p:
        report = p.run()
    # 10 runs a second over the run's time: never more, however slow the machine
    assert 1 <= len(seg.seen) <= 10 * report.wall_s + 1 and report.frames_out + report.dropped == 60


def test_pacing_settings_are_checked_and_resolved_in_one_place():
    from livebokeh.pipeline import pacing

    heavy = SegmenterTraits(stateful=True, live_duty=0.6)
    assert pacing(0.0, heavy) == {"model_rate": 0.0, "model_duty": 0.6}
    assert pacing(12.0, heavy) == {"model_rate": 12.0, "model_duty": 1.0}  # the user's rate wins
    with FakeSource(count=1) as src:
        for bad in ({"model_duty": 0.0}, {"model_duty": 1.5}, {"model_rate": -1.0}):
            with pytest.raises(ValueError, match="model_duty"):
                Pipeline(src, FakeSegmenter(), [ListSink()], **bad)


def test_a_renderer_does_not_wait_for_a_mask_while_the_model_rests():
    from livebokeh.pipeline.live import MaskSlot

    slot = MaskSlot()
    slot.resting(True)
    # returns at once: no result would come (were it to wait, the test would hang, not be slow)
    assert slot.wait_for(5, timeout=1e6) is None


def test_live_frames_before_the_first_mask_are_all_background_and_never_wait():
    """A model slow to start (RVM warms up on its first frame): the renderer does not block on
    it; the frames before the first mask are rendered as all background (the room never shows)."""

    sink = ListSink()

    class SlowStart(FakeSegmenter):
        """Its first run ends only once three frames went out without it (were the renderer
        waiting for the model, they never would)."""

        def segment(self, image):
            if self.calls == 0:
                until(lambda: len(sink.items) >= 3, "three frames rendered before the first mask")
            return super().segment(image)

    class Camera(FakeSource):
        """Ends once five frames went out with a mask, however slow the machine."""

        def read(self):
            if sum(c.mask.data.max() > 0 for c in sink.items) >= 5:
                return None
            return super().read()

    src = Camera(count=100_000, live=True, fps=100)
    with src, Pipeline(src, SlowStart(), [sink], MaskConfig(smoothing=0.0), RenderConfig()) as p:
        report = p.run()
    empty = [c.mask.data.max() == 0 for c in sink.items]
    assert any(empty) and not all(empty)
    assert empty == sorted(empty, reverse=True)  # all-background frames come first, then masks
    blurred = sink.items[0]
    assert not np.array_equal(blurred.image, blurred.frame.image)  # the whole picture is blurred
    assert report.frames_out + report.dropped == report.frames_in


@pytest.mark.parametrize("live", [False, True])
def test_abort_returns_at_once_and_every_thread_ends(live):
    """A second Ctrl-C: :meth:`Pipeline.abort` from the poll; :meth:`wait` returns (it used to
    wait for an end that never came) and no thread is left."""
    sink = ListSink()
    src = FakeSource(count=10**7, live=live, fps=500)
    with src, Pipeline(src, FakeSegmenter(), [sink], MaskConfig(smoothing=0.0), RenderConfig()) as p:

        def poll():
            if len(sink.items) >= 5:
                p.abort()
            return True

        report = p.wait(poll)
    assert report.frames_out >= 5 and src.i < 10**7
    assert not _livebokeh_threads()


def test_a_swap_to_a_model_whose_automatic_mask_range_the_settings_leave_no_room_for(caplog):
    """--mask-high 0.3 suits RVM (automatic low 0); the live fallback or a swap to MediaPipe
    (automatic low 0.4) raised a ConfigError in the middle of a call. The swapped-in model gets
    its automatic low and high, and a warning says why."""
    from livebokeh.controls import LiveControls
    from livebokeh.pipeline.processor import FrameProcessor

    class Matte(FakeSegmenter):
        traits = SegmenterTraits(matte=True)

    proc = FrameProcessor(Matte(), MaskConfig(high=0.3), LiveControls(RenderConfig()), live=True)
    assert (proc.mask_cfg.low, proc.mask_cfg.high) == (0.0, 0.3)
    with caplog.at_level("WARNING", logger="livebokeh"):
        proc.use_segmenter(FakeSegmenter())
    assert (proc.mask_cfg.low, proc.mask_cfg.high) == (0.4, 0.6)
    assert "uses its automatic mask low and high" in caplog.text
    proc.use_segmenter(Matte())  # back: the settings as given
    assert (proc.mask_cfg.low, proc.mask_cfg.high) == (0.0, 0.3)
