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
from livebokeh.config import load_config
from tests.conftest import HALF_BODY


def test_half_body_subset_is_read_from_the_data_readme(data_dir):
    assert half_body_ids(data_dir) == HALF_BODY


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
    assert r["frames"] == 300 and r["frames_out"] + r["dropped"] == 300
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
    opts = SegmenterOptions.from_config(cfg.segmenter, (1280, 720))  # the preset's backend: MediaPipe
    assert (opts.own.model, opts.roi, opts.threads, opts.frame_size) == ("landscape", False, 1, (1280, 720))
    rvm = SegmenterOptions.from_config(cfg.segmenter, backend="rvm")
    assert rvm.own.weights == "r.onnx"  # the weights flags reach every bench
    cfg = load_config("call")
    diff = _differences(cfg)
    assert diff["segmenter.model"] == "landscape" and diff["segmenter.roi"] is False
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
