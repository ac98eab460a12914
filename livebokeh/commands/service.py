"""``livebokeh service install|uninstall|status``: livebokeh as an always-on virtual camera (Linux).

``install`` writes a systemd user unit that starts livebokeh at login with the user's settings
file and ``--on-demand``: the webcam and the model run only while an app reads the virtual
camera. Before it writes anything it checks what the service will need (a user systemd to run
it, the v4l2loopback device, the settings' model weights where the service will look) and says
what to do; a failed install leaves nothing behind. The unit restarts livebokeh a few times when
it fails, never when it cannot ever work (exit 2 or 3), and logs to the journal
(``journalctl --user -u livebokeh``). Nothing the user owns is replaced without ``--overwrite``.
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from livebokeh.errors import (
    ConfigError,
    LivebokehError,
    OneLineParser,
    SetupError,
    exit_code,
    kind_at,
    one_line,
    printable,
    stdout_error,
    stdout_gone,
)

UNIT = "livebokeh.service"
#: The first line of every unit this command writes: uninstall removes only such a file.
MARK = "# Written by `livebokeh service install`; remove with `livebokeh service uninstall`."
#: Set in the unit's environment: a failing run then says in the journal what systemd does next.
SERVICE_ENV = "LIVEBOKEH_SERVICE"
#: Seconds between restarts after a failure, and how many starts systemd allows within
#: START_LIMIT_INTERVAL seconds before it gives up (a webcam or network back within a minute is
#: worth a retry; a fault that stays is not worth a camera light blinking forever).
RESTART_SEC = 10
START_LIMIT_BURST = 5
START_LIMIT_INTERVAL = 120
#: Exit statuses a restart cannot mend: 2, the settings ask for what cannot be done; 3, this
#: machine lacks what the run needs (v4l2loopback, weights a setting names).
NO_RESTART = (2, 3)
#: Environment variables that tell livebokeh where its weights are: the unit carries those set at
#: install (with each model's LIVEBOKEH_<NAME>_WEIGHTS and the files each backend declares in
#: ``Segmenter.file_variables``, such as LIVEBOKEH_DEEPLAB_DECODER), so that the service finds what
#: the install's check found.
CARRIED = ("LIVEBOKEH_CACHE", "LIVEBOKEH_MODEL_DIR", "XDG_CACHE_HOME")


def home() -> Path:
    """The user's home: ``$HOME``, which must be an absolute path (an empty or relative one would
    put the unit under ``/`` or the current folder), or the password database's when unset."""
    value = os.environ.get("HOME")
    if value is None:
        return Path.home()
    if not value or not os.path.isabs(value):
        what = "empty" if not value else f"a relative path ({_printable(value)})"
        raise ConfigError(f"HOME is {what}; set it to your home folder (export HOME=/home/$USER) and run this again")
    return Path(value)


def _xdg_config_home(environ: Mapping[str, str]) -> str:
    """``XDG_CONFIG_HOME`` in ``environ``, "" when unset or relative (ignored, as the XDG spec says)."""
    value = environ.get("XDG_CONFIG_HOME", "")
    return value if value and os.path.isabs(value) else ""


