""""Keep these as my defaults": the settings changed while running, written into the settings file.

The file is the run's own (the last ``--config`` that is a file; the service's
``~/.config/livebokeh/settings.toml``), else the user's settings file. Only the keys that differ
from what the file gives are written, each in its section, into the file's own text (its
comments and other keys stay as they were); the new text is read back and checked before it
replaces the old file, whole (:func:`livebokeh.sinks.files.write_bytes`). An existing file is
replaced only when the caller says the user agreed (``overwrite``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
from pathlib import Path
from typing import Any

from livebokeh.config import Config, parse_settings, sections, toml_value
from livebokeh.controls import live_kind
from livebokeh.errors import ConfigError


class Exists(ConfigError):
    """The settings file exists and the user has not agreed to replace it."""

    def __init__(self, path: Path, keys: list[str]) -> None:
        super().__init__(f"{path} exists; confirm to write {', '.join(keys)} into it (the rest of it stays)")
        self.path, self.keys = path, keys


def target(config_files: tuple[str, ...]) -> Path:
    """The settings file to write: the run's last ``--config`` file (a preset name is none), else
    the user's. A ``--config`` file that is no longer one (removed, a pipe, a folder now) is
    refused (ConfigError), never passed over for the user's file, which the service runs with."""
    from livebokeh.commands.service import settings_path
    from livebokeh.config import preset_names
    from livebokeh.errors import file_kind

    for item in reversed(config_files):
        path = Path(item).expanduser()
        if path.is_file():
            return path.absolute()
        if item in preset_names() and "/" not in item and not path.suffix:
            continue  # a preset (whatever is at that name in the folder now): nothing of the user's to write into
        try:
            what = file_kind(path.stat().st_mode)
        except OSError:
            what = "a link to a missing file" if path.is_symlink() else "gone"
        raise ConfigError(f"{item}, the settings file this run started with, is {what} now; put it back, then keep "
                          "the settings as defaults again")
    return settings_path()


def _flat(cfg: Config) -> dict[str, Any]:
    return {f"{name}.{f.name}": getattr(getattr(cfg, name), f.name)
            for name in sections() for f in dataclasses.fields(getattr(cfg, name))}


def changes_for(path: Path, settings: Config) -> dict[str, Any]:
    """The keys that change while running whose value in ``settings`` the file ``path`` does not give."""
    text = path.read_text(encoding="utf-8-sig") if path.is_file() else ""
    base = _flat(parse_settings(text, str(path)))
    now = _flat(settings)
    keep = {}
    for key, value in now.items():
        section = key.partition(".")[0]
        if live_kind(key) == "restart" or base[key] == value:
            continue
        if section in ("mediapipe", "deeplab", "rvm") and section != settings.segmenter.backend:
            continue
        keep[key] = value
    return keep


def edited(text: str, changes: dict[str, Any]) -> str:
    """``text`` (TOML) with each ``section.key = value`` of ``changes`` set in its section: the
    key's line replaced, or added at the end of its section, or a new section at the end."""
    for dotted, value in changes.items():
        section, _, key = dotted.partition(".")
        line = f"{key} = {toml_value(value)}"
        header = re.search(rf"(?m)^[ \t]*\[[ \t]*{re.escape(section)}[ \t]*\][ \t]*(#.*)?$", text)
        if header is None:
            text = (text.rstrip("\n") + "\n\n" if text.strip() else "") + f"[{section}]\n{line}\n"
            continue
        nxt = re.search(r"(?m)^[ \t]*\[", text[header.end():])
        end = header.end() + (nxt.start() if nxt else len(text) - header.end())
        body = text[header.end():end]
        existing = re.search(rf"(?m)^[ \t]*{re.escape(key)}[ \t]*=.*$", body)
        if existing is not None:
            body = body[:existing.start()] + line + body[existing.end():]
        else:
            stripped = body.rstrip("\n")
            body = stripped + "\n" + line + "\n" + ("\n" if nxt else "")
        text = text[:header.end()] + body + text[end:]
    return text if text.endswith("\n") else text + "\n"


def keep_defaults(settings: Config, config_files: tuple[str, ...], overwrite: bool = False) -> dict[str, Any]:
    """Write the live changes of ``settings`` into the settings file (see the module's text).

    Returns:
        ``{"path": ..., "written": {key: value}}`` (nothing written when nothing differs).

    Raises:
        Exists: the file exists and ``overwrite`` is false.
        ConfigError: the file cannot be edited safely (it is written in a way the edit cannot
            follow), or written.
    """
    from livebokeh.sinks.files import write_bytes

    path = target(config_files)
    changes = changes_for(path, settings)
    if not changes:
        return {"path": str(path), "written": {}}
    if path.exists() and not overwrite:
        raise Exists(path, sorted(changes))
    old = path.read_text(encoding="utf-8-sig") if path.is_file() else ""
    new = edited(old, changes)
    check = _flat(parse_settings(new, str(path)))
    wrong = [k for k, v in changes.items() if check[k] != v]
    if wrong:
        raise ConfigError(f"{path} is written in a way this edit cannot follow ({', '.join(wrong)}); "
                          "set these keys there yourself")
    # a settings file that is a link (into a dotfiles repository, say) is edited where it points,
    # the link kept, and the file keeps its permissions
    dest = path.resolve() if path.is_symlink() else path
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_file() and dest.stat().st_nlink > 1:  # a hard link: the file all its names share is edited
        _rewrite_in_place(dest, new.encode("utf-8"), old.encode("utf-8"))
    else:
        mode = dest.stat().st_mode & 0o7777 if dest.is_file() else None
        write_bytes(dest, new.encode("utf-8"), overwrite=dest.exists(), mode=mode)  # agreed to above
    return {"path": str(path), "written": changes}


def _rewrite_in_place(path: Path, data: bytes, old: bytes) -> None:
    """``path``'s content made ``data`` in the file itself (its other names see it); a failed
    write puts ``old`` back, so the file is never left half written."""
    try:
        with open(path, "r+b") as fh:
            fh.write(data)
            fh.truncate()
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as err:
        with contextlib.suppress(OSError), open(path, "r+b") as fh:
            fh.write(old)
            fh.truncate()
        raise ConfigError(f"cannot write {path} ({err.strerror or err}); it is as it was") from None
