"""A single still image as a one-frame source."""

from __future__ import annotations

import logging
import re
import time
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from livebokeh.errors import SourceError, printable
from livebokeh.sources.base import SOURCES, Source
from livebokeh.sources.imageinfo import (
    MAX_PIXELS,
    check_pixels,
    not_regular_kind,
    probe_image,
)
from livebokeh.sources.quiet import quiet_native
from livebokeh.types import Frame, StreamInfo

log = logging.getLogger(__name__)


def read_image(path: str | Path, gray: bool = False, what: str = "input") -> np.ndarray:
    """Read any still as ``(H, W, 3)`` uint8 BGR, or ``(H, W)`` gray with ``gray``.

    Grayscale, RGBA and 16-bit files are converted (an animation gives its first frame); ``what``
    names the file in errors. A header that claims more than
    :data:`~livebokeh.sources.imageinfo.MAX_PIXELS` is refused before anything is decoded.
    """
    p = Path(path)
    kind = not_regular_kind(p)
    if kind is not None:  # never opened: a FIFO would wait for a writer forever
        raise SourceError(f"{what} {p} is not a regular file ({kind}); save the picture to a file and pass that")
    if not p.is_file():
        raise SourceError(f"{what} {p} does not exist; check the path")
    info = probe_image(p)
    if info is not None:
        check_pixels(what, p, info.width, info.height)
    data = np.fromfile(p, dtype=np.uint8)
    try:
        with quiet_native() as said:  # a damaged file: our one line, not libpng's or OpenCV's own
            image = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR) if data.size else None
    except cv2.error as err:  # a header beyond OpenCV's own limit, a codec this OpenCV lacks
        if "MAX_IMAGE_PIXELS" in str(err):  # held to livebokeh's limit by OpenCV (livebokeh/__init__.py)
            raise SourceError(f"{what} {p} is larger than livebokeh takes ({MAX_PIXELS / 1e6:.0f} MP, 16384x16384): "
                              "scale it down first") from None
        raise SourceError(f"cannot read {what} {p} as an image ({cv_reason(err)}); pass a JPEG or PNG file") from None
    if image is None:
        raise SourceError(f"cannot read {what} {p} as an image; is it a valid JPEG/PNG file?")
    check_pixels(what, p, image.shape[1], image.shape[0])  # a format whose header was not read above
    damage = next((line for line in said if DAMAGE.search(line)), None)
    if damage is not None:  # decoded all the same (as FFmpeg decodes a damaged packet): said, once
        log.warning("%s %s is damaged (%s); it was decoded as far as it goes, and may show it: pass a whole "
                    "file", what, p, printable(damage.removeprefix("libpng warning: ").rstrip(".")))
    return image


#: The libraries' lines that say a picture's data is damaged (decoded all the same).
#: (libpng's about the picture's data only: a malformed metadata chunk, iCCP or tIME, is no damage to it)
DAMAGE = re.compile(r"Corrupt JPEG data|Premature end of JPEG|Invalid (JPEG|SOS)|Bogus |"
                    r"libpng warning: (IDAT|Extra compressed data|Too much image data|Not enough image data|"
                    r"Ignoring bad adaptive filter)")


def cv_reason(err: BaseException) -> str:
    """OpenCV's error as a short phrase (its text holds a source path and line)."""
    text = str(err)
    if "MAX_IMAGE_PIXELS" in text:
        return "the picture is too large"
    for line in reversed(text.splitlines()):
        if "error:" in line:
            return line.split("error:", 1)[1].split(" in function")[0].strip()
    return text.splitlines()[0] if text else type(err).__name__


@SOURCES.register("image")
class ImageSource(Source):
    """Yields one frame: the picture at ``path``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._image: np.ndarray | None = None
        self._done = False

    def _open(self) -> StreamInfo:
        self._image = read_image(self.path)
        self._done = False
        h, w = self._image.shape[:2]
        return StreamInfo(name=self.path.name, width=w, height=h, fps=Fraction(1), live=False, frame_count=1, still=True)

    def read(self) -> Frame | None:
        if self._done or self._image is None:
            return None
        self._done = True
        return Frame(self._image, 0, time.monotonic_ns())

    def _release(self) -> None:
        self._image = None
