"""Every file the program writes follows one policy, checked before the first frame is read.

- An output is never an input of the run (compared by device and inode as well as by name),
  never the path of another output of the run, and never an existing file unless ``overwrite``.
  A file that is not a regular file (a device, a FIFO) is never an output.
- Every file is written under a temporary name in its own folder (:func:`temp_path`) and moved
  into place when complete (:func:`publish`): a file the user owns is replaced, with
  ``overwrite``, only by a complete new one.
- A video that could not be completed (an interrupt, a failing input, a full disk) is kept under
  the first free name ``NAME.partial.EXT``, ``NAME.partial-2.EXT``, ... (:func:`free_partial_path`):
  a partial never replaces anything.
- A temporary file whose writer was killed (SIGKILL, a power cut) is found by the next run on the
  same output and kept under a free partial name (:func:`recover_stale`). A writer holds a lock on
  its temporary file (``flock``; where there is none, its process id in the name tells), so a live
  run's file is never taken.
- A pattern (one file per frame) has exactly one ``%d`` or ``%0Nd`` in its file name and no other
  ``%`` conversion (:func:`check_pattern`). Its images are published one by one under the same
  rule as every file (a name that appears during the run is kept, without ``overwrite``), and
  its writer claims the pattern for the run (:func:`claim_pattern`): a second run writing the
  same pattern, or one that can give the same names, into the same folder at the same time is
  refused instead of interleaving its frames with the first's.
- Names too long for the file system with the temporary or partial tag are shortened (with a
  hash of the whole name, so two long names stay apart).

Pure path logic and the standard library only: the CLI checks a whole batch before it imports
the pipeline.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import itertools
import logging
import os
import re
import stat
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from livebokeh.errors import ConfigError, SinkError, kind_at

log = logging.getLogger(__name__)

#: Marks temporary files: ``.NAME.livebokeh-tmp-PID.EXT`` beside the final ``NAME.EXT``.
TEMP_TAG = ".livebokeh-tmp"
#: Marks a run's claim on a pattern: ``.PATTERN.livebokeh-claim`` beside its images.
CLAIM_TAG = ".livebokeh-claim"

#: printf conversions Python's ``%`` understands (``%%`` is a literal percent sign).
_CONVERSION = re.compile(r"%(?:%|[-+ #0]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa])")
#: The one conversion a pattern may hold: the frame number, plain or zero-padded.
_FRAME_NUMBER = re.compile(r"%(0\d+)?d")
#: Outputs that are always one file (no pattern).
ONE_FILE_FLAGS = frozenset({"--output", "--stats-json", "--json"})
#: Longest file name (bytes) most file systems take.
NAME_MAX = 255


def _conversions(text: str) -> list[re.Match[str]]:
    return [m for m in _CONVERSION.finditer(text) if m.group() != "%%"]


def is_pattern(path: str | Path) -> bool:
    """True for paths holding a printf conversion, such as ``masks/%05d.png`` (one file per
    frame); :func:`check_pattern` says whether it is one livebokeh writes and reads."""
    return bool(_conversions(str(path)))


def numbered(pattern: str | Path, index: int) -> Path:
    """The file of a pattern (``masks/%05d.png``) for the frame of 0-based ``index``: frames are
    counted from 1, as FFmpeg's image sequences count them (frame 0 -> ``masks/00001.png``). A
    live source's frames keep the numbers the source gave them, so a dropped frame leaves a gap."""
    return Path(str(pattern) % (index + 1))


def check_pattern(flag: str, path: str | Path) -> None:
    """Raise :class:`ConfigError` unless ``path`` has exactly one ``%d`` / ``%0Nd``, in the file name."""
    p = Path(path)
    name_convs, folder_convs = _conversions(p.name), _conversions(str(p.parent))
    try:
        str(path) % 0  # a lone % (100%_%d.png) is no conversion of ours but breaks formatting
        formats = True
    except (TypeError, ValueError):
        formats = False
    if not formats or folder_convs or len(name_convs) != 1 or not _FRAME_NUMBER.fullmatch(name_convs[0].group()):
        raise ConfigError(
            f"{flag} {path}: not a valid pattern; put one %d or %05d in the file name, such as masks/%05d.png "
            "(a literal % is written %%)"
        )


