import os
import sys
import threading

import cv2
import numpy as np
import pytest

from livebokeh.errors import ConfigError, ModelError
from livebokeh.segment import MediaPipeOptions, SegmenterOptions, create_segmenter
from livebokeh.segment.selfie import selfie_model_path
from livebokeh.segment.tflite import Interpreters, make_interpreter, native_stderr_silenced
from tests.conftest import mean_iou_on


@pytest.mark.parametrize(("model", "size"), [("general", (256, 256)), ("landscape", (256, 144))])
def test_models_run_and_give_probabilities(model, size, selfie_models):
    with create_segmenter("mediapipe", SegmenterOptions(threads=1, own=MediaPipeOptions(model))) as seg:
        assert seg.input_size == size
        img = np.random.default_rng(0).integers(0, 255, (360, 640, 3), dtype=np.uint8)
        before = img.copy()
        m = seg.segment(img)
        assert m.data.shape == (size[1], size[0]) and m.data.dtype == np.float32
        assert 0.0 <= m.data.min() and m.data.max() <= 1.0
        np.testing.assert_array_equal(img, before)  # the input is not touched


def test_close_is_safe_twice_and_a_closed_segmenter_refuses_work(selfie_models):
    seg = create_segmenter("mediapipe", SegmenterOptions())
    seg.close()
    seg.close()
    with pytest.raises(RuntimeError, match="closed"):
        seg.segment(np.zeros((8, 8, 3), np.uint8))


def test_unknown_backend_and_model():
    with pytest.raises(ConfigError, match="choose one of: mediapipe"):
        create_segmenter("nope", SegmenterOptions())
    with pytest.raises(ModelError, match="choose one of: general, landscape"):
        selfie_model_path("huge")


def test_a_file_that_is_not_a_model_is_a_model_error(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"this is not a flatbuffer" * 10)
    with pytest.raises(ModelError, match="not a usable TFLite model"):
        make_interpreter(bad, 1)


def test_same_input_gives_identical_masks(selfie_models):
    img = np.random.default_rng(1).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    with create_segmenter("mediapipe", SegmenterOptions()) as a, create_segmenter("mediapipe", SegmenterOptions()) as b:
        np.testing.assert_array_equal(a.segment(img).data, b.segment(img).data)


@pytest.mark.parametrize("model", ["general", "landscape"])
def test_raw_model_agrees_with_reference_masks_on_half_body_stills(half_body_stills, model):
    """The raw model (no refinement) against the reference masks: IoU of mask > 0.5."""
    with create_segmenter("mediapipe", SegmenterOptions(threads=2, roi=False, own=MediaPipeOptions(model))) as seg:
        score = mean_iou_on(seg, half_body_stills[::3])
    assert score > 0.88, score


def test_model_input_shrink_matches_an_area_resize():
    from livebokeh.segment.base import shrink_for_model

    rng = np.random.default_rng(5)
    img = cv2.GaussianBlur(rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8), (0, 0), 3)
    out = shrink_for_model(img, (256, 256))
    ref = cv2.resize(img, (256, 256), interpolation=cv2.INTER_AREA)
    assert out.shape == (256, 256, 3) and out.dtype == np.uint8
    assert cv2.PSNR(out, ref) > 35
    small = img[:100, :100]
    assert shrink_for_model(small, (256, 256)).shape == (256, 256, 3)  # smaller frames are enlarged
    np.testing.assert_array_equal(shrink_for_model(img, (1280, 720)), img)


def test_each_thread_gets_its_own_interpreter(selfie_models):
    interps = Interpreters(selfie_model_path("landscape"), 1)
    worker = []
    t = threading.Thread(target=lambda: worker.extend([interps.get(), interps.get()]))
    t.start()
    t.join()
    # the first made goes to the first thread that asks, not to the one that built it
    assert worker[0] is worker[1] is interps.first
    mine = interps.get()
    assert mine is interps.get() and mine is not interps.first


