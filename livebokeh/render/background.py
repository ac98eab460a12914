"""Replacement backgrounds for ``effect = "replace"``: a colour, an image or a looping video.

Each gives, frame after frame, a ``(H, W, 3)`` uint8 BGR plate of the frame's size. Images and
videos are scaled to *cover* the frame (no bars) and centred.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType
from typing import Any

import cv2
import numpy as np

from livebokeh.errors import ConfigError, SourceError
from livebokeh.sources.base import is_image_path

#: Named colours, as BGR. ``chroma-green`` and ``chroma-blue`` are the usual keying colours.
COLOURS: dict[str, tuple[int, int, int]] = {
    "green": (0, 255, 0),
    "chroma-green": (64, 177, 0),
    "blue": (255, 0, 0),
    "chroma-blue": (187, 71, 0),
    "black": (0, 0, 0),
    "white": (255, 255, 255),
    "gray": (128, 128, 128),
}


def parse_colour(text: str) -> tuple[int, int, int] | None:
    """``#rrggbb``, ``rrggbb`` or a name from :data:`COLOURS` -> BGR; None when it is not a colour."""
    t = text.strip().lower()
    if t in COLOURS:
        return COLOURS[t]
    hexpart = t[1:] if t.startswith("#") else t
    if len(hexpart) == 6 and all(c in "0123456789abcdef" for c in hexpart):
        r, g, b = (int(hexpart[i : i + 2], 16) for i in (0, 2, 4))
        return (b, g, r)
    return None


def cover(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scale ``image`` to cover ``size = (w, h)`` and crop the centre (new array)."""
    w, h = size
    ih, iw = image.shape[:2]
    s = max(w / iw, h / ih)
    nw, nh = max(w, round(iw * s)), max(h, round(ih * s))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    scaled = cv2.resize(image, (nw, nh), interpolation=interp)
    x, y = (nw - w) // 2, (nh - h) // 2
    return np.ascontiguousarray(scaled[y : y + h, x : x + w])


class Background(ABC):
    """A source of replacement plates; :meth:`close` is safe twice."""

    @abstractmethod
    def plate(self, size: tuple[int, int]) -> np.ndarray:
        """The next plate, ``(h, w, 3)`` uint8 for ``size = (w, h)``."""

    def close(self) -> None:
        """Release files."""

    def __enter__(self) -> Background:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


class ColourBackground(Background):
    def __init__(self, bgr: tuple[int, int, int]) -> None:
        self.bgr = bgr
        self._cache: dict[tuple[int, int], np.ndarray] = {}

    def plate(self, size: tuple[int, int]) -> np.ndarray:
        if size not in self._cache:
            p = np.empty((size[1], size[0], 3), np.uint8)
            p[:] = self.bgr
            p.flags.writeable = False
            self._cache = {size: p}
        return self._cache[size]


class ImageBackground(Background):
    def __init__(self, path: Path) -> None:
        from livebokeh.sources.image import read_image

        self.image = read_image(path)
        self._cache: dict[tuple[int, int], np.ndarray] = {}

    def plate(self, size: tuple[int, int]) -> np.ndarray:
        if size not in self._cache:
            self._cache = {size: cover(self.image, size)}
        return self._cache[size]


class VideoBackground(Background):
    """A video played in a loop, one of its frames per output frame."""

    def __init__(self, path: Path) -> None:
        from livebokeh.sources.video import VideoFileSource

        self._path = path
        self._source: Any = VideoFileSource(path)
        self._source.open()
        first = self._source.read()
        if first is None:
            raise SourceError(f"background video {path} has no frames")
        self._pending = first.image

    def plate(self, size: tuple[int, int]) -> np.ndarray:
        if self._pending is not None:
            image, self._pending = self._pending, None
        else:
            frame = self._source.read()
            if frame is None:  # loop
                self._source.close()
                self._source.open()
                frame = self._source.read()
            image = frame.image
        return cover(image, size)

    def close(self) -> None:
        self._source.close()


def open_background(spec: str) -> Background:
    """A colour name or code, an image file, or a video file."""
    if not spec:
        raise ConfigError("effect 'replace' needs a background: --background IMAGE|VIDEO|COLOUR (e.g. green)")
    colour = parse_colour(spec)
    if colour is not None:
        return ColourBackground(colour)
    path = Path(spec)
    if not path.is_file():
        raise ConfigError(
            f"background {spec!r} is neither a file nor a colour; give an image, a video, #rrggbb or one of: "
            + ", ".join(COLOURS)
        )
    return ImageBackground(path) if is_image_path(path) else VideoBackground(path)