@dataclass(frozen=True)
class Output:
    """A path the run will write, and the flag that named it (for messages)."""

    flag: str
    path: Path
    pattern: bool = False
    #: the option the user gave, when it is not ``flag`` (``--output-dir`` names each ``--output``)
    said: str = field(default="", compare=False)

    @property
    def named(self) -> str:
        """The option to name in messages."""
        return self.said or self.flag

    @classmethod
    def of(cls, flag: str, path: str | Path, said: str = "") -> Output:
        """The output ``flag`` names; a bad name (empty, ending in a slash, a bad pattern) raises
        ConfigError. ``said``: the option the user gave instead (for messages)."""
        text = str(path)
        shown = said or flag
        if not text.strip():
            raise ConfigError(f"{shown} needs a file name")
        if text.endswith(("/", os.sep)):
            raise ConfigError(f"{shown} {text} names a folder; give a file name")
        pattern = is_pattern(text)
        if pattern and flag in ONE_FILE_FLAGS:
            conv = _conversions(text)[0].group()
            # (no way to write a literal %d: %% would stay %% in a one-file name, which is taken as it is)
            raise ConfigError(f"{shown} {text} names one file, not one per frame; leave {conv} out of its name "
                              "(it would make a pattern of frame numbers)")
        if pattern:
            check_pattern(flag, text)
        elif _is_folder(Path(text)):  # an existing folder named without its slash: said before its ending is
            raise ConfigError(f"{shown} {text} is a folder; give a file name such as "
                              f"{Path(text) / ('out' + _example(flag))}")
        return cls(flag, Path(text), pattern, said)

    def matches(self, other: Path) -> bool:
        """Whether ``other`` is (one of) this output's file(s)."""
        return self.replaces(other) is not None

    def replaces(self, other: Path, files: Mapping[tuple[int, int], Path] | None = None) -> Path | None:
        """This output's file that is ``other`` (None if none): the same name, or the same file
        under another name (a hard link, a symbolic link to it). For a pattern, a name it can give
        or any existing file it names: ``link.png``, a hard link of ``00001.png``, is replaced by
        ``%05d.png``'s first frame as surely as ``00001.png`` is. ``files``: the pattern's
        existing files by device and inode (:func:`file_ids`), when already known."""
        if not self.pattern:
            return self.path if _same(self.path, other) else None
        regex = _pattern_regex(self.path)
        if _same(self.path.parent, other.parent) and regex.fullmatch(other.name) is not None:
            return self.path.parent / other.name
        key = _file_id(other)
        return None if key is None else (file_ids(self.existing()) if files is None else files).get(key)

    def existing(self) -> list[Path]:
        """The files this output would replace (for a pattern, every file it can name)."""
        if not self.pattern:
            return [self.path] if self.path.exists() or self.path.is_symlink() else []
        folder, regex = self.path.parent, _pattern_regex(self.path)
        try:
            return sorted(p for p in folder.iterdir() if regex.fullmatch(p.name))
        except OSError:
            return []


def _is_folder(path: Path) -> bool:
    """Whether ``path`` is an existing folder (a name the system cannot look up, too long say, is
    none: the checks after say what is wrong with it)."""
    try:
        return path.is_dir()
    except OSError:
        return False


def _name_parts(path: Path) -> tuple[str, int, str]:
    """A (checked) pattern's file name as the text before the number, the fewest digits the
    number has (1 for ``%d``, N for ``%0Nd``) and the text after it (``%%`` as the ``%`` it gives)."""
    (conv,) = _conversions(path.name)
    before, after = path.name[: conv.start()], path.name[conv.end() :]
    return before.replace("%%", "%"), max(1, int(conv.group()[1:-1] or 0)), after.replace("%%", "%")


