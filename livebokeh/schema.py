"""The settings schema's building blocks: fields that say what they accept.

Every settings section is a frozen dataclass whose fields are made here: the field's metadata
holds its meaning (``doc``) and what it accepts (a ``range`` or ``choices``), and
:func:`coerce` checks a value against it. :mod:`livebokeh.config` assembles the sections; each
segmentation backend's own options (:mod:`livebokeh.segment.options`) are sections made the
same way. The standard library only: the command line's ``--help`` reads it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import field
from typing import Any

from livebokeh.errors import ConfigError


def number(default: float, lo: float, hi: float, doc: str, auto: bool = False) -> Any:
    """A number from ``lo`` to ``hi`` (an int field when ``default`` is an int); with ``auto``, 0
    (automatic) as well."""
    return field(default=default, metadata={"range": (lo, hi), "doc": doc, "auto": auto})


def choice(default: str, choices: tuple[str, ...] | Callable[[], tuple[str, ...]], doc: str) -> Any:
    """One of ``choices`` (or of what the callable gives)."""
    return field(default=default, metadata={"choices": choices, "doc": doc})


def plain(default: Any, doc: str) -> Any:
    """A bool or a free string."""
    return field(default=default, metadata={"doc": doc})


def path(default: str, doc: str) -> Any:
    """A string that names a file, folder or device: the control API never sets it to a new
    value (a request's text never becomes a path the run opens)."""
    return field(default=default, metadata={"doc": doc, "path": True})


def is_path(f: dataclasses.Field) -> bool:
    """Whether ``f`` names a file, folder or device (:func:`path`)."""
    return bool(f.metadata.get("path"))


def choices_of(f: dataclasses.Field) -> tuple[str, ...]:
    ch = f.metadata["choices"]
    return ch() if callable(ch) else ch


def describe(f: dataclasses.Field) -> str:
    """What ``f`` accepts, as a phrase: "a number from 0 to 0.25", "one of: blur, replace, none"."""
    md = f.metadata
    if "range" in md:
        lo, hi = md["range"]
        return f"{'0 or ' if md.get('auto') else ''}a number from {lo:g} to {hi:g}"
    if "choices" in md:
        return "one of: " + ", ".join(c if c else '""' for c in choices_of(f))
    return {bool: "true or false", str: "a string"}.get(type(f.default), "a value")


def coerce(label: str, f: dataclasses.Field, value: Any) -> Any:
    """Check ``value`` for field ``f`` and return it in the field's type; ``label`` names where the
    value came from in the error (``settings.toml: render.blur``, ``--blur``)."""
    expected = type(f.default)
    bad = ConfigError(f"{label} must be {describe(f)}, got {value!r}")
    if expected is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if expected in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        if expected is int and (isinstance(value, float) and not value.is_integer()):
            raise bad
        value = expected(value)
        if not math.isfinite(value):
            raise bad
        lo, hi = f.metadata["range"]
        if not (lo <= value <= hi or (value == 0 and f.metadata.get("auto"))):
            raise bad
        return value
    if expected is str:
        if not isinstance(value, str):
            raise bad
        if "choices" in f.metadata and value not in choices_of(f):
            raise bad
        return value
    raise TypeError(f"unsupported config field type for {label}")  # programming error


def parse_text(key: str, f: dataclasses.Field, text: str, origin: str) -> Any:
    """A value typed as text (``livebokeh ctl set KEY VALUE``) in the field's type, checked:
    ``true``/``false`` (also on/off, yes/no, 1/0) for a bool, a number for a number."""
    expected = type(f.default)
    value: Any = text
    if expected is bool:
        words = {"true": True, "on": True, "yes": True, "1": True, "false": False, "off": False, "no": False, "0": False}
        if text.strip().lower() not in words:
            raise ConfigError(f"{origin}: {key} must be {describe(f)}, got {text!r}")
        value = words[text.strip().lower()]
    elif expected in (int, float):
        try:
            value = float(text)
        except ValueError:
            raise ConfigError(f"{origin}: {key} must be {describe(f)}, got {text!r}") from None
        if expected is int and value.is_integer():
            value = int(value)
    return coerce(f"{origin}: {key}", f, value)
