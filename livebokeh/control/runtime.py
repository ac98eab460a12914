"""Where running livebokeh processes leave their address and secret, and how ``ctl`` finds them.

Each live run that serves the control page writes ``run-PID.json`` (mode 0600) into a folder only
the user can enter: ``$XDG_RUNTIME_DIR/livebokeh`` (systemd's per-user ``/run/user/UID``), or,
where there is no such directory, ``livebokeh-UID`` in the system's temporary folder (made mode
0700 and refused when another user owns it or others may enter it). The file holds the port and
the secret that every request must carry; it is removed when the run ends, and a file whose
process is gone (a killed run) is removed by the next look.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from livebokeh.errors import ConfigError, LivebokehError

PREFIX, SUFFIX = "run-", ".json"


def _uid() -> int:
    return os.getuid() if hasattr(os, "getuid") else 0


def runtime_dir(create: bool = False) -> Path:
    """The user's private folder for run files (see the module's text); ``create`` makes it."""
    base = os.environ.get("XDG_RUNTIME_DIR", "")
    if base and Path(base).is_absolute() and Path(base).is_dir():
        folder = Path(base) / "livebokeh"
    else:
        folder = Path(tempfile.gettempdir()) / f"livebokeh-{_uid()}"
    if create:
        try:
            folder.mkdir(mode=0o700, exist_ok=True)
        except OSError as err:
            raise ConfigError(f"cannot make {folder} for the control page ({err.strerror}); "
                              "run with --no-control, or set XDG_RUNTIME_DIR to a private folder") from None
    if folder.exists():
        st = folder.lstat()
        private = stat.S_ISDIR(st.st_mode) and (not hasattr(os, "getuid") or st.st_uid == _uid())
        if not private or st.st_mode & 0o077:
            raise ConfigError(f"{folder} is not a private folder of yours (mode {stat.S_IMODE(st.st_mode):o}); "
                              "remove it, or set XDG_RUNTIME_DIR to a private folder")
    return folder


@dataclass(frozen=True)
class RunFile:
    """What a run publishes: its process, its port on 127.0.0.1, its secret, what it reads."""

    pid: int
    port: int
    secret: str
    source: str = ""
    started: float = 0.0
    service: bool = False

    def address(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def url(self) -> str:
        """The control page's address with the secret (open it in a browser): in its fragment, which
        a browser never sends to a server; the page keeps it in its tab."""
        return f"{self.address('/')}#key={self.secret}"


def publish(run: RunFile) -> Path:
    """Write ``run``'s file (mode 0600 from its creation, moved into place whole)."""
    folder = runtime_dir(create=True)
    path = folder / f"{PREFIX}{run.pid}{SUFFIX}"
    tmp = folder / f".{PREFIX}{run.pid}.{time.monotonic_ns()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(asdict(run), fh)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def find_runs() -> list[RunFile]:
    """The runs of this user that serve a control page, oldest first (files of dead processes
    are removed)."""
    folder = runtime_dir()
    if not folder.is_dir():
        return []
    runs = []
    for path in sorted(folder.glob(f"{PREFIX}*{SUFFIX}")):
        try:
            data = json.loads(path.read_text())
            run = RunFile(**data)
        except (OSError, ValueError, TypeError):
            continue
        if not _alive(run.pid):
            path.unlink(missing_ok=True)
            continue
        runs.append(run)
    return sorted(runs, key=lambda r: r.started)


def choose(runs: list[RunFile], which: str | None = None) -> RunFile:
    """The run ``which`` names (its process id), or the only one; ConfigError otherwise."""
    if which is not None:
        for run in runs:
            if str(run.pid) == str(which):
                return run
        listed = ", ".join(f"{r.pid} ({r.source})" for r in runs) or "none"
        raise ConfigError(f"no running livebokeh with process id {which}; running: {listed}")
    if not runs:
        raise LivebokehError("no running livebokeh serves a control page here (start one, or `livebokeh service "
                          "install`; runs with --no-control serve none)")
    if len(runs) > 1:
        listed = ", ".join(f"{r.pid} ({r.source})" for r in runs)
        raise ConfigError(f"{len(runs)} livebokeh runs: {listed}; pick one with --run PID")
    return runs[0]
