"""Shared helpers for the benchmarks: evaluation data, timing, tables."""

from __future__ import annotations

import dataclasses
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from livebokeh.errors import ConfigError
from livebokeh.interrupts import signals_held, termination_unwinds
from livebokeh.sources.decoding import ffmpeg_name
from livebokeh.sources.quiet import quiet_native


def default_data_dir() -> Path | None:
    """``$LIVEBOKEH_DATA``, else ``$LIVEBOKEH_SHARED/data``, else ``../shared/data`` if present."""
    for candidate in (os.environ.get("LIVEBOKEH_DATA"),
                      os.environ.get("LIVEBOKEH_SHARED") and str(Path(os.environ["LIVEBOKEH_SHARED"]) / "data"),
                      "../shared/data"):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


def require_data(data: str | Path | None) -> Path:
    d = Path(data) if data else default_data_dir()
    if d is None or not d.is_dir():
        where = f" ({d} is no folder)" if d is not None else " (none in $LIVEBOKEH_DATA, $LIVEBOKEH_SHARED/data or ../shared/data)"
        raise ConfigError(f"no evaluation data{where}: pass --data DIR (a folder with stills/, portraits/, videos/), "
                          "or set LIVEBOKEH_DATA")
    return d


def missing_data(what: str, where: Path, want: str) -> ConfigError:
    """The one line (exit 2) of a bench whose data folder lacks what it measures: ``no {what} in
    {where}; pass --data DIR with {want}``."""
    return ConfigError(f"no {what} in {where}; pass --data DIR with {want}")


def require_clip(data: Path) -> Path:
    """The benches' 1280x720 clip, ``videos/office720p.mp4``, or :func:`missing_data`."""
    clip = data / "videos" / "office720p.mp4"
    if not clip.is_file():
        raise missing_data("office720p.mp4", data / "videos", "videos/office720p.mp4")
    return clip


def half_body_ids(data: Path) -> list[int]:
    """The half-body subset listed in the data README (empty if the README lacks it)."""
    readme = data / "README.md"
    if not readme.is_file():
        return []
    text = readme.read_text()
    start = text.find("Half-body/portrait subset")
    if start < 0:
        return []
    block = text[start:].split(":", 1)[1].split("\n\n", 1)[0]
    return [int(tok) for tok in block.split() if tok.isdigit()]


def jpeg_cut_short(data: bytes) -> bool:
    """Whether a JPEG file's bytes stop before the end of its picture: no end-of-image marker
    after its last scan (an embedded thumbnail has its own markers before it; a marker's bytes
    cannot occur inside a scan's data). Such a file decodes with grey rows and no error. False
    for any other kind of file."""
    if not data.startswith(b"\xff\xd8"):
        return False
    scan = data.rfind(b"\xff\xda")
    return scan < 0 or data.find(b"\xff\xd9", scan) < 0


