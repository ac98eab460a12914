import importlib.util
import json

import numpy as np
import pytest

from livebokeh.bench import gpu_check
from livebokeh.bench import models as bench_models
from livebokeh.bench import pipeline as bench_pipeline
from livebokeh.bench.common import half_body_ids
from livebokeh.bench.pipeline import every_core_busy
from livebokeh.cli import main
from livebokeh.config import load_config, with_backend
from tests.conftest import HALF_BODY


def test_half_body_subset_is_read_from_the_data_readme(data_dir):
    assert half_body_ids(data_dir) == HALF_BODY


def test_bench_data_that_cannot_be_scored_is_left_out_and_said(tmp_path, caplog):
    """A mask of another size than its photo crashed `bench models` (a numpy traceback); a damaged
    photo put libjpeg's raw line on the terminal and was scored grey. Each is left out, said once."""
    import logging

    import cv2
    import numpy as np

    from livebokeh.bench.common import read_pairs

    photo = np.random.default_rng(0).integers(0, 255, (48, 64, 3), np.uint8)
    ok, buf = cv2.imencode(".jpg", photo)
    (tmp_path / "stills").mkdir()
    files = {}
    for name, data, mask in (("hs_001", bytes(buf), (48, 64)), ("hs_002", bytes(buf), (10, 10)),
                             ("hs_003", bytes(buf)[:-2] + b"\0" * 88 + bytes(buf)[-2:], (48, 64)),
                             ("hs_004", b"not a picture", (48, 64))):
        (tmp_path / "stills" / f"{name}.jpg").write_bytes(data)
        cv2.imwrite(str(tmp_path / "stills" / f"{name}.png"), np.zeros(mask, np.uint8))
        files[name] = tmp_path / "stills" / f"{name}.jpg"
    pairs = [(files[n], files[n].with_suffix(".png")) for n in sorted(files)]
    with caplog.at_level(logging.WARNING, logger="livebokeh"):
        kept = [p.stem for _img, _ref, p in read_pairs(pairs)]
    assert kept == ["hs_001"]
    said = caplog.text
    assert "hs_002.jpg: its mask is 10x10, the photo 64x48" in said and "hs_003.jpg: it is damaged" in said
    assert "hs_004.jpg: it cannot be read" in said


