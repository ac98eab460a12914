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
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from livebokeh.errors import ConfigError, LivebokehError, one_line

UNIT = "livebokeh.service"
#: The first line of every unit this command writes: uninstall removes only such a file.
MARK = "# Written by `livebokeh service install`; remove with `livebokeh service uninstall`."


def config_home() -> Path:
    """``$XDG_CONFIG_HOME``, or ``~/.config`` (a relative value is ignored, as the XDG spec says)."""
    value = os.environ.get("XDG_CONFIG_HOME", "")
    return Path(value) if value and Path(value).is_absolute() else Path.home() / ".config"


def unit_path() -> Path:
    """Where systemd looks for the user's own units."""
    return config_home() / "systemd" / "user" / UNIT


def settings_path() -> Path:
    """The user's settings file the service runs with."""
    return config_home() / "livebokeh" / "settings.toml"


def systemd_quote(arg: str) -> str:
    """``arg`` as one word of a systemd ``ExecStart=`` line: in double quotes when it needs them,
    with ``\\``, ``"`` escaped and ``%`` and ``$`` doubled (systemd expands specifiers and
    variables even inside quotes)."""
    if any(c in arg for c in "\n\r\0"):
        raise ConfigError(f"{arg!r} holds a line break; systemd cannot run it: move it to a plain path")
    escaped = arg.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    plain = escaped == arg and not any(c in arg for c in " \t'")
    return arg if plain else f'"{escaped}"'


def unit_text(settings: str | Path, python: str = sys.executable, on_demand: bool = True) -> str:
    """The unit file that runs livebokeh (with ``python``) on ``settings``, a file or a preset name."""
    if any(c in python for c in "'\"\\%$\n"):
        raise ConfigError(f"systemd cannot run a Python whose path holds quotes, % or $ ({python}); "
                          "install livebokeh into a virtual environment on a plain path")
    args = [python, "-m", "livebokeh", "--config", str(settings), "--no-preview",
            "--on-demand" if on_demand else "--no-on-demand", "--control"]
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
        f"ExecStart={' '.join(systemd_quote(a) for a in args)}",
        "Restart=on-failure",
        "RestartSec=5",
        # 130: stopped by SIGTERM (systemctl stop, logout), outputs finalised: a clean stop.
        # 2: the settings ask for what cannot be done: restarting will not help; fix them first
        "SuccessExitStatus=130",
        "RestartPreventExitStatus=2",
        "Environment=PYTHONUNBUFFERED=1",
        # the run leaves its control page's address in the runtime folder, marked as the service's
        "Environment=LIVEBOKEH_SERVICE=1",
        # SIGHUP (systemctl --user reload livebokeh) reads the settings file again, without a restart
        "ExecReload=/bin/kill -HUP $MAINPID",
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


def control_line() -> str:
    """Where the running service's control page is (its address with the key), or why none is known."""
    from livebokeh.control.runtime import find_runs

    try:
        runs = [r for r in find_runs() if r.service]
    except LivebokehError as err:
        return f"control page: unknown ({one_line(err)})"
    if not runs:
        return "control page: none (the service is not running, or runs with --no-control)"
    return f"control page: {runs[-1].url} (or `livebokeh ctl`)"


def _systemctl(*args: str) -> subprocess.CompletedProcess[str] | None:
    """``systemctl --user ARGS``, or None where there is no systemctl."""
    exe = shutil.which("systemctl")
    if exe is None:
        return None
    return subprocess.run([exe, "--user", *args], capture_output=True, text=True, timeout=30, check=False)


def _why(done: subprocess.CompletedProcess[str]) -> str:
    """What a failed systemctl said, on one line."""
    return " ".join((done.stderr or done.stdout).split()) or f"exit {done.returncode}"


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
    return State(True, text.startswith(MARK), "--on-demand" in exec_start.replace('"', " ").split(),
                 _answer("is-enabled", UNIT), _answer("is-active", UNIT))