def _pattern_regex(path: Path) -> re.Pattern[str]:
    """The names a (checked) pattern can give: ``%d`` any number without leading zeros, ``%0Nd``
    at least N digits (more only without a leading zero)."""
    before, digits, after = _name_parts(path)
    number = rf"(?:\d{{{digits}}}|[1-9]\d{{{digits},}})" if digits > 1 else r"(?:0|[1-9]\d*)"
    return re.compile(re.escape(before) + number + re.escape(after))


_DIGITS, _NONZERO = frozenset("0123456789"), frozenset("123456789")


def _position(parts: tuple[str, int, str], length: int, i: int) -> frozenset[str]:
    """The characters a name of ``length`` characters that pattern ``parts`` gives can hold at ``i``."""
    before, digits, after = parts
    if i < len(before):
        return frozenset(before[i])
    if i >= length - len(after):
        return frozenset(after[i - (length - len(after))])
    longer = length - len(before) - len(after) > digits  # a number longer than the width has no leading zero
    return _NONZERO if i == len(before) and longer else _DIGITS


def shared_name(a: Path, b: Path) -> str | None:
    """A file name both patterns can give (None when there is none), found from their shapes.

    Each pattern's name is its text before the number, the number (at least its width in digits,
    no leading zero when longer) and its text after. For one length of name every position then
    holds a set of characters on its own, so the two patterns meet at that length exactly when the
    sets meet at every position. Past the length where both numbers are longer than their widths
    and the texts before and after no longer overlap, a longer name only adds a free digit in
    the middle: the lengths up to there decide it for every frame number, however large."""
    pa, pb = _name_parts(a), _name_parts(b)
    shortest = max(len(p[0]) + p[1] + len(p[2]) for p in (pa, pb))
    settled = max(max(len(pa[0]), len(pb[0])) + max(len(pa[2]), len(pb[2])),
                  *(len(p[0]) + p[1] + len(p[2]) for p in (pa, pb))) + 1
    for length in range(shortest, settled + 1):
        name = []
        for i in range(length):
            both = _position(pa, length, i) & _position(pb, length, i)
            if not both:
                break
            name.append(min(both))
        else:
            return "".join(name)
    return None


def _patterns_overlap(a: Path, b: Path) -> bool:
    """Whether two patterns can give one name (:func:`shared_name`), at any frame number."""
    return shared_name(a, b) is not None


def _file_id(path: Path) -> tuple[int, int] | None:
    """The device and inode of the file ``path`` names (through links), or None."""
    try:
        st = path.stat()
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def file_ids(paths: Iterable[Path]) -> dict[tuple[int, int], Path]:
    """``paths`` by the device and inode of the file each names (a hard link, or a symbolic link
    to a file, has that file's)."""
    out: dict[tuple[int, int], Path] = {}
    for p in paths:
        key = _file_id(p)
        if key is not None:
            out.setdefault(key, p)
    return out


