"""The Keras DeepLab against Google's TFLite release, and the ``deeplab`` segmenter.

The Keras model runs on whatever backend Keras has: TensorFlow where the ``tensorflow`` extra is
installed, JAX otherwise (the default install). Only the ``keras`` runtime, a TensorFlow graph,
needs TensorFlow: its tests skip without it.
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from livebokeh.errors import ModelError, SetupError, exit_code
from livebokeh.models import manifest
from livebokeh.segment import DeepLabOptions, SegmenterOptions, create_segmenter
from livebokeh.segment.deeplab.model import DeepLabSpec, build_deeplab, resize_matrix
from livebokeh.segment.deeplab.segmenter import (
    TENSORFLOW_EXTRA,
    build_keras_model,
    input_size,
    person_probability,
    preprocess,
    tf_gpus,
)
from livebokeh.segment.deeplab.weights import load_tflite_weights, read_tflite_tensors
from livebokeh.segment.tflite import make_interpreter
from tests.conftest import mean_iou_on

REPO = Path(__file__).resolve().parents[2]

needs_tensorflow = pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is None,
    reason=f"the keras runtime is a TensorFlow graph; TensorFlow is the extra: {TENSORFLOW_EXTRA}",
)


@pytest.fixture
def without_tensorflow(monkeypatch):
    """TensorFlow as if not installed: not found, and ``import tensorflow`` fails."""
    monkeypatch.setitem(sys.modules, "tensorflow", None)


@pytest.fixture(scope="module")
def keras_257(deeplab_weights):
    return build_keras_model(manifest("deeplab"), deeplab_weights, (257, 257))


@pytest.fixture(scope="module")
def tflite(deeplab_weights):
    it = make_interpreter(deeplab_weights, 2)
    inp, out = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]

    def run(x):
        it.set_tensor(inp, x[None])
        it.invoke()
        return it.get_tensor(out)[0]

    return run


def _photos(data_dir, n=6):
    stills = sorted((data_dir / "stills").glob("hs_*.jpg"))[:: 40][:n]
    portraits = sorted((data_dir / "portraits").glob("p_*.jpg"))[:2]
    return stills + portraits


def test_keras_model_reproduces_the_tflite_logits(keras_257, tflite, data_dir):
    worst = 0.0
    for photo in _photos(data_dir):
        x = preprocess(cv2.imread(str(photo)), (257, 257))
        ref = tflite(x)
        got = np.asarray(keras_257.predict_on_batch(x[None]))[0]
        assert got.shape == ref.shape == (257, 257, 21)
        worst = max(worst, float(np.abs(got - ref).max()))
    print(f"\nmax |logit difference| Keras vs TFLite: {worst:.2e}")
    assert worst <= 1e-3


def test_the_model_runs_at_other_sizes(deeplab_weights):
    for w, h in [(449, 257), (513, 513)]:
        m = build_keras_model(manifest("deeplab"), deeplab_weights, (w, h))
        out = np.asarray(m.predict_on_batch(np.zeros((1, h, w, 3), np.float32)))
        assert out.shape == (1, h, w, 21)


def test_decoder_is_switchable_and_needs_its_weights(deeplab_weights):
    spec = DeepLabSpec(decoder=True)
    model = build_deeplab(spec)
    names = {layer.name for layer in model.layers}
    assert "decoder__feature_projection0" in names and "decoder__decoder_conv1_pointwise" in names
    assert model.output_shape == (None, 257, 257, 21)
    with pytest.raises(ModelError, match="no weights for decoder/feature_projection0"):
        load_tflite_weights(model, read_tflite_tensors(deeplab_weights))
    with pytest.raises(ModelError, match="do not fit the model"):  # another width multiplier
        load_tflite_weights(build_deeplab(DeepLabSpec(width_multiplier=1.0)), read_tflite_tensors(deeplab_weights))
    # output stride 16 (the default for v3+) builds and takes the same tensors
    os16 = build_deeplab(DeepLabSpec(output_stride=16))
    assert load_tflite_weights(os16, read_tflite_tensors(deeplab_weights)) == 55
    assert os16.get_layer("MobilenetV2__expanded_conv_6__depthwise").strides == (2, 2)


def test_not_a_model_file(tmp_path):
    bad = tmp_path / "x.tflite"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelError, match="not a TFLite model|no float weights"):
        read_tflite_tensors(bad)


def test_resize_matrix_align_corners():
    m = resize_matrix(3, 5)
    np.testing.assert_allclose(m @ np.array([0.0, 1.0, 2.0]), [0, 0.5, 1, 1.5, 2])
    assert resize_matrix(1, 4).tolist() == [[1.0]] * 4


def test_person_probability_is_the_softmax_at_class_15():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 5, (4, 5, 21)).astype(np.float32)
    e = np.exp(logits - logits.max(axis=2, keepdims=True))
    np.testing.assert_allclose(person_probability(logits, 15), (e / e.sum(axis=2, keepdims=True))[:, :, 15], rtol=1e-5)
    huge = np.zeros((1, 1, 21), np.float32)
    huge[0, 0, 3] = 1e4
    p = person_probability(huge, 15)[0, 0]
    assert np.isfinite(p) and p < 1e-30


def test_input_size():
    assert input_size(257, "square", (1280, 720)) == (257, 257)
    assert input_size(257, "frame", (1280, 720)) == (457, 257)
    assert input_size(513, "frame", None) == (513, 513)
    assert input_size(260, "square", None) == (257, 257)


def dl(threads: int = 1, frame_size=None, **own) -> SegmenterOptions:
    """Options for DeepLab: the common ones, and its own (``own``: DeepLabOptions fields)."""
    return SegmenterOptions(threads=threads, frame_size=frame_size, own=DeepLabOptions(**own))


def test_auto_runtime_on_the_cpu_is_tflite(deeplab_weights, data_dir):
    img = cv2.imread(str(_photos(data_dir)[0]))
    with create_segmenter("deeplab", dl(2, weights=str(deeplab_weights))) as auto:
        if not tf_gpus():  # on the CPU TFLite is faster, and heavy: a file pipeline runs two frames at once
            assert auto.runtime == "tflite" and auto.input_size == (257, 257) and auto.traits.heavy
        assert auto.segment(img).data.shape == auto.input_size[::-1]
    with pytest.raises(ModelError, match="TFLite runtime runs DeepLab at 257x257 only"):
        create_segmenter("deeplab", dl(runtime="tflite", size=513, weights=str(deeplab_weights)))


def test_a_size_not_of_the_form_8k_plus_1_is_said_to_be_rounded(deeplab_weights, caplog):
    with caplog.at_level("WARNING", logger="livebokeh"), pytest.raises(ModelError):
        create_segmenter("deeplab", dl(runtime="tflite", size=100, weights=str(deeplab_weights)))
    assert "size 100 taken as 97" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="livebokeh"), create_segmenter(
            "deeplab", dl(runtime="tflite", size=257, weights=str(deeplab_weights))):
        pass
    assert "taken as" not in caplog.text


@needs_tensorflow
def test_segmenter_runtimes_agree(deeplab_weights, data_dir):
    img = cv2.imread(str(_photos(data_dir)[0]))
    opts = {"weights": str(deeplab_weights), "threads": 2}
    with create_segmenter("deeplab", dl(runtime="tflite", **opts)) as lite:
        a = lite.segment(img).data
    with create_segmenter("deeplab", dl(runtime="keras", precision="float32", **opts)) as k:
        assert k.runtime == "keras" and k.device == "CPU" and not k.traits.heavy
        b = k.segment(img).data
    assert a.shape == b.shape == (257, 257) and a.dtype == b.dtype == np.float32
    assert float(np.abs(a - b).max()) < 1e-3
    with create_segmenter("deeplab", dl(aspect="frame", frame_size=(1280, 720), **opts)) as wide:
        assert wide.runtime == "keras" and wide.input_size == (457, 257)
        assert wide.segment(img).data.shape == (257, 457)


def test_without_tensorflow_keras_runtime_is_one_line_naming_the_extra(without_tensorflow):
    # stops before looking for (or downloading) the weights, with exit 3 (this machine lacks it:
    # the service's unit does not restart a run that cannot ever work)
    with pytest.raises(SetupError) as info:
        create_segmenter("deeplab", dl(runtime="keras"))
    assert exit_code(info.value) == 3
    text = str(info.value)
    assert "pip install 'livebokeh[tensorflow]'" in text and "keras runtime" in text and "\n" not in text
    assert tf_gpus() == []


def test_without_tensorflow_auto_is_tflite(without_tensorflow, deeplab_weights, caplog):
    opts = {"weights": str(deeplab_weights), "threads": 1}
    with create_segmenter("deeplab", dl(**opts)) as seg:
        assert seg.runtime == "tflite" and seg.input_size == (257, 257)
    # another size (--quality best asks 513 in the frame's shape): TFLite at its size, and a warning
    with create_segmenter("deeplab", dl(size=513, aspect="frame", frame_size=(1280, 720), **opts)) as seg:
        assert seg.runtime == "tflite" and seg.input_size == (257, 257)
    assert "pip install 'livebokeh[tensorflow]'" in caplog.text and "913x513" in caplog.text
    with pytest.raises(ModelError, match=r"257x257 only; use runtime keras for 513x513 \(it needs TensorFlow: pip install"):
        create_segmenter("deeplab", dl(runtime="tflite", size=513, **opts))


def test_keras_model_on_jax_without_tensorflow(deeplab_weights):
    """Where TensorFlow is absent Keras runs on JAX, and the imported weights give TFLite's logits.

    In a fresh process with TensorFlow hidden, so that it runs where TensorFlow is installed too."""
    code = (
        "import sys; sys.modules['tensorflow'] = None\n"
        "import numpy as np\n"
        "from livebokeh.models import manifest\n"
        "from livebokeh.segment.deeplab.segmenter import build_keras_model\n"
        "from livebokeh.segment.tflite import make_interpreter\n"
        "import keras\n"
        f"w = {str(deeplab_weights)!r}\n"
        "x = np.random.default_rng(0).uniform(-1, 1, (1, 257, 257, 3)).astype(np.float32)\n"
        "it = make_interpreter(w, 1); it.set_tensor(it.get_input_details()[0]['index'], x); it.invoke()\n"
        "ref = it.get_tensor(it.get_output_details()[0]['index'])\n"
        "got = np.asarray(build_keras_model(manifest('deeplab'), w, (257, 257)).predict_on_batch(x))\n"
        "print(keras.backend.backend(), float(np.abs(got - ref).max()))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=240,
                         env=dict(env, PYTHONPATH=str(REPO)), cwd=REPO)
    assert out.returncode == 0, out.stderr[-3000:]
    backend, diff = out.stdout.split()[-2:]
    assert backend == "jax" and float(diff) <= 1e-3, out.stdout


def test_deeplab_iou_on_half_body_stills(deeplab_weights, half_body_stills):
    with create_segmenter("deeplab", dl(weights=str(deeplab_weights))) as seg:
        score = mean_iou_on(seg, half_body_stills[::4])
    assert score > 0.85, score


def test_missing_weights_offline_is_one_line(monkeypatch):
    # the cache is empty (autouse fixture) and the download address is unreachable
    from livebokeh import models

    real = models.manifest("deeplab")
    monkeypatch.setattr(models, "manifest", lambda name: real.__class__(**{**real.__dict__, "url": "http://127.0.0.1:9/none"}))
    with pytest.raises(ModelError) as info:
        create_segmenter("deeplab", SegmenterOptions())
    text = str(info.value)
    assert "could not be downloaded" in text and "--deeplab-weights FILE" in text and "\n" not in text


@pytest.mark.parametrize("decoder", ["auto", "off"])
def test_another_models_file_as_the_weights_is_one_line(selfie_models, tmp_path, capsys, decoder):
    """MediaPipe's selfie model (256x256 in) given as DeepLab's weights was "internal error:
    ValueError: Cannot set tensor: Dimension mismatch. Got 257 but expected 256"."""
    from livebokeh.cli import main

    photo = tmp_path / "p.jpg"
    cv2.imwrite(str(photo), np.full((48, 64, 3), 90, np.uint8))
    weights = selfie_models / "selfie_segmentation.tflite"
    assert main(["--input", str(photo), "--output", str(tmp_path / "o.jpg"), "--backend", "deeplab",
                 "--deeplab-weights", str(weights), "--deeplab-decoder", decoder]) == 1
    err = capsys.readouterr().err
    (line,) = err.splitlines()
    assert line.startswith("livebokeh: error: ") and str(weights) in line and "DeepLab release" in line
    assert "--deeplab-weights" in line and not (tmp_path / "o.jpg").exists()


