"""The command itself serves the page and answers ``ctl``: a foreground run of ``livebokeh``
with a clip as its camera, steered from another process; SIGHUP reads its settings file again
and does not stop it; SIGTERM does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path


import pytest

from tests.conftest import REPO, until
from tests.control.conftest import write_clip

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow,  # the command end to end: not in the quick loop
              pytest.mark.skipif(sys.platform != "linux", reason="signals and /proc")]

SCRIPT = textwrap.dedent("""
    import sys
    import pyvirtualcam
    from pyvirtualcam import camera as pvc

    class Null:
        def __init__(self, *, width, height, fps, fourcc, device, **kw):
            self.fourcc = fourcc
        def send(self, frame):
            pass
        def device(self):
            return "null0"
        def native_fourcc(self):
            return self.fourcc
        def close(self):
            pass

    pvc.BACKENDS.clear()
    pyvirtualcam.register_backend("null", Null)
    from livebokeh.cli import main
    sys.exit(main(sys.argv[1:]))
""")


def ctl(env, *args) -> tuple[int, str, str]:
    done = subprocess.run([sys.executable, "-m", "livebokeh", "ctl", *args], capture_output=True, text=True,
                          env=env, timeout=120)
    return done.returncode, done.stdout, done.stderr


def test_a_foreground_run_serves_ctl_and_reloads_its_settings_on_sighup(tmp_path, selfie_models):
    clip = write_clip(tmp_path / "camera.mp4", frames=90, size=(160, 120))
    settings = tmp_path / "settings.toml"
    settings.write_text('[segmenter]\nbackend = "mediapipe"\n[render]\nblur = 0.03\n')
    runtime = Path(os.environ["XDG_RUNTIME_DIR"])  # the test's own (tests/control/conftest.py)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    log = tmp_path / "log.txt"
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-c", SCRIPT, "--camera", str(clip), "--loop", "--config",
                                 str(settings), "--vcam-backend", "null", "--no-preview"], env=env, stderr=err)
    try:
        until(lambda: list(runtime.glob("livebokeh/run-*.json")) or proc.poll() is not None, "the run file", 120)
        assert proc.poll() is None, log.read_text()
        code, out, _ = ctl(env, "status")
        state = json.loads(out)
        assert code == 0 and state["pid"] == proc.pid and state["url"].startswith("http://127.0.0.1:")
        assert "key=" in state["url"] and state["url"] in log.read_text()  # the log prints the address
        assert ctl(env, "get", "render.blur")[1] == "0.03\n"
        assert ctl(env, "set", "render.mirror", "true")[0] == 0

        settings.write_text('[segmenter]\nbackend = "mediapipe"\n[render]\nblur = 0.09\n[camera]\nwidth = 640\n')
        os.kill(proc.pid, signal.SIGHUP)
        until(lambda: ctl(env, "get", "render.blur")[1] == "0.09\n", "the settings file read again", 60)
        assert proc.poll() is None  # SIGHUP did not stop it
        assert ctl(env, "get", "render.mirror")[1] == "false\n"  # the file's value: the file is in effect
        until(lambda: "camera.width changed in the settings file: restart livebokeh" in log.read_text(), "the log")

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert list(runtime.glob("livebokeh/run-*.json")) == []  # gone with the run