def _same(a: Path, b: Path) -> bool:
    """Same file: the same name once resolved, or the same device and inode (hard links, bind mounts)."""
    try:
        if a.resolve() == b.resolve():
            return True
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_outputs(outputs: Sequence[Output], inputs: Iterable[str | Path], overwrite: bool) -> None:
    """Refuse, with one line naming the flag and what to do, any output that breaks the policy.

    Args:
        outputs: every path the run (or a batch of runs) will write.
        inputs: every file it reads: inputs, masks, a background, the config file.
        overwrite: existing files may be replaced (never an input, never by another output).

    Raises:
        ConfigError: the first output that would replace an input, share a path with another
            output, replace an existing file without ``overwrite``, or cannot be written.
        SinkError: a pattern another live run is writing (:func:`check_unclaimed`).
    """
    ins = [Path(p) for p in inputs]
    for n, out in enumerate(outputs):
        _check_folder(out)
        files = file_ids(out.existing()) if out.pattern else None  # once, however many inputs
        for p in ins:
            hit = out.replaces(p, files)
            if hit is not None:
                same = "" if hit.name == p.name and _same(hit.parent, p.parent) else f" ({hit} is the same file)"
                raise ConfigError(f"{out.named} {out.path} would replace the input {p}{same}; choose another name")
        for other in outputs[:n]:
            if _collide(out, other):
                raise ConfigError(
                    f"{out.named} {out.path} and {other.named} {other.path} name the same file; give each output its own name"
                )
        for p in out.existing():
            kind = _not_a_file(p)  # a link to a device counts as one
            if kind:
                raise ConfigError(f"{out.named} {p} is not a regular file ({kind}); give a file name")
        if out.pattern:  # a live run writing these names: say so rather than "exists"
            check_unclaimed(out.named, out.path)
        else:
            check_unclaimed_file(out.named, out.path)
        existing = out.existing()
        if existing and not overwrite:
            more = f" ({len(existing)} files match {out.path.name})" if out.pattern else ""
            raise ConfigError(f"{out.named} {existing[0]} exists{more}; pass --overwrite to replace it, or choose another name")


def _check_folder(out: Output) -> None:
    p = out.path
    longest = str(p.name) % 10**7 if out.pattern else p.name  # a pattern's names up to frame 10 million
    if _name_bytes(longest) > NAME_MAX:
        raise ConfigError(f"{out.named} {p}: the file name is too long ({_name_bytes(longest)} bytes; file systems "
                          f"take {NAME_MAX}); choose a shorter name")
    folder = p.parent  # (an output that is a folder was refused by Output.of)
    if not folder.is_dir():
        raise ConfigError(f"{out.named} {p}: folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK | os.X_OK):
        why = "a read-only file system" if _read_only(folder) else "permission denied"
        raise ConfigError(f"{out.named} {p}: cannot write into folder {folder} ({why}); choose another folder")


def _not_a_file(path: Path) -> str:
    """What ``path`` is when it exists and is not a regular file (``"a folder"``), else ``""``."""
    kind = kind_at(path)
    return "" if kind in (None, "a file") else kind


def _read_only(folder: Path) -> bool:
    """Whether ``folder`` lies on a file system mounted read-only."""
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False


def _example(flag: str) -> str:
    return {"--stats-json": ".json", "--json": ".json", "--mask": ".png", "snapshot": ".png"}.get(flag, ".mp4")


def _collide(a: Output, b: Output) -> bool:
    if a.pattern and b.pattern:
        return _same(a.path.parent, b.path.parent) and (
            a.path.name == b.path.name or _patterns_overlap(a.path, b.path))
    if a.pattern:
        return a.matches(b.path)
    if b.pattern:
        return b.matches(a.path)
    return _same(a.path, b.path)


def _name_bytes(name: str) -> int:
    """A file name's length as the file system counts it (any bytes, as the OS gave them)."""
    return len(os.fsencode(name))


def _fit(stem: str, tail: str) -> str:
    """``stem + tail``, the stem shortened (and told apart by a hash of it) when the name would be
    too long for the file system."""
    if _name_bytes(stem + tail) <= NAME_MAX:
        return stem + tail
    digest = "~" + hashlib.sha1(os.fsencode(stem)).hexdigest()[:8]
    short = stem
    while short and _name_bytes(short + digest + tail) > NAME_MAX:
        short = short[:-1]
    return short + digest + tail


def _temp_stem(path: Path) -> str:
    """The part of a temporary name that comes from ``path``: ``.NAME`` (shortened when long)."""
    tail = f"{TEMP_TAG}-{'9' * 10}{path.suffix}"  # the longest process id
    return _fit("." + path.stem, tail)[: -len(tail)]


def temp_path(path: Path) -> Path:
    """Where ``path`` is written until complete: a hidden name in the same folder, with this process's id."""
    return path.with_name(f"{_temp_stem(path)}{TEMP_TAG}-{os.getpid()}{path.suffix}")


def free_partial_path(path: Path) -> Path:
    """The first of ``NAME.partial.EXT``, ``NAME.partial-2.EXT``, ... that names no file."""
    for n in itertools.count(1):
        candidate = path.with_name(_fit(path.stem, f".partial{'' if n == 1 else f'-{n}'}{path.suffix}"))
        if not candidate.exists() and not candidate.is_symlink():
            return candidate
    raise AssertionError("unreachable")  # pragma: no cover


def create_new(path: Path, mode: int = 0o666) -> int:
    """``path``, a temporary name of this process's, made as a new file: a descriptor open for
    writing. Whatever is found at the name (a file or link left by an earlier process of the same
    id, or planted there) is removed first, never written through: opening a link would overwrite
    its target, and the result would then be published as that link. ``mode``: before the umask."""
    if path.is_symlink() or path.exists():
        if path.is_dir() and not path.is_symlink():
            raise IsADirectoryError(errno.EISDIR, "a folder is in the way", str(path))
        path.unlink()
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode)


