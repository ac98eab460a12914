"""Weights download: a local HTTP server on 127.0.0.1 stands in for the official address."""

from __future__ import annotations

import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from livebokeh import models
from livebokeh.commands.models import main as models_main
from livebokeh.errors import ModelError


@pytest.fixture
def server(deeplab_weights):
    payload = deeplab_weights.read_bytes()
    state = {"mode": "ok", "hits": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            state["hits"] += 1
            body = payload
            if state["mode"] == "corrupt":
                body = bytes([payload[0] ^ 0xFF]) + payload[1:]
            self.send_response(200)
            if state["mode"] == "endless":  # no length, and more than the model, for ever
                self.end_headers()
                try:
                    while True:
                        self.wfile.write(b"x" * 65536)
                except OSError:
                    return
            if state["mode"] == "stall":  # the headers, half the body, then nothing
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                time.sleep(60)
                return
            if state["mode"] == "long":
                body = payload + b"x" * 1000
            if state["mode"] == "page":  # a 'not found' page served with 200
                body = b"<html>not here</html>"
                self.send_header("Content-Type", "text/html; charset=utf-8")
            if state["mode"] == "packed":
                import gzip

                body = gzip.compress(payload)
                self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if state["mode"] == "cut":
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.connection.close()  # the transfer breaks off
                return
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/deeplabv3_257_mv_gpu.tflite", state
    finally:
        httpd.shutdown()
        httpd.server_close()


def _cache_files():
    d = models.cache_dir()
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def test_download_checks_the_checksum_and_lands_in_the_cache(server):
    url, state = server
    m = models.manifest("deeplab")
    path = models.download(m, url=url, progress=True)
    assert path == models.cached_path(m) and models.sha256_of(path) == m.sha256
    assert _cache_files() == [m.file]
    # now it is found offline without another request
    assert models.locate("deeplab") == path and state["hits"] == 1


@pytest.mark.parametrize(("mode", "message", "retry"), [
    ("corrupt", "wrong checksum", True),
    ("cut", "could not be downloaded|stopped at", True),
    # a mirror sending an endless body wrote 419 MB for a 249 KB model before saying 'stopped at'
    ("endless", "sends more than the", False),
    ("long", "sends .* bytes, and", False),
    # an HTML page and a gzip-encoded body were both 'stopped at N of M bytes; try again'
    ("page", r"sends a web page \(text/html\), not .*: a wrong address", False),
    ("packed", r"packed \(gzip\).*give an address that serves the file itself", False),
])
def test_bad_transfers_leave_nothing_in_the_cache_and_say_what_they_were(server, mode, message, retry):
    """One line each; 'try again' only where a retry can help (a transfer that broke off or was
    damaged), not for a wrong address; the cache as it was."""
    url, state = server
    state["mode"] = mode
    with pytest.raises(ModelError, match=message) as info:
        models.download(models.manifest("deeplab"), url=url, progress=False)
    assert "\n" not in str(info.value)
    assert ("try again" in str(info.value)) == retry or mode == "cut"  # (a cut may be either line)
    assert _cache_files() == []


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT"])
def test_ctrl_c_during_a_download_is_one_line_and_leaves_no_part_file(server, signame):
    """Ctrl-C in `models download` printed a 27-line traceback; each command now ends on it with one
    line, 130. SIGTERM, SIGHUP and SIGQUIT ended it silently (143, 129, 131) with its part file left:
    they stop every subcommand as Ctrl-C does."""
    import signal
    import subprocess
    import sys

    from tests.conftest import REPO

    url, state = server
    state["mode"] = "stall"
    proc = subprocess.Popen([sys.executable, "-m", "livebokeh", "models", "download", "deeplab", "--url", url],
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
    try:
        for line in proc.stderr:
            if "downloading" in line:
                break
        time.sleep(0.5)  # (into the body: the server holds it there)
        proc.send_signal(getattr(signal, signame))
        rest = proc.stderr.read()
        assert proc.wait(timeout=60) == 130
    finally:
        proc.kill()
    assert rest.strip() == "livebokeh models: interrupted", rest
    assert _cache_files() == []


def test_a_link_at_the_part_files_name_is_never_written_through(server, tmp_path):
    """A link planted (or left) at `<cache>/<file>.part`: its target, a file of the user's, was
    overwritten with the model's bytes. The link is removed; the target is as it was."""
    url, state = server
    m = models.manifest("deeplab")
    precious = tmp_path / "precious.txt"
    precious.write_text("precious data")
    models.cache_dir().mkdir(parents=True, exist_ok=True)
    part = models.cached_path(m).with_name(m.file + ".part")
    part.symlink_to(precious)
    state["mode"] = "cut"
    with pytest.raises(ModelError):
        models.download(m, url=url, progress=False)
    assert precious.read_text() == "precious data" and not part.is_symlink()
    part.symlink_to(precious)
    state["mode"] = "ok"
    assert models.download(m, url=url, progress=False) == models.cached_path(m)
    assert precious.read_text() == "precious data" and models.sha256_of(models.cached_path(m)) == m.sha256


def test_a_damaged_cached_file_is_fetched_again(server, monkeypatch):
    url, state = server
    m = models.manifest("deeplab")
    models.cache_dir().mkdir(parents=True, exist_ok=True)
    models.cached_path(m).write_bytes(b"half a file")
    monkeypatch.setattr(models, "manifest", lambda name: m.__class__(**{**m.__dict__, "url": url}))
    path = models.locate("deeplab")
    assert models.sha256_of(path) == m.sha256 and state["hits"] == 1


def test_explicit_and_environment_paths(deeplab_weights, monkeypatch, tmp_path):
    assert models.locate("deeplab", deeplab_weights) == deeplab_weights
    with pytest.raises(ModelError, match=r"does not exist; check --deeplab-weights \(or weights in the settings' \[deeplab\]\)"):
        models.locate("deeplab", tmp_path / "none.tflite")  # the path came from the flag or a settings file
    fifo = tmp_path / "w.onnx"
    os.mkfifo(fifo)
    assert "is not a regular file (a pipe)" in models.find("rvm", fifo).problem  # it exists: not "does not exist"
    assert "is not a regular file (a device" in models.find("rvm", "/dev/zero").problem
    for name, key in (("rvm", "[rvm]"), ("depth", "[render]")):
        assert f"(or {'depth_weights' if name == 'depth' else 'weights'} in the settings' {key})" in \
            models.find(name, tmp_path / "none.onnx").problem
    monkeypatch.setenv("LIVEBOKEH_DEEPLAB_WEIGHTS", str(deeplab_weights))
    assert models.locate("deeplab") == deeplab_weights
    monkeypatch.setenv("LIVEBOKEH_DEEPLAB_WEIGHTS", str(tmp_path / "gone.tflite"))
    with pytest.raises(ModelError, match="LIVEBOKEH_DEEPLAB_WEIGHTS=.* does not exist"):
        models.locate("deeplab")


def test_offline_without_weights(monkeypatch):
    with pytest.raises(ModelError, match="the deeplab model is not downloaded; run `livebokeh models download deeplab`"):
        models.locate("deeplab", download_missing=False)
    with pytest.raises(ModelError, match="unknown model 'nope'"):
        models.manifest("nope")


def test_manifest_matches_the_shared_file(deeplab_weights):
    m = models.manifest("deeplab")
    assert deeplab_weights.stat().st_size == m.size
    assert models.sha256_of(deeplab_weights) == m.sha256
    assert m.person_class == 15 and m.input_size == (257, 257) and m.licence == "Apache-2.0"


def test_models_command(server, capsys):
    url, _ = server
    assert models_main(["list"]) == 0
    assert "not downloaded" in capsys.readouterr().out
    assert models_main(["download", "deeplab", "--url", url]) == 0
    assert capsys.readouterr().out.strip().endswith("deeplabv3_257_mv_gpu.tflite")
    assert models_main(["path", "deeplab"]) == 0
    assert models_main(["list"]) == 0
    assert str(models.cache_dir()) in capsys.readouterr().out
    assert models_main(["download", "nope"]) == 2  # a wrong argument


def test_rvm_manifest_matches_the_shared_file_and_downloads_through_the_same_checks(rvm_weights, capsys,
                                                                                     no_rvm_weights):
    m = models.manifest("rvm")
    assert rvm_weights.stat().st_size == m.size and models.sha256_of(rvm_weights) == m.sha256
    assert m.licence == "GPL-3.0" and m.input_size == (0, 0) and m.env_var == "LIVEBOKEH_RVM_WEIGHTS"
    payload = rvm_weights.read_bytes()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        with pytest.raises(ModelError, match="the rvm model is not downloaded; run `livebokeh models download rvm`"):
            models.locate("rvm", download_missing=False)
        url = f"http://127.0.0.1:{httpd.server_address[1]}/rvm_mobilenetv3_fp32.onnx"
        assert models_main(["download", "rvm", "--url", url]) == 0
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert capsys.readouterr().out.strip().endswith("rvm_mobilenetv3_fp32.onnx")
    assert models.locate("rvm") == models.cached_path(m)  # found offline from now on


@pytest.mark.parametrize("first_lands", [True, False, "taken over"])
def test_a_second_download_waits_for_the_first_and_takes_its_file(server, deeplab_weights, caplog, first_lands):
    """Two downloads of one model at once both failed and saved nothing: the second removed the
    first's part file ("a killed download's"), the first then checked the second's half file by
    name ("wrong checksum") and removed it, and the second's move failed ("point LIVEBOKEH_CACHE at
    a writable folder"). A part file's writer holds a lock on it: a second download waits for it,
    then takes the model it saved (no second transfer), or downloads itself when it did not land."""
    import fcntl
    import logging

    from tests.conftest import until

    url, state = server
    m = models.manifest("deeplab")
    dest = models.cached_path(m)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(m.file + ".part")
    fd = os.open(part, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)  # the first download, under way
    fcntl.flock(fd, fcntl.LOCK_EX)
    result = {}

    def second():
        try:
            result["path"] = models.download(m, url=url, progress=False)
        except ModelError as err:
            result["error"] = err

    with caplog.at_level(logging.INFO, logger="livebokeh.models"):
        waiting = threading.Thread(target=second)
        waiting.start()
        until(lambda: "waiting for it" in caplog.text, "the second download to wait")
        assert part.exists() and state["hits"] == 0  # the first's file left alone
        if first_lands == "taken over":  # the first killed; a third download took over before this one woke
            os.unlink(part)
            third = os.open(part, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            fcntl.flock(third, fcntl.LOCK_EX)
            os.close(fd)
            until(lambda: caplog.text.count("waiting for it") == 2, "the second download to wait again")
            os.write(third, deeplab_weights.read_bytes())
            os.replace(part, dest)
            os.close(third)  # (it failed with 'another download is writing' here)
        elif first_lands:
            os.write(fd, deeplab_weights.read_bytes())
            os.replace(part, dest)
            os.close(fd)
        else:
            os.unlink(part)
            os.close(fd)
        waiting.join(60)
    assert result.get("path") == dest and models.sha256_of(dest) == m.sha256
    assert state["hits"] == (1 if first_lands is False else 0)
    assert _cache_files() == [m.file]


def test_a_given_address_that_fails_is_named_without_internet_advice(tmp_path):
    """`models download --url URL` failing said to run `livebokeh models download mediapipe` "with
    internet access": a backend, where --url takes one model, and nothing about the address given."""
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/model.tflite"
    with pytest.raises(ModelError) as info:
        models.download(models.manifest("selfie_general"), url=url, progress=False)
    text = str(info.value)
    assert f"could not be downloaded from {url} (" in text and "check the address" in text
    assert "internet access" not in text and "models download mediapipe" not in text
