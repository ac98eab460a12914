"""``livebokeh service``: the systemd user unit, checked before it is written, never replacing what
the user owns, taken back when systemd refuses it.

systemctl is a fake (recorded calls, chosen answers) and sysfs a folder of the test's own, so no
test needs a user session, v4l2loopback or the network.
"""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from livebokeh.commands import service
from livebokeh.errors import ModelError

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="a systemd user unit: Linux only")


class Systemctl:
    """A fake ``systemctl --user``: records each call; ``fail`` maps a verb to its error text."""

    def __init__(self, manager_env: str) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.fail: dict[str, str] = {}
        self.answers: dict[str, tuple[int, str]] = {}  # a verb's exit status and output (is-active: 3, inactive)
        self.manager_env = manager_env

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        self.calls.append(args)
        for verb, why in self.fail.items():
            if verb in ("*", args[0]):
                return subprocess.CompletedProcess(["systemctl", "--user", *args], 1, "", why)
        if args[0] in self.answers:
            code, out = self.answers[args[0]]
            return subprocess.CompletedProcess(["systemctl", "--user", *args], code, out, "")
        out = self.manager_env if args[0] == "show-environment" else "ok\n"
        return subprocess.CompletedProcess(["systemctl", "--user", *args], 0, out, "")

    def verbs(self) -> list[str]:
        return [c[0] for c in self.calls]


def loopback(sysfs: Path, loaded: bool = True) -> None:
    """sysfs as Linux shows it with v4l2loopback loaded (one device), or without it."""
    (sysfs / "module" / "videodev").mkdir(parents=True, exist_ok=True)
    if loaded:
        (sysfs / "module" / "v4l2loopback").mkdir(exist_ok=True)
        (sysfs / "devices" / "virtual" / "video4linux" / "video10").mkdir(parents=True, exist_ok=True)
    else:
        shutil.rmtree(sysfs / "module" / "v4l2loopback", ignore_errors=True)


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A home and config home of the test's own, a user systemd that answers (its environment has
    HOME, PATH and the same XDG_CONFIG_HOME), v4l2loopback loaded, and RVM's weights named by LIVEBOKEH_RVM_WEIGHTS (a
    stand-in file: only its presence is checked)."""
    user = tmp_path / "home"
    user.mkdir()
    monkeypatch.setenv("HOME", str(user))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    weights = tmp_path / "weights" / "rvm.onnx"
    weights.parent.mkdir()
    weights.write_bytes(b"weights")
    monkeypatch.setenv("LIVEBOKEH_RVM_WEIGHTS", str(weights))
    from livebokeh.sinks import virtualcam

    monkeypatch.setattr(virtualcam, "SYSFS", tmp_path / "sys")
    monkeypatch.setattr(virtualcam, "modules_dir", lambda release=None: tmp_path / "modules")
    loopback(tmp_path / "sys")
    fake = Systemctl(f"HOME={user}\nPATH=/usr/bin:/bin\nLANG=C.UTF-8\nXDG_CONFIG_HOME={tmp_path / 'config'}\n")
    monkeypatch.setattr(service, "_systemctl", fake)
    return fake


def _unit(path):
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read_string(path.read_text())
    return parser


def _environment(path) -> dict[str, str]:
    """The unit's Environment= lines, unquoted (one assignment each, as this command writes them)."""
    env = {}
    for line in path.read_text().splitlines():
        if line.startswith("Environment="):
            value = line[len("Environment="):]
            assert value[0] == value[-1] == '"'
            key, _, val = value[1:-1].replace("%%", "%").replace('\\"', '"').replace("\\\\", "\\").partition("=")
            env[key] = val
    return env