def config_home(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CONFIG_HOME``, or ``~/.config`` (a relative value is ignored, as the XDG spec says),
    in ``environ``: this process's by default; the user's systemd's (:func:`_manager_environment`)
    for where it looks for units, its ``HOME`` taken when that is an existing folder.

    Raises:
        ConfigError: the home folder is needed and does not exist (a mistyped ``HOME``): nothing
            is made under it.
    """
    if value := _xdg_config_home(os.environ if environ is None else environ):
        return Path(value)
    theirs = (environ or {}).get("HOME", "")
    if theirs and os.path.isabs(theirs) and os.path.isdir(theirs):
        return Path(theirs) / ".config"
    user = home()
    if not user.is_dir():
        raise ConfigError(f"HOME is {_printable(str(user))}, which is no folder; set it to your home folder "
                          "(export HOME=/home/$USER) and run this again")
    return user / ".config"


def unit_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where systemd looks for the user's own unit, in ``environ`` (:func:`config_home`): this
    shell's by default; :func:`locate` asks the user's systemd."""
    return config_home(environ) / "systemd" / "user" / UNIT


@dataclass(frozen=True)
class Where:
    """Where the unit is, as the user's systemd sees it (:func:`locate`)."""

    unit: Path
    manager: dict[str, str] | None  # the user's systemd's environment (None: it could not be asked)
    why: str  # why it could not be asked ("" when it was)
    note: str  # a line saying the unit is not where this shell's XDG_CONFIG_HOME would put it ("" when it is)


def locate() -> Where:
    """Where the user's systemd looks for the unit: under its own ``XDG_CONFIG_HOME`` (from
    ``systemctl --user show-environment``), else its ``HOME``'s ``.config``, which need not be what
    this shell's say; where it cannot be asked, as this shell's say. This shell's ``HOME`` is
    checked first (ConfigError, nothing asked)."""
    shell = unit_path()
    manager, why = _manager_environment()
    if manager is None:
        # not asked: as this shell says, unless a unit is only where systemd looks by default
        # (HOME's .config, when this shell's XDG_CONFIG_HOME points elsewhere)
        usual = home() / ".config" / "systemd" / "user" / UNIT
        if usual != shell and not os.path.lexists(shell) and os.path.lexists(usual):
            return Where(usual, None, why, f"{why}; the unit found is {_printable(str(usual))}, where it looks "
                                           "unless told otherwise")
        return Where(shell, None, why, "")
    path = unit_path(manager)
    if path == shell:
        return Where(path, manager, "", "")
    theirs, ours = _xdg_config_home(manager), _xdg_config_home(os.environ)
    if theirs != ours:
        told = f"its XDG_CONFIG_HOME is {theirs}" if theirs else "it has no XDG_CONFIG_HOME"
        told += f"; this shell's is {ours}" if ours else "; this shell has none"
    else:
        told = f"its HOME is {manager.get('HOME', '')}; this shell's is {home()}"
    note = f"the unit goes in {path.parent}, where your user's systemd looks for it ({_printable(told)})"
    return Where(path, manager, "", note)


def settings_path() -> Path:
    """The user's settings file the service runs with."""
    return config_home() / "livebokeh" / "settings.toml"


def _printable(text: str) -> str:
    """``text`` as it can be printed: bytes that are no UTF-8 (a file name's) as ``\\xff``, control
    characters escaped (:func:`livebokeh.errors.printable`)."""
    return printable(text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace"), newlines=False)


def _say(line: str) -> None:
    print(_printable(line))


def _utf8(text: str, what: str, fix: str = "rename it") -> None:
    """Raises ConfigError unless ``text`` is UTF-8 text on one line (a unit file is both), with
    ``fix`` for what to do."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(f"{what} {_printable(text)} is not UTF-8 text, which a systemd unit must be: {fix}") from None
    if any(c in text for c in "\n\r\0"):
        raise ConfigError(f"{what} {text!r} holds a line break, which a systemd unit cannot: {fix}")


def systemd_quote(arg: str) -> str:
    """``arg`` as one word of a systemd ``ExecStart=`` line: in double quotes when it needs them,
    with ``\\``, ``"`` escaped and ``%`` and ``$`` doubled (systemd expands specifiers and
    variables even inside quotes)."""
    _utf8(arg, "the argument")
    escaped = _c_escaped(arg.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$"))
    plain = escaped == arg and not any(c in arg for c in " \t'")
    return arg if plain else f'"{escaped}"'


def _c_escaped(text: str) -> str:
    """Control characters as systemd's C escapes (``\\x1b``): a line break would end the unit's line."""
    return "".join(f"\\x{ord(c):02x}" if ord(c) < 0x20 or ord(c) == 0x7F else c for c in text)


def systemd_environment(name: str, value: str) -> str:
    """One ``Environment=`` assignment, quoted: ``\\`` and ``"`` escaped, ``%`` doubled (a
    specifier); ``$`` is plain there."""
    _utf8(value, name, f"set {name} to a plain path, or unset it")
    return '"' + _c_escaped(f"{name}={value}".replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")) + '"'


def unit_text(settings: str | Path, python: str = sys.executable, on_demand: bool = True,
              environment: Mapping[str, str] | None = None) -> str:
    """The unit file that runs livebokeh (with ``python``) on ``settings``, a file or a preset
    name, with ``environment`` (variable -> value) besides its own."""
    _utf8(python, "the Python path", "install livebokeh into a virtual environment on a plain path")
    if any(c in python for c in "'\"\\%$"):
        raise ConfigError(f"systemd cannot run a Python whose path holds quotes, % or $ ({python}); "
                          "install livebokeh into a virtual environment on a plain path")
    _utf8(str(settings), "the settings file name", "rename it, or pass --config another file")
    args = [python, "-m", "livebokeh", "--config", str(settings), "--no-preview",
            "--on-demand" if on_demand else "--no-on-demand", "--control"]
    env = {"PYTHONUNBUFFERED": "1", SERVICE_ENV: UNIT, **(environment or {})}
    return "\n".join([
        MARK,
        "[Unit]",
        "Description=livebokeh: webcam background blur as a virtual camera",
        "Documentation=https://github.com/livebokeh/livebokeh#always-on",
        # a few tries (a webcam or the network back within a minute), then it stays failed
        f"StartLimitIntervalSec={START_LIMIT_INTERVAL}",
        f"StartLimitBurst={START_LIMIT_BURST}",
        "",
        "[Service]",
        "Type=simple",
        f"ExecStart={' '.join(systemd_quote(a) for a in args)}",
        "WorkingDirectory=%h",
        "Restart=on-failure",
        f"RestartSec={RESTART_SEC}",
        # 130: stopped by SIGTERM (systemctl stop, logout), outputs finalised: a clean stop.
        # 2: the settings ask for what cannot be done; 3: this machine lacks what it needs
        # (v4l2loopback, weights): restarting will not help; fix them first
        "SuccessExitStatus=130",
        f"RestartPreventExitStatus={' '.join(map(str, NO_RESTART))}",
        *(f"Environment={systemd_environment(k, v)}" for k, v in env.items()),
        # SIGHUP (systemctl --user reload livebokeh) reads the settings file again, without a restart
        "ExecReload=/bin/kill -HUP $MAINPID",
        "",
        "[Install]",
        "WantedBy=default.target",
        "",
    ])


def exit_note(code: int, environ: Mapping[str, str] | None = None) -> str | None:
    """What systemd does after livebokeh, run by the unit, exits with ``code`` (None outside the
    service, and for a clean stop): the line the journal shows after the error."""
    if (environ if environ is not None else os.environ).get(SERVICE_ENV) != UNIT or code in (0, 130):
        return None
    if code in NO_RESTART:
        return (f"the service does not restart after exit {code} (it would fail the same way): fix the above, then "
                f"`systemctl --user restart {UNIT}`")
    return (f"the service tries again in {RESTART_SEC} s, at most {START_LIMIT_BURST} starts in {START_LIMIT_INTERVAL} s; "
            f"after that it stays stopped until `systemctl --user restart {UNIT}`")


def _not_a_file(path: Path) -> str:
    """Why ``path``, where the unit goes, cannot be it ("" when it can, or nothing is there): a
    folder, a pipe, a device or a socket in the way (a link to one too). It is never opened: a pipe
    would wait for a writer, a device give bytes without end."""
    kind = kind_at(path)
    if kind in (None, "a file"):
        return ""
    return (f"{path} is {kind}, not a unit file: systemd ignores it and install cannot write there; "
            "move it away (it is not livebokeh's to remove)")


@dataclass(frozen=True)
class State:
    """What ``status`` and ``livebokeh doctor`` report."""

    installed: bool
    ours: bool  # the unit file is one this command wrote
    on_demand: bool
    enabled: str  # systemctl's answer, or why there is none
    active: str
    problem: str = ""  # something in the unit's place that is no unit (a folder)
    path: Path | None = None  # where the unit is (:func:`locate`); None: as this shell's environment says
    note: str = ""  # the unit is not where this shell's XDG_CONFIG_HOME would put it (:attr:`Where.note`)

    def line(self) -> str:
        path = self.path or unit_path()
        if self.problem:
            return self.problem
        if not self.installed:
            return f"not installed ({path} absent); `livebokeh service install` sets it up"
        if not self.ours:  # a unit of the user's own at the name: report it, do not call it ours
            return (f"{path} was not written by `livebokeh service install` (a unit of your own; "
                    f"enabled: {self.enabled}; active: {self.active})")
        how = "on demand" if self.on_demand else "always running the camera"
        return f"{path}: {how}; enabled: {self.enabled}; active: {self.active}"


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


#: Seconds ``systemctl --user`` has to answer (a user manager that hangs must not hang livebokeh).
SYSTEMCTL_TIMEOUT = 30.0
#: systemctl programs that did not answer in time: later calls in this process fail at once.
_HUNG: set[str] = set()


def _systemctl(*args: str) -> subprocess.CompletedProcess[str] | None:
    """``systemctl --user ARGS``, or None where there is no systemctl. One that does not answer
    within :data:`SYSTEMCTL_TIMEOUT` (then, in this process, at once), or cannot be run, gives a
    failed result saying so; output that is not UTF-8 is read with its bad bytes replaced."""
    exe = shutil.which("systemctl")
    if exe is None:
        return None
    command = [exe, "--user", *args]
    late = f"systemctl --user did not answer within {SYSTEMCTL_TIMEOUT:g} s"
    if exe in _HUNG:
        return subprocess.CompletedProcess(command, 124, "", late)
    try:
        return subprocess.run(command, capture_output=True, encoding="utf-8", errors="replace",
                              timeout=SYSTEMCTL_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        _HUNG.add(exe)
        return subprocess.CompletedProcess(command, 124, "", late)
    except OSError as err:  # not executable, say
        return subprocess.CompletedProcess(command, 126, "", f"{exe} cannot be run ({err.strerror or err})")


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
    where = locate()
    path = where.unit
    problem = _not_a_file(path)
    if not problem and path.is_symlink() and not path.exists():
        problem = (f"{path} is a link to a missing file, not a unit: systemd ignores it; remove the link, or restore "
                   "what it names")
    if problem:
        return State(False, False, False, "no", "no", problem, path, where.note)
    if not path.is_file():
        return State(False, False, False, "no", "no", "", path, where.note)
    text = path.read_text(errors="replace")
    exec_start = next((ln for ln in text.splitlines() if ln.startswith("ExecStart=")), "")
    return State(True, text.startswith(MARK), "--on-demand" in exec_start.replace('"', " ").split(),
                 _answer("is-enabled", UNIT), _answer("is-active", UNIT), "", path, where.note)


@dataclass(frozen=True)
class Plan:
    """What ``install`` will write, worked out (and checked) before anything is written."""

    unit: Path
    text: bytes
    cfg: Any  # the settings the service runs with
    settings: Path | None  # a settings file to write with the defaults (None: it exists, or a preset)
    environment: dict[str, str]  # what the unit carries
    where: Where  # where the unit goes, and the user's systemd's environment


def carried_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables of :data:`CARRIED` and each model's ``LIVEBOKEH_<NAME>_WEIGHTS`` that are set
    (in ``environ``, default this process's), a relative path made absolute: the service starts
    in the home folder, with the environment of the user's systemd, which has none of them."""
    from livebokeh import models
    from livebokeh.segment import SEGMENTERS

    environ = os.environ if environ is None else environ
    names = [*CARRIED, *(m.env_var for m in models.manifests().values()),
             *(v for b in SEGMENTERS.names() for v in SEGMENTERS.get(b).file_variables)]
    return {n: os.path.abspath(environ[n]) for n in names if environ.get(n)}