def install(settings: str | Path, overwrite: bool = False, start: bool = True, on_demand: bool = True) -> list[str]:
    """Writes the unit (and, if ``settings`` is a missing file, the default settings there);
    enables and starts it when ``start`` and systemctl is there. ``settings``: a file or a preset
    name (``call``). Returns what was done, one line each."""
    from livebokeh.config import Config, load_config, preset_names, to_toml
    from livebokeh.sinks.files import write_bytes

    if platform.system() != "Linux":
        raise ConfigError("the service is a systemd user unit: Linux only; on Windows and macOS start livebokeh "
                          "from a login item (see the README)")
    path = unit_path()
    if path.exists() and not overwrite:
        raise ConfigError(f"{path} exists; pass --overwrite to replace it, or `livebokeh service uninstall` first")
    done = []
    name = str(settings)
    bare = not Path(name).exists() and Path(name).suffix == "" and "/" not in name
    if bare and name not in preset_names():
        raise ConfigError(f"--config {name!r} is neither a file nor a preset; presets: {', '.join(preset_names())}; "
                          "give a settings file's path (a missing .toml file is written with the defaults)")
    if bare:
        cfg = load_config(name)
        target = name  # a preset: nothing to write
    else:
        file = Path(settings).expanduser().absolute()  # a symlinked file stays a link: edits follow it
        if file.is_symlink() and not file.exists():
            raise ConfigError(f"{file} is a link to a missing file; restore it, or pass --config another file")
        if file.exists():
            cfg = load_config(file)  # a broken settings file fails now, not at every login
        else:
            file.parent.mkdir(parents=True, exist_ok=True)
            write_bytes(file, to_toml(Config()).encode(), overwrite=False)
            done.append(f"wrote the default settings to {file} (edit them there)")
            cfg = Config()
        target = str(file)
    done += _weights_warning(cfg)
    text = unit_text(target, on_demand=on_demand)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(path, text.encode(), overwrite=overwrite)
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
            raise LivebokehError(f"systemctl --user {' '.join(args)} failed: {_why(result)}; the unit is written at {path}")
    else:
        done.append(f"enabled and started {UNIT}; logs: journalctl --user -u livebokeh")
    return done


def _weights_warning(cfg: object) -> list[str]:
    """A line when the settings' backend has no weights here (the service would fail to start
    offline and restart every few seconds)."""
    from livebokeh import models
    from livebokeh.errors import LivebokehError

    sc = cfg.segmenter  # type: ignore[attr-defined]
    if sc.backend not in models.manifests():
        return []
    explicit = getattr(cfg.backend_options(), "weights", "") or None  # type: ignore[attr-defined]
    try:
        models.locate(sc.backend, explicit, download_missing=False)
    except LivebokehError:
        return [f"warning: the settings' backend {sc.backend} has no weights here yet: run `livebokeh models "
                f"download {sc.backend}` (or set [segmenter] backend = \"mediapipe\") before the service starts"]
    return []


def uninstall() -> list[str]:
    path = unit_path()
    if not path.exists():
        return [f"nothing to do: {path} does not exist"]
    if not path.read_text(errors="replace").startswith(MARK):
        raise ConfigError(f"{path} was not written by `livebokeh service install`; remove it yourself if you mean to")
    done = []
    result = _systemctl("disable", "--now", UNIT)
    never_enabled = not (path.parent / "default.target.wants" / UNIT).exists()
    if result is not None and result.returncode != 0 and never_enabled:
        done.append("systemd is not reachable here, and the unit was never enabled: nothing to stop")
    elif result is not None and result.returncode != 0:
        raise LivebokehError(f"systemctl --user disable --now {UNIT} failed: {_why(result)}; the unit stays at {path}; run "
                             "this where your user's systemd is reachable (a login session, not sudo or a bare ssh)")
    elif result is None:
        done.append("no systemctl here: nothing to stop")
    else:
        done.append(f"stopped and disabled {UNIT}")
    path.unlink()
    done.append(f"removed {path} (your settings file stays)")
    _systemctl("daemon-reload")
    return done


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="livebokeh service", description=__doc__.split("\n\n")[0].replace("``", ""))
    sub = p.add_subparsers(dest="what", required=True, metavar="install|uninstall|status")
    i = sub.add_parser("install", help="write and start the systemd user unit")
    i.add_argument("--config", default=None,
                   help=f"the settings file it runs with, or a preset name (default {settings_path()}; "
                        "a missing file is written with the defaults)")
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
            lines = [state().line(), control_line()]
    except LivebokehError as err:
        print(f"livebokeh service: error: {one_line(err)}", file=sys.stderr)
        return 2 if isinstance(err, ConfigError) else 1
    except OSError as err:
        where = f" {err.filename}" if err.filename else ""
        print(f"livebokeh service: error: cannot write{where}: {err.strerror or err}; check who owns it "
              "(a folder made with sudo?)", file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    return 0