def read_still(path: Path, gray: bool = False) -> np.ndarray | str:
    """The picture at ``path`` as ``(H, W, 3)`` uint8 BGR (``(H, W)`` 8-bit with ``gray``), or why
    it cannot be measured, said of the file (``"is a pipe, not a file"``, ``"does not exist"``,
    ``"is damaged (...)"``). The benches' one reader of pictures: a pipe or a device is never
    opened (a FIFO would wait for a writer for ever), a picture over livebokeh's size limit is never
    decoded, and a damaged or cut-short file, which OpenCV decodes grey without an error, is
    refused; the decoders' own lines (libjpeg's ``Premature end of JPEG file``) stay off the
    terminal (:func:`~livebokeh.sources.quiet.quiet_native`)."""
    import stat

    import cv2

    from livebokeh.errors import file_kind, printable
    from livebokeh.sources.image import DAMAGE, cv_reason
    from livebokeh.sources.imageinfo import MAX_PIXELS, not_regular_kind, probe_image

    kind = not_regular_kind(path)
    if kind is not None:  # found without opening it
        return f"is {kind}, not a file"
    if not os.path.lexists(path):
        return "does not exist"
    info = probe_image(path)
    if info is not None and info.width * info.height > MAX_PIXELS:
        return f"is {info.width}x{info.height}, larger than livebokeh takes ({MAX_PIXELS / 1e6:.0f} MP)"
    try:  # (non-blocking: a pipe put there since the look above is not waited on either)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as err:
        return "does not exist" if isinstance(err, FileNotFoundError) else f"cannot be read ({err.strerror or err})"
    try:
        found = os.fstat(fd)
        mode = found.st_mode
        if not stat.S_ISREG(mode):  # a folder, or a pipe put there since the look above
            return f"is {file_kind(mode)}, not a file"
        # never read whole what no picture of its size needs (a huge or sparse file named .jpg)
        most = info.width * info.height * 8 + (64 << 20) if info is not None else 256 << 20
        if found.st_size > most:
            return f"is {found.st_size / 2**20:.0f} MB, more than a picture {'of its size ' if info else ''}takes"
        with os.fdopen(os.dup(fd), "rb") as fh:
            raw = fh.read()
    except OSError as err:
        return f"cannot be read ({err.strerror or err})"
    finally:
        os.close(fd)
    if jpeg_cut_short(raw):  # OpenCV decodes what is there, grey below, often without a word
        return "is cut short (no end of the picture)"
    try:
        with quiet_native() as said:
            image = (cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR)
                     if raw else None)
    except cv2.error as err:  # a header beyond OpenCV's own limit, a codec this OpenCV lacks
        return f"cannot be read as an image ({cv_reason(err)})"
    if image is None:
        return "cannot be read as an image"
    damage = next((line for line in said if DAMAGE.search(line)), None)
    if damage is not None:
        return f"is damaged ({printable(damage.removeprefix('libpng warning: ').rstrip('.'), newlines=False)})"
    return image


def read_pair(photo: Path, mask: Path, word: str = "mask") -> tuple[np.ndarray, np.ndarray] | str:
    """``(photo, 8-bit mask)`` (:func:`read_still`) when both can be measured and are one size,
    else why not, said of the photo (``"it has no mask hs_001.png"``, ``"its mask is 10x10, the
    photo 64x48"``); ``word`` names the mask in it (``"matte"``)."""
    img = read_still(photo)
    if isinstance(img, str):
        return f"it {img}"
    if not os.path.lexists(mask):
        return f"it has no {word} {mask.name}"
    ref = read_still(mask, gray=True)
    if isinstance(ref, str):
        return f"its {word} {mask.name} {ref}"
    if ref.shape != img.shape[:2]:
        return f"its {word} is {ref.shape[1]}x{ref.shape[0]}, the photo {img.shape[1]}x{img.shape[0]}"
    return img, ref


def read_pairs(pairs: Sequence[tuple[Path, Path]], said: set[Path] | None = None,
               ) -> Iterator[tuple[np.ndarray, np.ndarray, Path]]:
    """``(photo, 8-bit mask, photo's path)`` for each pair that can be scored (:func:`read_pair`):
    a pair that cannot (unreadable, a pipe, damaged, cut short, a mask of another size than its
    photo: it crashed a bench, hung it, or was scored grey) is left out with one warning naming it.
    ``said``: the photos already warned of, for a bench that reads its pairs again (each backend),
    which are left out again without a word; those warned of here are added."""
    import logging

    from livebokeh.errors import printable

    log = logging.getLogger("livebokeh.bench")
    for photo, mask in pairs:
        pair = read_pair(photo, mask)
        if isinstance(pair, str):
            if said is not None:
                if photo in said:
                    continue
                said.add(photo)
            log.warning("left out %s: %s", printable(str(photo), newlines=False), printable(pair, newlines=False))
            continue
        yield pair[0], pair[1], photo