def plan(settings: str | Path, on_demand: bool = True, overwrite: bool = False) -> Plan:
    """Works out and checks what ``install`` writes; writes nothing. Raises ConfigError for
    settings that cannot be, a unit in the way, a name systemd cannot take. The settings are
    checked first; then the user's systemd is asked where it looks for the unit (:func:`locate`)."""
    from livebokeh.config import Config, load_config, preset_names

    if platform.system() != "Linux":
        raise ConfigError("the service is a systemd user unit: Linux only; on Windows and macOS start livebokeh "
                          "from a login item (see the README)")
    unit_path()  # this shell's HOME, checked before anything else
    name = str(settings)
    _utf8(name, "the settings file name", "rename it, or pass --config another file")
    bare = not Path(name).exists() and Path(name).suffix == "" and "/" not in name
    if bare and name not in preset_names():
        raise ConfigError(f"--config {name!r} is neither a file nor a preset; presets: {', '.join(preset_names())}; "
                          "give a settings file's path (a missing .toml file is written with the defaults)")
    new_settings = None
    if bare:
        cfg, target = load_config(name), name  # a preset: nothing to write
    else:
        file = Path(settings).expanduser().absolute()  # a symlinked file stays a link: edits follow it
        if file.is_symlink() and not file.exists():
            raise ConfigError(f"{file} is a link to a missing file; restore it, or pass --config another file")
        if file.exists():
            cfg = load_config(file)  # a broken settings file fails now, not at every login
        else:
            cfg, new_settings = Config(), file
        target = str(file)
    if not cfg.virtual_camera.enabled:
        raise ConfigError(f"the settings {target} turn the virtual camera off ([virtual_camera] enabled = false), "
                          "and the service only sends to it: set it to true, or pass --config another file")
    from livebokeh.sinks.virtualcam import check_backend

    check_backend(cfg.virtual_camera.backend)
    if cfg.render.effect == "replace" or cfg.render.background:
        from livebokeh.render import open_background

        with contextlib.chdir(home()), open_background(cfg.render.background):  # where the service starts
            pass
    environment = carried_environment()
    text = unit_text(target, on_demand=on_demand, environment=environment).encode()
    where = locate()
    path = where.unit
    if problem := _not_a_file(path):
        raise ConfigError(problem)
    if (path.exists() or path.is_symlink()) and not overwrite:
        if not path.exists():
            raise ConfigError(f"{path} is a link to a missing file; pass --overwrite to replace it, or remove the link")
        if not _ours(path):  # uninstall would refuse it: not offered
            raise ConfigError(f"{path} is a unit of your own (not written by `livebokeh service install`); pass "
                              "--overwrite to replace it, or move it away")
        raise ConfigError(f"{path} exists; pass --overwrite to replace it, or `livebokeh service uninstall` first")
    return Plan(path, text, cfg, new_settings, environment, where)


