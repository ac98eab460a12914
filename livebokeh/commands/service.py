"""``livebokeh service install|uninstall|status``: livebokeh as an always-on virtual camera (Linux).

``install`` writes a systemd user unit that starts livebokeh at login with the user's settings
file and ``--on-demand``: the webcam and the model run only while an app reads the virtual
camera. The unit restarts livebokeh when it fails and logs to the journal
(``journalctl --user -u livebokeh``). Nothing the user owns is replaced without ``--overwrite``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from livebokeh.errors import ConfigError, LivebokehError

UNIT = "livebokeh.service"
#: The first line of every unit this command writes: uninstall removes only such a file.
MARK = "# Written by `livebokeh service install`; remove with `livebokeh service uninstall`."


def config_home() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")


def unit_path() -> Path:
    """Where systemd looks for the user's own units."""
    return config_home() / "systemd" / "user" / UNIT


def settings_path() -> Path:
    """The user's settings file the service runs with."""
    return config_home() / "livebokeh" / "settings.toml"


def unit_text(settings: Path, python: str = sys.executable, on_demand: bool = True) -> str:
    """The unit file for ``settings`` (run by ``python``)."""
    args = [python, "-m", "livebokeh", "--config", str(settings), "--no-preview"]
    if on_demand:
        args.append("--on-demand")
    return "\n".join([
        MARK,
        "[Unit]",
        "Description=livebokeh: webcam background blur as a virtual camera",
        "Documentation=https://github.com/livebokeh/livebokeh#always-on",
        # a missing webcam or v4l2loopback is not fixed by a quick restart: keep trying every
        # few seconds instead of giving up after systemd's default burst
        "StartLimitIntervalSec=0",
        "",
        "[Service]",
        "Type=simple",
        f"ExecStart={' '.join(shlex.quote(a) for a in args)}",
        "Restart=on-failure",
        "RestartSec=5",
        "Environment=PYTHONUNBUFFERED=1",
        "",
        "[Install]",
        "WantedBy=default.target",
        "",
    ])


@dataclass(frozen=True)
class State:
    """What ``status`` and ``livebokeh doctor`` report."""

    installed: bool
    ours: bool  # the unit file is one this command wrote
    on_demand: bool
    enabled: str  # systemctl's answer, or why there is none
    active: str

    def line(self) -> str:
        if not self.installed:
            return f"not installed ({unit_path()} absent); `livebokeh service install` sets it up"
        how = "on demand" if self.on_demand else "always running the camera"
        return f"{unit_path()}: {how}; enabled: {self.enabled}; active: {self.active}"


def _systemctl(*args: str) -> subprocess.CompletedProcess[str] | None:
    """``systemctl --user ARGS``, or None where there is no systemctl."""
    exe = shutil.which("systemctl")
    if exe is None:
        return None
    return subprocess.run([exe, "--user", *args], capture_output=True, text=True, timeout=30, check=False)


def _answer(*args: str) -> str:
    done = _systemctl(*args)
    if done is None:
        return "unknown (no systemctl)"
    out = done.stdout.strip().splitlines()
    if out:
        return out[0]
    err = done.stderr.strip().splitlines()
    return f"unknown ({err[0] if err else f'exit {done.returncode}'})"


def state() -> State:
    path = unit_path()
    if not path.is_file():
        return State(False, False, False, "no", "no")
    text = path.read_text(errors="replace")
    exec_start = next((ln for ln in text.splitlines() if ln.startswith("ExecStart=")), "")
    return State(True, text.startswith(MARK), "--on-demand" in exec_start.split(),
                 _answer("is-enabled", UNIT), _answer("is-active", UNIT))


def install(settings: Path, overwrite: bool = False, start: bool = True, on_demand: bool = True) -> list[str]:
    """Writes the unit (and, if missing, the settings file with the defaults); enables and starts
    it when ``start`` and systemctl is there. Returns what was done, one line each."""
    from livebokeh.config import Config, load_config, to_toml
    from livebokeh.sinks.files import write_bytes

    if platform.system() != "Linux":
        raise ConfigError("the service is a systemd user unit: Linux only; on Windows and macOS start livebokeh "
                          "from a login item (see the README)")
    done = []
    if settings.exists():
        load_config(settings)  # a broken settings file fails now, not at every login
    else:
        settings.parent.mkdir(parents=True, exist_ok=True)
        write_bytes(settings, to_toml(Config()).encode(), overwrite=False)
        done.append(f"wrote the default settings to {settings} (edit them there)")
    path = unit_path()
    if path.exists() and not overwrite:
        raise ConfigError(f"{path} exists; pass --overwrite to replace it, or `livebokeh service uninstall` first")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(path, unit_text(settings.resolve(), on_demand=on_demand).encode(), overwrite=overwrite)
    done.append(f"wrote {path}")
    if not start:
        done.append(f"start it with: systemctl --user daemon-reload && systemctl --user enable --now {UNIT}")
        return done
    for args in (("daemon-reload",), ("enable", "--now", UNIT)):
        result = _systemctl(*args)
        if result is None:
            done.append(f"no systemctl here: start it with `systemctl --user enable --now {UNIT}` where systemd runs")
            break
        if result.returncode != 0:
            why = " ".join((result.stderr or result.stdout).split()) or f"exit {result.returncode}"
            raise LivebokehError(f"systemctl --user {' '.join(args)} failed: {why}; the unit is written at {path}")
    else:
        done.append(f"enabled and started {UNIT}; logs: journalctl --user -u livebokeh")
    return done


def uninstall() -> list[str]:
    path = unit_path()
    if not path.exists():
        return [f"nothing to do: {path} does not exist"]
    if not path.read_text(errors="replace").startswith(MARK):
        raise ConfigError(f"{path} was not written by `livebokeh service install`; remove it yourself if you mean to")
    done = []
    if _systemctl("disable", "--now", UNIT) is not None:
        done.append(f"stopped and disabled {UNIT}")
    path.unlink()
    done.append(f"removed {path} (your settings file stays)")
    _systemctl("daemon-reload")
    return done


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="livebokeh service", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="what", required=True)
    i = sub.add_parser("install", help="write and start the systemd user unit")
    i.add_argument("--config", type=Path, default=None,
                   help=f"the settings file it runs with (default {settings_path()}; written with the defaults if missing)")
    i.add_argument("--overwrite", action="store_true", help="replace an existing unit file")
    i.add_argument("--no-start", action="store_true", help="only write the unit; do not enable or start it")
    i.add_argument("--always", action="store_true", help="run the camera all the time instead of on demand")
    sub.add_parser("uninstall", help="stop, disable and remove the unit (the settings file stays)")
    sub.add_parser("status", help="is it installed, enabled, running, on demand?")
    args = p.parse_args(argv)
    try:
        if args.what == "install":
            lines = install(args.config or settings_path(), args.overwrite, not args.no_start, not args.always)
        elif args.what == "uninstall":
            lines = uninstall()
        else:
            lines = [state().line()]
    except LivebokehError as err:
        print(f"livebokeh service: error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2 if isinstance(err, ConfigError) else 1
    for line in lines:
        print(line)
    return 0
