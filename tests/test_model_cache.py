"""Where model files come from: LIVEBOKEH_MODEL_DIR, the cache, a checked download (a local HTTP
server on 127.0.0.1 stands in for the upstream addresses), and caches that are damaged, read-only or
misplaced: one line naming what to do, never a traceback, and nothing deleted."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import subprocess
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest

from livebokeh import models
from livebokeh.cli import main
from livebokeh.errors import ModelError
from tests.conftest import SHARED

SHARED_MODELS = SHARED / "models"

#: Every test here uses the model files of ../shared (skipped without them).
pytestmark = pytest.mark.shared


def _shared_file(m: models.Manifest) -> Path:
    path = SHARED_MODELS / m.file
    if not path.is_file():
        pytest.skip(f"{path} is absent (set LIVEBOKEH_SHARED to the folder holding models/)")
    return path


@pytest.fixture
def server(monkeypatch):
    """Serves ../shared/models by file name and points every manifest's URL at it; ``state``
    counts the requests and can corrupt the payloads."""
    state = {"hits": [], "corrupt": False}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            state["hits"].append(self.path)
            path = SHARED_MODELS / self.path.lstrip("/")
            if not path.is_file():
                self.send_error(404)
                return
            body = path.read_bytes()
            if state["corrupt"]:
                body = bytes([body[0] ^ 0xFF]) + body[1:]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    real = models.manifests
    served = {n: dataclasses.replace(m, url=f"{base}/{m.file}") for n, m in real().items()}
    monkeypatch.setattr(models, "manifests", lambda: dict(served))
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def offline(monkeypatch):
    """No network: every download fails as it does without one."""

    def fail(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(urllib.request, "urlopen", fail)


@pytest.fixture
def no_model_dir(monkeypatch):
    monkeypatch.delenv("LIVEBOKEH_MODEL_DIR", raising=False)


@contextlib.contextmanager
def read_only(folder: Path):
    """``folder`` made read-only: immutable for root (which writes through mode bits), mode 555
    for anyone else. Skips where neither takes effect."""
    if os.geteuid() == 0:
        if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(folder)],
                                                           capture_output=True).returncode:
            pytest.skip("chattr +i is not available to make a read-only folder as root")
        undo = ["chattr", "-i", str(folder)]
    else:
        folder.chmod(0o555)
        undo = None
    try:
        probe = folder / "probe"
        try:
            probe.write_bytes(b"x")
        except OSError:
            pass
        else:
            probe.unlink()
            pytest.skip(f"{folder} stays writable")
        yield
    finally:
        if undo:
            subprocess.run(undo, check=True)
        else:
            folder.chmod(0o755)


def _photo(tmp_path: Path) -> Path:
    rng = np.random.default_rng(3)
    img = cv2.GaussianBlur(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8), (0, 0), 2)
    path = tmp_path / "photo.png"
    cv2.imwrite(str(path), img)
    return path


def _one_error(err: str) -> str:
    assert "Traceback" not in err and "internal error" not in err, err
    lines = [ln for ln in err.splitlines() if ln.startswith("livebokeh: error")]
    assert len(lines) == 1, err
    return lines[0]


def _damage(path: Path, m: models.Manifest, how: str) -> bytes:
    good = _shared_file(m).read_bytes()
    data = {"empty": b"", "truncated": good[: len(good) // 3],
            "same size": bytes([good[0] ^ 0xFF]) + good[1:]}[how]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


# --- the selfie models through the manifests --------------------------------------------------


@pytest.mark.parametrize(("name", "variant", "size"), [("selfie_general", "general", (256, 256)),
                                                      ("selfie_landscape", "landscape", (256, 144))])
def test_selfie_manifests_match_the_shared_files(name, variant, size):
    m = models.manifest(name)
    path = _shared_file(m)
    assert path.stat().st_size == m.size and models.sha256_of(path) == m.sha256
    assert (m.backend, m.variant, m.input_size, m.licence) == ("mediapipe", variant, size, "Apache-2.0")
    assert m.url.startswith("https://raw.githubusercontent.com/google-ai-edge/mediapipe/63e679d99ca45b30514a9d84c9351a2d77bb9ba0/")
    assert models.for_backend("mediapipe", variant) == m
    assert [x.name for x in models.select("mediapipe")] == ["selfie_general", "selfie_landscape"]


def test_mediapipe_downloads_on_first_use_then_runs_offline(server, no_model_dir, tmp_path, monkeypatch, capsys):
    photo = _photo(tmp_path)
    assert main(["--config", "call", "--input", str(photo), "--output", str(tmp_path / "a.png"), "-q"]) == 0
    assert server["hits"] == ["/selfie_segmentation_landscape.tflite"]  # only the model the run needs
    assert sorted(p.name for p in models.cache_dir().iterdir()) == ["selfie_segmentation_landscape.tflite"]

    def fail(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(urllib.request, "urlopen", fail)  # offline from here on
    assert main(["--config", "call", "--input", str(photo), "--output", str(tmp_path / "b.png"), "-q"]) == 0
    assert (tmp_path / "b.png").is_file()
    # the general model is not there yet: one line naming the command and the folder variable
    assert main(["--backend", "mediapipe", "--input", str(photo), "--output", str(tmp_path / "c.png")]) == 1
    line = _one_error(capsys.readouterr().err)
    assert "the mediapipe general model could not be downloaded (Name or service not known)" in line
    assert "`livebokeh models download mediapipe`" in line and "LIVEBOKEH_MODEL_DIR" in line
    assert "selfie_segmentation.tflite" in line and "--backend mediapipe" not in line.split("; ", 1)[1]
    assert not (tmp_path / "c.png").exists()


@pytest.mark.parametrize("config", [["--backend", "mediapipe"], ["--config", "call"]])
def test_mediapipe_offline_without_its_model_is_one_line(config, offline, no_model_dir, tmp_path, capsys):
    assert main([*config, "--input", str(_photo(tmp_path)), "--output", str(tmp_path / "o.png")]) == 1
    line = _one_error(capsys.readouterr().err)
    assert "livebokeh models download mediapipe" in line and "LIVEBOKEH_MODEL_DIR" in line
    assert not models.cache_dir().exists() or list(models.cache_dir().iterdir()) == []


def test_models_download_mediapipe_fetches_both_and_keeps_valid_files(server, no_model_dir, capsys):
    from livebokeh.commands.models import main as models_main

    assert models_main(["download", "mediapipe"]) == 0
    assert sorted(server["hits"]) == ["/selfie_segmentation.tflite", "/selfie_segmentation_landscape.tflite"]
    capsys.readouterr()
    assert models_main(["download", "mediapipe"]) == 0  # both valid in the cache: no request
    assert models_main(["download", "selfie_general"]) == 0
    assert len(server["hits"]) == 2
    assert capsys.readouterr().out.count("already here, checksum ok") == 3
    assert models_main(["download", "nope"]) == 2  # a wrong argument, as elsewhere
    assert "unknown model 'nope'" in _one_error(capsys.readouterr().err)
    assert models_main(["list", "nope"]) == 2
    assert "unknown model 'nope'" in _one_error(capsys.readouterr().err)
    assert models_main(["list", "mediapipe"]) == 0  # NAME as the help says: only those
    out = capsys.readouterr().out
    assert "selfie_general" in out and "selfie_landscape" in out and "rvm" not in out.split("cache:")[1]


def test_a_corrupt_download_of_a_selfie_model_leaves_nothing(server, no_model_dir, capsys):
    from livebokeh.commands.models import main as models_main

    server["corrupt"] = True
    assert models_main(["download", "selfie_landscape"]) == 1
    assert "wrong checksum" in _one_error(capsys.readouterr().err)
    assert not models.cache_dir().exists() or list(models.cache_dir().iterdir()) == []


# --- LIVEBOKEH_MODEL_DIR, for every model -------------------------------------------------------


@pytest.mark.parametrize("name", sorted(models.manifests()))
def test_the_model_dir_serves_every_model_checked_by_checksum(name, tmp_path, monkeypatch, offline):
    m = models.manifest(name)
    folder = tmp_path / "offline models"
    folder.mkdir()
    (folder / m.file).symlink_to(_shared_file(m))
    monkeypatch.setenv("LIVEBOKEH_MODEL_DIR", str(folder))
    monkeypatch.delenv(m.env_var, raising=False)
    assert models.locate(name) == folder / m.file and models.find(name).source == "model dir"
    # before the cache: a valid cached copy is not the one used
    shutil.copyfile(_shared_file(m), models.cache_dir() / m.file)
    assert models.locate(name) == folder / m.file
    # a damaged file there is refused by name, not used and not replaced
    (folder / m.file).unlink()
    _damage(folder / m.file, m, "same size")
    with pytest.raises(ModelError, match=f"LIVEBOKEH_MODEL_DIR holds a damaged .*{m.file}.*replace it") as info:
        models.locate(name)
    assert "\n" not in str(info.value)
    assert (folder / m.file).stat().st_size == m.size
    # a folder without the file: the cache serves it
    (folder / m.file).unlink()
    assert models.locate(name) == models.cache_dir() / m.file


def test_the_model_dir_is_looked_at_by_every_backend(rvm_weights, deeplab_weights, selfie_models, tmp_path,
                                                     monkeypatch, offline):
    """Each backend built with nothing but LIVEBOKEH_MODEL_DIR (no option, no per-model variable)."""
    from livebokeh.segment import MediaPipeOptions, SegmenterOptions, create_segmenter

    folder = tmp_path / "models"
    folder.mkdir()
    for src in (rvm_weights, deeplab_weights, selfie_models / "selfie_segmentation.tflite",
                selfie_models / "selfie_segmentation_landscape.tflite"):
        (folder / src.name).symlink_to(src)
    monkeypatch.setenv("LIVEBOKEH_MODEL_DIR", str(folder))
    monkeypatch.delenv("LIVEBOKEH_RVM_WEIGHTS", raising=False)
    img = np.zeros((72, 128, 3), np.uint8)
    for backend, own in (("rvm", None), ("deeplab", None), ("mediapipe", MediaPipeOptions("landscape"))):
        opts = SegmenterOptions(threads=1) if own is None else SegmenterOptions(threads=1, own=own)
        with create_segmenter(backend, opts) as seg:
            assert Path(getattr(seg, "weights", getattr(seg, "model_path", ""))).parent == folder
            assert seg.segment(img).data.dtype == np.float32
    assert not models.cache_dir().exists() or list(models.cache_dir().iterdir()) == []


def test_precedence_and_a_model_dir_that_is_no_folder(rvm_weights, tmp_path, monkeypatch):
    folder = tmp_path / "dir"
    folder.mkdir()
    (folder / rvm_weights.name).symlink_to(rvm_weights)
    monkeypatch.setenv("LIVEBOKEH_MODEL_DIR", str(folder))
    assert models.find("rvm").source == "environment"  # the per-model variable first
    assert models.find("rvm", rvm_weights).source == "option"  # the option before it
    monkeypatch.delenv("LIVEBOKEH_RVM_WEIGHTS")
    assert models.find("rvm").source == "model dir"
    monkeypatch.setenv("LIVEBOKEH_MODEL_DIR", str(rvm_weights))  # a file, not a folder
    with pytest.raises(ModelError, match="LIVEBOKEH_MODEL_DIR=.* is not a folder; fix or unset it"):
        models.locate("rvm")


# --- damaged, read-only and misplaced caches ---------------------------------------------------


@pytest.mark.parametrize("how", ["empty", "truncated", "same size"])
@pytest.mark.parametrize("name", ["rvm", "selfie_general"])
def test_list_and_doctor_report_a_damaged_cached_file_and_keep_it(name, how, no_rvm_weights, no_model_dir, capsys):
    m = models.manifest(name)
    cached = models.cached_path(m)
    data = _damage(cached, m, how)
    from livebokeh.commands.models import main as models_main

    assert models_main(["list"]) == 0
    out = capsys.readouterr().out
    assert f"PROBLEM: the cached {cached} is damaged" in out
    assert f"run `livebokeh models download {m.backend}` to fetch it again" in out
    main(["doctor", "--no-devices"])
    out = capsys.readouterr()
    assert f"the cached {cached} is damaged" in out.out and "Traceback" not in out.out + out.err
    if name == "rvm":  # the default backend's: a run would download it again, so it waits for that
        assert "[warn] default backend: rvm (the default): the cached" in out.out
        assert "live use also waits until rvm's weights are downloaded" in out.err
    assert cached.read_bytes() == data  # reported, never deleted


@pytest.mark.parametrize("how", ["empty", "same size"])
def test_download_and_a_run_replace_a_damaged_cached_file_through_a_checked_download(how, server, no_rvm_weights,
                                                                                    no_model_dir, tmp_path, capsys):
    from livebokeh.commands.models import main as models_main

    for name in ("selfie_general", "selfie_landscape"):
        _damage(models.cached_path(models.manifest(name)), models.manifest(name), how)
    assert models_main(["download", "selfie_general"]) == 0
    assert models.find("selfie_general").source == "cache" and server["hits"] == ["/selfie_segmentation.tflite"]
    assert main(["--config", "call", "--input", str(_photo(tmp_path)), "--output", str(tmp_path / "o.png"), "-q"]) == 0
    assert models.find("selfie_landscape").source == "cache" and len(server["hits"]) == 2


@pytest.fixture
def damaged_read_only_cache(tmp_path, monkeypatch, no_rvm_weights, no_model_dir):
    """LIVEBOKEH_CACHE read-only, holding a damaged RVM file and a valid DeepLab one."""
    cache = tmp_path / "ro cache"
    monkeypatch.setenv("LIVEBOKEH_CACHE", str(cache))
    rvm = models.manifest("rvm")
    data = _damage(cache / rvm.file, rvm, "truncated")
    shutil.copyfile(_shared_file(models.manifest("deeplab")), cache / models.manifest("deeplab").file)
    with read_only(cache):
        yield cache, data


def test_a_read_only_cache_with_a_damaged_file_is_one_line_everywhere(damaged_read_only_cache, server, tmp_path,
                                                                      capsys):
    from livebokeh.commands.models import main as models_main

    cache, data = damaged_read_only_cache
    damaged = cache / "rvm_mobilenetv3_fp32.onnx"
    assert models_main(["list"]) == 0
    out = capsys.readouterr()
    assert f"PROBLEM: the cached {damaged} is damaged" in out.out and "is read-only" in out.out
    assert f"LIVEBOKEH_CACHE={cache} is read-only" in out.out and out.err == ""

    assert main(["doctor", "--no-devices"]) == 1
    out = capsys.readouterr()
    assert "[FAIL] default backend: rvm (the default): the cached" in out.out
    assert "fix: point LIVEBOKEH_CACHE at a writable folder" in out.out
    assert "[warn] model cache:" in out.out and "Traceback" not in out.out + out.err
    assert "ready for live use" not in out.err.replace("not ready for live use", "")

    assert models_main(["download"]) == 1  # the default backend's
    line = _one_error(capsys.readouterr().err)
    assert f"LIVEBOKEH_CACHE={cache} is read-only; point LIVEBOKEH_CACHE at a writable folder" in line
    assert models_main(["download", "deeplab"]) == 0  # valid: kept, not fetched again
    assert "already here, checksum ok" in capsys.readouterr().out

    assert main(["--input", str(_photo(tmp_path)), "--output", str(tmp_path / "o.png")]) == 1
    line = _one_error(capsys.readouterr().err)
    assert f"the cached {damaged} is damaged" in line and "is read-only" in line and "LIVEBOKEH_MODEL_DIR" in line
    assert server["hits"] == [] and damaged.read_bytes() == data
    assert sorted(p.name for p in cache.iterdir()) == ["deeplabv3_257_mv_gpu.tflite", "rvm_mobilenetv3_fp32.onnx"]


def test_a_read_only_cache_still_serves_its_valid_files(damaged_read_only_cache, tmp_path, offline):
    assert main(["--backend", "deeplab", "--input", str(_photo(tmp_path)), "--output", str(tmp_path / "o.png"),
                 "-q"]) == 0


@pytest.mark.parametrize("where", ["a file", "under a file", "the model's name is a folder", "a dangling link",
                                   "under a dangling link", "a link loop"])
def test_a_misplaced_cache_is_one_line_everywhere(where, server, tmp_path, monkeypatch, no_rvm_weights, no_model_dir,
                                                  capsys):
    """(A link to a missing folder was "another download is writing ...; wait for it".)"""
    from livebokeh.commands.models import main as models_main

    blocker = tmp_path / "cache.txt"
    blocker.write_text("not a folder")
    dangling = tmp_path / "gone"
    dangling.symlink_to(tmp_path / "missing" / "folder")
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    cache = {"a file": blocker, "under a file": blocker / "livebokeh",
             "the model's name is a folder": tmp_path / "cache", "a dangling link": dangling,
             "under a dangling link": dangling / "livebokeh", "a link loop": loop}[where]
    if where == "the model's name is a folder":
        (cache / "rvm_mobilenetv3_fp32.onnx").mkdir(parents=True)
    monkeypatch.setenv("LIVEBOKEH_CACHE", str(cache))

    assert models_main(["list"]) == 0
    assert "rvm_mobilenetv3_fp32.onnx" in capsys.readouterr().out
    code = main(["doctor", "--no-devices"])
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err and "default backend: rvm" in out.out
    folder = where == "the model's name is a folder"
    # the folder in the way is named (doctor said "no problem found", the download "point
    # LIVEBOKEH_CACHE at a writable folder", though it is writable)
    said = f"{cache / 'rvm_mobilenetv3_fp32.onnx'} is a folder where the cache keeps the rvm model" if folder else \
        "LIVEBOKEH_CACHE"
    assert code == 1
    assert said in out.out if folder else ("is not a folder" in out.out or "cannot be made" in out.out)
    assert models_main(["download", "rvm"]) == 1
    line = _one_error(capsys.readouterr().err)
    assert said in line and (not folder or "writable" not in line) and "another download" not in line
    if "dangling" in where:
        assert f"{dangling} is a link to a missing folder" in line
    if where == "a link loop":  # (it said "a link to a missing folder: make that folder")
        assert f"{loop} is a link that leads back to itself: remove it" in line
    assert main(["--input", str(_photo(tmp_path)), "--output", str(tmp_path / "o.png")]) == 1
    assert said in _one_error(capsys.readouterr().err)
    assert blocker.read_text() == "not a folder"
    if folder:
        assert not server["hits"]  # nothing fetched that could not land, no partial file beside the folder
        assert sorted(p.name for p in cache.iterdir()) == ["rvm_mobilenetv3_fp32.onnx"]
        with pytest.raises(ModelError, match="is a folder where the rvm model is to be saved"):
            models.download(models.manifest("rvm"))


@pytest.mark.parametrize("why", ["the variable names a missing file", "the model folder is a file",
                                 "the model folder holds a damaged file"])
def test_a_download_says_why_a_run_cannot_find_the_model_instead_of_fetching_it(why, server, tmp_path, monkeypatch,
                                                                              no_rvm_weights, no_model_dir, capsys):
    """It downloaded a file the cache already held, said so, and the run still failed."""
    from livebokeh.commands.models import main as models_main

    m = models.manifest("rvm")
    cached = models.cached_path(m)
    cached.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(_shared_file(m), cached)  # valid: what a run would use were nothing else wrong
    if why == "the variable names a missing file":
        monkeypatch.setenv("LIVEBOKEH_RVM_WEIGHTS", str(tmp_path / "gone.onnx"))
        said = f"LIVEBOKEH_RVM_WEIGHTS={tmp_path / 'gone.onnx'} does not exist; fix or unset it"
    elif why == "the model folder is a file":
        (tmp_path / "models.txt").write_text("x")
        monkeypatch.setenv("LIVEBOKEH_MODEL_DIR", str(tmp_path / "models.txt"))
        said = "LIVEBOKEH_MODEL_DIR=" + str(tmp_path / "models.txt") + " is not a folder"
    else:
        _damage(tmp_path / "md" / m.file, m, "truncated")
        monkeypatch.setenv("LIVEBOKEH_MODEL_DIR", str(tmp_path / "md"))
        said = f"LIVEBOKEH_MODEL_DIR holds a damaged {tmp_path / 'md' / m.file}"
    before = cached.stat().st_mtime_ns
    assert models_main(["download", "rvm"]) == 1
    out = capsys.readouterr()
    assert said in _one_error(out.err) and out.out == ""
    assert not server["hits"] and cached.stat().st_mtime_ns == before
    assert main(["--input", str(_photo(tmp_path)), "--output", str(tmp_path / "o.png")]) == 1
    assert said in _one_error(capsys.readouterr().err)


def test_a_download_while_the_variable_names_the_file_in_use_says_so(server, rvm_weights, monkeypatch, no_model_dir,
                                                                     capsys):
    from livebokeh.commands.models import main as models_main

    monkeypatch.setenv("LIVEBOKEH_RVM_WEIGHTS", str(rvm_weights))
    assert models_main(["download", "rvm"]) == 0
    out = capsys.readouterr().out
    assert f"{rvm_weights}  (LIVEBOKEH_RVM_WEIGHTS names it: runs use it, not the cache" in out
    assert not server["hits"]


def test_the_service_install_check_knows_mediapipe_needs_its_model(no_model_dir, server):
    from livebokeh.commands.service import weights_problem
    from livebokeh.config import load_config

    cfg, env = load_config("call"), dict(os.environ)
    why, where = weights_problem(cfg, env, download=False)
    assert where is None and "the mediapipe landscape model is not downloaded" in why
    assert "`livebokeh models download mediapipe`" in why and "LIVEBOKEH_MODEL_DIR" in why
    why, where = weights_problem(cfg, env, download=True)  # as install does when it starts the service
    assert why is None and where == models.cache_dir() / "selfie_segmentation_landscape.tflite"
    assert server["hits"] == ["/selfie_segmentation_landscape.tflite"]


def test_a_live_runs_fallback_model_is_fetched_before_the_camera_opens(no_model_dir, server, caplog):
    from livebokeh.app import fetch_fallback
    from livebokeh.config import Config, load_config

    fetch_fallback(Config())  # RVM, falling back to MediaPipe's general model under load
    assert server["hits"] == ["/selfie_segmentation.tflite"] and models.find("selfie_general").source == "cache"
    fetch_fallback(Config())  # there now: nothing more
    fetch_fallback(load_config("call"))  # MediaPipe itself: no fallback to fetch
    assert len(server["hits"]) == 1


def test_a_live_run_goes_on_without_its_fallback_offline(no_model_dir, offline, caplog):
    from livebokeh.app import fetch_fallback
    from livebokeh.config import Config

    with caplog.at_level("WARNING", logger="livebokeh"):
        fetch_fallback(Config())  # no exception: the fallback is a last resort
    assert "the live fallback mediapipe is not available" in caplog.text


def test_a_weights_variable_naming_a_folder_says_so(tmp_path, monkeypatch):
    """A ``LIVEBOKEH_*_WEIGHTS`` variable naming a folder is called a folder, not a missing file."""
    from livebokeh import models

    m = models.manifest("selfie_general")
    monkeypatch.setenv(m.env_var, str(tmp_path))
    found = models.find("selfie_general")
    assert not found.ok and f"{m.env_var}={tmp_path} is a folder, not the model's file; fix or unset it" == found.problem
    monkeypatch.delenv(m.env_var)
    found = models.find("selfie_general", explicit=tmp_path)  # the same given as an option
    assert not found.ok and f"weights file {tmp_path} is a folder, not the model's file" in found.problem