def test_weights_in_a_folder_whose_name_is_not_utf8_load(deeplab_weights, tmp_path):
    import shutil

    folder = tmp_path / os.fsdecode(b"bad\xff\xfe")
    folder.mkdir()
    shutil.copy(deeplab_weights, folder / deeplab_weights.name)
    image = np.random.default_rng(0).integers(0, 255, (257, 257, 3), dtype=np.uint8)
    for decoder in ("auto", "off"):
        masks = []
        for path in (deeplab_weights, folder / deeplab_weights.name):
            opts = SegmenterOptions(threads=1, own=DeepLabOptions(weights=str(path), runtime="tflite", decoder=decoder))
            with create_segmenter("deeplab", opts) as seg:
                masks.append(seg.segment(image).data)
        np.testing.assert_array_equal(*masks)


@pytest.mark.parametrize("decoder", ["auto", "off"])
@pytest.mark.parametrize("cut", [100_000, 0, 4])
def test_weights_cut_short_are_one_line_naming_the_file_and_the_download(deeplab_weights, tmp_path, decoder, cut):
    """The release's first 100 KB (a download cut short) failed deep in flatbuffers with an
    internal error (trial 28c C5); an empty file said "download it again" twice."""
    bad = tmp_path / "dlcut.tflite"
    bad.write_bytes(deeplab_weights.read_bytes()[:cut])
    opts = SegmenterOptions(threads=1, own=DeepLabOptions(weights=str(bad), runtime="tflite", decoder=decoder))
    with pytest.raises(ModelError) as info:
        create_segmenter("deeplab", opts)
    message = str(info.value)
    assert "\n" not in message and str(bad) in message
    assert "livebokeh models download deeplab" in message and "--deeplab-weights" in message
    assert message.count("download it again") == 1


def test_a_cut_tflite_file_is_a_model_error_when_read_for_its_tensors(deeplab_weights, tmp_path):
    bad = tmp_path / "dlcut.tflite"
    bad.write_bytes(deeplab_weights.read_bytes()[:100_000])
    with pytest.raises(ModelError, match="cut short or damaged"):
        read_tflite_tensors(bad)


def test_the_selfie_model_as_deeplab_weights_is_one_line_naming_the_file(selfie_models):
    landscape = selfie_models / "selfie_segmentation_landscape.tflite"
    opts = SegmenterOptions(threads=1, own=DeepLabOptions(weights=str(landscape), runtime="tflite"))
    with pytest.raises(ModelError) as info:
        create_segmenter("deeplab", opts)
    message = str(info.value)
    assert "\n" not in message and str(landscape) in message and "livebokeh models download deeplab" in message
