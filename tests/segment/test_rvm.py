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
        assert (seg.input_size, seg.backbone, seg.threads) == ((480, 480), 320, 1)  # live: 640x360's pixels
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
    """Files and photos: the first frame runs WARM_PASSES times. Live: once (the frames wait for
    the first mask, all background until it comes; the runs after it refine it)."""
    with create_segmenter("rvm", dataclasses.replace(opts, live=False)) as seg:
        raw = seg.model_output(frames[0])  # one pass from an empty memory
        warm = seg.segment(frames[0]).data
        assert WARM_PASSES > 1 and np.abs(raw - warm).max() > 1e-3
    with create_segmenter("rvm", opts) as seg:
        assert opts.live
        np.testing.assert_array_equal(seg.model_output(frames[0]), seg.segment(frames[0]).data)


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


def _fake_rvm(tmp_path, outputs):
    from tests.segment.onnx_graph import identity_model

    path = tmp_path / "fake_rvm.onnx"
    path.write_bytes(identity_model(["src", "r1i", "r2i", "r3i", "r4i", "downsample_ratio"], outputs))
    return path


@pytest.mark.parametrize("outputs", [
    {"fgr": "src", "alpha": "r1i"},  # other names
    {"fgr": "src", "pha": "r1i"},  # the alpha but no states
    {"pha": "r1i", "r1o": "r1i", "r2o": "r2i"},  # two states of four
])
def test_a_model_with_rvms_inputs_but_other_outputs_is_a_one_line_error(tmp_path, outputs):
    weights = _fake_rvm(tmp_path, outputs)
    with pytest.raises(ModelError, match="does not give its outputs") as info:
        create_segmenter("rvm", SegmenterOptions(own=RVMOptions(weights=str(weights))))
    message = str(info.value)
    # (named by --rvm-weights: a download would not change the file it names)
    assert "\n" not in message and "pha, r1o" in message and "point --rvm-weights (rvm.weights) at" in message
    assert f"it gives {', '.join(outputs)}" in message


@pytest.mark.parametrize("pha", ["src", "downsample_ratio", "r1i"])
def test_a_model_with_rvms_names_but_another_alpha_is_a_one_line_error(tmp_path, pha):
    """The names are RVM's, the alpha is not an alpha of the input's size: told when it loads
    (its probe run), before any frame."""
    weights = _fake_rvm(tmp_path, {"pha": pha, "r1o": "r1i", "r2o": "r2i", "r3o": "r3i", "r4o": "r4i"})
    with pytest.raises(ModelError, match=r"gave an alpha of shape .* \(RVM gives 1x1xHxW\)") as info:
        create_segmenter("rvm", SegmenterOptions(own=RVMOptions(weights=str(weights))))
    assert "\n" not in str(info.value)


def rvm_like(path, alpha: str = "grey"):
    """An ONNX file with RVM's inputs and outputs whose alpha is the picture's brightest channel
    (``grey``, a usable stand-in), 0/0 (``nan``), or that channel divided by itself (``nan on
    black``: 1, and NaN where the picture is black). The states go through unchanged."""
    from livebokeh.segment.rvm import INPUTS
    from tests.segment.onnx_graph import graph_model

    nodes = [("ReduceMax", ["src"], ["m"], {"axes": [1]})]
    nodes += {"grey": [("Identity", ["m"], ["pha"])],
              "nan": [("Sub", ["m", "m"], ["z"]), ("Div", ["z", "z"], ["pha"])],
              "nan on black": [("Div", ["m", "m"], ["pha"])]}[alpha]
    nodes += [("Identity", [f"r{i}i"], [f"r{i}o"]) for i in range(1, 5)]
    path.write_bytes(graph_model(dict.fromkeys(INPUTS), nodes, ["pha", "r1o", "r2o", "r3o", "r4o"]))
    return path


def test_weights_whose_alpha_is_not_a_number_fail_when_they_load(tmp_path):
    """Were a white picture (every alpha NaN) and exit 0."""
    weights = rvm_like(tmp_path / "nan.onnx", "nan")
    with pytest.raises(ModelError, match="gave an alpha that is not a number") as info:
        create_segmenter("rvm", SegmenterOptions(own=RVMOptions(weights=str(weights))))
    assert "\n" not in str(info.value) and str(weights) in str(info.value)
    assert "point --rvm-weights (rvm.weights) at" in str(info.value) and "models download" not in str(info.value)