def _left_in(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def test_install_writes_an_on_demand_unit_and_the_default_settings(home, capsys):
    assert service.main(["install"]) == 0
    unit, settings = service.unit_path(), service.settings_path()
    assert unit.is_file() and settings.is_file()
    u = _unit(unit)
    exec_start = u["Service"]["ExecStart"].split()
    assert exec_start[:3] == [sys.executable, "-m", "livebokeh"]
    assert exec_start[exec_start.index("--config") + 1] == str(settings.resolve())
    assert "--on-demand" in exec_start and "--no-preview" in exec_start
    assert u["Service"]["Restart"] == "on-failure" and u["Install"]["WantedBy"] == "default.target"
    from livebokeh.config import Config, load_config

    assert load_config(settings) == Config()  # the defaults, as a file the user edits
    assert home.verbs() == ["show-environment", "daemon-reload", "enable"]
    assert home.calls[-1] == ("enable", "--now", "livebokeh.service")
    out = capsys.readouterr().out
    assert "enabled and started" in out and "the rvm weights the service uses" in out
    assert "where your user's systemd looks" not in out  # its XDG_CONFIG_HOME is this shell's: nothing to say
    st = service.state()
    assert st.installed and st.ours and st.on_demand
    assert _left_in(unit.parent) == {"livebokeh.service"}  # no temporary file left


def test_the_unit_stops_retrying_and_never_on_what_a_restart_cannot_mend(home):
    assert service.main(["install", "--no-start"]) == 0
    u = _unit(service.unit_path())
    assert int(u["Unit"]["StartLimitBurst"]) == service.START_LIMIT_BURST <= 5
    assert int(u["Unit"]["StartLimitIntervalSec"]) == service.START_LIMIT_INTERVAL > 0  # 0 would retry forever
    assert int(u["Service"]["RestartSec"]) * service.START_LIMIT_BURST < service.START_LIMIT_INTERVAL
    assert set(u["Service"]["RestartPreventExitStatus"].split()) == {"2", "3"}
    assert u["Service"]["SuccessExitStatus"] == "130" and u["Service"]["WorkingDirectory"] == "%h"
    assert _environment(service.unit_path())["LIVEBOKEH_SERVICE"] == "livebokeh.service"


def test_the_journal_says_what_systemd_does_next():
    env = {"LIVEBOKEH_SERVICE": "livebokeh.service"}
    for code in (2, 3):
        assert "does not restart after exit" in service.exit_note(code, env)
    assert "tries again in 10 s, at most 5 starts in 120 s" in service.exit_note(1, env)
    assert service.exit_note(0, env) is None and service.exit_note(130, env) is None
    assert service.exit_note(3, {}) is None  # not the service: nothing to add


def test_a_failing_run_under_the_unit_writes_the_note_to_the_journal(monkeypatch, capsys):
    from livebokeh.cli import main

    monkeypatch.setenv("LIVEBOKEH_SERVICE", "livebokeh.service")
    assert main(["--blur", "5", "--print-config"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("livebokeh: error: --blur") and "does not restart after exit 2" in err[1]
    monkeypatch.delenv("LIVEBOKEH_SERVICE")
    assert main(["--blur", "5", "--print-config"]) == 2
    assert len(capsys.readouterr().err.splitlines()) == 1


def test_nothing_the_user_owns_is_replaced(home, capsys):
    settings = service.settings_path()
    settings.parent.mkdir(parents=True)
    settings.write_text("[render]\nblur = 0.05\n")
    assert service.main(["install", "--no-start", "--always"]) == 0
    assert settings.read_text() == "[render]\nblur = 0.05\n" and not service.state().on_demand
    unit = service.unit_path()
    before = unit.read_text()
    assert service.main(["install"]) == 2  # the unit exists
    assert "pass --overwrite" in capsys.readouterr().err and unit.read_text() == before
    assert service.main(["install", "--overwrite", "--no-start"]) == 0 and service.state().on_demand
    # a unit of the same name that this command did not write is not removed
    unit.write_text("[Service]\nExecStart=/usr/bin/true\n")
    assert service.main(["uninstall"]) == 2 and unit.exists()
    assert "not written by" in capsys.readouterr().err
    # and status does not call it livebokeh's camera
    assert service.main(["status"]) == 0
    out = capsys.readouterr().out
    assert "not written by `livebokeh service install`" in out and "camera" not in out and "on demand" not in out


def test_a_broken_settings_file_fails_at_install_not_at_every_login(home, capsys):
    settings = service.settings_path()
    settings.parent.mkdir(parents=True)
    settings.write_text("[render]\nblurr = 1\n")
    assert service.main(["install", "--no-start"]) == 2
    assert "blurr" in capsys.readouterr().err and not service.unit_path().exists()


@pytest.mark.parametrize("text, said", [
    ("[virtual_camera]\nenabled = false\n", "turn the virtual camera off"),
    ('[virtual_camera]\nbackend = "obs"\n', "virtual camera backend 'obs'"),
    ('[render]\neffect = "replace"\nbackground = "beach.jpg"\n', "background 'beach.jpg' is neither a file nor"),
    ('[render]\neffect = "replace"\n', "effect 'replace' needs a background"),
])
def test_settings_the_service_cannot_run_with_are_refused(home, capsys, text, said):
    settings = service.settings_path()
    settings.parent.mkdir(parents=True)
    settings.write_text(text)
    assert service.main(["install"]) == 2
    assert said in capsys.readouterr().err and not service.unit_path().exists() and home.calls == []


def test_a_relative_background_is_looked_for_where_the_service_starts(home, tmp_path, monkeypatch, capsys):
    import cv2
    import numpy as np

    settings = service.settings_path()
    settings.parent.mkdir(parents=True)
    settings.write_text('[render]\neffect = "replace"\nbackground = "beach.png"\n')
    monkeypatch.chdir(tmp_path)
    cv2.imwrite(str(tmp_path / "beach.png"), np.zeros((8, 8, 3), np.uint8))  # here, not in the home folder
    assert service.main(["install"]) == 2 and "beach.png" in capsys.readouterr().err
    cv2.imwrite(str(tmp_path / "home" / "beach.png"), np.zeros((8, 8, 3), np.uint8))
    assert service.main(["install"]) == 0


def test_uninstall_stops_and_removes_only_the_unit(home, capsys):
    assert service.main(["install", "--no-start"]) == 0
    assert service.main(["uninstall"]) == 0
    assert not service.unit_path().exists() and service.settings_path().exists()
    assert ("disable", "--now", "livebokeh.service") in home.calls
    assert service.main(["uninstall"]) == 0 and "nothing to do" in capsys.readouterr().out
    assert service.main(["status"]) == 0 and "not installed" in capsys.readouterr().out


# -- checked before anything is written -------------------------------------------------------


def test_without_a_user_systemd_install_writes_nothing_and_says_so(home, capsys):
    home.fail["*"] = "Failed to connect to bus: No medium found"
    for _ in range(2):  # a retry says the same, never 'exists; pass --overwrite'
        assert service.main(["install"]) == 3
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "nothing was written" in err
        assert "your user's systemd cannot be reached (Failed to connect to bus: No medium found)" in err
        assert "--no-start writes the unit anyway" in err
        assert not service.unit_path().exists() and not service.settings_path().exists()
        assert _left_in(service.unit_path().parent) == set()
    assert home.verbs() == ["show-environment", "show-environment"]  # asked, nothing enabled
    # --no-start: written, no systemd needed
    assert service.main(["install", "--no-start"]) == 0
    assert "start it with: systemctl --user daemon-reload" in capsys.readouterr().out
    assert service.unit_path().is_file() and service.settings_path().is_file()


def test_without_systemctl_at_all(home, monkeypatch, capsys):
    monkeypatch.setattr(service, "_systemctl", lambda *a: None)
    assert service.main(["install"]) == 3
    assert "there is no systemctl here" in capsys.readouterr().err and not service.unit_path().exists()


@pytest.mark.parametrize("installed, said", [
    (False, "the v4l2loopback module is not installed: install v4l2loopback-dkms"),
    (True, "the v4l2loopback module is installed but not loaded: run `sudo modprobe v4l2loopback"),
])
def test_without_v4l2loopback_install_says_how_and_writes_nothing(home, tmp_path, capsys, installed, said):
    loopback(tmp_path / "sys", loaded=False)
    (tmp_path / "modules").mkdir()
    (tmp_path / "modules" / "modules.dep").write_text("updates/dkms/v4l2loopback.ko:\n" if installed else "")
    assert service.main(["install"]) == 3
    err = capsys.readouterr().err
    assert f"no virtual camera: {said}" in err and err.count("\n") == 1
    assert not service.unit_path().exists() and not service.settings_path().exists()
    assert "enable" not in home.verbs()
    assert service.main(["install", "--no-start"]) == 0  # written, and the warning printed
    out = capsys.readouterr().out
    assert f"warning: no virtual camera: {said}" in out and service.unit_path().is_file()


def test_a_vcam_device_in_the_settings_must_be_a_loopback_device(home, capsys):
    settings = service.settings_path()
    settings.parent.mkdir(parents=True)
    settings.write_text('[virtual_camera]\ndevice = "/dev/video-none"\n')
    assert service.main(["install"]) == 3
    assert "virtual camera device /dev/video-none" in capsys.readouterr().err and not service.unit_path().exists()


def test_every_problem_is_told_in_one_line(home, tmp_path, monkeypatch, capsys):
    """No systemd, no v4l2loopback, no weights: all three at once, so one fix round is enough."""
    home.fail["*"] = "Failed to connect to bus: No medium found"
    loopback(tmp_path / "sys", loaded=False)
    monkeypatch.setenv("LIVEBOKEH_RVM_WEIGHTS", str(tmp_path / "gone.onnx"))
    assert service.main(["install"]) == 3
    (line,) = capsys.readouterr().err.splitlines()
    assert "cannot be reached" in line and "v4l2loopback" in line and "gone.onnx" in line
    assert not service.unit_path().exists()


def test_missing_weights_are_fetched_at_install_or_the_install_is_refused(home, tmp_path, monkeypatch, capsys):
    """Starting now is the first use: weights missing from the service's cache are downloaded
    there; offline, the install stops with the download's own advice. --no-start only warns."""
    from livebokeh import models

    monkeypatch.delenv("LIVEBOKEH_RVM_WEIGHTS")
    monkeypatch.setenv("https_proxy", "http://proxy.example:3128")  # only this shell has it
    fetched = []

    def online(name, explicit=None, download_missing=True):
        if not download_missing:
            raise ModelError(f"{name} weights is not downloaded; run `livebokeh models download {name}`")
        fetched.append((os.environ["LIVEBOKEH_CACHE"], os.environ["HOME"], os.environ.get("https_proxy")))
        return Path(os.environ["LIVEBOKEH_CACHE"]) / "rvm.onnx"

    monkeypatch.setattr(models, "locate", online)
    assert service.main(["install"]) == 0
    # into the cache the service reads (carried), under its home, through this shell's proxy
    assert fetched == [(os.environ["LIVEBOKEH_CACHE"], str(tmp_path / "home"), "http://proxy.example:3128")]
    assert f"the rvm weights the service uses: {os.environ['LIVEBOKEH_CACHE']}" in capsys.readouterr().out
    assert service.main(["uninstall"]) == 0

    def offline(name, explicit=None, download_missing=True):
        raise ModelError("rvm weights could not be downloaded (no network); run `livebokeh models download rvm` "
                         "with internet access")  # (this text names no other backend)

    monkeypatch.setattr(models, "locate", offline)
    capsys.readouterr()
    assert service.main(["install"]) == 3
    err = capsys.readouterr().err
    assert "will not find the weights of the settings' backend rvm (rvm weights could not be downloaded" in err
    assert 'backend = "mediapipe"' in err and not service.unit_path().exists()
    assert service.main(["install", "--no-start"]) == 0
    assert "warning: the service will not find the weights" in capsys.readouterr().out


def test_the_weights_are_looked_for_as_the_service_will_look(home, tmp_path, monkeypatch):
    """In the environment of the user's systemd, with what the unit carries: a variable only this
    shell has does not count, LIVEBOKEH_* and XDG_CACHE_HOME are carried (made absolute)."""
    from livebokeh import models

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LIVEBOKEH_RVM_WEIGHTS", "weights/rvm.onnx")  # relative: made absolute
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg cache"))
    monkeypatch.setenv("ONLY_IN_THIS_SHELL", "1")
    seen = {}

    def locate(name, explicit=None, download_missing=True):
        seen.update(os.environ)
        return Path(os.environ["LIVEBOKEH_RVM_WEIGHTS"])

    monkeypatch.setattr(models, "locate", locate)
    assert service.main(["install"]) == 0
    assert seen["HOME"] == str(tmp_path / "home") and seen["PATH"] == "/usr/bin:/bin" and "ONLY_IN_THIS_SHELL" not in seen
    carried = _environment(service.unit_path())
    assert carried["LIVEBOKEH_RVM_WEIGHTS"] == seen["LIVEBOKEH_RVM_WEIGHTS"] == str(tmp_path / "weights" / "rvm.onnx")
    assert carried["XDG_CACHE_HOME"] == str(tmp_path / "xdg cache") and carried["LIVEBOKEH_CACHE"] == os.environ["LIVEBOKEH_CACHE"]
    assert "ONLY_IN_THIS_SHELL" in os.environ  # this process's environment is back as it was


def test_a_relative_weights_path_in_the_settings_is_the_service_home(home, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("LIVEBOKEH_RVM_WEIGHTS")
    settings = service.settings_path()
    settings.parent.mkdir(parents=True)
    settings.write_text('[rvm]\nweights = "models/rvm.onnx"\n')
    assert service.main(["install"]) == 3  # not under the home the service starts in
    assert str(tmp_path / "home" / "models" / "rvm.onnx") in capsys.readouterr().err
    (tmp_path / "home" / "models").mkdir()
    (tmp_path / "home" / "models" / "rvm.onnx").write_bytes(b"w")
    assert service.main(["install"]) == 0


# -- taken back when systemd refuses -----------------------------------------------------------


@pytest.mark.parametrize("verb", ["daemon-reload", "enable"])
def test_a_failing_systemctl_leaves_nothing_installed(home, capsys, verb):
    home.fail[verb] = "Access denied"
    assert service.main(["install"]) == 1
    err = capsys.readouterr().err
    assert f"systemctl --user {verb}" in err and "Access denied" in err and "taken back" in err
    assert not service.unit_path().exists() and not service.settings_path().exists()
    assert _left_in(service.unit_path().parent) == set()
    if verb == "enable":
        assert ("disable", "livebokeh.service") in home.calls and home.verbs()[-1] == "daemon-reload"
    del home.fail[verb]
    assert service.main(["install"]) == 0  # a retry works: nothing in its way


def test_a_failing_overwrite_puts_the_old_unit_back(home, capsys):
    assert service.main(["install", "--no-start", "--always"]) == 0
    before = service.unit_path().read_bytes()
    home.fail["enable"] = "Access denied"
    assert service.main(["install", "--overwrite"]) == 1
    assert service.unit_path().read_bytes() == before and service.settings_path().is_file()  # the settings were there


# -- the paths it writes -------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["", "relative/home"])
def test_an_empty_or_relative_home_is_refused_in_one_line(monkeypatch, capsys, value):
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setenv("HOME", value)
    for argv in (["install"], ["install", "--no-start"], ["uninstall"], ["status"]):
        assert service.main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("livebokeh service: error: HOME is ") and err.count("\n") == 1
    with pytest.raises(SystemExit) as info:
        service.main(["install", "--help"])
    assert info.value.code == 0 and "~/.config/livebokeh/settings.toml" in capsys.readouterr().out


def test_doctor_tells_an_unusable_home(monkeypatch):
    from livebokeh.commands.doctor import check_service

    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setenv("HOME", "")
    check = check_service()
    assert not check.ok and not check.required and check.detail.startswith("HOME is empty")


def test_a_relative_config_home_is_ignored(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/dir")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert service.unit_path() == tmp_path / ".config" / "systemd" / "user" / "livebokeh.service"


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_dangling_link_at_the_units_path(home, tmp_path, capsys, overwrite):
    unit = service.unit_path()
    unit.parent.mkdir(parents=True)
    unit.symlink_to(tmp_path / "dotfiles" / "livebokeh.service")  # the user's, its target gone
    if not overwrite:
        assert service.main(["install"]) == 2
        assert "is a link to a missing file; pass --overwrite" in capsys.readouterr().err
        assert unit.is_symlink() and _left_in(unit.parent) == {"livebokeh.service"}
        assert service.main(["uninstall"]) == 2 and unit.is_symlink()  # not ours to remove
        assert not service.settings_path().exists()
    else:
        assert service.main(["install", "--overwrite"]) == 0
        assert not unit.is_symlink() and service.state().ours
        assert _left_in(unit.parent) == {"livebokeh.service"}  # no partial, no temporary file


def test_a_temporary_unit_never_has_a_name_systemd_loads(home, monkeypatch, capsys):
    """Written hidden and not ending in .service (systemd skips both), removed when moving it fails."""
    names = []
    real_link = os.link

    def failing_link(src, dst):
        if Path(dst) != service.unit_path():
            return real_link(src, dst)  # the settings file goes in
        names.append(Path(src).name)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "link", failing_link)
    assert service.main(["install", "--no-start"]) == 1
    assert "cannot write " + str(service.unit_path()) + ": No space left on device; free some space" in capsys.readouterr().err
    (name,) = names
    assert name.startswith(".") and not name.endswith(".service")
    monkeypatch.setattr(os, "link", real_link)
    folder = service.unit_path().parent
    assert _left_in(folder) == set() and not service.settings_path().exists()  # the settings taken back too


def test_a_settings_name_that_is_not_utf8_is_refused_before_anything_is_written(home, tmp_path, capsys):
    name = os.fsdecode(str(tmp_path).encode() + b"/r\xe9glages.toml")  # Latin-1, as an old file system gives it
    assert service.main(["install", "--config", name]) == 2
    err = capsys.readouterr().err
    assert "the settings file name " in err and "r\\xe9glages.toml is not UTF-8 text" in err and err.count("\n") == 1
    err.encode("utf-8")  # printable as it is
    assert not Path(name).exists() and not service.unit_path().exists() and home.calls == []
    Path(name).write_text("[render]\nblur = 0.05\n")  # an existing file of that name: the same
    assert service.main(["install", "--config", name]) == 2 and not service.unit_path().exists()
    assert "not UTF-8" in capsys.readouterr().err


@pytest.mark.parametrize("value", [b"/tmp/w\xffeights.onnx", b"/tmp/two\nlines.onnx"])
def test_a_carried_variable_systemd_cannot_hold_is_refused(home, monkeypatch, capsys, value):
    monkeypatch.setenv("LIVEBOKEH_CACHE", os.fsdecode(value))
    assert service.main(["install"]) == 2
    err = capsys.readouterr().err
    assert "LIVEBOKEH_CACHE" in err and "set LIVEBOKEH_CACHE to a plain path, or unset it" in err
    assert err.count("\n") == 1 and not service.unit_path().exists() and not service.settings_path().exists()


# -- the unit's text -----------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_accepts_the_unit(tmp_path):
    unit = tmp_path / "livebokeh.service"
    unit.write_text(service.unit_text(tmp_path / "settings.toml"))
    broken = tmp_path / "broken.service"
    broken.write_text(service.unit_text(tmp_path / "settings.toml").replace("Restart=on-failure", "Restart=sometimes"))
    env = {"XDG_RUNTIME_DIR": str(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}

    def verify(path):
        return subprocess.run(["systemd-analyze", "--user", "verify", str(path)], capture_output=True, text=True,
                              env=env, timeout=60)

    ok = verify(unit)
    assert ok.returncode == 0 and not ok.stderr.strip(), ok.stderr
    odd = tmp_path / "odd.service"  # a settings path and an environment with spaces, specifiers, variables, quotes
    odd.write_text(service.unit_text(tmp_path / "my settings %h $HOME.toml", environment={
        "LIVEBOKEH_CACHE": '/home/me/a "quoted" cache %h $HOME', "XDG_CACHE_HOME": "/home/me/back\\slash"}))
    assert verify(odd).returncode == 0 and not verify(odd).stderr.strip()
    bad = verify(broken)  # the check can fail: a wrong value is reported
    assert "restart specifier" in bad.stderr


def test_arguments_are_quoted_for_systemd_not_for_a_shell():
    assert service.systemd_quote("/home/me/s.toml") == "/home/me/s.toml"
    assert service.systemd_quote("/home/me/my s.toml") == '"/home/me/my s.toml"'
    assert service.systemd_quote('a%b$c"d\\e') == '"a%%b$$c\\"d\\\\e"'
    # control characters as systemd's C escapes: raw, an ESC would sit in the unit file
    assert service.systemd_quote("/s/c\x1b[2J.toml") == '"/s/c\\x1b[2J.toml"'
    assert service.systemd_environment("X", "a\tb") == '"X=a\\x09b"'
    # in Environment= "$" is plain, "%" a specifier
    assert service.systemd_environment("X", 'a%b$c"d\\e') == '"X=a%%b$c\\"d\\\\e"'
    with pytest.raises(service.ConfigError, match="quotes, % or"):
        service.unit_text("/s.toml", python="/opt/50%/bin/python")


def test_always_on_says_so_explicitly_and_status_reads_it(home):
    assert service.main(["install", "--no-start", "--always"]) == 0
    assert "--no-on-demand" in service.unit_path().read_text() and not service.state().on_demand


def test_a_preset_name_is_used_as_it_is(home):
    assert service.main(["install", "--no-start", "--config", "call"]) == 0
    assert "--config call " in service.unit_path().read_text() and not service.settings_path().exists()


def test_uninstall_when_systemd_cannot_be_reached(home, monkeypatch, capsys):
    """Never enabled: the file goes (nothing runs it). Enabled: it stays, with systemctl's reason."""
    assert service.main(["install", "--no-start"]) == 0
    home.fail["*"] = "Failed to connect to bus: No medium found"
    assert service.main(["uninstall"]) == 0 and not service.unit_path().exists()
    assert "never enabled" in capsys.readouterr().out
    assert service.main(["install", "--no-start"]) == 0
    wants = service.unit_path().parent / "default.target.wants"
    wants.mkdir()
    (wants / "livebokeh.service").symlink_to(service.unit_path())
    assert service.main(["uninstall"]) == 1
    assert "Failed to connect to bus" in capsys.readouterr().err and service.unit_path().exists()


def test_a_name_that_is_no_preset_is_refused(home, capsys):
    assert service.main(["install", "--no-start", "--config", "nosuch"]) == 2
    assert "neither a file nor a preset" in capsys.readouterr().err and not service.unit_path().exists()


def test_a_refused_install_writes_nothing(home):
    unit = service.unit_path()
    unit.parent.mkdir(parents=True)
    unit.write_text("[Service]\nExecStart=/usr/bin/true\n")  # the user's own
    assert service.main(["install"]) == 2
    assert not service.settings_path().exists() and unit.read_text() == "[Service]\nExecStart=/usr/bin/true\n"


def test_the_service_serves_the_control_page_and_reloads_on_sighup(home):
    assert service.main(["install", "--no-start"]) == 0
    text = service.unit_path().read_text()
    exec_start = _unit(service.unit_path())["Service"]["ExecStart"].split()
    assert "--control" in exec_start  # whatever the settings file says
    assert _environment(service.unit_path())["LIVEBOKEH_SERVICE"] == "livebokeh.service"  # its run file says so
    assert "\nExecReload=/bin/kill -HUP $MAINPID\n" in text  # systemctl --user reload: the settings read again


def test_status_prints_the_running_services_page_with_its_key(home, tmp_path, monkeypatch, capsys):
    import os

    from livebokeh.control.runtime import RunFile, publish

    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert service.main(["status"]) == 0
    assert "control page: none (the service is not running" in capsys.readouterr().out
    publish(RunFile(os.getpid(), 45678, "s3cret", "camera 0", 1.0, service=True))
    assert service.main(["status"]) == 0
    assert "control page: http://127.0.0.1:45678/#key=s3cret" in capsys.readouterr().out


# -- as a user runs it: a real process, a fake systemctl on PATH ---------------------------------


FAKE_SYSTEMCTL = """#!/bin/sh
echo "$@" >> "{log}"
echo "Failed to connect to bus: No medium found" >&2
exit 1
"""


def test_the_command_without_a_user_session(tmp_path):
    """``livebokeh service install`` where no user systemd runs (a container, sudo, a bare ssh):
    exit 3 with every reason on one line, nothing written, and the same again on a retry."""
    from tests.conftest import REPO

    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    fake = bin_dir / "systemctl"
    fake.write_text(FAKE_SYSTEMCTL.format(log=log))
    fake.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", PYTHONPATH=str(REPO),
               HOME=str(tmp_path / "home"), XDG_CONFIG_HOME=str(tmp_path / "config"))
    for _ in range(2):
        proc = subprocess.run([sys.executable, "-m", "livebokeh", "service", "install"], capture_output=True,
                              text=True, env=env, timeout=120)
        assert proc.returncode == 3, proc.stderr
        (line,) = proc.stderr.splitlines()
        assert "your user's systemd cannot be reached (Failed to connect to bus: No medium found)" in line
        assert "Traceback" not in proc.stderr and not (tmp_path / "config").exists()
    assert log.read_text().splitlines() == ["--user show-environment"] * 2


# -- found by the second adversarial trial ---------------------------------------------------------

_REAL_SYSTEMCTL = service._systemctl

SCRIPTS = {
    "hangs": "#!/bin/sh\nexec sleep 60\n",
    # (its XDG_CONFIG_HOME is this shell's: the unit is where status looks)
    "answers in latin-1": "#!/bin/sh\nprintf 'enabled \\351t\\351\\n'\nprintf 'HOME=/x\\377\\n'\n"
                          "echo \"XDG_CONFIG_HOME=$XDG_CONFIG_HOME\"\nexit 0\n",
    "fails in latin-1": "#!/bin/sh\nprintf '\\311chec: bus \\377\\n' >&2\nexit 1\n",
}


@pytest.mark.parametrize("script", list(SCRIPTS))
def test_a_systemctl_that_hangs_or_answers_in_other_bytes_is_told_in_one_line(home, tmp_path, monkeypatch, capsys,
                                                                              script):
    """Were tracebacks (subprocess.TimeoutExpired, UnicodeDecodeError) from install, status,
    uninstall and doctor."""
    from livebokeh.commands.doctor import check_service

    assert service.main(["install", "--no-start"]) == 0  # no systemctl needed
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "systemctl").write_text(SCRIPTS[script])
    (bin_dir / "systemctl").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setattr(service, "_systemctl", _REAL_SYSTEMCTL)
    monkeypatch.setattr(service, "SYSTEMCTL_TIMEOUT", 0.5)
    capsys.readouterr()
    assert service.main(["status"]) == 0
    out = capsys.readouterr().out
    said = {"hangs": "enabled: unknown (systemctl --user did not answer within 0.5 s)",
            "answers in latin-1": "enabled: enabled \ufffdt\ufffd",
            "fails in latin-1": "enabled: unknown (\ufffdchec: bus \ufffd)"}[script]
    assert said in out
    check = check_service()
    assert said.partition(": ")[2] in check.detail
    code = service.main(["install", "--overwrite"])
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == (0 if code == 0 else 1)
    if script == "hangs":
        assert code == 3 and "your user's systemd cannot be reached (systemctl --user did not answer" in err
    assert service.main(["uninstall"]) in (0, 1)
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") <= 1


def test_a_taken_back_install_leaves_no_folder_it_made(home, tmp_path, monkeypatch, capsys):
    """systemctl enable makes default.target.wants; taken back, it goes with the others it made."""
    config = tmp_path / "config"
    wants = config / "systemd" / "user" / "default.target.wants"

    def systemctl(*args):
        if args[0] == "enable":  # as systemd does, then fails
            wants.mkdir(parents=True, exist_ok=True)
            (wants / "livebokeh.service").symlink_to(service.unit_path())
            return subprocess.CompletedProcess(["systemctl", *args], 1, "", "Access denied")
        if args[0] == "disable":
            (wants / "livebokeh.service").unlink(missing_ok=True)
        return home(*args)

    monkeypatch.setattr(service, "_systemctl", systemctl)
    assert service.main(["install"]) == 1
    assert "taken back" in capsys.readouterr().err
    assert not config.exists()
    # a folder that was there before stays
    (config / "livebokeh").mkdir(parents=True)
    assert service.main(["install"]) == 1
    assert sorted(p.relative_to(config).as_posix() for p in config.rglob("*")) == ["livebokeh"]


def test_a_folder_where_the_unit_goes_is_named_as_such(home, capsys):
    from livebokeh.commands.doctor import check_service

    unit = service.unit_path()
    unit.mkdir(parents=True)
    for argv, code in ((["status"], 0), (["install", "--overwrite"], 2), (["install", "--no-start", "--overwrite"], 2),
                       (["uninstall"], 2)):
        assert service.main(argv) == code
        out = capsys.readouterr()
        assert f"{unit} is a folder, not a unit file" in out.out + out.err and "sudo" not in out.err
        assert "absent" not in out.out
    assert unit.is_dir() and not service.settings_path().exists()
    check = check_service()
    assert not check.ok and "is a folder, not a unit file" in check.detail


def test_a_home_that_does_not_exist_is_refused_and_not_made(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "nonexistent" / "x"))
    for argv in (["install", "--no-start"], ["install"], ["status"], ["uninstall"]):
        assert service.main(argv) == 2
        err = capsys.readouterr().err
        assert "HOME is " in err and "which is no folder" in err and err.count("\n") == 1
    assert not (tmp_path / "nonexistent").exists()


def test_the_depth_model_the_settings_need_is_checked_too(home, tmp_path, monkeypatch, capsys):
    """`[render] depth = true` needs the depth model: it was not checked, so an offline install
    enabled a unit whose every start failed on it. Offline it now stops the install (exit 3,
    nothing written) with the download's advice; present, it is named."""
    from livebokeh import models

    settings = tmp_path / "depth.toml"
    settings.write_text("[render]\ndepth = true\n")
    looked = []

    def offline(name, explicit=None, download_missing=True):
        looked.append(name)
        if name == "depth":
            raise ModelError("the depth model could not be downloaded (no network); run `livebokeh models "
                             "download depth` with internet access")
        return Path(os.environ["LIVEBOKEH_RVM_WEIGHTS"])

    monkeypatch.setattr(models, "locate", offline)
    assert service.main(["install", "--config", str(settings)]) == 3
    err = capsys.readouterr().err
    assert "the depth model its settings' [render] depth = true needs (the depth model could not be downloaded" in err
    assert "[render] depth = false" in err and "depth" in looked
    assert not service.unit_path().exists()

    weights = tmp_path / "depth.onnx"
    weights.write_bytes(b"onnx")
    settings.write_text(f'[render]\ndepth = true\ndepth_weights = "{weights}"\n')
    monkeypatch.setattr(models, "locate", lambda name, explicit=None, download_missing=True: Path(explicit or "x"))
    assert service.main(["install", "--config", str(settings)]) == 0
    assert f"the depth model the service uses: {weights}" in capsys.readouterr().out


def test_deeplabs_keras_runtime_without_tensorflow_is_refused_at_install(home, tmp_path, monkeypatch, capsys):
    """`[deeplab] runtime = "keras"` without TensorFlow installed: every start of the unit
    failed on it. The install now stops (exit 3, nothing written), naming the extra."""
    from livebokeh import models
    from livebokeh.segment.deeplab import segmenter

    settings = tmp_path / "keras.toml"
    settings.write_text('[segmenter]\nbackend = "deeplab"\n[deeplab]\nruntime = "keras"\n')
    monkeypatch.setattr(models, "locate", lambda name, explicit=None, download_missing=True: tmp_path / "w")
    monkeypatch.setattr(segmenter, "tensorflow_installed", lambda: False)
    assert service.main(["install", "--config", str(settings)]) == 3
    err = capsys.readouterr().err
    assert "needs TensorFlow, which is not installed: pip install 'livebokeh[tensorflow]'" in err
    assert err.count("\n") == 1 and not service.unit_path().exists()
    monkeypatch.setattr(segmenter, "tensorflow_installed", lambda: True)
    assert service.main(["install", "--config", str(settings)]) == 0


# -- found by the fourth adversarial trial ---------------------------------------------------------


def test_the_unit_goes_where_the_user_systemd_looks_not_where_this_shell_says(home, tmp_path, capsys):
    """XDG_CONFIG_HOME set in the shell, not in the user's systemd: the unit was written under the
    shell's, where systemd does not look; enable then failed and the advice blamed the session.
    Now install, status and uninstall all use ~/.config (the manager's HOME), saying so in one line."""
    user = tmp_path / "home"
    home.manager_env = f"HOME={user}\nPATH=/usr/bin:/bin\n"  # no XDG_CONFIG_HOME
    theirs = user / ".config" / "systemd" / "user"
    said = (f"the unit goes in {theirs}, where your user's systemd looks for it (it has no XDG_CONFIG_HOME; "
            f"this shell's is {tmp_path / 'config'})")
    assert service.main(["install"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert said in out and f"wrote {theirs / 'livebokeh.service'}" in out
    assert _left_in(theirs) == {"livebokeh.service"} and not (tmp_path / "config" / "systemd").exists()
    # the settings stay this shell's (the unit names them by their full path)
    settings = tmp_path / "config" / "livebokeh" / "settings.toml"
    assert settings.is_file() and _unit(theirs / "livebokeh.service")["Service"]["ExecStart"].split()[4] == str(settings)
    assert service.main(["status"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == said and out[1].startswith(f"{theirs / 'livebokeh.service'}: on demand; enabled: ok")
    assert service.main(["install"]) == 2 and "exists; pass --overwrite" in capsys.readouterr().err
    assert service.main(["uninstall"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == said and f"removed {theirs / 'livebokeh.service'} (your settings file stays)" in out
    assert not (theirs / "livebokeh.service").exists()


def _systemd_quoted(value: str) -> str:
    """As systemd's show-environment prints a value holding a space or a quote: $'...', C escapes."""
    return "$'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@pytest.mark.parametrize("printed", ["as it is", "quoted as systemd does"])
def test_the_user_systemds_own_xdg_config_home_wins(home, tmp_path, monkeypatch, capsys, printed):
    """Real systemd prints a value with a space (or a quote, $, ...) as $'...': taken as the text
    it was, the folder was no absolute path and the unit went where systemd does not look."""
    monkeypatch.delenv("XDG_CONFIG_HOME")
    theirs = tmp_path / "their config's"
    shown = (lambda v: v) if printed == "as it is" else _systemd_quoted
    home.manager_env = f"HOME={shown(str(tmp_path / 'home'))}\nXDG_CONFIG_HOME={shown(str(theirs))}\n"
    assert service.main(["install", "--no-start"]) == 0
    out = capsys.readouterr().out
    assert f"the unit goes in {theirs / 'systemd' / 'user'}, where your user's systemd looks for it (its " \
           f"XDG_CONFIG_HOME is {theirs}; this shell has none)" in out
    assert (theirs / "systemd" / "user" / "livebokeh.service").is_file()
    assert not (tmp_path / "home" / ".config" / "systemd").exists()
    assert (tmp_path / "home" / ".config" / "livebokeh" / "settings.toml").is_file()  # this shell's settings
    assert home.verbs() == ["show-environment"]  # asked where, nothing started


def test_what_install_prints_and_writes_holds_no_raw_control_characters(home, tmp_path, capsys):
    settings = tmp_path / "c\x1b]0;pwned\x07.toml"
    settings.write_text("[render]\nblur = 0.05\n")
    assert service.main(["install", "--no-start", "--config", str(settings)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    unit = service.unit_path().read_text()
    assert "\x1b" not in unit and "c\\x1b]0;pwned\\x07.toml" in unit  # systemd's C escapes give the name back
    assert service.main(["status"]) == 0 and "\x1b" not in capsys.readouterr().out


def test_values_systemd_quoted_are_read_as_they_were():
    assert service.systemd_unquote("/plain/path") == "/plain/path"
    assert service.systemd_unquote("$'/home/u/my cfg'") == "/home/u/my cfg"
    assert service.systemd_unquote("$'it\\'s\\ta\\\\b\\x41\\101\\n'") == "it's\ta\\bAA\n"
    assert service.systemd_unquote('"x y"') == "x y"
    assert service.systemd_unquote("$'caf\u00e9 \\303\\251'") == "caf\u00e9 \u00e9"  # UTF-8 as it is, or as octal bytes
    assert service.systemd_unquote("$'\\377'") == os.fsdecode(b"\xff")  # a byte that is no UTF-8: as a file name holds it


@pytest.mark.parametrize("manager", ["unreachable", "a HOME that is no folder", "a relative XDG_CONFIG_HOME"])
def test_where_the_user_systemd_cannot_say_this_shells_folder_is_used(home, tmp_path, capsys, manager):
    if manager == "unreachable":
        home.fail["*"] = "Failed to connect to bus: No medium found"
        expected = tmp_path / "config"  # as before: this shell's XDG_CONFIG_HOME
    else:
        home.manager_env = ("HOME=/nonexistent/x\n" if manager == "a HOME that is no folder"
                            else f"HOME={tmp_path / 'home'}\nXDG_CONFIG_HOME=relative/dir\n")
        expected = tmp_path / "home" / ".config"  # the manager has none: ~/.config, of this shell's HOME
    assert service.main(["install", "--no-start"]) == 0
    unit = expected / "systemd" / "user" / "livebokeh.service"
    assert unit.is_file()
    assert ("where your user's systemd looks" in capsys.readouterr().out) == (manager != "unreachable")
    assert service.main(["uninstall"]) == 0 and not unit.exists()


def _deeplab(tmp_path, monkeypatch, text):
    """A settings file for DeepLab with ``text`` added to its section; its weights are found."""
    from livebokeh import models

    monkeypatch.setattr(models, "locate", lambda name, explicit=None, download_missing=True: tmp_path / "w.tflite")
    settings = tmp_path / "deeplab.toml"
    settings.write_text(f'[segmenter]\nbackend = "deeplab"\n[deeplab]\n{text}')
    return str(settings)


@pytest.mark.parametrize("decoder", ["on", "auto"])
def test_a_deeplab_decoder_file_the_settings_name_must_be_there(home, tmp_path, monkeypatch, capsys, decoder):
    """Was installed and enabled; the run then exited 1 after opening the camera, restarted 5 times."""
    gone = tmp_path / "dec.npz"
    settings = _deeplab(tmp_path, monkeypatch, f'decoder = "{decoder}"\ndecoder_weights = "{gone}"\n')
    assert service.main(["install", "--config", settings]) == 3
    (line,) = capsys.readouterr().err.splitlines()
    assert ("nothing was written: the service will not find a file the settings' backend deeplab reads (the deeplab "
            f"decoder weights {gone} (deeplab.decoder_weights) do not exist; fix the path") in line
    assert not service.unit_path().exists() and "enable" not in home.verbs()
    assert service.main(["install", "--no-start", "--config", settings]) == 0
    assert "warning: the service will not find a file the settings' backend deeplab reads" in capsys.readouterr().out
    assert service.main(["uninstall"]) == 0
    gone.write_bytes(b"a decoder")  # there: only its presence is checked here
    assert service.main(["install", "--config", settings]) == 0


def test_a_relative_decoder_file_is_looked_for_in_the_service_home(home, tmp_path, monkeypatch, capsys):
    settings = _deeplab(tmp_path, monkeypatch, 'decoder_weights = "dec.npz"\n')
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dec.npz").write_bytes(b"here, not in the home folder")
    assert service.main(["install", "--config", settings]) == 3
    assert "decoder weights dec.npz (deeplab.decoder_weights)" in capsys.readouterr().err
    (tmp_path / "home" / "dec.npz").write_bytes(b"in the home folder")
    assert service.main(["install", "--config", settings]) == 0
    assert os.getcwd() == str(tmp_path)  # this process's folder is back


def test_livebokeh_deeplab_decoder_is_checked_and_carried(home, tmp_path, monkeypatch, capsys):
    settings = _deeplab(tmp_path, monkeypatch, 'decoder = "on"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LIVEBOKEH_DEEPLAB_DECODER", "mine.npz")  # relative: made absolute, then looked for
    assert service.main(["install", "--config", settings]) == 3
    err = capsys.readouterr().err
    assert f"the deeplab decoder weights {tmp_path / 'mine.npz'} (LIVEBOKEH_DEEPLAB_DECODER) do not exist; fix or unset it" in err
    assert not service.unit_path().exists()
    (tmp_path / "mine.npz").write_bytes(b"a decoder")
    assert service.main(["install", "--config", settings]) == 0
    assert _environment(service.unit_path())["LIVEBOKEH_DEEPLAB_DECODER"] == str(tmp_path / "mine.npz")
    # carried whatever the backend (settings changed later may pick DeepLab)
    monkeypatch.setenv("LIVEBOKEH_DEEPLAB_DECODER", str(tmp_path / "gone.npz"))
    assert service.main(["install", "--overwrite", "--no-start"]) == 0  # rvm: DeepLab's decoder is not read
    assert _environment(service.unit_path())["LIVEBOKEH_DEEPLAB_DECODER"] == str(tmp_path / "gone.npz")


def test_overwriting_a_running_unit_restarts_it(home, capsys):
    """`install --overwrite` ran daemon-reload and enable --now only: the old process kept running
    with its old command line, and it said 'enabled and started'."""
    assert service.main(["install", "--always"]) == 0
    home.calls.clear()
    capsys.readouterr()
    home.answers["is-active"] = (0, "active\n")
    assert service.main(["install", "--overwrite"]) == 0
    assert home.verbs() == ["show-environment", "is-active", "daemon-reload", "enable", "restart"]
    assert home.calls[-1] == ("restart", "livebokeh.service") and service.state().on_demand
    out = capsys.readouterr().out
    assert "enabled and restarted livebokeh.service (it was running: the new unit applies now)" in out
    assert "enabled and started" not in out


def test_overwriting_a_stopped_unit_starts_it(home, capsys):
    assert service.main(["install", "--no-start"]) == 0
    home.calls.clear()
    home.answers["is-active"] = (3, "inactive\n")
    assert service.main(["install", "--overwrite"]) == 0
    assert home.verbs() == ["show-environment", "is-active", "daemon-reload", "enable"]
    assert "enabled and started livebokeh.service" in capsys.readouterr().out


def test_overwriting_with_no_start_says_the_new_unit_applies_at_the_next_start(home, capsys):
    assert service.main(["install"]) == 0
    home.calls.clear()
    capsys.readouterr()
    assert service.main(["install", "--overwrite", "--no-start", "--always"]) == 0
    out = capsys.readouterr().out
    assert ("the new unit applies at the service's next start; to apply it now: systemctl --user daemon-reload && "
            "systemctl --user restart livebokeh.service") in out and "enabled" not in out
    assert home.verbs() == ["show-environment"]  # nothing stopped, started or reloaded


@pytest.mark.parametrize("starts_again", [True, False])
def test_a_failing_restart_puts_the_old_unit_back_and_starts_it(home, monkeypatch, capsys, starts_again):
    """install --overwrite of a running unit whose new unit fails to restart left the new unit there
    and the service failed; what install wrote is taken back, as for any failing step: the old unit
    is put back and restarted (said when that fails too)."""
    assert service.main(["install", "--always"]) == 0
    old = service.unit_path().read_bytes()
    home.answers["is-active"] = (0, "active\n")
    restarts = []

    def systemctl(*args):
        if args[0] == "restart":
            restarts.append(service.unit_path().read_bytes())
            ok = starts_again and len(restarts) > 1
            return subprocess.CompletedProcess(["systemctl", *args], 0 if ok else 1, "", "" if ok else "Job failed")
        return home(*args)

    monkeypatch.setattr(service, "_systemctl", systemctl)
    capsys.readouterr()
    assert service.main(["install", "--overwrite"]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert "systemctl --user restart livebokeh.service failed with the new unit: Job failed" in line
    assert ("the old unit was put back and runs again" if starts_again else "it did not start again either") in line
    assert restarts[0] != old and restarts[1] == old  # the new unit tried, then the old one
    assert home.verbs()[-1] == "daemon-reload"  # (before the old unit's restart)
    assert service.unit_path().read_bytes() == old and not service.state().on_demand


def test_a_failing_enable_leaves_an_old_enabled_unit_enabled(home, tmp_path, monkeypatch, capsys):
    """install --overwrite of an enabled unit whose enable failed ran `disable`: the old unit was put
    back, but no longer started at login. Only a unit this install enabled is disabled."""
    assert service.main(["install"]) == 0
    wants = service.unit_path().parent / "default.target.wants"
    wants.mkdir(parents=True)
    (wants / "livebokeh.service").symlink_to(service.unit_path())
    old = service.unit_path().read_bytes()
    home.fail["enable"] = "Access denied"
    home.calls.clear()
    assert service.main(["install", "--overwrite", "--always"]) == 1
    assert "taken back" in capsys.readouterr().err
    assert "disable" not in home.verbs() and (wants / "livebokeh.service").is_symlink()
    assert service.unit_path().read_bytes() == old


def test_the_units_temporary_file_is_made_new_never_written_through_a_link(home, tmp_path):
    """A link left at the unit's hidden temporary name (`.livebokeh.service.PID.tmp`) had its target
    overwritten with the unit, and the unit became a link to it."""
    import os

    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    folder = service.unit_path().parent
    folder.mkdir(parents=True)
    (folder / f".livebokeh.service.{os.getpid()}.tmp").symlink_to(victim)
    assert service.main(["install"]) == 0
    assert victim.read_text() == "precious"
    assert not service.unit_path().is_symlink() and service.unit_path().read_text().startswith(service.MARK)
    assert _left_in(folder) == {"livebokeh.service"}


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_pipe_or_device_at_the_units_path_is_named_never_opened(home, capsys, kind):
    """A FIFO at the unit's path hung `uninstall` for ever (`status` called it absent); a link to
    /dev/zero read without end (a MemoryError traceback). Each command names it, exit 2."""
    import os

    path = service.unit_path()
    path.parent.mkdir(parents=True)
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    what = "a pipe" if kind == "fifo" else "a device"
    assert f"is {what}, not a unit file" in service.state().line()
    for argv in (["uninstall"], ["install"], ["install", "--overwrite"]):
        assert service.main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"{path} is {what}, not a unit file" in err and "move it away" in err
    assert path.is_fifo() if kind == "fifo" else path.is_symlink()


def test_install_offers_uninstall_only_for_a_unit_uninstall_takes(home, capsys):
    """For a unit of the user's own, or a dangling link, install said to run `service uninstall`
    first, which refuses both; `status` called the dangling link absent."""
    path = service.unit_path()
    path.parent.mkdir(parents=True)
    path.write_text("[Service]\nExecStart=/bin/true\n")
    assert service.main(["install"]) == 2
    err = capsys.readouterr().err
    assert "a unit of your own" in err and "move it away" in err and "service uninstall" not in err
    path.unlink()
    path.symlink_to(path.parent / "gone.service")
    assert "a link to a missing file" in service.state().line()
    assert service.main(["install"]) == 2
    err = capsys.readouterr().err
    assert "remove the link" in err and "service uninstall" not in err


def test_a_line_break_in_a_path_never_splits_a_message(home, tmp_path, monkeypatch, capsys):
    """A folder name holding a newline printed raw split a message in two, so a name could fake a
    line such as 'enabled and started'."""
    odd = tmp_path / "new\nenabled and started livebokeh.service"
    odd.mkdir()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(odd))
    home.manager_env = f"HOME={tmp_path / 'home'}\nXDG_CONFIG_HOME=$'{str(odd).replace(chr(10), chr(92) + 'n')}'\n"
    assert service.main(["install", "--no-start", "--config", str(tmp_path / "s.toml")]) == 0
    out = capsys.readouterr().out
    assert not any(line.startswith("enabled and started") for line in out.splitlines())
    assert "new\\x0aenabled" in out


def test_a_failing_enable_keeps_a_unit_enabled_under_another_target(home, monkeypatch, capsys):
    """The 'was it enabled' check looked at default.target.wants only: a unit of the user's enabled
    under graphical-session.target was disabled when the new unit's enable failed."""
    path = service.unit_path()
    path.parent.mkdir(parents=True)
    path.write_text("[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=graphical-session.target\n")
    wants = path.parent / "graphical-session.target.wants"
    wants.mkdir()
    (wants / "livebokeh.service").symlink_to(path)
    home.fail["enable"] = "Access denied"
    assert service.main(["install", "--overwrite"]) == 1
    assert "disable" not in home.verbs() and (wants / "livebokeh.service").is_symlink()
    assert "graphical-session" in path.read_text()


def test_a_hung_enable_leaves_no_link_of_its_own(home, monkeypatch, capsys):
    """A systemctl that hangs in `enable` after making the wants link left it (dangling) behind:
    'a second try never meets a half-installed unit'."""
    wants = service.unit_path().parent / "default.target.wants"

    def systemctl(*args):
        if args[0] == "enable":
            wants.mkdir(parents=True, exist_ok=True)
            (wants / "livebokeh.service").symlink_to(service.unit_path())
            return subprocess.CompletedProcess(["systemctl", *args], 124, "", "did not answer within 30 s")
        if args[0] in ("disable", "daemon-reload") and home.verbs().count("enable"):
            return subprocess.CompletedProcess(["systemctl", *args], 124, "", "did not answer within 30 s")
        return home(*args)

    monkeypatch.setattr(service, "_systemctl", systemctl)
    assert service.main(["install"]) == 1
    assert "taken back" in capsys.readouterr().err
    assert not service.unit_path().exists() and not wants.exists()


def test_a_failed_restart_whose_reload_fails_claims_no_running_old_unit(home, monkeypatch, capsys):
    """After the new unit failed to restart, the roll-back's daemon-reload failed too, and install
    still said 'the old unit was put back and runs again' (systemd held the new one)."""
    assert service.main(["install", "--always"]) == 0
    home.answers["is-active"] = (0, "active\n")
    reloads = []

    def systemctl(*args):
        if args[0] == "restart":
            return subprocess.CompletedProcess(["systemctl", *args], 1, "", "Job failed")
        if args[0] == "daemon-reload":
            reloads.append(1)
            if len(reloads) > 1:
                return subprocess.CompletedProcess(["systemctl", *args], 1, "", "Access denied")
        return home(*args)

    monkeypatch.setattr(service, "_systemctl", systemctl)
    capsys.readouterr()
    assert service.main(["install", "--overwrite"]) == 1
    line = capsys.readouterr().err
    assert "systemd did not read it again" in line and "runs again" not in line


def test_odd_things_where_install_writes_are_one_line_each(home, tmp_path, capsys):
    """A folder at the unit's temporary name: 'Is a directory; check who owns it (a folder made
    with sudo?)'; the settings folder a link to a missing folder: 'File exists; check who owns it'."""
    import os

    folder = service.unit_path().parent
    folder.mkdir(parents=True)
    tmp = folder / f".livebokeh.service.{os.getpid()}.tmp"
    tmp.mkdir()
    assert service.main(["install"]) == 2
    err = capsys.readouterr().err
    assert f"{tmp} is a folder where install writes the unit first; move it away" in err and "sudo" not in err
    tmp.rmdir()
    settings_folder = service.settings_path().parent
    settings_folder.parent.mkdir(parents=True, exist_ok=True)
    settings_folder.symlink_to(tmp_path / "nowhere")
    assert service.main(["install"]) == 2
    err = capsys.readouterr().err
    assert "is a link to a missing folder; make it a folder" in err and err.count("\n") == 1


def test_uninstall_finds_an_enabled_unit_under_any_target(home, capsys):
    """With a unit enabled under graphical-session.target and a `disable` that failed, uninstall
    said 'the unit was never enabled: nothing to stop', removed it and left its link dangling."""
    assert service.main(["install", "--no-start"]) == 0
    wants = service.unit_path().parent / "graphical-session.target.wants"
    wants.mkdir()
    (wants / "livebokeh.service").symlink_to(service.unit_path())
    home.fail["disable"] = "Failed to connect to bus"
    capsys.readouterr()
    assert service.main(["uninstall"]) == 1
    assert "disable --now livebokeh.service failed" in capsys.readouterr().err
    assert service.unit_path().exists() and (wants / "livebokeh.service").exists()


@pytest.mark.parametrize("running", [True, "activating", "no answer", "no bus", False])
def test_uninstall_stops_short_of_removing_a_running_unit_it_could_not_stop(home, capsys, running):
    """A unit installed with --no-start and started by hand (running, not enabled), whose `disable
    --now` failed: uninstall said 'systemd is not reachable here ... nothing to stop' and removed
    its file. A running one stays, with the error; one neither enabled nor running goes, the
    failure named."""
    assert service.main(["install", "--no-start"]) == 0
    home.fail["disable"] = "Access denied"
    home.answers["is-active"] = {True: (0, "active\n"), "activating": (3, "activating\n"), "no answer": (124, ""),
                                 "no bus": (1, ""), False: (3, "inactive\n")}[running]
    running = bool(running)
    capsys.readouterr()
    assert service.main(["uninstall"]) == (1 if running else 0)
    out = capsys.readouterr()
    assert "not reachable" not in out.out + out.err
    assert service.unit_path().exists() == running
    assert ("disable --now livebokeh.service failed" in (out.err if running else out.out)) and "Access denied" in out.out + out.err


def test_without_an_answer_from_systemd_a_unit_where_it_looks_by_default_is_found(home, tmp_path, capsys):
    """With the user's systemd not answering and the shell's XDG_CONFIG_HOME elsewhere, `status`
    said 'not installed' and `uninstall` 'nothing to do' for a unit in ~/.config/systemd/user."""
    usual = tmp_path / "home" / ".config" / "systemd" / "user" / "livebokeh.service"
    usual.parent.mkdir(parents=True)
    usual.write_text(service.MARK + "\n[Service]\nExecStart=/bin/true\n")
    home.fail["show-environment"] = "Failed to connect to bus"
    assert service.main(["status"]) == 0
    out = capsys.readouterr().out
    assert "not installed" not in out and str(usual) in out and "cannot be reached" in out