def _manager_environment() -> tuple[dict[str, str] | None, str]:
    """The user's systemd's environment, which the service starts with (None and why when it
    cannot be reached)."""
    done = _systemctl("show-environment")
    if done is None:
        return None, "there is no systemctl here (the service needs systemd)"
    if done.returncode != 0:
        return None, (f"your user's systemd cannot be reached ({_why(done)}): run this in your own login session, "
                      "not under sudo, su or a bare ssh")
    env = {}
    for line in done.stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.isidentifier():
            env[key] = systemd_unquote(value)
    return env, ""


#: The escapes of systemd's quoting (``cescape``) and of a shell's ``$'...'``, by the letter after ``\``.
_ESCAPES = {"a": 7, "b": 8, "e": 27, "E": 27, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11}


def systemd_unquote(value: str) -> str:
    """A value as ``systemctl --user show-environment`` prints it, unquoted: systemd writes one
    holding a space, a quote or a shell's special character as ``$'...'`` (C escapes within:
    ``\\n``, ``\\'``, ``\\xNN``), or as ``"..."``; any other value is as it is."""
    if len(value) >= 3 and value.startswith("$'") and value.endswith("'"):
        inner = value[2:-1]
    elif len(value) >= 2 and value[0] == value[-1] == '"':
        inner = value[1:-1]
    else:
        return value
    raw, out, i = inner.encode("utf-8", "surrogateescape"), bytearray(), 0
    while i < len(raw):
        if raw[i] != 0x5C or i + 1 == len(raw):  # not a backslash (or one that ends the value)
            out.append(raw[i])
            i += 1
            continue
        c = chr(raw[i + 1])
        if c in _ESCAPES:
            out.append(_ESCAPES[c])
            i += 2
        elif c == "x" and (digits := re.match(rb"[0-9a-fA-F]{1,2}", raw[i + 2 : i + 4])):
            out.append(int(digits.group(), 16))
            i += 2 + len(digits.group())
        elif c in "01234567":
            digits = re.match(rb"[0-7]{1,3}", raw[i + 1 : i + 4])
            out.append(int(digits.group(), 8) & 0xFF)
            i += 1 + len(digits.group())
        else:  # \\, \', \", \$ ...: the character itself
            out.append(raw[i + 1])
            i += 2
    return out.decode("utf-8", "surrogateescape")