def _lock_held(fd: int) -> None:
    """An exclusive lock on ``fd`` while its writer lives (the file is not stale); nothing where the
    system or file system has no ``flock`` (the process id in the name tells instead)."""
    try:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (ImportError, OSError):
        pass


def create_locked(path: Path) -> int:
    """Create ``path`` new (:func:`create_new`) and hold an exclusive lock on it while its writer
    lives: the descriptor to close when done."""
    fd = create_new(path)
    _lock_held(fd)
    return fd


def _link_or_move(src: Path, dest: Path) -> None:
    """Move ``src`` to ``dest`` only if ``dest`` names no file (FileExistsError otherwise)."""
    try:
        os.link(src, dest)  # atomic: fails when dest exists
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links (FAT, some network shares)
        if dest.exists() or dest.is_symlink():
            raise FileExistsError(errno.EEXIST, "exists", str(dest)) from None
        os.replace(src, dest)
        return
    src.unlink()


def publish(tmp: Path, dest: Path, overwrite: bool) -> Path:
    """Move the complete file ``tmp`` to ``dest`` and return where it went.

    Without ``overwrite`` an existing ``dest`` is never replaced: if one appeared during the run,
    the result goes to a free partial name and :class:`SinkError` says where. A result that
    cannot be moved to ``dest`` (an immutable file there, a read-only folder entry) is kept
    under a free partial name too, never under its hidden temporary name.
    """
    try:
        if overwrite:
            os.replace(tmp, dest)
            return dest
        _link_or_move(tmp, dest)
        return dest
    except FileExistsError:
        other = keep_partial(tmp, dest)
        raise SinkError(f"{dest} appeared during the run (another program wrote it) and was kept; "
                        f"this run's result is in {other}") from None
    except OSError as err:
        why = reason(err)
        if err.errno in (errno.EPERM, errno.EACCES):
            why += f"; make {dest.name} replaceable (chattr -i, or ask its owner) or choose another name"
    try:  # the finished file stays, visible, under a partial name the message gives
        other = keep_partial(tmp, dest)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise SinkError(f"cannot move the finished {dest} into place: {why}; nothing was written") from None
    raise SinkError(f"cannot move the finished {dest} into place: {why}; this run's result is in {other}") from None


def keep_partial(tmp: Path, dest: Path) -> Path:
    """Move ``tmp`` to the first free partial name of ``dest`` (never replacing a file)."""
    while True:
        partial = free_partial_path(dest)
        try:
            _link_or_move(tmp, partial)
            return partial
        except FileExistsError:  # taken between the look and the move: the next name
            continue


