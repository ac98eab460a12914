"""The depth network (TCMonoDepth small) through ONNX Runtime: weights from ../shared/models."""

from __future__ import annotations

import numpy as np
import pytest

from livebokeh import models
from livebokeh.bench.depth_scene import room
from livebokeh.depth import MODEL, DepthEstimator, DepthOptions, map_size
from livebokeh.depth.estimator import INPUT_SIZE, model_input
from livebokeh.errors import ModelError


def test_the_manifest_matches_the_shared_file(depth_weights):
    m = models.manifest(MODEL)
    assert m.file == depth_weights.name and m.size == depth_weights.stat().st_size
    assert models.sha256_of(depth_weights) == m.sha256
    assert m.input_size == INPUT_SIZE and m.env_var == "LIVEBOKEH_DEPTH_WEIGHTS"


def test_model_input_is_rgb_0_to_255_at_320x192():
    img = np.zeros((720, 1280, 3), np.uint8)
    img[:, :, 2] = 200  # red in BGR
    x = model_input(img)
    assert x.shape == (1, 3, 192, 320) and x.dtype == np.float32
    assert x[0, 0].mean() == pytest.approx(200.0) and x[0, 2].max() == 0.0


def test_the_floor_is_nearer_than_the_wall_and_calls_repeat_exactly(depth_weights):
    image, depth, floor, _ = room()
    with DepthEstimator(DepthOptions(weights=str(depth_weights))) as est:
        a = est.estimate(image)
        b = est.estimate(image)
    assert a.shape == (90, 160) == map_size(1280, 720)[::-1] and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    import cv2

    fl = cv2.resize(floor.astype(np.uint8), (160, 90), interpolation=cv2.INTER_NEAREST) > 0
    bottom_floor = a[80:][fl[80:]].mean()
    top_wall = a[:20][~fl[:20]].mean()
    assert bottom_floor > top_wall + 0.2  # inverse depth: larger is nearer
    assert est.calls == 2
    est.close()  # twice is fine
    with pytest.raises(RuntimeError):
        est.estimate(image)


def test_found_through_the_environment_variable(depth_weights):
    with DepthEstimator() as est:
        assert est.weights == depth_weights


def test_without_the_weights_offline_one_line_says_how_to_get_them_or_run_without():
    with pytest.raises(ModelError) as info:
        DepthEstimator(DepthOptions(download=False))
    text = str(info.value)
    assert "\n" not in text
    assert "livebokeh models download depth" in text and "--depth-weights FILE" in text
    assert "LIVEBOKEH_DEPTH_WEIGHTS" in text and "--no-depth" in text and "mediapipe" not in text


def test_a_file_that_is_not_the_model_is_refused_in_one_line(tmp_path, rvm_weights):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    for path, what in ((junk, "not a usable depth model"), (rvm_weights, "not the TCMonoDepth model")):
        with pytest.raises(ModelError, match=what) as info:
            DepthEstimator(DepthOptions(weights=str(path)))
        assert "\n" not in str(info.value) and "livebokeh models download depth" in str(info.value)
    with pytest.raises(ModelError, match="does not exist"):
        DepthEstimator(DepthOptions(weights=str(tmp_path / "missing.onnx")))