@contextmanager
def _environment(env: Mapping[str, str]) -> Iterator[None]:
    """This process's environment is ``env`` while inside (the service's, to look as it will)."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def service_environment(p: Plan, manager: Mapping[str, str] | None) -> dict[str, str]:
    """The environment the service will run in: its systemd's (this process's when that cannot be
    asked), the user's home, and what the unit carries."""
    env = dict(manager) if manager is not None else dict(os.environ)
    env.setdefault("HOME", str(home()))  # systemd gives a service its user's home
    env.update(p.environment)
    return env


def weights_problem(cfg: Any, env: Mapping[str, str], download: bool) -> tuple[str | None, Path | None]:
    """Whether the service, in ``env``, will find the weights of the settings' backend: (None,
    where) when it will, (why not, None) when not. ``download``: fetch them into the cache the
    service reads when they are missing there."""
    from livebokeh import models

    sc = cfg.segmenter
    own = cfg.backend_options()
    m = models.for_backend(sc.backend, getattr(own, "model", ""))
    if m is None:
        return None, None  # no weights file
    failure, where = _find_model(m, getattr(own, "weights", "") or None, env, download)
    if failure is None:
        return None, where
    why = f"the service will not find the weights of the settings' backend {sc.backend} ({one_line(failure)})"
    if sc.backend != "mediapipe":
        why += '; or set [segmenter] backend = "mediapipe" in its settings (a 0.25 MB model)'
    return why, None


def depth_problem(cfg: Any, env: Mapping[str, str], download: bool) -> tuple[str | None, Path | None]:
    """As :func:`weights_problem`, for the depth model the settings' ``[render] depth`` needs
    ((None, None) without it)."""
    from livebokeh import models

    if not cfg.render.depth:
        return None, None
    failure, where = _find_model(models.manifest("depth"), cfg.render.depth_weights or None, env, download)
    if failure is None:
        return None, where
    return (f"the service will not find the depth model its settings' [render] depth = true needs ({one_line(failure)}); "
            "or set [render] depth = false in its settings"), None


def _find_model(m: Any, explicit: str | None, env: Mapping[str, str],
                download: bool) -> tuple[LivebokehError | None, Path | None]:
    """(None, where) when the service, in ``env``, will find model ``m``'s file (``explicit``: the
    one its settings name), else (why not, None); ``download``: fetch it into the cache the
    service reads when it is missing there."""
    from livebokeh import models

    if explicit and not os.path.isabs(explicit):
        explicit = os.path.join(env["HOME"], explicit)  # the service starts in the home folder
    with _environment(env):
        try:
            return None, models.locate(m.name, explicit, download_missing=False)
        except LivebokehError as err:
            failure = err
    if download:  # into the cache the service reads, through this shell's network settings (a proxy)
        places = ["HOME", *CARRIED, *(n.env_var for n in models.manifests().values())]
        fetch = {k: v for k, v in os.environ.items() if k not in places} | {k: env[k] for k in places if k in env}
        with _environment(fetch):
            try:
                return None, models.locate(m.name, explicit, download_missing=True)
            except LivebokehError as err:
                failure = err
    return failure, None


