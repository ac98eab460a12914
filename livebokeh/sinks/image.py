"""Still images and image sequences."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from livebokeh.closing import Closeable
from livebokeh.errors import ConfigError, SinkError
from livebokeh.sinks.base import SINKS, Sink, check_output_path
from livebokeh.sinks.files import Output, check_pattern, claim_pattern, numbered, write_bytes
from livebokeh.sources.base import IMAGE_WRITE_SUFFIXES
from livebokeh.types import Composite

log = logging.getLogger(__name__)


def write_image(path: Path, image: np.ndarray, overwrite: bool) -> Path:
    """Encode by the file ending and write under a temporary name, then move into place (any path
    encoding): a full disk leaves an existing file as it was, and without ``overwrite`` a file
    found at ``path`` when the image is moved there is kept (:func:`~livebokeh.sinks.files.publish`).
    Returns where the image went."""
    ok, data = cv2.imencode(path.suffix, image)
    if not ok:
        raise SinkError(f"cannot encode {path.name}; use .png or .jpg")
    return write_bytes(path, data.tobytes(), overwrite)


def check_image_path(path: str | Path, flag: str = "--output") -> Path:
    """``path``, unless its ending is not one the image output ``flag`` names can be written
    as (:data:`~livebokeh.sources.base.IMAGE_WRITE_SUFFIXES`): ConfigError, before anything runs."""
    p = check_output_path(path)
    allowed = IMAGE_WRITE_SUFFIXES[flag]
    if p.suffix.lower() not in allowed:
        raise ConfigError(f"{flag} {p}: {p.suffix or 'no ending'} is not one of the images it can write; use "
                          + ", ".join(sorted(allowed)))
    return p


class ImageSequence(Closeable):
    """One image per frame under a printf pattern (``masks/%05d.png``), named by the number of
    its source frame counted from 1 (:func:`~livebokeh.sinks.files.numbered`).

    The pattern is claimed for the run (:func:`~livebokeh.sinks.files.claim_pattern`): a second
    run writing it at the same time is refused. Each image is published on its own; without
    ``overwrite`` a file another program wrote under one of the names during the run is kept, and
    the write raises :class:`SinkError` saying where this run's image went. With ``overwrite``,
    the files of an earlier run that the pattern names and this run did not write again are
    removed when the run went through whole (:meth:`mark_complete`, then :meth:`close`), so that
    the pattern then names this run's images only; a run that fails or is stopped removes none
    (an old file is replaced only by a whole new one), nor any file changed since the run began.

    Args:
        flag: the option that named it (for messages).
        path: the pattern.
        overwrite: existing images may be replaced.
    """

    def __init__(self, flag: str, path: str | Path, overwrite: bool) -> None:
        check_pattern(flag, path)
        self.path = Path(path)
        check_image_path(str(path) % 0, flag)
        self.overwrite = overwrite
        self.flag = flag
        self._claim = claim_pattern(flag, self.path)
        try:
            #: an earlier run's files that the pattern names, as they were when this run began
            self._stale: dict[Path, tuple[int, int, int]] = {}
            if overwrite:
                for old in Output.of(flag, self.path).existing():
                    seen = _identity(old)
                    if seen is not None:
                        self._stale[old] = seen
            self._complete = False
        except BaseException:  # the claim is this run's only while it writes
            self._claim.release()
            raise

    def name(self, index: int) -> Path:
        """The file of the frame of 0-based ``index``."""
        return numbered(self.path, index)

    def write(self, index: int, image: np.ndarray) -> Path:
        path = self.name(index)
        self._stale.pop(path, None)  # replaced by this run's image
        return write_image(path, image, self.overwrite)

    def mark_complete(self) -> None:
        """The whole input went through: :meth:`close` removes the earlier run's other files."""
        self._complete = True

    def _release(self) -> None:
        try:
            if self._complete and self._stale:
                removed = 0
                for old, seen in self._stale.items():
                    if _identity(old) != seen:
                        continue  # changed or gone since the run began: not the earlier run's any more
                    try:
                        old.unlink()
                        removed += 1
                    except FileNotFoundError:
                        pass
                    except OSError as err:
                        log.warning("%s: could not remove %s, a file of an earlier run that the pattern "
                                    "names (%s); remove it by hand", self.flag, old, err.strerror or err)
                if removed:
                    log.info("%s: removed %d files of an earlier run that the pattern names (--overwrite)",
                             self.flag, removed)
        finally:
            self._stale = {}
            self._claim.release()


def _identity(path: Path) -> tuple[int, int, int] | None:
    """``(device, inode, mtime ns)`` of the file at ``path`` (not following a link), None when none."""
    try:
        st = path.lstat()
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_mtime_ns


@SINKS.register("image")
class ImageFileSink(Sink):
    """The rendered frame of a still input as an image file."""

    name = "image"

    def __init__(self, path: str | Path, overwrite: bool = False) -> None:
        self.path = check_image_path(path)
        if self.path.exists() and not overwrite:
            raise SinkError(f"{self.path} exists; pass --overwrite to replace it, or choose another name")
        self.overwrite = overwrite
        self.frames = 0

    def write(self, item: Composite) -> None:
        if self.frames:
            raise SinkError(f"{self.path.name} is a single image but the input has several frames; use a video ending")
        write_image(self.path, item.image, self.overwrite)
        self.frames += 1