def test_downloaded_once_through_the_checked_download_then_found_offline(depth_weights, monkeypatch, capsys):
    """As a user gets it: `livebokeh models download depth` (a local server stands in for the
    public address), the size and checksum checked, then every run finds it in the cache."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from livebokeh.commands.models import main as models_main

    monkeypatch.delenv("LIVEBOKEH_DEPTH_WEIGHTS")
    payload = depth_weights.read_bytes()
    state = {"body": payload}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", str(len(state["body"])))
            self.end_headers()
            self.wfile.write(state["body"])

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/{depth_weights.name}"
    try:
        state["body"] = payload[:-1] + bytes([payload[-1] ^ 1])  # one bit off: refused, nothing kept
        assert models_main(["download", MODEL, "--url", url]) == 1
        assert "wrong checksum" in capsys.readouterr().err
        assert not models.cached_path(models.manifest(MODEL)).exists()
        state["body"] = payload
        assert models_main(["download", MODEL, "--url", url]) == 0
    finally:
        httpd.shutdown()
        httpd.server_close()
    cached = models.cached_path(models.manifest(MODEL))
    assert capsys.readouterr().out.strip() == str(cached)
    with DepthEstimator(DepthOptions(download=False)) as est:
        assert est.weights == cached


def depth_like(path, output: str = "grey"):
    """An ONNX file taking the TCMonoDepth input (1x3x192x320) whose output is the picture's
    brightest channel (``grey``, a usable stand-in), the picture itself (``three channels``), one
    column of it (``smaller``), 0/0 (``nan``), or that channel divided by itself (``nan on
    black``: NaN where the picture is black)."""
    from tests.segment.onnx_graph import graph_model

    nodes = {"grey": [("ReduceMax", ["input"], ["output"], {"axes": [1]})],
             "three channels": [("Identity", ["input"], ["output"])],
             "smaller": [("ReduceMax", ["input"], ["output"], {"axes": [1, 3]})],
             "nan": [("ReduceMax", ["input"], ["m"], {"axes": [1]}), ("Sub", ["m", "m"], ["z"]),
                     ("Div", ["z", "z"], ["output"])],
             "nan on black": [("ReduceMax", ["input"], ["m"], {"axes": [1]}), ("Div", ["m", "m"], ["output"])]}[output]
    path.write_bytes(graph_model({"input": [1, 3, INPUT_SIZE[1], INPUT_SIZE[0]]}, nodes, ["output"]))
    return path


@pytest.mark.parametrize(("output", "said"), [("three channels", "gives a map of shape 1x3x192x320"),
                                               ("smaller", "gives a map of shape 1x1x192x1"),
                                               ("nan", "values that are not numbers")])
def test_weights_with_the_input_but_not_the_output_fail_when_they_load(tmp_path, output, said):
    weights = depth_like(tmp_path / "d.onnx", output)
    with pytest.raises(ModelError, match=said) as info:
        DepthEstimator(DepthOptions(weights=str(weights)))
    assert "\n" not in str(info.value) and str(weights) in str(info.value)
    assert "livebokeh models download depth" in str(info.value)


def test_a_map_that_is_not_a_number_on_a_later_picture_is_a_one_line_error(tmp_path):
    with DepthEstimator(DepthOptions(weights=str(depth_like(tmp_path / "d.onnx", "nan on black")))) as est:
        assert np.array_equal(est.estimate(np.full((48, 64, 3), 90, np.uint8)), np.ones(map_size(64, 48)[::-1]))
        with pytest.raises(ModelError, match="values that are not numbers"):
            est.estimate(np.zeros((48, 64, 3), np.uint8))


def test_weights_in_a_folder_whose_name_is_not_utf8_load(tmp_path, monkeypatch):
    import os

    folder = tmp_path / os.fsdecode(b"bad\xff\xfe")
    folder.mkdir()
    weights = depth_like(folder / "depth.onnx")
    with DepthEstimator(DepthOptions(weights=str(weights))) as est:
        assert np.allclose(est.estimate(np.full((48, 64, 3), 90, np.uint8)), 90)
    monkeypatch.setenv("LIVEBOKEH_DEPTH_WEIGHTS", str(weights))
    with DepthEstimator(DepthOptions(download=False)) as est:
        assert est.weights == weights


def test_a_run_with_a_depth_model_that_gives_nan_stops_in_one_line(tmp_path, capsys):
    """Was "internal error: ValueError: cannot convert float NaN to integer (in the render stage)"."""
    from fractions import Fraction

    import cv2

    from livebokeh.cli import main
    from livebokeh.sinks import VideoWriter

    video, mask = tmp_path / "in.mp4", tmp_path / "m.png"
    w = VideoWriter(video, 64, 48, Fraction(25))
    for i in range(6):
        w.write(np.full((48, 64, 3), 90 if i < 3 else 0, np.uint8))  # black from the fourth frame
    w.close()
    cv2.imwrite(str(mask), np.full((48, 64), 255, np.uint8))
    weights = depth_like(tmp_path / "d.onnx", "nan on black")
    assert main(["--input", str(video), "--mask", str(mask), "--output", str(tmp_path / "o.mp4"), "--depth",
                 "--depth-weights", str(weights)]) == 1
    err = capsys.readouterr().err
    assert "internal error" not in err and "Traceback" not in err and "RuntimeWarning" not in err
    (line,) = [ln for ln in err.splitlines() if ln.startswith("livebokeh: error")]
    assert "values that are not numbers" in line