def recover_stale(out: Output) -> list[Path]:
    """Temporary files of ``out`` whose writer no longer runs, kept under free partial names
    (patterns' single images are removed: an image cut short is of no use). Returns the new names."""
    if out.pattern:
        folder = out.path.parent
        stale = [p for p in _glob(folder, f".*{TEMP_TAG}*{glob.escape(out.path.suffix)}")
                 if _regular(p) and not _alive(p)]
        for p in stale:
            p.unlink(missing_ok=True)
            log.warning("removed %s, an image a killed run left unfinished", p)
        return []
    kept = []
    for p in _temp_files(out.path):
        if _alive(p):
            continue
        partial = keep_partial(p, out.path)
        log.warning("a run that was killed left %s; kept it as %s (it may not play to the end)", p.name, partial)
        kept.append(partial)
    return kept


def _temp_files(path: Path) -> list[Path]:
    """The temporary files of the one file ``path``, whoever writes (or wrote) them: regular files
    only (a folder, a link or a pipe at such a name is no run's file: never opened, moved or kept)."""
    prefix = glob.escape(_temp_stem(path) + TEMP_TAG)
    return [p for p in _glob(path.parent, f"{prefix}*{glob.escape(path.suffix)}") if _regular(p)]


def _regular(path: Path) -> bool:
    """Whether ``path`` itself (not what a link names) is a regular file."""
    try:
        return stat.S_ISREG(path.lstat().st_mode)
    except OSError:
        return False


def _writer_pid(temp: Path) -> int | None:
    """The process id a temporary file's name ends with (None: an older name without one)."""
    tail = temp.stem.rpartition(TEMP_TAG)[2]
    return int(tail[1:]) if tail.startswith("-") and tail[1:].isdigit() else None


def _glob(folder: Path, pattern: str) -> list[Path]:
    try:
        return sorted(folder.glob(pattern))
    except OSError:
        return []


def _alive(temp: Path) -> bool:
    """Whether a live writer holds ``temp``: its lock (see :func:`create_locked`), else the
    process whose id ends the name's stem still runs."""
    return _held(temp, lambda: _pid_alive(temp), unreadable=True)  # cannot tell: leave it


def _held(path: Path, by_pid: Any, unreadable: bool) -> bool:
    """Whether a live process holds ``path``'s lock; ``by_pid()`` tells where there are no locks,
    ``unreadable`` where the file cannot be opened."""
    try:
        import fcntl
    except ImportError:
        return bool(by_pid())
    try:  # (non-blocking, not through a link: a pipe put there is never waited on)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return unreadable
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:  # a file system without locks
        return bool(by_pid())
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def _pid_alive(temp: Path) -> bool:
    pid = _writer_pid(temp)
    return pid is not None and _pid_running(pid)