def files_problem(cfg: Any, env: Mapping[str, str]) -> str | None:
    """Whether the service, in ``env`` and its home folder, will find the files besides its
    weights that the settings' backend reads and a setting or a variable names (DeepLab's decoder:
    :meth:`~livebokeh.segment.base.Segmenter.missing_files`): None when it will, else why not."""
    from livebokeh.segment import SEGMENTERS

    backend = cfg.segmenter.backend
    segmenter = SEGMENTERS.get(backend)  # (the backends imported in this process's environment)
    folder = env.get("HOME", "")
    with _environment(env), contextlib.chdir(folder if os.path.isdir(folder) else os.getcwd()):
        problem = segmenter.missing_files(cfg.backend_options())
    if problem is None:
        return None
    return f"the service will not find a file the settings' backend {backend} reads ({one_line(problem)})"


def runtime_problem(cfg: Any) -> str | None:
    """What the settings' backend needs installed that is not (DeepLab's keras runtime without
    TensorFlow): the service runs with this Python, so what it lacks here it lacks there."""
    if cfg.segmenter.backend == "deeplab" and cfg.deeplab.runtime == "keras":
        from livebokeh.segment.deeplab import segmenter

        if not segmenter.tensorflow_installed():
            return segmenter.NO_TENSORFLOW + '; or set [deeplab] runtime = "auto" in its settings'
    return None


def check(p: Plan, start: bool) -> tuple[list[str], list[str]]:
    """What would keep the service from working, each a sentence with its fix, and what was found
    (notes). ``start``: it is to start now, so its systemd must be reachable, and missing weights
    are downloaded (as its first run would)."""
    from livebokeh.sinks.virtualcam import loopback_problem

    problems, notes = [], []
    manager = p.where.manager
    if start and manager is None:
        problems.append(p.where.why)
    vc = p.cfg.virtual_camera
    if vc.backend in ("", "v4l2loopback") and (problem := loopback_problem(vc.device)):
        problems.append(f"no virtual camera: {problem}")
    if problem := runtime_problem(p.cfg):
        problems.append(problem)
    env = service_environment(p, manager)
    if problem := files_problem(p.cfg, env):
        problems.append(problem)
    problem, where = weights_problem(p.cfg, env, download=start and not problems)
    if problem:
        problems.append(problem)
    elif where is not None:
        notes.append(f"the {p.cfg.segmenter.backend} weights the service uses: {where}")
    problem, where = depth_problem(p.cfg, env, download=start and not problems)
    if problem:
        problems.append(problem)
    elif where is not None:
        notes.append(f"the depth model the service uses: {where}")
    return problems, notes


def _enable_links(unit: Path) -> list[Path]:
    """The links that enable the unit at ``unit``: ``UNIT`` in any ``*.wants`` or ``*.requires``
    folder beside it (``systemctl enable`` makes them after the unit's WantedBy/RequiredBy)."""
    found: list[Path] = []
    for pattern in (f"*.wants/{UNIT}", f"*.requires/{UNIT}"):
        found += [p for p in unit.parent.glob(pattern) if p.is_symlink() or p.exists()]
    return found


def _ours(path: Path) -> bool:
    """Whether the unit file at ``path`` (a regular file: see :func:`_not_a_file`) is one this
    command wrote."""
    with open(path, "rb") as fh:
        return fh.read(len(MARK.encode())) == MARK.encode()


