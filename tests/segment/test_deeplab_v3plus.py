"""DeepLab-v3+: the TFLite graph writer, the decoder file, the training, and the segmenter with it.

The training tests run on tiny synthetic feature maps (no ../shared); the ones that graft the
decoder onto Google's release, or run the command, use ../shared's weights and are marked so.
"""

import json

import numpy as np
import pytest

from livebokeh.errors import ModelError, SetupError
from livebokeh.segment.deeplab import decoder as dec
from livebokeh.segment.deeplab.train import fit as F

# -- the decoder file ----------------------------------------------------------------------------


def _random_decoder(rng, low_channels=72, channels=16, skip=8, train_aspp=False, prior=False, release=None):
    shapes = F.Shapes(low_channels=low_channels, decoder_channels=channels, skip_channels=skip)
    params = F.init_params(shapes, rng, release, train_aspp, prior)
    params["logits/semantic"]["w"] = rng.normal(0, 0.5, params["logits/semantic"]["w"].shape).astype(np.float32)
    meta = {"classes": 2, "person_class": 1, "decoder_channels": channels, "skip_channels": skip,
            "trained_aspp": train_aspp, "prior": prior}
    return params, meta


def test_decoder_file_round_trip_and_its_checks(tmp_path):
    rng = np.random.default_rng(0)
    params, meta = _random_decoder(rng)
    path = dec.save(tmp_path / "d.npz", F.to_tensors(params), meta)
    d = dec.load(path)
    assert d.decoder_channels == 16 and d.skip_channels == 8 and d.person_class == 1 and not d.trained_aspp
    back = F.from_tensors(d.tensors)
    for scope, wb in params.items():
        np.testing.assert_array_equal(back[scope]["w"], wb["w"])
        np.testing.assert_array_equal(back[scope]["b"], wb["b"])
    spec = d.spec(449, 257, 8, 0.5)
    assert spec.decoder and spec.num_classes == 2 and spec.decoder_channels == 16 and spec.width == 449

    tensors = F.to_tensors(params)
    del tensors["decoder/decoder_conv1_pointwise/weights"]
    with pytest.raises(ModelError, match="no decoder/decoder_conv1_pointwise/weights"):
        dec.save(tmp_path / "bad.npz", tensors, meta)
    tensors = F.to_tensors(params)
    tensors["logits/semantic/weights"] = tensors["logits/semantic/weights"][:, :, :, :3]
    with pytest.raises(ModelError, match="logits/semantic/weights is"):
        dec.save(tmp_path / "bad.npz", tensors, meta)
    with pytest.raises(ModelError, match="ASPP was trained but has no"):
        dec.save(tmp_path / "bad.npz", F.to_tensors(params), {**meta, "trained_aspp": True})
    with pytest.raises(ModelError, match="no decoder/prior/weights"):
        dec.save(tmp_path / "bad.npz", F.to_tensors(params), {**meta, "prior": True})
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ModelError, match="is not a DeepLab decoder file"):
        dec.load(tmp_path / "junk.npz")
    np.savez(tmp_path / "old.npz", meta=np.array(json.dumps({**meta, "format": 99})), **F.to_tensors(params))
    with pytest.raises(ModelError, match="format 99"):
        dec.load(tmp_path / "old.npz")


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04" + bytes(range(256)) * 4, b"\x93NUMPY" + bytes(40)])
def test_an_empty_or_damaged_decoder_file_is_one_line_naming_what_to_do(tmp_path, monkeypatch, content):
    """``LIVEBOKEH_DEEPLAB_DECODER`` naming an empty file (EOFError in np.load), a damaged zip
    (BadZipFile) or a broken .npy: ModelError naming the file and the variable to fix."""
    f = tmp_path / "bad.npz"
    f.write_bytes(content)
    monkeypatch.setenv(dec.ENV_VAR, str(f))
    with pytest.raises(ModelError) as info:
        dec.load(dec.find())
    text = str(info.value)
    assert f"{f} is not a DeepLab decoder file" in text and f"fix or unset {dec.ENV_VAR}" in text
    assert "\n" not in text


