"""Downloadable model weights: manifests, the per-user cache, checked downloads.

Manifests are the TOML files in the repository's ``models/`` folder (installed as
``livebokeh/manifests``), one a file. A model's file is looked for, in order:

1. at the path given on the command line (``--rvm-weights``), used as it is;
2. at the environment variable named after the model (``LIVEBOKEH_RVM_WEIGHTS``), used as it is;
3. in ``LIVEBOKEH_MODEL_DIR``, under its upstream name, if its size and sha256 match the manifest
   (one folder for every model, for offline machines);
4. in the per-user cache (``LIVEBOKEH_CACHE`` or the platform's cache folder), likewise checked;
5. otherwise it is downloaded from the manifest's upstream URL into the cache: to a temporary name
   first, its size and sha256 checked, then moved into place, so an interrupted or corrupt transfer
   never leaves a file that looks usable.

:func:`find` looks without changing anything (``models list``, ``doctor``); :func:`locate` also
downloads. Neither deletes a file: a damaged cached file is replaced only by a checked download.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import platform
import stat
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from livebokeh.errors import ConfigError, ModelError, kind_at

log = logging.getLogger(__name__)

_CHUNK = 1 << 16

#: One folder holding model files under their upstream names, looked at before the cache.
MODEL_DIR_VAR = "LIVEBOKEH_MODEL_DIR"
CACHE_VAR = "LIVEBOKEH_CACHE"


@dataclass(frozen=True)
class Manifest:
    """One downloadable model file (see ``models/*.toml``)."""

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
    #: The ``--backend`` (or other user of the file) these weights belong to; default: ``name``.
    #: ``livebokeh models download BACKEND`` fetches every file of a backend.
    backend: str = ""
    #: Which of the backend's models this is (MediaPipe's ``general`` or ``landscape``).
    variant: str = ""
    #: The command-line option that names another file for it (``--rvm-weights``), if any.
    option: str = ""
    #: The settings key that names another file for it (``rvm.weights``), if any.
    setting: str = ""
    #: What a user can do without this file, for the end of the offline error (``run with
    #: --no-depth``); empty: nothing to add.
    instead: str = ""

    def __post_init__(self) -> None:
        if not self.backend:
            object.__setattr__(self, "backend", self.name)

    @property
    def env_var(self) -> str:
        return f"LIVEBOKEH_{self.name.upper()}_WEIGHTS"

    @property
    def label(self) -> str:
        """How messages name it: ``the rvm model``, ``the mediapipe landscape model``."""
        return f"the {self.backend} {self.variant} model" if self.variant else f"the {self.name} model"


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


def select(name: str) -> list[Manifest]:
    """The manifests a user's word names: a model (``selfie_landscape``), a backend (``mediapipe``:
    each of its files) or ``all``."""
    known = manifests()
    if name == "all":
        return list(known.values())
    if name in known:
        return [known[name]]
    group = [m for m in known.values() if m.backend == name]
    if not group:
        names = sorted(set(known) | {m.backend for m in known.values()})
        raise ConfigError(f"unknown model {name!r}; known: {', '.join(names)} or all")
    return group


def for_backend(backend: str, variant: str = "") -> Manifest | None:
    """The manifest of ``backend``'s weights (of its ``variant`` where it has several), if any."""
    for m in manifests().values():
        if m.backend == backend and (not variant or not m.variant or m.variant == variant):
            return m
    return None


def cache_dir() -> Path:
    """Per-user cache: ``LIVEBOKEH_CACHE``, else the platform's cache folder."""
    if os.environ.get(CACHE_VAR):
        return Path(os.environ[CACHE_VAR])
    system = platform.system()
    if system == "Windows":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
        return base / "livebokeh" / "Cache"
    if system == "Darwin":
        return Path.home() / "Library" / "Caches" / "livebokeh"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "livebokeh"


def _cache_name() -> str:
    d = cache_dir()
    return f"{CACHE_VAR}={d}" if os.environ.get(CACHE_VAR) else f"the model cache {d}"


def cache_problem() -> str:
    """Why the cache cannot take a download ("" when it can): not a folder, or read-only."""
    d = cache_dir()
    probe = d
    while not probe.exists() and probe.parent != probe:  # the nearest existing folder makes the cache
        if probe.is_symlink():  # (mkdir stops at it: "File exists")
            try:
                probe.resolve(strict=True)
            except FileNotFoundError:
                return f"{_cache_name()} cannot be made ({probe} is a link to a missing folder: make that folder)"
            except (OSError, RuntimeError):  # ELOOP: no folder can be made there
                return f"{_cache_name()} cannot be made ({probe} is a link that leads back to itself: remove it)"
        probe = probe.parent
    if d.exists() and not d.is_dir():
        return f"{_cache_name()} is not a folder"
    if not probe.is_dir():
        return f"{_cache_name()} cannot be made ({probe} is not a folder)"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{_cache_name()} is read-only"
    return ""


#: What to do about a cache that cannot take a download.
CACHE_FIX = f"point {CACHE_VAR} at a writable folder"


def cached_path(m: Manifest) -> Path:
    return cache_dir() / m.file


def model_dir() -> Path | None:
    """``LIVEBOKEH_MODEL_DIR``, if set."""
    value = os.environ.get(MODEL_DIR_VAR)
    return Path(value) if value else None


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def runtime_source(path: Path) -> str | bytes:
    """What a model runtime's loader is given for ``path``: the path, or the file's bytes where
    the path is no UTF-8 text (a folder named with bytes such as ``\\xff``), which the loaders of
    ONNX Runtime and LiteRT cannot take (both also load a model from its bytes).

    Raises:
        OSError: the file cannot be read.
    """
    text = str(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return Path(path).read_bytes()
    return text


def check(path: Path, m: Manifest) -> str:
    """What is wrong with ``path`` as ``m``'s file ("" when its size and sha256 match)."""
    try:
        size = path.stat().st_size
        if size != m.size:
            return f"{size} bytes, not {m.size}"
        if sha256_of(path) != m.sha256:
            return "its sha256 differs from the release's"
    except OSError as err:
        return f"cannot be read: {err.strerror or err}"
    return ""


@dataclass(frozen=True)
class Found:
    """Where a model's file is, as :func:`find` saw it.

    Attributes:
        manifest: the model.
        path: the usable file, or None.
        source: where ``path`` came from: ``option``, ``environment``, ``model dir`` or ``cache``.
        damaged: a cached file whose size or checksum is wrong (kept: only a download replaces it).
        problem: one line saying what is wrong and what to do ("" when ``path`` is usable, or
            when the model is simply not downloaded).
    """

    manifest: Manifest
    path: Path | None = None
    source: str = ""
    damaged: Path | None = None
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.path is not None


def find(name: str, explicit: str | os.PathLike[str] | None = None) -> Found:
    """Where model ``name``'s file is, without downloading, writing or deleting anything.

    A path given (``explicit``, then the model's environment variable) is used as it is: it may be
    another build of the model. Files in ``LIVEBOKEH_MODEL_DIR`` and the cache count only when
    their size and sha256 match the manifest.
    """
    m = manifest(name)
    if explicit:
        p = Path(explicit)
        if not p.is_file():
            what = m.option or "the weights option"
            if m.setting:  # given by the flag or by a settings file: both are named
                section, key = m.setting.split(".")
                what += f" (or {key} in the settings' [{section}])"
            return Found(m, problem=f"weights file {p} {_not_a_file(p)}; check {what}")
        return Found(m, p, "option")
    env = os.environ.get(m.env_var)
    if env:
        p = Path(env)
        if not p.is_file():
            return Found(m, problem=f"{m.env_var}={env} {_not_a_file(p)}; fix or unset it")
        return Found(m, p, "environment")
    folder = model_dir()
    if folder is not None:
        if not folder.is_dir():
            return Found(m, problem=f"{MODEL_DIR_VAR}={folder} is not a folder; fix or unset it")
        p = folder / m.file
        if p.is_file():
            wrong = check(p, m)
            if wrong:
                return Found(m, problem=f"{MODEL_DIR_VAR} holds a damaged {p} ({wrong}); replace it with {m.url} "
                             f"(sha256 {m.sha256[:12]}...) or remove it")
            return Found(m, p, "model dir")
    p = cached_path(m)
    try:
        present = p.is_file()
        in_the_way = not present and p.exists()
    except OSError:  # a cache path through a file, a loop ...: nothing is cached there
        present = in_the_way = False
    if in_the_way:  # a folder (or a device) under the file's name: a download cannot land there
        return Found(m, problem=f"{p} is {'a folder' if p.is_dir() else 'not a file'} where the cache keeps "
                     f"{m.label}, so it can be neither found nor downloaded there; move or rename {p}")
    if present:
        wrong = check(p, m)
        if not wrong:
            return Found(m, p, "cache")
        blocked = cache_problem()
        if blocked:
            return Found(m, damaged=p, problem=f"the cached {p} is damaged ({wrong}) and cannot be downloaded again "
                         f"there: {blocked}; {CACHE_FIX}, or {_elsewhere(m)}")
        return Found(m, damaged=p, problem=f"the cached {p} is damaged ({wrong}); run `livebokeh models download "
                     f"{m.backend}` to fetch it again")
    return Found(m)


def weight_files() -> list[tuple[str, Path]]:
    """Where each model's file is found without being named (``LIVEBOKEH_MODEL_DIR``, the
    cache), with what says so: files a run may read its weights from. Nothing is opened or
    checked (a snapshot compares paths against these, and against the files ``LIVEBOKEH_``
    variables name: :meth:`livebokeh.app.Run.input_files`)."""
    folder = model_dir()
    out: list[tuple[str, Path]] = []
    for m in manifests().values():
        if folder is not None:
            out.append((MODEL_DIR_VAR, folder / m.file))
        out.append(("the model cache", cached_path(m)))
    return out


def _not_a_file(p: Path) -> str:
    """Why a weights path named by the user is no file, as the end of a sentence about it."""
    kind = kind_at(p)
    if kind is None:
        return "does not exist"
    if kind == "a folder":
        return "is a folder, not the model's file"
    return f"is not a regular file ({kind}), not the model's file"


def locate(name: str, explicit: str | os.PathLike[str] | None = None, download_missing: bool = True) -> Path:
    """Path of model ``name``'s file (see the module text for the order); downloads it into the
    cache when it is nowhere, or only damaged there, and ``download_missing``.

    Raises:
        ModelError: a given file is missing, a file is damaged where it cannot be replaced, or the
            download failed (one line saying what to do).
    """
    found = find(name, explicit)
    if found.ok:
        return found.path  # type: ignore[return-value]
    m = found.manifest
    if found.problem and found.damaged is None:  # a given file missing, a wrong model folder
        raise ModelError(found.problem)
    if not download_missing:
        raise ModelError(found.problem or _offline_hint(m, "is not downloaded"))
    blocked = cache_problem()
    if blocked:  # found.problem already says so for a damaged file
        raise ModelError(found.problem or f"{m.label} is not downloaded and cannot be: {blocked}; {CACHE_FIX}, "
                         f"or {_elsewhere(m)}")
    if found.damaged:
        log.warning("the cached %s is damaged; downloading it again", found.damaged)
    return download(m)


def _elsewhere(m: Manifest) -> str:
    """How to give the file without the cache."""
    way = f"put {m.file} ({m.url}) in a folder and set {MODEL_DIR_VAR} to it"
    if m.option:
        way += f", or pass {m.option} FILE (or set {m.env_var})"
    return way


def _offline_hint(m: Manifest, what: str) -> str:
    hint = (f"{m.label} {what}; run `livebokeh models download {m.backend}` with internet access, "
            f"or {_elsewhere(m)}")
    if m.backend in ("rvm", "deeplab"):  # the segmentation backends with a lighter one beside them
        here = find("selfie_general").ok
        hint += f", or use --backend mediapipe ({'its model is here' if here else 'a 0.25 MB download'})"
    if m.instead:
        hint += f", or {m.instead}"
    return hint


_DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


class _WriteFailed(Exception):
    """Writing the download to disk failed (not the network)."""

    def __init__(self, err: OSError) -> None:
        super().__init__(err)
        self.err = err


def download(m: Manifest, url: str | None = None, dest: Path | None = None, progress: bool | None = None,
             timeout: float = 30.0) -> Path:
    """Download ``m`` (from ``url`` if given, else its official URL) to ``dest`` (default: the cache).

    The file is written as ``<dest>.part``, checked (size and sha256) and only then moved onto
    ``dest`` (so a damaged file there is replaced only by a whole, checked one); on any failure the
    partial file is removed and :class:`ModelError` raised, naming the network or the disk.
    """
    import http.client  # here: a run that finds its files never pays for the HTTP stack
    import urllib.error
    import urllib.request

    given = url is not None and url != m.url  # --url: the advice is about that address, not the internet
    url = url or m.url
    if dest is None:
        blocked = cache_problem()
        if blocked:
            raise ModelError(f"cannot save {m.label}: {blocked}; {CACHE_FIX}, or {_elsewhere(m)}")
        dest = cached_path(m)
    if dest.is_dir():
        raise ModelError(f"{dest} is a folder where {m.label} is to be saved; move or rename {dest}")
    part = dest.with_name(dest.name + ".part")
    show = (sys.stderr is not None and sys.stderr.isatty()) if progress is None else progress
    if part.is_dir() and not part.is_symlink():
        raise ModelError(f"{part} is a folder where {m.label} is downloaded to; move or rename {part}")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:  # (a link to a missing folder on the way: FileExistsError, not another download)
        raise ModelError(_unwritable(m, dest, err)) from None
    for _ in range(5):  # another download under way: waited for; its file taken when it landed whole
        try:
            out = _new_part(m, part)
        except OSError as err:
            raise ModelError(_unwritable(m, dest, err)) from None
        if out is not None:
            break
        if _whole(m, dest):
            log.info("another download saved %s", dest)
            return dest
    else:
        raise ModelError(f"another download of {m.label} is writing {part} now; wait for it, then try again")
    log.info("downloading %s from %s", m.label, url)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # (``out`` stays open, locked, to the end)
            said = resp.headers.get("Content-Length", "")
            packed = resp.headers.get("Content-Encoding", "").strip().lower()
            kind = resp.headers.get_content_type() if resp.headers.get("Content-Type") else ""
            if packed not in ("", "identity"):
                raise ModelError(f"{url} sends {m.label} packed ({packed}), and livebokeh saves files as "
                                 "they are: give an address that serves the file itself; nothing was saved")
            # a page (a login, a 'not found' served as 200) where the model should be: named as such
            page = ModelError(f"{url} sends a web page ({kind}), not {m.label}: a wrong address; nothing was saved")
            if said.strip().isdigit() and int(said) != m.size:
                if kind.startswith("text/"):
                    raise page
                raise ModelError(f"{url} sends {int(said)} bytes, and {m.label} is {m.size}: a wrong file or address")
            got, digest = _copy(resp, out, m.size, show, m.name, limit=m.size + 1)
        if got != m.size and kind.startswith("text/"):
            raise page
        if got > m.size:
            raise ModelError(f"{url} sends more than the {m.size} bytes of {m.label}: a wrong file or address; "
                             "nothing was saved")
        if got != m.size:
            raise ModelError(f"download of {m.label} stopped at {got} of {m.size} bytes; try again")
        if digest != m.sha256:  # (of the bytes written: the file by its name could be another's)
            raise ModelError(f"download of {m.label} has the wrong checksum (sha256 {digest[:12]}..., "
                             f"expected {m.sha256[:12]}...); the file was discarded, try again")
        if not _same_file(out, part):
            raise ModelError(f"another download of {m.label} took {part} over; wait for it, then try again")
        os.replace(part, dest)  # (still holding its lock: a waiting download then finds the model in place)
        out.close()
    except ModelError:
        _discard(part, out)
        raise
    except _WriteFailed as failed:
        _discard(part, out)
        raise ModelError(_unwritable(m, dest, failed.err)) from None
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as err:
        _discard(part, out)
        reason = getattr(err, "reason", None) or err
        if isinstance(err, OSError) and not isinstance(err, urllib.error.URLError) and (
                err.filename or err.errno in _DISK_ERRORS):
            raise ModelError(_unwritable(m, dest, err)) from None  # os.replace and the like: the disk
        if given:
            raise ModelError(f"{m.label} could not be downloaded from {url} ({reason}); check the address, or "
                             f"{_elsewhere(m)}") from None
        raise ModelError(_offline_hint(m, f"could not be downloaded ({reason})")) from None
    except BaseException:
        _discard(part, out)
        raise
    log.info("saved %s", dest)
    return dest


def _new_part(m: Manifest, part: Path) -> BinaryIO | None:
    """The download's part file, made new and locked (``flock``) while it is written; None when
    another download holds the one there, after waiting for it to end (it says where it went).

    A part file nobody holds is a killed download's (or a link planted at its name): removed,
    never written through (``O_EXCL | O_NOFOLLOW``: a link's target would be overwritten)."""
    if _lock(part, wait=False) is False:
        log.info("another download of %s is under way (%s); waiting for it", m.label, part)
        _lock(part, wait=True)
        return None
    if part.is_symlink() or part.exists():
        try:
            part.unlink()
        except OSError as err:  # (the folder is writable, or the check before would have said so)
            raise ModelError(f"{part}, left by an earlier download of {m.label}, cannot be removed "
                             f"({err.strerror or err}); remove it yourself (an immutable file: chattr -i), "
                             "then try again") from None
    fd = os.open(part, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
    try:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except ImportError:  # (Windows: no flock; a second download's O_EXCL still refuses)
        pass
    except OSError:  # another download made it and locked it in the meantime: it is theirs
        os.close(fd)
        return None
    return os.fdopen(fd, "wb")


def _lock(part: Path, wait: bool) -> bool | None:
    """Whether the regular file at ``part`` could be locked (and was let go at once): False when
    another process holds it and ``wait`` is False; None when there is none, or no ``flock``.
    With ``wait``, blocks until its holder lets go."""
    try:
        import fcntl
    except ImportError:
        return None
    try:
        fd = os.open(part, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:  # none, a link, a FIFO with no writer: nobody's download
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            return False
        return True
    finally:
        os.close(fd)


def _same_file(out: BinaryIO, part: Path) -> bool:
    """Whether ``part`` is still the file ``out`` wrote (not one another process put there)."""
    try:
        mine, there = os.fstat(out.fileno()), os.lstat(part)
    except OSError:
        return False
    return (mine.st_dev, mine.st_ino) == (there.st_dev, there.st_ino)


def _whole(m: Manifest, path: Path) -> bool:
    """Whether ``path`` is a regular file with ``m``'s size and checksum."""
    try:
        return path.is_file() and path.stat().st_size == m.size and sha256_of(path) == m.sha256
    except OSError:
        return False


def _discard(part: Path, out: BinaryIO | None = None) -> None:
    """Remove the part file ``out`` wrote (not one another download put at its name since), and
    close it."""
    try:
        if out is None or _same_file(out, part):
            part.unlink(missing_ok=True)
    except OSError:  # a read-only folder: nothing was written there either
        pass
    if out is not None:
        out.close()


def _unwritable(m: Manifest, dest: Path, err: OSError) -> str:
    why = err.strerror or str(err)
    if err.errno == errno.ENOSPC:
        return f"no space left to save {m.label} in {dest.parent}; free some space, or {_elsewhere(m)}"
    return f"cannot save {m.label} in {dest.parent} ({why}); {CACHE_FIX}, or {_elsewhere(m)}"


def _copy(src: BinaryIO, dst: BinaryIO, total: int, show: bool, label: str, limit: int) -> tuple[int, str]:
    """``src`` into ``dst``, up to ``limit`` bytes (an endless body stops there); the bytes copied,
    and their sha256."""
    from tqdm import tqdm

    got = 0
    digest = hashlib.sha256()
    with tqdm(total=total or None, unit="B", unit_scale=True, desc=label, disable=not show, file=sys.stderr,
              leave=False) as bar:
        while got < limit and (chunk := src.read(min(_CHUNK, limit - got))):
            try:
                dst.write(chunk)
            except OSError as err:
                raise _WriteFailed(err) from None
            digest.update(chunk)
            got += len(chunk)
            bar.update(len(chunk))
    try:
        dst.flush()
    except OSError as err:
        raise _WriteFailed(err) from None
    return got, digest.hexdigest()