def still_pairs(data: Path, ids: Sequence[int] | None = None) -> list[tuple[Path, Path]]:
    """The stills with a mask (``stills/hs_N.jpg`` beside ``hs_N.png``; ``ids``: those numbers
    only), by name; found, not opened (:func:`read_pairs` reads them)."""
    pairs = []
    for photo in sorted((data / "stills").glob("hs_*.jpg")):
        number = photo.stem.split("_", 1)[1]
        if not number.isdigit():  # not one of the data's stills
            continue
        n = int(number)
        mask = photo.with_suffix(".png")
        if os.path.lexists(mask) and (ids is None or n in ids):  # a pipe there: said by read_pairs
            pairs.append((photo, mask))
    return pairs


def video_frames(path: Path, limit: int) -> list[np.ndarray]:
    import av

    frames = []
    with av.open(ffmpeg_name(path)) as c:
        for f in c.decode(video=0):
            frames.append(f.to_ndarray(format="bgr24"))
            if len(frames) >= limit:
                break
    return frames


def time_per_item(fn: Callable[[object], object], items: Sequence[object], warmup: int = 3) -> float:
    """Median milliseconds of ``fn(item)`` over ``items`` (after ``warmup`` untimed calls)."""
    for item in list(items)[:warmup]:
        fn(item)
    times = []
    for item in items:
        t0 = time.perf_counter()
        fn(item)
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)


#: How the benches' temporary folders are named (in the system's temporary folder).
SCRATCH_PREFIX = "livebokeh-bench-"


@contextmanager
def scratch_dir() -> Iterator[Path]:
    """A fresh temporary folder for a bench's intermediate files (a re-encoded clip), removed with
    everything in it however the bench ends: done, failed, interrupted (Ctrl-C), or stopped by
    SIGTERM or SIGHUP (a CI timeout, a closed terminal), which unwind here as Ctrl-C does."""
    folder = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX))
    try:
        with termination_unwinds():
            yield folder
    finally:
        with signals_held():  # a second Ctrl-C waits until the folder is gone
            shutil.rmtree(folder, ignore_errors=True)


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def table(rows: list[dict], columns: Sequence[tuple[str, str, str]]) -> str:
    """Markdown table: columns are (key, header, format)."""
    head = "| " + " | ".join(h for _, h, _ in columns) + " |"
    sep = "| " + " | ".join("---" for _ in columns) + " |"
    body = []
    for r in rows:
        cells = []
        for key, _, fmt in columns:
            v = r.get(key)
            cells.append("n/a" if v is None else format(v, fmt) if fmt else str(v))
        body.append("| " + " | ".join(cells) + " |")
    return "\n".join([head, sep, *body])


def write_json(path: str | Path | None, payload: dict, overwrite: bool = False) -> None:
    """A bench report as JSON (``--json``), when a path is given; an existing file only with ``overwrite``."""
    if path:
        from livebokeh.sinks.files import write_json as write_whole

        write_whole(Path(path), payload, overwrite)



def weights_only(backend: str, cfg: Any) -> object:
    """``backend``'s own options at their defaults, with the weights files of the settings ``cfg``
    (the benchmarks measure each backend as it ships, wherever its weights are)."""
    from livebokeh.segment import BACKEND_OPTIONS

    own = BACKEND_OPTIONS[backend]()
    section = getattr(cfg, backend)
    for key in ("weights", "decoder_weights"):  # decoder_weights: DeepLab-v3+'s decoder
        value = getattr(section, key, None)
        if value is not None:
            own = dataclasses.replace(own, **{key: value})
    return own


def null_outputs(cfg: Any) -> Any:
    """``cfg`` without the virtual camera, the preview or the control page: a bench's own sink
    stands in for the virtual camera (the same conversion, no device)."""
    return dataclasses.replace(cfg, virtual_camera=dataclasses.replace(cfg.virtual_camera, enabled=False),
                               preview=dataclasses.replace(cfg.preview, enabled=False),
                               control=dataclasses.replace(cfg.control, enabled=False))