def test_segment_from_several_threads_at_once_gives_the_masks_of_one(selfie_models):
    """The file pipeline runs a heavy model on two threads: calls overlapping in time must give
    what one thread gives, frame by frame."""
    rng = np.random.default_rng(1)
    images = [cv2.GaussianBlur(rng.integers(0, 255, (180, 320, 3), dtype=np.uint8), (0, 0), 3) for _ in range(8)]
    with create_segmenter("mediapipe", SegmenterOptions(threads=1, roi=False, own=MediaPipeOptions("landscape"))) as seg:
        alone = [seg.segment(im).data for im in images]
        results: dict[int, np.ndarray] = {}
        start = threading.Barrier(4)

        def work(k):
            start.wait()
            for _ in range(5):
                for i in range(k, len(images), 4):
                    results[i] = seg.segment(images[i]).data

        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    for i, want in enumerate(alone):
        np.testing.assert_array_equal(results[i], want)
    assert not seg.traits.heavy  # MediaPipe runs on one inference thread: its model is lighter than the render


def test_silencing_stderr_from_several_threads_gives_it_back_as_it_was(tmp_path, monkeypatch):
    """Two inference workers make their interpreters at once: the stderr each one hides while
    its runtime loads must come back as it was, not as the other left it (nor closed)."""
    with open(tmp_path / "err.txt", "w") as err:
        monkeypatch.setattr(sys, "stderr", err)
        fd = err.fileno()
        before = os.fstat(fd).st_ino

        def churn():
            for _ in range(300):
                with native_stderr_silenced():
                    os.write(fd, b"hidden\n")

        threads = [threading.Thread(target=churn) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert os.fstat(fd).st_ino == before
        os.write(fd, b"shown\n")
    assert (tmp_path / "err.txt").read_text() == "shown\n"


def test_models_in_a_folder_whose_name_is_not_utf8_load(selfie_models, tmp_path, monkeypatch):
    """LiteRT takes UTF-8 names only ("internal error: TypeError: CreateWrapperFromFile()"): such a
    file is given to it as bytes, named by the variable or found in LIVEBOKEH_MODEL_DIR."""
    import shutil

    folder = tmp_path / os.fsdecode(b"bad\xff\xfe")
    folder.mkdir()
    shutil.copy(selfie_models / "selfie_segmentation.tflite", folder / "selfie_segmentation.tflite")
    image = np.random.default_rng(0).integers(0, 255, (144, 256, 3), dtype=np.uint8)
    with create_segmenter("mediapipe", SegmenterOptions(threads=1)) as seg:
        reference = seg.segment(image).data
    monkeypatch.setenv("LIVEBOKEH_MODEL_DIR", str(folder))
    with create_segmenter("mediapipe", SegmenterOptions(threads=1)) as seg:
        assert seg.model_path.parent == folder
        np.testing.assert_array_equal(seg.segment(image).data, reference)
    monkeypatch.delenv("LIVEBOKEH_MODEL_DIR")
    monkeypatch.setenv("LIVEBOKEH_SELFIE_GENERAL_WEIGHTS", str(folder / "selfie_segmentation.tflite"))
    with create_segmenter("mediapipe", SegmenterOptions(threads=1)) as seg:
        np.testing.assert_array_equal(seg.segment(image).data, reference)


def test_another_models_file_as_the_selfie_model_is_one_line(deeplab_weights, monkeypatch):
    monkeypatch.setenv("LIVEBOKEH_SELFIE_GENERAL_WEIGHTS", str(deeplab_weights))
    with pytest.raises(ModelError, match="1x257x257x21, where 1x256x256x3 in and 1x256x256x1 out are needed") as info:
        create_segmenter("mediapipe", SegmenterOptions())
    message = str(info.value)
    assert "\n" not in message and str(deeplab_weights) in message
    assert "not MediaPipe's general selfie model" in message and "LIVEBOKEH_SELFIE_GENERAL_WEIGHTS" in message


@pytest.mark.parametrize(("model", "other"), [("general", "selfie_segmentation_landscape.tflite"),
                                              ("landscape", "selfie_segmentation.tflite")])
def test_the_other_selfie_model_in_a_models_place_is_one_line(selfie_models, monkeypatch, model, other):
    """The landscape model given as the general one (or the other way round) ran with a wrong
    size and gave a wrong mask without a word (trial 28c C6): its shapes are checked exactly."""
    var = f"LIVEBOKEH_SELFIE_{model.upper()}_WEIGHTS"
    monkeypatch.setenv(var, str(selfie_models / other))
    with pytest.raises(ModelError) as info:
        create_segmenter("mediapipe", SegmenterOptions(own=MediaPipeOptions(model)))
    message = str(info.value)
    assert "\n" not in message and other in message and f"not MediaPipe's {model} selfie model" in message
    assert var in message and "livebokeh models download mediapipe" in message