def _pid_running(pid: int) -> bool:
    """Whether process ``pid`` runs (another user's counts)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's live process
        return True
    return True


def reason(err: BaseException) -> str:
    """An OS or FFmpeg error as a short phrase (``No space left on device``), never ``None``."""
    code = getattr(err, "errno", None)
    text = getattr(err, "strerror", None) or (os.strerror(code) if isinstance(code, int) and code > 0 else "")
    if not text:
        text = str(err).splitlines()[0] if str(err) else type(err).__name__
    if code == errno.ENOSPC or "No space left" in text:
        return f"{text}; free some space"
    return text


def write_bytes(path: Path, data: bytes | memoryview, overwrite: bool, mode: int | None = None) -> Path:
    """Write a whole small file (an image, a JSON report) under a temporary name, then publish it:
    a full disk leaves the old file as it was, never a truncated one. ``mode``: the new file's
    permissions (those of the file it replaces, say), set before it takes the name."""
    tmp = temp_path(path)
    made = False
    try:
        fd = create_locked(tmp)
        made = True
        with os.fdopen(fd, "wb") as fh:  # (through the descriptor made: never the name again)
            fh.write(data)
            if mode is not None:
                os.fchmod(fh.fileno(), mode)
    except OSError as err:
        if made:
            with contextlib.suppress(OSError):  # (a read-only file system refuses even this: its error is the one)
                tmp.unlink(missing_ok=True)
        if isinstance(err, IsADirectoryError) and not made:  # a folder at its hidden temporary name: named
            raise SinkError(f"cannot write {path}: {tmp} is a folder in the way; move it away") from None
        raise SinkError(f"cannot write {path}: {reason(err)}") from None
    return publish(tmp, path, overwrite)


def write_json(path: Path, payload: Any, overwrite: bool) -> Path:
    """``payload`` as indented JSON, written whole or not at all (:func:`write_bytes`)."""
    import json

    return write_bytes(path, (json.dumps(payload, indent=2) + "\n").encode(), overwrite)


class PatternClaim:
    """A run's claim on a pattern's names (see :func:`claim_pattern`); :meth:`release` is safe twice."""

    def __init__(self, path: Path, fd: int | None) -> None:
        self.path, self._fd, self._held = path, fd, True

    def release(self) -> None:
        if not self._held:
            return
        self._held = False
        try:
            self.path.unlink(missing_ok=True)  # still locked: no other run holds this file
        except OSError:
            pass
        finally:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def claim_path(pattern: Path) -> Path:
    """The claim file of ``pattern``: ``.PATTERN.livebokeh-claim`` in its folder."""
    return pattern.parent / _fit("." + pattern.name, CLAIM_TAG)


def claim_pattern(flag: str, pattern: Path) -> PatternClaim:
    """Claim ``pattern`` (a checked one, such as ``masks/%05d.png``) for this run, or raise.

    The claim is a small file beside the images, ``.PATTERN.livebokeh-claim``, holding this
    process's id and the pattern, locked (``flock``) while the run lives and removed at
    :meth:`PatternClaim.release`. Another live claim in the folder on the same pattern, or on one
    that can give one of its names (``%d.png`` and ``%05d.png``), refuses this one. A claim left by
    a killed run is not held and is taken over.

    Raises:
        SinkError: another run writes these names now (one line naming its process and what to do).
    """
    path = claim_path(pattern)
    claim = PatternClaim(path, _lock_claim(flag, pattern, path))
    try:
        check_unclaimed(flag, pattern, mine=path)
    except BaseException:
        claim.release()
        raise
    return claim


def _live_claims(folder: Path, mine: Path | None = None) -> Iterator[tuple[int, str]]:
    """The process id and pattern of each live claim in ``folder`` (other than ``mine``)."""
    for other in _glob(folder, f".*{glob.escape(CLAIM_TAG)}"):
        if (mine is not None and other.name == mine.name) or not _regular(other):  # (a pipe there: no run's)
            continue
        held = _read_claim(other)
        if held is not None and _claim_alive(other, held[0]):
            yield held


def check_unclaimed_file(flag: str, path: Path) -> None:
    """Raise :class:`SinkError` when another live run writes the one file ``path`` now (its
    temporary file is held: a second run's ``-o`` onto a recording in progress), or when a live
    run's claimed pattern gives its name (a snapshot onto a frame that run will write)."""
    for temp in _temp_files(path):
        pid = _writer_pid(temp)
        if pid is not None and pid != os.getpid() and _alive(temp):
            raise SinkError(f"{flag} {path}: another livebokeh run (process {pid}) is writing it now; wait for it "
                            "to end or choose another name")
    for pid, name in _live_claims(path.parent):
        try:
            gives = _pattern_regex(path.parent / name).fullmatch(path.name) is not None
        except (ValueError, TypeError):  # not a pattern of ours
            continue
        if gives:
            # (not "another": the run a `ctl snapshot` asks may be the one whose pattern this is)
            raise SinkError(f"{flag} {path}: the livebokeh run of process {pid} is writing {path.parent / name}, "
                            "which gives this name; choose another name")


def check_unclaimed(flag: str, pattern: Path, mine: Path | None = None) -> None:
    """Raise :class:`SinkError` when a live run claims ``pattern`` or a pattern in its folder that
    can give one of its names (claims other than this run's own ``mine``)."""
    for pid, name in _live_claims(pattern.parent, mine):
        if name == pattern.name:
            raise SinkError(f"{flag} {pattern}: another livebokeh run (process {pid}) is writing these files now; "
                            "wait for it to end or choose another name")
        try:
            overlap = _patterns_overlap(pattern, pattern.parent / name)
        except (ValueError, TypeError):  # not a pattern of ours
            continue
        if overlap:
            raise SinkError(f"{flag} {pattern}: another livebokeh run (process {pid}) is writing "
                            f"{pattern.parent / name}, which gives some of the same names; wait for it to end "
                            "or choose another name")


def _lock_claim(flag: str, pattern: Path, path: Path) -> int | None:
    """Create (or open) the claim file and lock it; the descriptor (None without ``flock``)."""
    record = f"{os.getpid()}\n{pattern.name}\n".encode()
    for _ in range(10):  # the file may be removed by the run that held it between open and lock
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as err:
            raise SinkError(f"{flag} {pattern}: cannot claim its names in {pattern.parent}: {reason(err)}") from None
        try:
            import fcntl
        except ImportError:  # Windows: the process id inside tells whether its run lives
            os.close(fd)
            return _claim_by_pid(flag, pattern, path, record)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            held = _read_claim(path)
            os.close(fd)
            who = f" (process {held[0]})" if held else ""
            raise SinkError(f"{flag} {pattern}: another livebokeh run{who} is writing these files now; wait for "
                            "it to end or choose another name") from None
        except OSError:  # a file system without locks: the process id inside tells
            os.close(fd)
            return _claim_by_pid(flag, pattern, path, record)
        try:
            if os.fstat(fd).st_ino != os.stat(path).st_ino:
                raise FileNotFoundError
        except FileNotFoundError:  # removed by its last holder after we opened it: once more
            os.close(fd)
            continue
        os.ftruncate(fd, 0)
        os.write(fd, record)
        return fd
    raise SinkError(f"{flag} {pattern}: cannot claim its names in {pattern.parent} (the claim file keeps "
                    "changing); try again")


def _claim_by_pid(flag: str, pattern: Path, path: Path, record: bytes) -> None:
    """Where there are no locks: create the claim exclusively, taking over one whose process is gone."""
    for _ in range(10):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            held = _read_claim(path)
            if held is not None and _pid_running(held[0]):
                raise SinkError(f"{flag} {pattern}: another livebokeh run (process {held[0]}) is writing these "
                                "files now; wait for it to end or choose another name") from None
            path.unlink(missing_ok=True)  # its run is gone
            continue
        except OSError as err:
            raise SinkError(f"{flag} {pattern}: cannot claim its names in {pattern.parent}: {reason(err)}") from None
        try:
            os.write(fd, record)
        finally:
            os.close(fd)
        return None
    raise SinkError(f"{flag} {pattern}: cannot claim its names in {pattern.parent}; try again")


def _read_claim(path: Path) -> tuple[int, str] | None:
    """(process id, pattern name) recorded in a claim file, or None when it holds no record yet."""
    try:
        pid, name = path.read_bytes().decode("utf-8", "surrogateescape").split("\n")[:2]
        return int(pid), name
    except (OSError, ValueError):
        return None


def _claim_alive(path: Path, pid: int) -> bool:
    """Whether another claim file is held by a live run: its lock, else its process id."""
    return _held(path, lambda: _pid_running(pid), unreadable=False)  # removed: its run ended