def test_the_decoder_is_found_where_it_is_asked_for(tmp_path, monkeypatch):
    f = tmp_path / "mine.npz"
    f.write_bytes(b"x")
    assert dec.find(f) == f
    with pytest.raises(ModelError, match="do not exist"):  # (a live run: exit 3, before its camera opens)
        dec.find(tmp_path / "missing.npz")
    monkeypatch.setenv(dec.ENV_VAR, str(f))
    assert dec.find() == f
    monkeypatch.setenv(dec.ENV_VAR, str(tmp_path / "missing.npz"))
    with pytest.raises(ModelError, match=dec.ENV_VAR):
        dec.find()
    monkeypatch.delenv(dec.ENV_VAR)
    assert dec.find() == (dec.shipped_path() if dec.shipped_path().is_file() else None)


def test_the_package_ships_a_decoder_that_loads():
    """The trained decoder is part of the package (models/, installed beside the manifests)."""
    d = dec.load(dec.shipped_path())
    assert d.classes == 2 and d.meta["class_names"][d.person_class] == "person"
    assert dec.shipped_path().stat().st_size < 1_000_000  # the decoder alone: small
    assert "training" in d.meta and d.meta["training"]["settings"]["seed"] == 0
    # never the stills (commercial masks), never the validation clips
    assert d.trained_on and not any(n.startswith("hs_") for n in d.trained_on)
    assert not d.trained_on & {"d0_greenscreen.mp4", "d12.mp4", "d20.mp4", "office720p.mp4"}


# -- training ------------------------------------------------------------------------------------


def _synthetic_features(rng, n=6, h=17, low_c=8, aspp_c=16):
    """Feature maps that carry a disc (the "person") in one channel, and its alpha."""
    import cv2

    a_side, out = (h + 1) // 2, 4 * (h - 1) + 1
    alpha = np.zeros((n, out, out), np.uint8)
    low = rng.normal(0, 1, (n, h, h, low_c)).astype(np.float16)
    aspp = rng.normal(0, 1, (n, a_side, a_side, aspp_c)).astype(np.float16)
    for i in range(n):
        disc = np.zeros((out, out), np.uint8)
        cv2.circle(disc, (int(rng.integers(20, 45)), int(rng.integers(20, 45))), int(rng.integers(10, 20)), 255, -1)
        alpha[i] = disc
        low[i, :, :, 0] = cv2.resize(disc / 85.0, (h, h), interpolation=cv2.INTER_AREA)
        aspp[i, :, :, 0] = cv2.resize(disc / 85.0, (a_side, a_side), interpolation=cv2.INTER_AREA)
    return {"low": low, "aspp": aspp, "alpha": alpha}


def test_training_lowers_the_loss_on_a_tiny_synthetic_set():
    arrays = _synthetic_features(np.random.default_rng(0))
    shapes = F.Shapes(low_channels=8, aspp_channels=16, decoder_channels=8, skip_channels=4)
    params, curve = F.train(arrays, shapes, steps=60, batch=4, crop=17, lr=3e-2, weight_decay=0.0, edge_weight=2.0,
                            seed=0, log_every=10)
    losses = [loss for _, loss in curve]
    assert len(losses) == 6 and all(np.isfinite(losses))
    assert np.mean(losses[-2:]) < 0.6 * losses[0], losses
    # the same seed gives the same run
    again, curve2 = F.train(arrays, shapes, steps=60, batch=4, crop=17, lr=3e-2, weight_decay=0.0, edge_weight=2.0,
                            seed=0, log_every=10)
    np.testing.assert_allclose([c[1] for c in curve2], losses, rtol=1e-4)
    assert set(params) == set(again)