def test_an_alpha_that_is_not_a_number_on_a_later_frame_is_a_one_line_error(tmp_path):
    weights = rvm_like(tmp_path / "nan-on-black.onnx", "nan on black")
    with create_segmenter("rvm", SegmenterOptions(own=RVMOptions(weights=str(weights)))) as seg:
        assert seg.traits.matte
        assert np.array_equal(seg.segment(np.full((72, 128, 3), 90, np.uint8)).data, np.ones((72, 128), np.float32))
        with pytest.raises(ModelError, match="gave an alpha that is not a number"):
            seg.segment(np.zeros((72, 128, 3), np.uint8))


def test_weights_in_a_folder_whose_name_is_not_utf8_load(tmp_path, monkeypatch):
    """ONNX Runtime takes UTF-8 names only: such a file is given to it as bytes, whether named by
    --rvm-weights, the variable or LIVEBOKEH_MODEL_DIR."""
    import os

    folder = tmp_path / os.fsdecode(b"bad\xff\xfe")
    folder.mkdir()
    weights = rvm_like(folder / "rvm.onnx")
    with create_segmenter("rvm", SegmenterOptions(own=RVMOptions(weights=str(weights)))) as seg:
        alpha = seg.segment(np.full((72, 128, 3), 90, np.uint8)).data
        assert alpha.shape == (72, 128) and np.allclose(alpha, 90 / 255, atol=1e-6)
    monkeypatch.setenv("LIVEBOKEH_RVM_WEIGHTS", str(weights))
    with create_segmenter("rvm", SegmenterOptions()) as seg:
        assert seg.weights == weights


def test_the_backbone_picture_keeps_a_short_side_the_network_takes():
    from livebokeh.segment.rvm import MIN_BACKBONE_SIDE, backbone_scale

    assert backbone_scale((640, 360), 384) == pytest.approx(pixel_scale(640, 360, 384))  # the usual: unchanged
    assert backbone_scale((640, 360), 64) == pytest.approx(0.1)
    for size, backbone in [((640, 360), 1), ((640, 360), 2), ((16, 2048), 64), ((2048, 16), 1), ((480, 480), 1)]:
        scale = backbone_scale(size, backbone)
        assert 0 < scale <= 1 and int(min(size) * scale + 1e-6) >= min(MIN_BACKBONE_SIDE, min(size))


@pytest.mark.parametrize("backbone, frame", [(1, (1280, 720)), (2, (1280, 720)), (64, (2048, 16)), (64, (16, 1200))])
def test_the_smallest_backbones_run_on_any_frame(rvm_weights, backbone, frame):
    """Below what the settings take, and on strips far from 16:9: the network gets a picture it
    takes (ONNX Runtime refused 1280x720 at backbone 1 and a 16-pixel strip at 8)."""
    options = SegmenterOptions(threads=1, frame_size=frame, own=RVMOptions(weights=str(rvm_weights), backbone=backbone))
    with create_segmenter("rvm", options) as seg:
        alpha = seg.segment(np.full((frame[1], frame[0], 3), 128, np.uint8)).data
    assert alpha.shape[::-1] == seg.input_size and np.isfinite(alpha).all()


def test_the_backends_said_to_give_a_matte_before_loading_are_those_that_do(tmp_path):
    """The settings check (config.check_mask_range) knows a backend's automatic mask range before
    its model loads, from MATTE_BACKENDS: it must agree with the segmenters' own traits."""
    from livebokeh.segment.deeplab.segmenter import DeepLabSegmenter
    from livebokeh.segment.options import BACKEND_OPTIONS, MATTE_BACKENDS
    from livebokeh.segment.selfie import SelfieSegmenter

    with create_segmenter("rvm", SegmenterOptions(own=RVMOptions(weights=str(rvm_like(tmp_path / "r.onnx"))))) as seg:
        assert seg.traits.matte
    matte = {"rvm": True, "mediapipe": SelfieSegmenter.traits.matte, "deeplab": DeepLabSegmenter.traits.matte}
    assert set(matte) == set(BACKEND_OPTIONS) and MATTE_BACKENDS == {b for b, m in matte.items() if m}
