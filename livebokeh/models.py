"""Downloadable model weights: manifests, the per-user cache, checked downloads.

Manifests are the TOML files in the repository's ``models/`` folder (installed as
``livebokeh/manifests``). A file is looked for, in order, at the path given on the command line
(``--deeplab-weights``), at the environment variable named in the manifest entry
(``LIVEBOKEH_DEEPLAB_WEIGHTS``), in the cache, and otherwise downloaded from the official URL into
the cache: to a temporary name first, its size and sha256 checked, then moved into place, so an
interrupted or corrupt transfer never leaves a file that looks usable.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import platform
import sys
import tomllib
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from livebokeh.errors import ModelError

log = logging.getLogger(__name__)

_CHUNK = 1 << 16


@dataclass(frozen=True)
class Manifest:
    """One downloadable model (see ``models/*.toml``)."""

    name: str
    file: str
    url: str
    sha256: str
    size: int
    preprocessing: str
    licence: str
    description: str
    #: A fixed input ``(width, height)``; ``(0, 0)``: any size.
    input_size: tuple[int, int] = (0, 0)
    # Segmentation models with classes (DeepLab): what the weights hold.
    classes: int = 0
    person_class: int = -1
    output_stride: int = 0
    width_multiplier: float = 1.0
    decoder: bool = False
    #: What a user can do without these weights (the end of the offline error).
    instead: str = "use --backend mediapipe, which needs no download"

    @property
    def env_var(self) -> str:
        return f"LIVEBOKEH_{self.name.upper()}_WEIGHTS"


def manifests_dir() -> Path:
    installed = Path(__file__).resolve().parent / "manifests"
    if installed.is_dir():
        return installed
    return Path(__file__).resolve().parent.parent / "models"


def manifests() -> dict[str, Manifest]:
    """Every manifest, by model name."""
    out = {}
    for path in sorted(manifests_dir().glob("*.toml")):
        data = tomllib.loads(path.read_text())
        if "input_size" in data:
            data["input_size"] = tuple(data["input_size"])
        m = Manifest(**data)
        out[m.name] = m
    return out


def manifest(name: str) -> Manifest:
    known = manifests()
    if name not in known:
        raise ModelError(f"unknown model {name!r}; known: {', '.join(known) or 'none'}")
    return known[name]


def cache_dir() -> Path:
    """Per-user cache: ``LIVEBOKEH_CACHE``, else the platform's cache folder."""
    if os.environ.get("LIVEBOKEH_CACHE"):
        return Path(os.environ["LIVEBOKEH_CACHE"])
    system = platform.system()
    if system == "Windows":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
        return base / "livebokeh" / "Cache"
    if system == "Darwin":
        return Path.home() / "Library" / "Caches" / "livebokeh"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "livebokeh"


def cached_path(m: Manifest) -> Path:
    return cache_dir() / m.file


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def locate(name: str, explicit: str | os.PathLike[str] | None = None, download_missing: bool = True) -> Path:
    """Path of the weights of model ``name``; downloads them into the cache when missing.

    Raises:
        ModelError: a given file is missing, or the download failed (one line saying what to do).
    """
    m = manifest(name)
    if explicit:
        p = Path(explicit)
        if not p.is_file():
            raise ModelError(f"weights file {p} does not exist; check --{name}-weights")
        return p
    env = os.environ.get(m.env_var)
    if env:
        p = Path(env)
        if not p.is_file():
            raise ModelError(f"{m.env_var}={env} does not exist; fix or unset it")
        return p
    p = cached_path(m)
    if p.is_file():
        if p.stat().st_size == m.size and sha256_of(p) == m.sha256:
            return p
        log.warning("cached %s is damaged; downloading it again", p)
        p.unlink()
    if not download_missing:
        raise ModelError(_offline_hint(m, "is not downloaded"))
    return download(m)


def _offline_hint(m: Manifest, what: str) -> str:
    return (
        f"{m.name} weights {what}; run `livebokeh models download {m.name}` with internet access, "
        f"or get {m.url} and pass --{m.name}-weights FILE (or set {m.env_var}), "
        f"or {m.instead}"
    )


def download(m: Manifest, url: str | None = None, dest: Path | None = None, progress: bool | None = None,
             timeout: float = 30.0) -> Path:
    """Download ``m`` (from ``url`` if given, else its official URL) to ``dest`` (default: the cache).

    The file is written as ``<dest>.part``, checked (size and sha256) and only then renamed; on
    any failure the partial file is removed and :class:`ModelError` raised.
    """
    url = url or m.url
    dest = dest or cached_path(m)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    show = sys.stderr.isatty() if progress is None else progress
    log.info("downloading %s weights from %s", m.name, url)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(part, "wb") as out:
            total = int(resp.headers.get("Content-Length") or m.size)
            got = _copy(resp, out, total, show, m.name)
        if got != m.size:
            raise ModelError(f"download of {m.name} stopped at {got} of {m.size} bytes; try again")
        digest = sha256_of(part)
        if digest != m.sha256:
            raise ModelError(f"download of {m.name} has the wrong checksum (sha256 {digest[:12]}..., "
                             f"expected {m.sha256[:12]}...); the file was discarded, try again")
        os.replace(part, dest)
    except ModelError:
        part.unlink(missing_ok=True)
        raise
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as err:
        part.unlink(missing_ok=True)
        reason = getattr(err, "reason", None) or err
        raise ModelError(_offline_hint(m, f"could not be downloaded ({reason})")) from None
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    log.info("saved %s", dest)
    return dest


def _copy(src: BinaryIO, dst: BinaryIO, total: int, show: bool, label: str) -> int:
    from tqdm import tqdm

    got = 0
    with tqdm(total=total or None, unit="B", unit_scale=True, desc=label, disable=not show, file=sys.stderr,
              leave=False) as bar:
        while chunk := src.read(_CHUNK):
            dst.write(chunk)
            got += len(chunk)
            bar.update(len(chunk))
    return got