def test_bench_models_short_run(data_dir, deeplab_weights, rvm_weights, tmp_path, capsys):
    out = tmp_path / "b.json"
    assert main(["bench", "models", "--data", str(data_dir), "--frames", "3", "--stills-step", "40",
                 "--deeplab-weights", str(deeplab_weights), "--rvm-weights", str(rvm_weights),
                 "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    rows = {r["model"]: r for r in report["rows"]}
    # the TF graph rows need the tensorflow extra; without it they carry the one-line error naming it
    tf = importlib.util.find_spec("tensorflow") is not None
    graph = {name for name in rows if "TF graph" in name}
    assert len(rows) == 11 and len(graph) == 3
    for name, r in rows.items():
        if name in graph and not tf:
            assert "livebokeh[tensorflow]" in r["error"]
            continue
        assert "error" not in r and r["ms_per_frame"] > 0 and 0.5 < r["iou_stills"] <= 1
    if tf:  # same weights, two runtimes: the same masks
        for net in ("v3", "v3+"):
            assert abs(rows[f"deeplab {net} tflite 257x257"]["iou_stills"]
                       - rows[f"deeplab {net} TF graph 257x257"]["iou_stills"]) < 1e-3
    assert "| mediapipe general 256x256 |" in capsys.readouterr().out
    assert bench_models.render(report).count("\n") >= 7


def test_gpu_check_runs_on_the_cpu(deeplab_weights, tmp_path):
    ref = tmp_path / "ref.npz"
    assert gpu_check.main(["--weights", str(deeplab_weights), "--make-reference", str(ref)]) == 0
    out = tmp_path / "g.json"
    assert gpu_check.main(["--weights", str(deeplab_weights), "--reference", str(ref), "--frames", "2",
                           "--size", "65", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["max_abs_logit_diff_accelerator_vs_tflite"] <= 1e-3
    assert "float32" in result["timing_65x65_2_frames"]


def test_bench_render(data_dir, rvm_weights, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["bench", "render", "--data", str(data_dir), "--rvm-weights", str(rvm_weights),
                 "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    rep = {(r["alpha"], r["colours"]): r for r in report["replacement"]["rows"]}
    assert set(rep) == {(a, c) for a in ("reference alpha", "mediapipe", "rvm") for c in ("as captured", "unmixed")}
    assert report["replacement"]["portraits"] == 15
    for alpha in ("reference alpha", "mediapipe", "rvm"):  # unmixing lowers the error for every alpha
        for old in ("green", "scene"):
            assert rep[alpha, "unmixed"][f"error_{old}"] < rep[alpha, "as captured"][f"error_{old}"]
    assert rep["mediapipe", "as captured"]["vs_before"] == {"green": 1.0, "scene": 1.0}
    assert report["halo"]["ratio"] < 1 and report["bokeh"]["energy_inside"] > 0.5
    assert report["bokeh"]["core_level"] > 5 * report["bokeh"]["core_level_encoded"]  # a visible disc
    assert [s["size"] for s in report["speed"]] == ["1280x720", "1920x1080"]
    assert "GaussianBlur(15)+blend ms" in capsys.readouterr().out


def test_bench_quality_short_run(data_dir, tmp_path, capsys):
    out = tmp_path / "q.json"
    assert main(["bench", "quality", "--data", str(data_dir), "--backends", "mediapipe", "--clip-frames", "8",
                 "--stills-step", "60", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    rows = {r["variant"].strip(): r for r in report["backends"]["mediapipe"]["rows"]}
    assert {"raw model output", "livebokeh live (all steps)", "livebokeh file, look-ahead 2"} <= set(rows)
    live, raw = rows["livebokeh live (all steps)"], rows["raw model output"]
    for k in ("stills_iou", "portraits_biou", "flicker_videos", "gs_iou", "gs_flicker", "moving_iou"):
        assert live[k] is not None and raw[k] is not None
    assert 0.5 < live["moving_iou"] <= 1
    assert report["backends"]["mediapipe"]["cost_720p"]["added_ms"] > 0
    assert "flicker videos" in capsys.readouterr().out


def test_bench_soak_short(data_dir, tmp_path, capsys):
    out = tmp_path / "s.json"
    assert main(["bench", "soak", "--data", str(data_dir), "--short", "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    # 300 frames read; the clip, played as a camera, may pass over more while the machine is busy
    assert r["frames"] >= 300 and r["frames_out"] + r["dropped"] == r["frames"]
    assert r["threads_after"] <= r["threads_before"] + 1  # every pipeline thread ended
    assert r["rss_mb_max"] > 0 and "RSS" in capsys.readouterr().out


@pytest.fixture
def bench_tmp(tmp_path, monkeypatch):
    """The temporary folder the benches see: a fresh one of this test's (no other process's
    files in it), checked to be empty of the benches' scratch folders afterwards."""
    import tempfile

    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def _spy_clip_1080(monkeypatch) -> list:
    """Records where ``bench pipeline`` writes its 1080p clip."""
    made = []
    real = bench_pipeline._clip_1080

    def spy(*args):
        made.append(real(*args))
        return made[-1]

    monkeypatch.setattr(bench_pipeline, "_clip_1080", spy)
    return made


def test_bench_pipeline_short(data_dir, tmp_path, bench_tmp, monkeypatch):
    out = tmp_path / "p.json"
    made = _spy_clip_1080(monkeypatch)
    assert main(["bench", "pipeline", "--data", str(data_dir), "--frames", "20", "--paced-frames", "30",
                 "--repeats", "1", "--backends", "mediapipe", "--json", str(out)]) == 0
    # the 1080p clip was made in the temporary folder, and nothing the bench made is left there
    assert len(made) == 1 and made[0].parent.parent == bench_tmp and not made[0].exists()
    assert list(bench_tmp.glob("livebokeh-bench-*")) == []
    report = json.loads(out.read_text())
    rows = report["rows"]
    assert report["repeats"] == 1 and report["config"] == {}  # the default settings, the backend asked for
    assert [r["case"] for r in rows] == ["mediapipe, 1280x720 file", "mediapipe, 1920x1080 file",
                                         "mediapipe, paced 30 fps 1280x720"]
    for r in rows[:2]:
        assert r["frames_out"] == 20 and r["dropped"] == 0 and r["naive_fps"] > 0 and r["segmenter_alone_fps"] > 0
        assert r["decode_alone_fps"] > 0  # rates are the bench's to compare: wall time drifts on a busy machine
        # decoding is part of segmenting every frame, so is its CPU time, and the naive loop decodes too
        assert 0 < r["decode_cpu_ms"] < r["segmenter_alone_cpu_ms"] and r["decode_cpu_ms"] < r["naive_cpu_ms"]
        assert r["busy_fps"] == pytest.approx(every_core_busy(r["cpu_ms_per_frame"]))
        assert r["busy_vs_segmenter"] == pytest.approx(r["busy_fps"] / r["segmenter_alone_fps"])
    assert rows[2]["frames_out"] + rows[2]["dropped"] == 30
    assert "busy_fps" not in rows[2]  # the paced case is held to the camera's rate, not bound by CPU
    # the user's job, assembled as the command does: every frame into an H.264 file (removed with
    # the scratch folder), beside the naive loop writing the same encoder
    (j,) = report["jobs"]
    assert j["case"] == "mediapipe, 1280x720 clip to H.264" and j["frames_out"] == 20
    assert j["fps"] > 0 and j["naive_fps"] > 0 and j["vs_naive"] == pytest.approx(j["fps"] / j["naive_fps"])
    assert j["cpu_ms_per_frame"] > 0 and j["naive_cpu_ms"] > 0 and j["cores"] > 0


def test_bench_pipeline_removes_its_temporary_clip_when_it_fails(data_dir, bench_tmp, monkeypatch):
    made = _spy_clip_1080(monkeypatch)

    def fail(*args):
        raise KeyboardInterrupt  # Ctrl-C in the middle of the run

    monkeypatch.setattr(bench_pipeline, "_run_pipeline", fail)
    with pytest.raises(KeyboardInterrupt):
        bench_pipeline.run(data_dir, ["mediapipe"], frames=2, paced_frames=2, repeats=1)
    assert len(made) == 1 and not made[0].exists()
    assert list(bench_tmp.glob("livebokeh-bench-*")) == []


#: ``bench pipeline`` with a pipeline case that says it started, then waits to be stopped.
_STOPPED_RUN = """
import sys, threading
from pathlib import Path
from livebokeh.bench import pipeline

def wait(*args):
    print("running", flush=True)
    threading.Event().wait(120)

pipeline._run_pipeline = wait
pipeline.run(Path(sys.argv[1]), ["mediapipe"], frames=2, paced_frames=2, repeats=1)
"""


def test_bench_pipeline_removes_its_temporary_clip_when_terminated(data_dir, bench_tmp):
    import os
    import signal
    import subprocess
    import sys

    from tests.conftest import REPO

    env = dict(os.environ, PYTHONPATH=str(REPO), TMPDIR=str(bench_tmp))
    proc = subprocess.Popen([sys.executable, "-c", _STOPPED_RUN, str(data_dir)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline() == "running\n", proc.stderr.read()
        assert len(list(bench_tmp.glob("livebokeh-bench-*/office1080p.mkv"))) == 1  # the clip is there
        proc.send_signal(signal.SIGTERM)  # as a CI timeout stops it
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0 and "KeyboardInterrupt" in err
    assert list(bench_tmp.glob("livebokeh-bench-*")) == []


def test_every_core_busy_spreads_the_cpu_time_of_a_frame_over_the_cores():
    assert every_core_busy(10.0, cores=2) == pytest.approx(200.0)
    assert every_core_busy(10.0, cores=1) == pytest.approx(100.0)
    assert every_core_busy(20.0, cores=4) == pytest.approx(every_core_busy(10.0, cores=2))
    assert every_core_busy(0.0) == 0.0  # nothing measured


def test_bench_pipeline_runs_with_the_given_settings():
    """``--config call``: the pipeline and the segmenter-alone reference get the preset's model and
    ROI setting, and the report names what differs from the defaults."""
    from livebokeh.bench.pipeline import _differences
    from livebokeh.commands.bench import _config, build_parser
    from livebokeh.segment import SegmenterOptions

    cfg = _config(build_parser().parse_args(["pipeline", "--config", "call", "--rvm-weights", "r.onnx"]))
    opts = SegmenterOptions.from_config(cfg, (1280, 720))  # the preset's backend: MediaPipe
    assert (opts.own.model, opts.roi, opts.threads, opts.frame_size) == ("landscape", False, 1, (1280, 720))
    rvm = SegmenterOptions.from_config(with_backend(cfg, "rvm"))
    assert rvm.own.weights == "r.onnx"  # the weights flags reach every bench, whatever the backend chosen
    cfg = load_config("call")
    diff = _differences(cfg)
    assert diff["mediapipe.model"] == "landscape" and diff["segmenter.roi"] is False
    assert "render.blur" not in diff  # the preset sets it to its default value
    assert _differences(load_config(None)) == {}


def test_bench_cost_short(data_dir, tmp_path, capsys):
    """Every step off in turn, each row's ratios against the references of the same run."""
    out, settings = tmp_path / "c.json", tmp_path / "mp.toml"
    settings.write_text('[segmenter]\nbackend = "mediapipe"\n')
    assert main(["bench", "cost", "--data", str(data_dir), "--frames", "12", "--repeats", "1",
                 "--config", str(settings), "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    rows = {r["case"]: r for r in report["rows"]}
    assert list(rows)[0] == "as configured" and rows["as configured"]["cpu_saved"] == 0
    assert len(rows) == 7 and report["config"] == {"segmenter.backend": "mediapipe"} and report["backend"] == "mediapipe"
    assert report["segmenter_alone_fps"] > 0 and report["naive_fps"] > 0
    assert report["segmenter_alone_cpu_ms"] > 0 and report["naive_cpu_ms"] > 0
    for r in rows.values():
        assert r["fps"] > 0 and r["vs_segmenter"] == pytest.approx(r["fps"] / report["segmenter_alone_fps"])
        busy = every_core_busy(r["cpu_ms_per_frame"]) / report["segmenter_alone_fps"]
        assert r["busy_vs_segmenter"] == pytest.approx(busy)
    assert "no light wrap" in capsys.readouterr().out


def test_moving_sequence_slides_the_portrait_and_its_reference():
    from livebokeh.bench.quality import moving_sequence

    img = np.full((100, 60, 3), 200, np.uint8)
    alpha = np.zeros((100, 60), np.float32)
    alpha[20:90, 10:50] = 1.0
    seq = moving_sequence(img, alpha, frames=4, speed=24, size=(320, 180))
    assert len(seq) == 4
    (f0, r0), (f1, r1) = seq[0], seq[1]
    assert f0.shape == (180, 320, 3) and r0.shape == (180, 320) and r0.dtype == np.float32
    cols0, cols1 = np.flatnonzero(r0.max(axis=0) > 0.5), np.flatnonzero(r1.max(axis=0) > 0.5)
    assert cols1[0] - cols0[0] == 24 and cols1.size == cols0.size  # moved, not resized
    inside = r1 > 0.99
    np.testing.assert_array_equal(f1[inside], np.full((int(inside.sum()), 3), 200, np.uint8))
    outside = (r0 == 0) & (r1 == 0)
    np.testing.assert_array_equal(f0[outside], f1[outside])  # the background stays put


def test_bench_framing_follows_the_known_paths(data_dir):
    """A short run of every path: the operators keep the head where the known position puts it
    once a move has ended, and move far more smoothly than the naive centring."""
    from livebokeh.bench import framing

    report = framing.run(data_dir, seconds=0.5)
    assert set(report["paths"]) == {p.name for p in framing.paths()}
    for name, p in report["paths"].items():
        for op in ("live", "files"):
            assert p[op]["error_median"] < 0.05, (name, op, p[op])
            assert p[op]["jerk"] <= p["naive"]["jerk"] + 1e-9, (name, op)
    still = report["paths"]["still speaker"]
    assert still["live"]["size_range"] < 0.01 and still["files"]["size_range"] < 0.01
    assert report["render_crop_2x_ms"] > 0 and "framing" in framing.render(report)
    # the crop placed sub-pixel glides: its room changes velocity less than with whole pixels,
    # and far less than under naive centring
    assert set(report["judder"]) == {"pan", "slow pan"}
    for name, ops in report["judder"].items():
        for op in ("live", "files"):
            sub, whole = ops[op]["sub_pixel"]["mean"], ops[op]["whole_pixels"]["mean"]
            assert sub < 0.6 * whole and sub < 0.25 * ops["naive"]["sub_pixel"]["mean"], (name, op, ops)
    assert report["place_sub_pixel_ms"] > 0 and "judder" in framing.render(report)


def test_judder_is_the_rooms_velocity_change_per_frame():
    """A crop panning at a steady speed has none; one that steps in whole pixels has some; a
    known jolt gives its size as a share of the width."""
    from livebokeh.bench import framing
    from livebokeh.framing import Crop

    n = 60
    path = framing.MotionPath("test", [(0.5, 0.6)] * n, [0, 10, 50])
    steady = [Crop(0.4 + k * 0.0007, 0.5, 0.6) for k in range(n)]  # 0.9 pixels of the picture a frame
    assert framing.judder(steady, path)["mean"] < 1e-9
    assert framing.judder(steady, path, whole_pixels=True)["mean"] > 1e-4
    jolt = [Crop(0.4 + (0.01 if k >= 30 else 0.0), 0.5, 0.6) for k in range(n)]
    jump = 0.01 / 0.6  # the room jumps a sixtieth of the output once: two velocity changes that size
    moving = 50  # frames 8 (two before the move) to 58 (the path's end), of 58 second differences
    assert framing.judder(jolt, path)["mean"] == pytest.approx(2 * jump / moving)


def test_bench_control_times_changes_and_the_pages_cost(tmp_path, capsys, monkeypatch, selfie_models):
    """A short run: every change is found in the frames sent (none lost), the page's requests are
    counted and cost something, the closed page answers nothing; the JSON and the table agree."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    out = tmp_path / "control.json"
    assert main(["bench", "control", "-c", "call", "--changes", "4", "--seconds", "2", "--swaps", "0",
                 "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["backend"] == "mediapipe" and len(report["change_frames"]) == 4
    assert all(1 <= f < 60 for f in report["change_frames"])  # each change reached the virtual camera
    assert report["page_requests_closed"] == 0 and report["page_server_cores_closed"] == 0.0
    assert report["page_requests_open_per_s"] > 1 and report["page_server_cores_open"] > 0
    text = capsys.readouterr().out
    assert "4 changes: shown in frame" in text and "target <= 5%" in text


def test_bench_render_says_what_it_leaves_out_without_data(tmp_path, monkeypatch, capsys):
    from livebokeh.bench import render as bench_render

    monkeypatch.setattr(bench_render, "speed", lambda cfg, size, runs=40: {"size": f"{size[0]}x{size[1]}", "ms_ours": 1.0,
                                                                         "ms_naive": 1.0, "ratio": 1.0})
    empty = tmp_path / "data"
    empty.mkdir()
    assert main(["bench", "render", "--data", str(empty)]) == 0
    out = capsys.readouterr().out
    assert f"left out: halo and replacement colours: {empty} has no portraits/p_*.jpg with their .png mattes" in out
    assert "bokeh:" in out and "halo," not in out
    monkeypatch.delenv("LIVEBOKEH_DATA", raising=False)
    monkeypatch.delenv("LIVEBOKEH_SHARED", raising=False)
    monkeypatch.chdir(tmp_path)  # no ../shared/data from here
    assert main(["bench", "render"]) == 0
    assert "left out: halo and replacement colours: no evaluation data (pass --data DIR" in capsys.readouterr().out


def test_bench_render_lists_each_gap_in_the_data(tmp_path):
    import cv2

    from livebokeh.bench.render import missing_data

    data = tmp_path / "data"
    assert "no evaluation data" in missing_data(None)[0]
    assert "is no folder" in missing_data(data)[0]
    (data / "portraits").mkdir(parents=True)
    cv2.imwrite(str(data / "portraits" / "p_001.jpg"), np.zeros((8, 8, 3), np.uint8))
    assert "no portraits/p_*.jpg with their .png mattes" in missing_data(data)[0]  # a photo without its matte
    cv2.imwrite(str(data / "portraits" / "p_001.png"), np.zeros((8, 8), np.uint8))
    assert "over a noise texture" in missing_data(data)[0]  # no stills for the background scene
    (data / "stills").mkdir()
    cv2.imwrite(str(data / "stills" / "hs_001.png"), np.zeros((8, 8), np.uint8))
    assert missing_data(data) == []


def test_bench_render_says_which_portraits_it_left_out_and_why(tmp_path, monkeypatch):
    """A garbage matte dropped its portrait silently; a photo cut short was measured anyway."""
    import cv2

    from livebokeh.bench import render as bench_render

    folder = tmp_path / "data" / "portraits"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    photo = cv2.GaussianBlur(rng.integers(0, 255, (480, 320, 3), dtype=np.uint8), (0, 0), 2)
    matte = np.zeros((480, 320), np.uint8)
    matte[100:, 80:240] = 255
    matte = cv2.GaussianBlur(matte, (0, 0), 3)  # a soft edge, as a matte has
    for n in range(1, 6):
        cv2.imwrite(str(folder / f"p_{n}.jpg"), photo)
        cv2.imwrite(str(folder / f"p_{n}.png"), matte)
    whole = (folder / "p_2.jpg").read_bytes()
    (folder / "p_2.jpg").write_bytes(whole[: len(whole) * 6 // 10])
    (folder / "p_3.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    cv2.imwrite(str(folder / "p_4.png"), matte[:240])
    (folder / "p_5.png").unlink()
    cut = (folder / "p_2.jpg").read_bytes()
    from livebokeh.bench.common import jpeg_cut_short

    assert not jpeg_cut_short(whole) and jpeg_cut_short(cut)
    portraits, left = bench_render.load_portraits(tmp_path / "data")
    assert len(portraits) == 1 and portraits[0][1].dtype == np.float32 and portraits[0][1].max() == 1.0
    assert np.array_equal(portraits[0][1], matte.astype(np.float32) / 255)
    assert left == ["portrait p_2.jpg: it is cut short (no end of the picture); measured without it",
                    "portrait p_3.jpg: its matte p_3.png cannot be read as an image; measured without it",
                    "portrait p_4.jpg: its matte is 320x240, the photo 320x480; measured without it",
                    "portrait p_5.jpg: it has no matte p_5.png; measured without it"]
    monkeypatch.setattr(bench_render, "speed", lambda cfg, size, runs=40: {"size": "1x1", "ms_ours": 1.0,
                                                                         "ms_naive": 1.0, "ratio": 1.0})
    report = bench_render.run(tmp_path / "data", backends=())
    assert report["halo"]["portraits"] == 1 and report["replacement"]["portraits"] == 1
    text = bench_render.render(report)
    for line in left:
        assert f"left out: {line}" in text


def test_bench_render_names_a_backend_it_could_not_run(data_dir, tmp_path, monkeypatch, no_rvm_weights, capsys):
    import urllib.error
    import urllib.request

    from livebokeh.bench import render as bench_render

    def offline(*a, **k):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    monkeypatch.setattr(bench_render, "speed", lambda cfg, size, runs=40: {"size": "1x1", "ms_ours": 1.0,
                                                                         "ms_naive": 1.0, "ratio": 1.0})
    monkeypatch.setattr(bench_render, "bokeh", lambda cfg: {"radius_px": 1.0, "energy_inside": 1.0,
                                                            "core_variation": 0.0, "core_level": 1.0,
                                                            "core_level_encoded": 1.0})
    report = bench_render.run(data_dir, backends=("rvm",))
    (line,) = report["skipped"]
    assert line.startswith("replacement colours with rvm's alpha: the rvm model could not be downloaded")
    assert f"left out: {line}" in bench_render.render(report)


def test_bench_ondemand_short(capsys):
    assert main(["bench", "ondemand", "--idle", "1", "--active", "1", "--config", "call"]) == 0
    out = capsys.readouterr().out
    assert "on demand (mediapipe" in out and "camera released" in out


def test_ctrl_c_in_bench_ondemand_ends_cleanly_and_removes_its_folder(bench_tmp, monkeypatch, capsys):
    from livebokeh.bench import ondemand

    def interrupted(seconds):
        raise KeyboardInterrupt  # Ctrl-C while it measures the idle CPU

    monkeypatch.setattr(ondemand, "_cpu_share", interrupted)
    assert main(["bench", "ondemand", "--idle", "1", "--active", "1", "--config", "call"]) == 130
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == "livebokeh: interrupted" and "Traceback" not in err
    assert list(bench_tmp.iterdir()) == []


#: ``livebokeh bench ondemand`` as a user runs it, with Ctrl-C delivered as a terminal does.
_ONDEMAND_RUN = """
import signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal (a test runner may ignore it)
from livebokeh.cli import main
sys.exit(main(["bench", "ondemand", "--idle", "120", "--active", "1", "--config", "call"]))
"""


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_a_signal_in_bench_ondemand_exits_130_without_a_traceback(bench_tmp, signame):
    import os
    import signal
    import subprocess
    import sys

    from tests.conftest import REPO

    env = dict(os.environ, PYTHONPATH=str(REPO), TMPDIR=str(bench_tmp))
    proc = subprocess.Popen([sys.executable, "-c", _ONDEMAND_RUN], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    seen = []
    try:
        for line in proc.stderr:  # idle: the camera was released after the start
            seen.append(line)
            if "no reader of" in line:
                break
        assert list(bench_tmp.glob("livebokeh-bench-*/video10")), "".join(seen)
        proc.send_signal(getattr(signal, signame))
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert err.splitlines()[-1] == "livebokeh: interrupted" and "Traceback" not in err and out == ""
    assert list(bench_tmp.iterdir()) == []


@pytest.mark.parametrize("what", ["models", "quality", "pipeline", "soak", "framing"])
def test_a_bench_without_its_data_says_where_to_get_it(tmp_path, capsys, what):
    assert main(["bench", what, "--data", str(tmp_path / "none")]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"livebokeh: error: no evaluation data ({tmp_path / 'none'} is no folder): pass --data DIR")


def test_bench_depth_short(data_dir, depth_weights, tmp_path, capsys):
    """The scene's targets with the real depth model; the flicker of a short still clip; the cost
    rows (no pipeline runs)."""
    settings = tmp_path / "fast.toml"
    settings.write_text('[segmenter]\nbackend = "mediapipe"\n')
    out = tmp_path / "d.json"
    assert main(["bench", "depth", "--data", str(data_dir), "--json", str(out), "--config", str(settings),
                 "--flicker-frames", "8", "--paced-frames", "0", "--file-frames", "0", "--clips", "d6.mp4"]) == 0
    report = json.loads(out.read_text())
    rows = {(r["wall"], r["portrait"], r["depth"]): r for r in report["scene"]}
    assert len(rows) == 12
    for (wall, portrait, depth), r in rows.items():
        if depth == "no depth":
            assert r["rank_correlation"] is None and r["radius_near"] > 15  # one radius everywhere
            continue
        # the target is 0.9 (met by all four with the model, 0.90 to 0.99 here); a margin for
        # other runtimes' rounding
        assert r["rank_correlation_binned"] >= (0.95 if depth == "ideal depth" else 0.85), r
        assert r["detail_ratio"] >= 2 and r["radius_near"] < 3 < 15 < r["radius_wall"], r
        if depth == "model depth":
            assert abs(r["person_vs_no_depth"]) <= 0.02, r
    assert [(f["clip"], f["mode"]) for f in report["flicker"]] == [
        ("room + noise", "files"), ("room + noise", "live"), ("d6.mp4", "files"), ("d6.mp4", "live")]
    assert all(f["mean"] < 0.02 for f in report["flicker"]), report["flicker"]
    assert [c["scene"] for c in report["cost"]] == ["room", "webcam (office720p)"]
    for cost in report["cost"]:
        assert cost["plate_ms_gather"] > cost["plate_ms_levels"] > 0 and cost["model_ms"] > 0 and cost["live_cores"] > 0
    assert "pipeline" not in report and "rank corr." in capsys.readouterr().out


def test_a_bench_never_replaces_its_json_without_overwrite(tmp_path, capsys):
    out = tmp_path / "r.json"
    out.write_text("keep")
    assert main(["bench", "ondemand", "--idle", "1", "--active", "1", "--json", str(out)]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err and out.read_text() == "keep"


@pytest.mark.parametrize("what", ["models", "quality", "pipeline", "cost", "soak", "framing", "depth"])
def test_a_bench_whose_data_folder_lacks_what_it_measures_says_so(tmp_path, capsys, what):
    """An empty data folder: `bench depth` printed a traceback (a portrait read as None),
    `bench quality` and `bench models` printed tables of n/a with exit 0, and the others exited
    1. Each now stops with one line naming what the folder lacks, exit 2, as `bench live` does."""
    empty = tmp_path / "data"
    empty.mkdir()
    assert main(["bench", what, "--data", str(empty)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("livebokeh: error: no ") and f" in {empty}" in line and "; pass --data DIR with " in line
