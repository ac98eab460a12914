"""Replacement backgrounds for ``effect = "replace"``: a colour, an image or a looping video.

Each gives, frame after frame, a ``(H, W, 3)`` uint8 BGR plate of the frame's size. Images and
videos are scaled to *cover* the frame (no bars) and centred.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from livebokeh.closing import Closeable
from livebokeh.errors import ConfigError, SourceError
from livebokeh.sources.base import is_image_path

log = logging.getLogger(__name__)

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


class Background(Closeable, ABC):
    """A source of replacement plates; :meth:`close` is safe twice. ``plate`` may be called from
    several threads (the workers of a file pipeline's pool)."""

    @abstractmethod
    def plate(self, size: tuple[int, int], index: int | None = None) -> np.ndarray:
        """The plate for output frame ``index`` (None: the next one), ``(h, w, 3)`` uint8 for ``size = (w, h)``."""



class ColourBackground(Background):
    def __init__(self, bgr: tuple[int, int, int]) -> None:
        self.bgr = bgr
        self._cache: dict[tuple[int, int], np.ndarray] = {}

    def plate(self, size: tuple[int, int], index: int | None = None) -> np.ndarray:
        cache = self._cache  # replaced whole, never changed: safe across threads
        if size not in cache:
            p = np.empty((size[1], size[0], 3), np.uint8)
            p[:] = self.bgr
            p.flags.writeable = False
            self._cache = cache = {size: p}
        return cache[size]


class ImageBackground(Background):
    def __init__(self, path: Path) -> None:
        from livebokeh.sources.image import read_image

        self.image = read_image(path, what="background image")
        self._cache: dict[tuple[int, int], np.ndarray] = {}

    def plate(self, size: tuple[int, int], index: int | None = None) -> np.ndarray:
        cache = self._cache
        if size not in cache:
            self._cache = cache = {size: cover(self.image, size)}
        return cache[size]


class VideoBackground(Background):
    """A video (or an animated PNG or WebP) played in a loop: output frame ``i`` gets the loop's
    ``i``-th picture, whichever thread asks and in whatever order (the pool's workers render side
    by side), so a file's result is the same on every run. Pictures decoded ahead of a request
    wait in a small window; a picture the video cannot give (a corrupt stretch) ends the loop
    early, with a warning."""

    #: Output frames a request may lag the newest decoded one (more than the pipeline has in flight).
    WINDOW = 64

    def __init__(self, path: Path) -> None:
        from livebokeh.sources.animation import AnimationSource, is_animation
        from livebokeh.sources.video import VideoFileSource

        self._path = path
        self._lock = threading.Lock()
        self._source: Any = (AnimationSource(path, what="background image") if is_animation(path)
                             else VideoFileSource(path))
        self._source.open()
        self._ahead: dict[int, np.ndarray] = {}  # output index -> picture, decoded and not yet asked for
        self._next = 0  # output index of the next picture to decode
        self._auto = 0  # the next index when none is given
        self._last: np.ndarray | None = None
        self._warned = False
        self._ahead[0] = self._read_looping()
        self._next = 1

    def _read_looping(self) -> np.ndarray:
        """The next picture of the loop (from the start again after the last one)."""
        for attempt in range(2):
            try:
                frame = self._source.read()
            except SourceError as err:
                if not self._warned:
                    log.warning("background video %s: %s; looping from its start there", self._path, err)
                    self._warned = True
                frame = None
            if frame is not None:
                return frame.image
            self._source.close()
            self._source.open()
        raise SourceError(f"background video {self._path} has no frames that can be read; pass another --background")

    def plate(self, size: tuple[int, int], index: int | None = None) -> np.ndarray:
        with self._lock:
            if self._closed:  # replaced while a frame was rendered with it: its last picture
                return cover(self._last if self._last is not None else np.zeros((8, 8, 3), np.uint8), size)
            if index is None:
                index, self._auto = self._auto, self._auto + 1
            while self._next <= index:
                self._ahead[self._next] = self._read_looping()
                self._next += 1
            for old in [i for i in self._ahead if i < index - self.WINDOW]:
                del self._ahead[old]  # skipped (a live pipeline drops frames)
            image = self._ahead.pop(index, None)
            if image is None:  # asked twice, or far behind: the newest picture stands in
                image = self._last if self._last is not None else self._read_looping()
            self._last = image
        return cover(image, size)

    def _release(self) -> None:
        with self._lock:
            self._source.close()
            self._ahead.clear()


def open_background(spec: str) -> Background:
    """A colour name or code, an image file, an animated PNG or WebP (looped, as a video), or a video file."""
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
    from livebokeh.sources.animation import is_animation

    return ImageBackground(path) if is_image_path(path) and not is_animation(path) else VideoBackground(path)