def test_a_crop_gives_the_full_maps_values_away_from_its_cut_sides():
    """What training on crops rests on: the decoder on a crop at an even stride-4 offset equals
    the decoder on the whole map, except within MARGIN of the crop's cut sides."""
    rng = np.random.default_rng(1)
    shapes = F.Shapes(low_channels=6, aspp_channels=10, decoder_channels=8, skip_channels=4)
    params = F.init_params(shapes, rng)
    params["logits/semantic"]["w"] = rng.normal(0, 1, (8, 2)).astype(np.float32)
    h = 21
    low = rng.normal(0, 1, (1, h, h, 6)).astype(np.float32)
    aspp = rng.normal(0, 1, (1, (h + 1) // 2, (h + 1) // 2, 10)).astype(np.float32)
    full = np.asarray(F.head(params, low, aspp))[0]
    S, ay, ax = 9, 3, 2
    A = (S + 1) // 2
    crop = np.asarray(F.head(params, low[:, 2 * ay : 2 * ay + S, 2 * ax : 2 * ax + S],
                             aspp[:, ay : ay + A, ax : ax + A]))[0]
    O = 4 * (S - 1) + 1
    ref = full[8 * ay : 8 * ay + O, 8 * ax : 8 * ax + O]
    m = F.MARGIN
    np.testing.assert_allclose(crop[m:-m, m:-m], ref[m:-m, m:-m], atol=1e-4)
    assert np.abs(crop - ref).max() > 1e-3  # the cut sides do differ: the margin is needed


def test_batches_are_crops_with_their_targets_and_weights():
    arrays = _synthetic_features(np.random.default_rng(2), n=3, h=17)
    b = F.Batches(arrays, crop=9, batch=5, rng=np.random.default_rng(0), edge_weight=3.0)()
    assert b["low"].shape == (5, 9, 9, 8) and b["feats"].shape == (5, 5, 5, 16)
    assert b["target"].shape == b["weight"].shape == (5, 33, 33)
    assert b["low"].dtype == np.float32 and 0 <= b["target"].min() and b["target"].max() <= 1
    assert set(np.unique(b["weight"])) <= {0.0, 1.0, 4.0} and (b["weight"] == 4.0).any()
    with pytest.raises(ValueError, match="odd"):
        F.Batches(arrays, crop=8, batch=2, rng=np.random.default_rng(0), edge_weight=1.0)


# -- the TFLite graph and the grafted network (Google's release from ../shared) ------------------


def test_the_release_round_trips_through_the_graph_writer_bit_exactly(deeplab_weights):
    from livebokeh.segment.deeplab.tflite_graph import Graph
    from livebokeh.segment.tflite import make_interpreter

    data = deeplab_weights.read_bytes()
    g = Graph.from_tflite(data)
    assert len(g.ops) == 70 and [op.kind for op in g.ops].count("RESIZE_BILINEAR") == 3
    x = np.random.default_rng(0).uniform(-1, 1, (1, 257, 257, 3)).astype(np.float32)
    outs = []
    for interp in (make_interpreter(deeplab_weights, 1), make_interpreter(None, 1, content=g.to_tflite())):
        interp.set_tensor(interp.get_input_details()[0]["index"], x)
        interp.invoke()
        outs.append(interp.get_tensor(interp.get_output_details()[0]["index"]))
    np.testing.assert_array_equal(outs[0], outs[1])
    cut = Graph.from_tflite(data)
    cut.outputs = [cut.index(dec.LOW_LEVEL_TENSOR)]
    cut.prune()
    assert len(cut.ops) == 11 and cut.tensors[cut.outputs[0]].shape == (1, 65, 65, 72)


@pytest.mark.parametrize("train_aspp, prior", [(False, False), (False, True), (True, True)])
def test_grafted_tflite_keras_and_training_head_agree(deeplab_weights, train_aspp, prior, tmp_path):
    """The three forms of the v3+ network (TFLite graft, Keras model, the JAX head training uses
    on the release's features) give the same logits."""
    from livebokeh.models import manifest
    from livebokeh.segment.deeplab.segmenter import build_keras_model
    from livebokeh.segment.deeplab.weights import read_tflite_tensors
    from livebokeh.segment.tflite import make_interpreter

    rng = np.random.default_rng(3)
    release = read_tflite_tensors(deeplab_weights)
    params, meta = _random_decoder(rng, train_aspp=train_aspp, prior=prior, release=release)
    if train_aspp:
        params["aspp0"]["w"] = params["aspp0"]["w"] * 1.2  # differs from the release's
    d = dec.load(dec.save(tmp_path / "d.npz", F.to_tensors(params), meta))
    x = rng.uniform(-1, 1, (1, 257, 257, 3)).astype(np.float32)

    def run(content):
        it = make_interpreter(None, 1, content=content)
        it.set_tensor(it.get_input_details()[0]["index"], x)
        it.invoke()
        return {o["name"]: it.get_tensor(o["index"]) for o in it.get_output_details()}

    (logits,) = run(dec.v3plus_tflite(deeplab_weights.read_bytes(), d)).values()
    assert logits.shape == (1, 257, 257, 2)
    z_tflite = logits[0, :, :, 1] - logits[0, :, :, 0]
    names = (dec.LOW_LEVEL_TENSOR, dec.BACKBONE_TENSOR if train_aspp else dec.ASPP_TENSOR)
    feats = run(dec.features_tflite(deeplab_weights.read_bytes(), names))
    low, other = feats[names[0]], feats[names[1]]
    z_head = np.asarray(F.head(params, low, other, other.mean(axis=(1, 2)) if train_aspp else None))[0]
    keras = build_keras_model(manifest("deeplab"), deeplab_weights, (257, 257), decoder=d)
    k = np.asarray(keras.predict_on_batch(x))[0]
    assert np.abs(z_tflite).max() > 0.1
    np.testing.assert_allclose(z_head, z_tflite, atol=1e-3)
    np.testing.assert_allclose(k[:, :, 1] - k[:, :, 0], z_tflite, atol=1e-3)


def test_a_decoder_that_does_not_fit_the_release_is_refused(deeplab_weights, tmp_path):
    params, meta = _random_decoder(np.random.default_rng(4), low_channels=40)
    d = dec.load(dec.save(tmp_path / "d.npz", F.to_tensors(params), meta))
    with pytest.raises(ModelError, match="do not belong together"):
        dec.v3plus_tflite(deeplab_weights.read_bytes(), d)


# -- the segmenter -------------------------------------------------------------------------------


def _dl(**own):
    from livebokeh.segment import DeepLabOptions, SegmenterOptions

    return SegmenterOptions(threads=1, own=DeepLabOptions(**own))


def test_deeplab_is_v3plus_with_the_shipped_decoder_and_v3_when_off(deeplab_weights, data_dir):
    import cv2

    from livebokeh.segment import create_segmenter

    img = cv2.imread(str(sorted((data_dir / "portraits").glob("p_*.jpg"))[0]))
    with create_segmenter("deeplab", _dl(weights=str(deeplab_weights))) as plus, \
            create_segmenter("deeplab", _dl(weights=str(deeplab_weights), decoder="off")) as v3:
        assert plus.variant == "v3+" and plus.runtime == "tflite" and plus.input_size == (257, 257)
        assert v3.variant == "v3"
        a, b = plus.segment(img).data, v3.segment(img).data
        assert a.shape == b.shape == (257, 257) and a.dtype == np.float32
        assert 0 <= a.min() and a.max() <= 1 and (a > 0.5).mean() > 0.1
        assert np.abs(a - b).mean() > 0.01  # two networks


def test_the_decoder_file_the_settings_name_is_checked_without_reading_it(tmp_path, monkeypatch):
    """``missing_files``: what a run checks before its camera opens, and ``service install``
    before it writes the unit (the registry's class, no segmenter built)."""
    from livebokeh.segment import SEGMENTERS, DeepLabOptions
    from livebokeh.segment.deeplab.segmenter import DeepLabSegmenter

    deeplab = SEGMENTERS.get("deeplab")
    assert deeplab.file_variables == (dec.ENV_VAR,)
    monkeypatch.delenv(dec.ENV_VAR, raising=False)
    assert deeplab.missing_files(None) is None  # the package's decoder, or v3 where it is absent
    problem = deeplab.missing_files(DeepLabOptions(decoder="on", decoder_weights=str(tmp_path / "no.npz")))
    assert f"decoder weights {tmp_path / 'no.npz'} (deeplab.decoder_weights) do not exist" in problem
    assert deeplab.missing_files(DeepLabOptions(decoder="off", decoder_weights=str(tmp_path / "no.npz"))) is None
    monkeypatch.setenv(dec.ENV_VAR, str(tmp_path / "gone.npz"))
    assert f"{tmp_path / 'gone.npz'} ({dec.ENV_VAR}) do not exist" in deeplab.missing_files(DeepLabOptions())
    (tmp_path / "gone.npz").write_bytes(b"not read here")
    assert deeplab.missing_files(DeepLabOptions(decoder="on")) is None
    monkeypatch.delenv(dec.ENV_VAR)
    monkeypatch.setattr(dec, "shipped_path", lambda: tmp_path / "absent.npz")  # a trimmed install
    assert "this install lacks" in deeplab.missing_files(DeepLabOptions(decoder="on"))
    assert deeplab.missing_files(DeepLabOptions(decoder="auto")) is None  # runs DeepLab-v3
    for name in SEGMENTERS.names():  # the others read no such file
        if SEGMENTERS.get(name) is not DeepLabSegmenter:
            assert SEGMENTERS.get(name).missing_files(None) is None and SEGMENTERS.get(name).file_variables == ()


def test_deeplab_decoder_settings_are_checked(deeplab_weights, tmp_path, monkeypatch):
    from livebokeh.segment import create_segmenter

    with pytest.raises(ModelError, match="unknown DeepLab decoder setting 'maybe'"):
        create_segmenter("deeplab", _dl(weights=str(deeplab_weights), decoder="maybe"))
    with pytest.raises(ModelError, match="do not exist"):  # a file run: exit 1, as a missing weights file
        create_segmenter("deeplab", _dl(weights=str(deeplab_weights), decoder_weights=str(tmp_path / "no.npz")))
    # an install without the decoder: auto falls back to v3, on says what is missing
    monkeypatch.setattr(dec, "shipped_path", lambda: tmp_path / "absent.npz")
    with create_segmenter("deeplab", _dl(weights=str(deeplab_weights))) as seg:
        assert seg.variant == "v3"
    with pytest.raises(SetupError, match="no DeepLab-v3\\+ decoder weights"):
        create_segmenter("deeplab", _dl(weights=str(deeplab_weights), decoder="on"))


def test_the_prior_starts_from_the_released_background_and_person(deeplab_weights):
    """With the decoder's own logits at zero, v3+ with a fresh prior decides as the release's
    person-minus-background logit does."""
    from livebokeh.segment.deeplab.weights import read_tflite_tensors

    release = read_tflite_tensors(deeplab_weights)
    params = F.init_params(F.Shapes(low_channels=72), np.random.default_rng(0), release, prior=True)
    w = release["logits/semantic/weights"][:, 0, 0, :]
    np.testing.assert_array_equal(params[dec.PRIOR]["w"].T, w[[0, 15]])
    params["logits/semantic"] = {k: np.zeros_like(v) for k, v in params["logits/semantic"].items()}
    rng = np.random.default_rng(1)
    low, aspp = rng.random((1, 9, 9, 72), np.float32), rng.random((1, 5, 5, 256), np.float32)
    z = np.asarray(F.head(params, low, aspp))[0]
    b = release["logits/semantic/Conv2D_bias"]
    direct = aspp[0] @ (w[15] - w[0]) + b[15] - b[0]  # at stride 8
    np.testing.assert_allclose(z[::8, ::8], direct, rtol=1e-4, atol=1e-4)


def test_bench_quality_measures_v3plus_and_v3_side_by_side(deeplab_weights):
    import dataclasses

    from livebokeh.bench.quality import _configurations
    from livebokeh.config import Config

    cfg = Config()
    cfg = dataclasses.replace(cfg, deeplab=dataclasses.replace(cfg.deeplab, weights=str(deeplab_weights)))
    got = _configurations(["deeplab"], cfg)
    assert [(label, own.decoder) for label, _backend, _live, own in got] == [("deeplab v3+", "on"), ("deeplab v3", "off")]


# -- the command, end to end on a tiny made-up data set (RVM as the teacher, from ../shared) -----


def _tiny_data(root):
    """videos/ with a training clip and the green-screen validation clip, portraits/ with two
    photos: a disc of skin colour on a background, moving."""
    import av
    import cv2

    (root / "videos").mkdir(parents=True)
    (root / "portraits").mkdir()
    for name, bg in (("t1", (200, 180, 160)), ("d0_greenscreen", (60, 170, 60))):
        with av.open(str(root / "videos" / f"{name}.mp4"), "w") as c:
            s = c.add_stream("libx264", rate=25)
            s.width = s.height = 96
            s.pix_fmt = "yuv420p"
            for t in range(14):
                img = np.full((96, 96, 3), bg, np.uint8)
                cv2.ellipse(img, (40 + t, 60), (22, 36), 0, 0, 360, (90, 120, 190), -1)
                for packet in s.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                    c.mux(packet)
            for packet in s.encode():
                c.mux(packet)
    for i in range(2):
        img = np.full((120, 100, 3), (50 + 80 * i, 90, 140), np.uint8)
        alpha = np.zeros((120, 100), np.uint8)
        cv2.ellipse(alpha, (50, 80), (25, 40), 0, 0, 360, 255, -1)
        img[alpha > 0] = (80, 110, 200)
        cv2.imwrite(str(root / "portraits" / f"p_{i}.jpg"), img)
        cv2.imwrite(str(root / "portraits" / f"p_{i}.png"), alpha)


@pytest.mark.slow
def test_the_training_command_end_to_end(deeplab_weights, rvm_weights, tmp_path, capsys):
    from livebokeh.segment.deeplab.train.__main__ import main

    _tiny_data(tmp_path / "data")
    out = tmp_path / "out" / "dec.npz"
    args = ["--data", str(tmp_path / "data"), "--work", str(tmp_path / "work"), "--out", str(out),
            "--deeplab-weights", str(deeplab_weights), "--rvm-weights", str(rvm_weights),
            "--steps", "4", "--batch", "2", "--variants", "2", "--portraits", "half", "--portrait-repeat", "1"]
    assert main(args) == 0
    d = dec.load(out)
    assert d.prior and d.meta["training"]["settings"]["steps"] == 4
    assert d.trained_on == {"t1.mp4", "p_0.jpg"}
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["split"]["train_clips"] == ["t1.mp4"] and report["split"]["validation_clips"] == ["d0_greenscreen.mp4"]
    assert report["split"]["train_portraits"] == ["p_0.jpg"] and report["split"]["validation_portraits"] == ["p_1.jpg"]
    assert report["fit"]["samples"] == (2 + 1) * 2  # 2 clip frames kept and 1 portrait, 2 pictures each
    ev = report["evaluation"]
    assert set(ev["models"]) == {"deeplab v3+", "deeplab v3", "mediapipe raw", "rvm default (files)"}
    assert ev["models"]["deeplab v3+"]["clips"]["d0_greenscreen"]["reference"] == "chroma key"
    assert any(k.startswith("portraits: Boundary IoU") for k in ev["targets"])
    # nothing is replaced without --overwrite; with it, the cached mattes and features are used again
    assert main(args) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert main([*args, "--overwrite", "--no-evaluate"]) == 0
    log = (tmp_path / "work" / "train.log").read_text()
    assert "samples cached" in log


def test_the_training_command_says_what_it_lacks(tmp_path, monkeypatch, capsys):
    import sys

    from livebokeh.segment.deeplab.train.__main__ import main

    assert main(["--data", str(tmp_path / "none")]) == 2
    assert "no evaluation data" in capsys.readouterr().err
    (tmp_path / "d" / "videos").mkdir(parents=True)
    (tmp_path / "out.npz").write_bytes(b"mine")
    assert main(["--data", str(tmp_path / "d"), "--out", str(tmp_path / "out.npz")]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert (tmp_path / "out.npz").read_bytes() == b"mine"
    assert main(["--data", str(tmp_path / "d"), "--out", str(tmp_path / "new.npz")]) == 2
    assert "lacks the training or the validation clips" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "jax", None)
    assert main(["--data", str(tmp_path / "d"), "--out", str(tmp_path / "new.npz")]) == 2
    assert "livebokeh[train]" in capsys.readouterr().err
