"""``livebokeh service``: the systemd user unit, written, checked, never replacing what the user owns."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys

import pytest

from livebokeh.commands import service

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="a systemd user unit: Linux only")


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A config home of the test's own; systemctl calls recorded, never run."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    calls = []

    def systemctl(*args):
        calls.append(args)
        return subprocess.CompletedProcess(["systemctl", "--user", *args], 0, "ok\n", "")

    monkeypatch.setattr(service, "_systemctl", systemctl)
    return calls


def _unit(path):
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read_string(path.read_text())
    return parser


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
    assert home == [("daemon-reload",), ("enable", "--now", "livebokeh.service")]
    assert "enabled and started" in capsys.readouterr().out
    st = service.state()
    assert st.installed and st.ours and st.on_demand


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


def test_a_broken_settings_file_fails_at_install_not_at_every_login(home, capsys):
    settings = service.settings_path()
    settings.parent.mkdir(parents=True)
    settings.write_text("[render]\nblurr = 1\n")
    assert service.main(["install", "--no-start"]) == 2
    assert "blurr" in capsys.readouterr().err and not service.unit_path().exists()


def test_uninstall_stops_and_removes_only_the_unit(home, capsys):
    assert service.main(["install", "--no-start"]) == 0
    assert service.main(["uninstall"]) == 0
    assert not service.unit_path().exists() and service.settings_path().exists()
    assert ("disable", "--now", "livebokeh.service") in home
    assert service.main(["uninstall"]) == 0 and "nothing to do" in capsys.readouterr().out
    assert service.main(["status"]) == 0 and "not installed" in capsys.readouterr().out


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
    odd = tmp_path / "odd.service"  # a settings path with a space, a specifier and a variable in it
    odd.write_text(service.unit_text(tmp_path / "my settings %h $HOME.toml"))
    assert verify(odd).returncode == 0 and not verify(odd).stderr.strip()
    bad = verify(broken)  # the check can fail: a wrong value is reported
    assert "restart specifier" in bad.stderr


def test_arguments_are_quoted_for_systemd_not_for_a_shell():
    assert service.systemd_quote("/home/me/s.toml") == "/home/me/s.toml"
    assert service.systemd_quote("/home/me/my s.toml") == '"/home/me/my s.toml"'
    assert service.systemd_quote('a%b$c"d\\e') == '"a%%b$$c\\"d\\\\e"'
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
    monkeypatch.setattr(service, "_systemctl", lambda *a: subprocess.CompletedProcess(
        ["systemctl"], 1, "", "Failed to connect to bus: No medium found"))
    assert service.main(["uninstall"]) == 0 and not service.unit_path().exists()
    assert "never enabled" in capsys.readouterr().out
    assert service.main(["install", "--no-start"]) == 0
    wants = service.unit_path().parent / "default.target.wants"
    wants.mkdir()
    (wants / "livebokeh.service").symlink_to(service.unit_path())
    assert service.main(["uninstall"]) == 1
    assert "Failed to connect to bus" in capsys.readouterr().err and service.unit_path().exists()


def test_a_name_that_is_no_preset_is_refused_and_missing_weights_are_told(home, monkeypatch, capsys):
    assert service.main(["install", "--no-start", "--config", "nosuch"]) == 2
    assert "neither a file nor a preset" in capsys.readouterr().err and not service.unit_path().exists()
    from livebokeh import models
    from livebokeh.errors import ModelError

    def nothing_here(name, explicit=None, download_missing=True):
        raise ModelError("not downloaded")

    monkeypatch.setattr(models, "locate", nothing_here)
    assert service.main(["install", "--no-start"]) == 0  # the default backend, RVM, has no weights here
    assert "has no weights here yet: run `livebokeh models download rvm`" in capsys.readouterr().out


def test_a_relative_config_home_is_ignored(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/dir")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert service.unit_path() == tmp_path / ".config" / "systemd" / "user" / "livebokeh.service"


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
    assert "\nEnvironment=LIVEBOKEH_SERVICE=1\n" in text  # its run file is marked as the service's
    assert "\nExecReload=/bin/kill -HUP $MAINPID\n" in text  # systemctl --user reload: the settings read again


def test_status_prints_the_running_services_page_with_its_key(home, tmp_path, monkeypatch, capsys):
    import os

    from livebokeh.control.runtime import RunFile, publish

    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert service.main(["status"]) == 0
    assert "control page: none (the service is not running" in capsys.readouterr().out
    publish(RunFile(os.getpid(), 45678, "s3cret", "camera 0", 1.0, service=True))
    assert service.main(["status"]) == 0
    assert "control page: http://127.0.0.1:45678/?key=s3cret" in capsys.readouterr().out