def _place(path: Path, data: bytes, overwrite: bool) -> None:
    """Writes ``data`` under a name systemd never loads (hidden, and not ending in ``.service``),
    a new file (never through a link found at that name, which would have its target written),
    then moves it to ``path``: over an existing file (or link) only with ``overwrite``. Nothing
    else is left behind, whatever fails."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    if tmp.is_dir() and not tmp.is_symlink():
        raise ConfigError(f"{tmp} is a folder where install writes the unit first; move it away")
    from livebokeh.sinks.files import create_new

    try:
        try:  # (new: whatever an earlier process of this number left there removed, never written through)
            fd = create_new(tmp, 0o644)
        except FileExistsError:
            raise ConfigError(f"{tmp} appeared while install wrote the unit; try again") from None
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        if overwrite:
            os.replace(tmp, path)
            return
        try:
            os.link(tmp, path)  # never over a file (or a dangling link) that appeared meanwhile
        except FileExistsError:
            raise ConfigError(f"{path} appeared meanwhile; pass --overwrite to replace it") from None
    except OSError as err:
        from livebokeh.sinks.files import reason

        raise LivebokehError(f"cannot write {path}: {reason(err)}; check who owns {path.parent} "
                             "(a folder made with sudo?)") from None
    finally:
        with contextlib.suppress(OSError):  # (its own failure is not the one to tell)
            tmp.unlink(missing_ok=True)


class _Written:
    """The files ``install`` wrote, to be taken back when a later step fails, and the folders it
    (or systemctl) made for them, removed with them when left empty."""

    def __init__(self) -> None:
        self._undo: list[Any] = []
        self._folders: list[Path] = []

    def folders(self, *paths: Path) -> None:
        """Note which of ``paths`` and the folders above them do not exist yet (made by what follows)."""
        for path in paths:
            missing = []
            while not path.exists() and not path.is_symlink() and path.parent != path:
                missing.append(path)
                path = path.parent
            self._folders += [p for p in missing if p not in self._folders]

    def settings(self, path: Path, data: bytes) -> None:
        from livebokeh.sinks.files import write_bytes

        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except FileExistsError:  # a link to a missing folder, or a file, where the folder goes
            what = "a link to a missing folder" if path.parent.is_symlink() else "no folder"
            raise ConfigError(f"{path.parent}, where the settings file goes, is {what}; make it a folder, or pass "
                              "--config another file") from None
        write_bytes(path, data, overwrite=False)
        self._undo.append(lambda: path.unlink(missing_ok=True))

    def unit(self, path: Path, data: bytes, overwrite: bool) -> None:
        """Puts the unit in place (:func:`_place`); the old one, with ``overwrite``, is kept (its
        text, or the link it was) to be put back."""
        path.parent.mkdir(parents=True, exist_ok=True)
        old_link = os.readlink(path) if path.is_symlink() else None
        old = path.read_bytes() if old_link is None and path.is_file() else None
        _place(path, data, overwrite)

        def undo() -> None:
            if old_link is not None:
                path.unlink(missing_ok=True)
                path.symlink_to(old_link)
            elif old is not None:
                _place(path, old, overwrite=True)
            else:
                path.unlink(missing_ok=True)

        self._undo.append(undo)

    def roll_back(self) -> None:
        for undo in reversed(self._undo):
            try:
                undo()
            except OSError:
                pass
        self._undo.clear()
        for folder in sorted(self._folders, key=lambda p: len(p.parts), reverse=True):  # the deepest first
            try:
                folder.rmdir()  # only when empty: anything put there since stays
            except OSError:
                pass
        self._folders.clear()


def install(settings: str | Path, overwrite: bool = False, start: bool = True, on_demand: bool = True,
            say: Any = print) -> None:
    """Checks what the service needs, then writes the unit where the user's systemd looks for it
    (:func:`locate`; and, if ``settings`` is a missing file, the default settings there), and
    enables and starts it when ``start``: a unit it replaced that was running is restarted, so that
    the new one applies. ``settings``: a file or a preset name (``call``). ``say``: called with
    each line of what was done or found.

    Raises:
        ConfigError: the settings or the unit's name cannot be; a unit is in the way.
        SetupError: what the service needs is missing (with ``start``); nothing was written.
        LivebokehError: systemctl failed; what was written is taken back.
    """
    from livebokeh.config import Config, to_toml

    p = plan(settings, on_demand, overwrite)
    problems, notes = check(p, start)
    if problems and start:
        raise SetupError("the service cannot work here yet, nothing was written: " + "; ".join(problems)
                         + " (--no-start writes the unit anyway)")
    if p.where.note:
        say(p.where.note)
    for line in notes:
        say(line)
    for problem in problems:
        say(f"warning: {problem}")
    replaced = p.unit.exists()  # a unit (or a link to one) the service may be running
    # enabled before (a link in any target's .wants or .requires folder, whatever its WantedBy):
    # a failed enable must not disable it
    was_enabled = replaced and bool(_enable_links(p.unit))
    running = False
    if replaced and start:
        done = _systemctl("is-active", UNIT)
        running = done is not None and done.returncode == 0  # active or reloading
    written = _Written()
    # what systemctl enable makes (default.target.wants) goes too when the install is taken back
    written.folders(p.unit.parent / "default.target.wants", *([p.settings.parent] if p.settings else []))
    try:
        if p.settings is not None:
            written.settings(p.settings, to_toml(Config()).encode())
        written.unit(p.unit, p.text, overwrite)
    except BaseException:
        written.roll_back()
        raise
    if p.settings is not None:
        say(f"wrote the default settings to {p.settings} (edit them there)")
    say(f"wrote {p.unit}")
    if not start and replaced:
        say(f"the new unit applies at the service's next start; to apply it now: systemctl --user daemon-reload && "
            f"systemctl --user restart {UNIT}")
        return
    if not start:
        say(f"start it with: systemctl --user daemon-reload && systemctl --user enable --now {UNIT}")
        return
    reloaded = False
    for args in (("daemon-reload",), ("enable", "--now", UNIT)):
        result = _systemctl(*args)
        if result is None or result.returncode != 0:
            why = "systemctl is gone" if result is None else _why(result)
            if args[0] == "enable" and not was_enabled:
                _systemctl("disable", UNIT)  # a half-done enable: its link goes too (not the old unit's own)
                for link in _enable_links(p.unit):  # (by hand where systemctl hung: every one is this enable's)
                    with contextlib.suppress(OSError):
                        link.unlink()
            written.roll_back()
            if reloaded:
                _systemctl("daemon-reload")
            raise LivebokehError(f"systemctl --user {' '.join(args)} failed: {why}; what install wrote was taken "
                                 "back; run it again where your user's systemd is reachable")
        reloaded = True
    if not running:
        say(f"enabled and started {UNIT}; logs: journalctl --user -u livebokeh")
        return
    # enable --now leaves a running unit running, with its old command line and settings file
    result = _systemctl("restart", UNIT)
    if result is None or result.returncode != 0:
        # the new unit cannot start: the old one, which was running, is put back and started again
        why = "systemctl is gone" if result is None else _why(result)
        written.roll_back()
        reread = _systemctl("daemon-reload")
        if reread is None or reread.returncode != 0:  # systemd still holds the new unit: no restart claimed
            back = ("the old unit was put back on disk, but systemd did not read it again: run `systemctl --user "
                    f"daemon-reload && systemctl --user restart {UNIT}`")
        else:
            again = _systemctl("restart", UNIT)
            back = ("the old unit was put back and runs again" if again is not None and again.returncode == 0
                    else f"the old unit was put back, but it did not start again either (`systemctl --user restart "
                         f"{UNIT}`)")
        raise LivebokehError(f"systemctl --user restart {UNIT} failed with the new unit: {why}; {back}; "
                             "`journalctl --user -u livebokeh` says why the new one failed")
    say(f"enabled and restarted {UNIT} (it was running: the new unit applies now); logs: journalctl --user -u livebokeh")


def uninstall() -> list[str]:
    where = locate()
    path = where.unit
    if problem := _not_a_file(path):
        raise ConfigError(problem)
    if path.is_symlink() and not path.exists():
        raise ConfigError(f"{path} is a link to a missing file, not a unit `livebokeh service install` wrote; "
                          "remove it yourself if you mean to")
    done = [where.note] if where.note else []
    if not path.exists():
        return [*done, f"nothing to do: {path} does not exist"]
    if not _ours(path):
        raise ConfigError(f"{path} was not written by `livebokeh service install`; remove it yourself if you mean to")
    result = _systemctl("disable", "--now", UNIT)
    never_enabled = not _enable_links(path)  # (under any target: graphical-session.target's too)
    running = False
    if result is not None and result.returncode != 0 and never_enabled and where.manager is not None:
        active = _systemctl("is-active", UNIT)  # started by hand, not enabled: still to stop
        # its systemd answers: only 'inactive' or 'failed' says it is stopped (restarting is
        # 'activating'; no answer is no proof)
        running = active is not None and not (active.returncode == 3 and active.stdout.strip() in ("inactive", "failed"))
    if result is not None and result.returncode != 0 and never_enabled and where.manager is None:
        done.append("systemd is not reachable here, and the unit was never enabled: nothing to stop")
    elif result is not None and result.returncode != 0 and never_enabled and not running:
        done.append(f"systemctl --user disable --now {UNIT} failed ({_why(result)}), and the unit was never enabled "
                    "nor is it running: nothing to stop")
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
    try:
        default = str(settings_path())
    except ConfigError:  # HOME unusable: said when a command needs it
        default = "~/.config/livebokeh/settings.toml"
    p = OneLineParser(prog="livebokeh service", description=__doc__.split("\n\n")[0].replace("``", ""))
    sub = p.add_subparsers(dest="what", required=True, metavar="install|uninstall|status")
    i = sub.add_parser("install", help="check what it needs, then write and start the systemd user unit")
    i.add_argument("--config", default=None,
                   help=f"the settings file it runs with, or a preset name (default {default}; "
                        "a missing file is written with the defaults)")
    i.add_argument("--overwrite", action="store_true", help="replace an existing unit file")
    i.add_argument("--no-start", action="store_true",
                   help="only write the unit (what it lacks is a warning); do not enable or start it")
    i.add_argument("--always", action="store_true", help="run the camera all the time instead of on demand")
    sub.add_parser("uninstall", help="stop, disable and remove the unit (the settings file stays)")
    sub.add_parser("status", help="is it installed, enabled, running, on demand?")
    args = p.parse_args(argv)
    try:
        if args.what == "install":
            install(args.config or settings_path(), args.overwrite, not args.no_start, not args.always, say=_say)
        elif args.what == "uninstall":
            for line in uninstall():
                _say(line)
        else:
            st = state()
            if st.note:
                _say(st.note)
            _say(st.line())
            _say(control_line())
    except LivebokehError as err:
        print(f"livebokeh service: error: {one_line(err)}", file=sys.stderr)
        return exit_code(err)
    except OSError as err:
        if (isinstance(err, BrokenPipeError) and stdout_gone()) or stdout_error(err):
            raise  # its output's reader gone (ends quietly), or its output unwritable (livebokeh.cli.main)
        where = f" {_printable(str(err.filename))}" if err.filename else ""
        print(f"livebokeh service: error: cannot write{where}: {err.strerror or err}; check who owns it "
              "(a folder made with sudo?)", file=sys.stderr)
        return 1
    return 0
