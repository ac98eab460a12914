"""Robust Video Matting: a stateful segmenter whose memory follows one stream."""

import dataclasses
import sys

import cv2
import numpy as np
import pytest

from livebokeh.errors import ModelError
from livebokeh.segment import RVMOptions, SegmenterOptions, create_segmenter
from livebokeh.segment.rvm import CUT_LEVEL, WARM_PASSES, input_size, pixel_scale
from tests.conftest import iou, mean_iou_on


@pytest.fixture
def opts(rvm_weights):
    return SegmenterOptions(threads=1, frame_size=(512, 512), own=RVMOptions(weights=str(rvm_weights)))


@pytest.fixture(scope="module")
def frames(clip):
    from livebokeh.bench.common import video_frames

    return video_frames(clip, 12)


def test_declares_a_stateful_matting_model(opts):
    with create_segmenter("rvm", opts) as seg:
        t = seg.traits
        assert t.stateful and t.matte and not t.roi_helps and not t.heavy
        assert 0 < t.live_duty < 1  # on the CPU it rests between runs in a live pipeline
        assert (seg.input_size, seg.backbone, seg.threads) == ((384, 384), 256, 1)  # live: 512x288's pixels
    with create_segmenter("rvm", dataclasses.replace(opts, live=False, serial_threads=3)) as seg:
        # a file: it runs alone on its step, on every thread planned for that
        assert (seg.input_size, seg.backbone, seg.threads) == ((480, 480), 384, 3)


def test_sizes_keep_the_pixel_count_of_a_16_9_picture():
    assert input_size(1280, 720, 640) == (640, 360) and input_size(1920, 1080, 640) == (640, 360)
    assert input_size(512, 512, 640) == (480, 480) and input_size(720, 1280, 640) == (360, 640)
    assert input_size(320, 180, 640) == (320, 180)  # never enlarged
    assert pixel_scale(640, 360, 384) == pytest.approx(0.6) and pixel_scale(100, 100, 384) == 1.0


def test_mattes_on_half_body_stills(half_body_stills, rvm_weights):
    with create_segmenter("rvm", SegmenterOptions(threads=2, own=RVMOptions(weights=str(rvm_weights)))) as seg:
        score = mean_iou_on(seg, half_body_stills[::3])
    assert score > 0.90, score


def test_the_memory_follows_the_stream_and_reset_forgets_it(opts, frames):
    with create_segmenter("rvm", opts) as a:
        first = [a.segment(f).data.copy() for f in frames[:4]]
        a.reset()
        again = [a.segment(f).data for f in frames[:4]]
        for x, y in zip(first, again):
            np.testing.assert_array_equal(x, y)  # the same stream from a fresh memory: the same mattes
        with create_segmenter("rvm", opts) as b:
            alone = b.segment(frames[3]).data
        assert np.abs(alone - first[3]).max() > 1e-3  # what came before shaped frame 3's matte
        assert a.resets == 2


def test_a_fresh_memory_is_warmed_up_on_its_first_frame(opts, frames):
    with create_segmenter("rvm", opts) as seg:
        raw = seg.model_output(frames[0])  # one pass from an empty memory
        warm = seg.segment(frames[0]).data
        assert WARM_PASSES > 1 and np.abs(raw - warm).max() > 1e-3


def test_the_raw_and_mirrored_views_keep_memories_of_their_own(opts, frames):
    """model_output and the mirror pass never disturb the main memory."""
    with create_segmenter("rvm", opts) as plain, create_segmenter("rvm", opts) as busy:
        for f in frames[:3]:
            expected = plain.segment(f).data
            busy.model_output(frames[-1])
            busy._segment_mirrored(frames[-2])
            np.testing.assert_array_equal(busy.segment(f).data, expected)


def test_a_scene_cut_or_a_new_size_starts_a_fresh_memory(opts, frames, data_dir):
    from livebokeh.bench.common import video_frames

    other = video_frames(data_dir / "videos" / "d0_greenscreen.mp4", 1)[0]
    with create_segmenter("rvm", opts) as seg:
        for f in frames:
            seg.segment(f)
        assert seg.resets == 1  # one stream, one memory
        seg.segment(other)
        assert seg.resets == 2  # another clip
        seg.segment((frames[-1] * 0.4).astype(np.uint8))  # a camera's dimmed "unavailable" picture
        assert seg.resets == 3
        seg.segment(cv2.resize(frames[0], (320, 240)))
        assert seg.resets == 4
        assert CUT_LEVEL > 30


def test_missing_broken_or_unloadable_weights_are_one_line_errors(tmp_path, monkeypatch, rvm_weights, no_rvm_weights):
    import urllib.error
    import urllib.request

    def offline(*a, **k):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(ModelError, match=r"the rvm model could not be downloaded .*LIVEBOKEH_MODEL_DIR.*--rvm-weights FILE .*LIVEBOKEH_RVM_WEIGHTS"):
        create_segmenter("rvm", SegmenterOptions())
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx model" * 100)
    with pytest.raises(ModelError, match="is not a usable RVM model") as info:
        create_segmenter("rvm", SegmenterOptions(own=RVMOptions(weights=str(bad))))
    assert "\n" not in str(info.value)
    with pytest.raises(ModelError, match="does not exist; check --rvm-weights"):
        create_segmenter("rvm", SegmenterOptions(own=RVMOptions(weights=str(tmp_path / "none.onnx"))))
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ModelError, match="pip install onnxruntime"):
        create_segmenter("rvm", SegmenterOptions(own=RVMOptions(weights=str(rvm_weights))))


def test_close_is_safe_twice_and_a_closed_segmenter_refuses_work(opts):
    seg = create_segmenter("rvm", opts)
    seg.close()
    seg.close()
    with pytest.raises(RuntimeError, match="closed"):
        seg.segment(np.zeros((64, 64, 3), np.uint8))


def test_on_a_gpu_it_runs_every_live_frame_and_mattes_as_on_the_cpu(gpu, rvm_weights, frames):
    """With CUDA, RVM declares no rest live and gives the CPU's mattes within a rounding."""
    if gpu != "onnxruntime":
        pytest.skip("ONNX Runtime sees no GPU")
    from livebokeh.segment import rvm

    options = SegmenterOptions(frame_size=frames[0].shape[1::-1], own=RVMOptions(weights=str(rvm_weights)))
    with create_segmenter("rvm", options) as on_gpu:
        assert on_gpu.device == "GPU" and on_gpu.traits.live_duty == 1.0
        a = [on_gpu.segment(f).data for f in frames]
    real = rvm.providers
    rvm.providers = lambda: ["CPUExecutionProvider"]
    try:
        with create_segmenter("rvm", options) as on_cpu:
            assert on_cpu.device == "CPU"
            b = [on_cpu.segment(f).data for f in frames]
    finally:
        rvm.providers = real
    for x, y in zip(a, b):
        assert iou(x > 0.5, y > 0.5) > 0.98 and float(np.abs(x - y).mean()) < 0.01
