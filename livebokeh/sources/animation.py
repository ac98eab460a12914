"""Animated PNG and WebP: every frame, read as a video (OpenCV's ``imreadanimation``; FFmpeg
decodes no animated WebP). Played as a camera, :class:`~livebokeh.sources.clip.ClipCamera`
paces it as it paces a video.

Each frame keeps its own delay: frame ``i`` is shown at the sum of the delays before it (a
delay under 20 ms counts as 100 ms, as browsers play such files). The frames are decoded in
groups that fit :data:`BUDGET` bytes; a file too long for one group is decoded again from its
start for each (an animation's frames are drawn over the ones before), which costs time but
never more memory.

A file that holds fewer frames than its header says (an APNG cut short, or one whose ``acTL``
claims more) gives every frame that decodes, as FFmpeg does: a cut file then ends as a cut video
does (an error after its frames, so the outputs are kept as partial files); a whole file whose
header claims too many is read to its end with a warning.
"""

from __future__ import annotations

import logging
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from livebokeh.errors import SourceError
from livebokeh.sources.base import SOURCES, Source
from livebokeh.sources.imageinfo import check_pixels, probe_image
from livebokeh.sources.quiet import quiet_native
from livebokeh.types import Frame, StreamInfo

log = logging.getLogger(__name__)

#: Bytes of decoded frames held at once.
BUDGET = 256 << 20
#: Delays under this many ms are played as :data:`SHORT_DELAY_MS`, as browsers do.
MIN_DELAY_MS = 20
SHORT_DELAY_MS = 100


def is_animation(path: str | Path) -> bool:
    """Whether ``path`` is an animated PNG or WebP (more than one frame), by its header."""
    if Path(path).suffix.lower() not in (".png", ".apng", ".webp"):
        return False
    info = probe_image(path)
    return info is not None and info.animated


@SOURCES.register("animation")
class AnimationSource(Source):
    """Every frame of an animated PNG or WebP, in order, with its time.

    Args:
        path: the file.
        what: how errors name the file (``input``, ``background image``).
        clock_ns: monotonic clock for the frames' capture times, injectable for tests.

    Frames come as fast as they are asked for, as a video file's do.
    """

    def __init__(self, path: str | Path, what: str = "input", clock_ns: Any = time.monotonic_ns) -> None:
        self.path = Path(path)
        self.what = what
        self._clock_ns = clock_ns
        self._count = 0
        self._chunk = 1
        self._held: list[tuple[np.ndarray, int]] = []  # decoded, not yet read: (image, delay ms)
        self._next = 0  # index of the next frame to decode
        self._index = 0  # index of the next frame to give
        self._time_ms = 0
        self._size = (0, 0)
        self._claimed = 0  # the header's frame count
        self._short = False  # the file holds fewer frames than its header says (said at the end)
        self._told = False  # the warning of a header that over-claims was given (once, loops included)
        self._whole: np.ndarray | None = None  # a cut WebP's whole chunks, decoded from memory

    def _open(self) -> StreamInfo:
        info = probe_image(self.path)
        if info is None:
            raise SourceError(f"cannot read {self.what} {self.path} as an animated image; is it a valid PNG or WebP file?")
        check_pixels(self.what, self.path, info.width, info.height)
        self._count, self._size = info.frames, (info.width, info.height)
        self._claimed, self._short = info.frames, False
        self._chunk = max(1, BUDGET // max(1, info.width * info.height * 4))
        self._held, self._next, self._index, self._time_ms = [], 0, 0, 0
        # libwebp decodes no frame of a WebP cut short: its whole chunks are a WebP it decodes
        self._whole = _whole_webp(self.path) if _cut_short(self.path) else None
        first = self._decode_more()
        if not first:
            raise SourceError(f"cannot read {self.what} {self.path}: no frame of the animation can be decoded (the file "
                              "is damaged or cut short); pass a whole file")
        total_ms = sum(d for _, d in self._held) * self._count / len(self._held)
        fps = Fraction(self._count * 1000, max(1, round(total_ms))).limit_denominator(1001)
        h, w = self._held[0][0].shape[:2]
        self._size = (w, h)
        return StreamInfo(name=self.path.name, width=w, height=h, fps=fps, live=False, frame_count=self._count)

    def _decode_more(self) -> bool:
        """Decode the next group of frames into ``_held``; False when none is left."""
        import cv2

        if self._next >= self._count:
            return False
        wanted = min(self._chunk, self._count - self._next)
        try:
            with quiet_native():  # a damaged file: our one line, not libpng's or OpenCV's own
                if self._whole is not None:
                    _ok, animation = cv2.imdecodeanimation(self._whole, self._next, wanted)
                else:
                    _ok, animation = cv2.imreadanimation(str(self.path), self._next, wanted)
        except cv2.error as err:
            from livebokeh.sources.image import cv_reason

            raise SourceError(f"cannot decode {self.what} {self.path} ({cv_reason(err)})") from None
        # OpenCV says it failed when the file ends before ``wanted`` frames, and gives the ones before
        frames = list(animation.frames)
        if len(frames) < wanted:
            self._count = self._next + len(frames)  # the header promised more than the file holds
            self._short = True
        if not frames:
            return False
        delays = list(animation.durations) + [SHORT_DELAY_MS] * len(frames)
        for image, delay in zip(frames, delays):
            self._held.append((_bgr(image), int(delay) if int(delay) >= MIN_DELAY_MS else SHORT_DELAY_MS))
        self._next += len(frames)
        return True

    def read(self) -> Frame | None:
        if self._info is None:
            return None
        if not self._held and not self._decode_more():
            self._end_short()
            return None
        image, delay = self._held.pop(0)
        if image.shape[:2] != (self._size[1], self._size[0]):
            from livebokeh.sources.decoding import fit_picture

            image = fit_picture(image, self._size)
        frame = Frame(image, self._index, self._clock_ns(), self._time_ms / 1000)
        self._index += 1
        self._time_ms += delay
        return frame

    def _end_short(self) -> None:
        """At the end of a file that held fewer frames than its header says: a cut file is an
        error (its frames were given), a whole one a warning; each said once."""
        if not self._short:
            return
        self._short = False
        if _cut_short(self.path):
            # (no count named: a WebP has none in its header, only the frame chunks seen before the cut)
            raise SourceError(f"{self.what} {self.path} ends after {self._count} frames, cut inside a frame's data: "
                              "the file is truncated; the frames before were kept")
        if not self._told:  # a background or a --loop camera opens it again at each loop
            self._told = True
            log.warning("%s %s holds %d frames, though its header says %d; all %d were read", self.what, self.path,
                        self._count, self._claimed, self._count)

    def _release(self) -> None:
        self._held = []


def _cut_short(path: Path) -> bool:
    """Whether the file ends before its format's end: a PNG without its closing ``IEND`` chunk, a
    WebP shorter than its RIFF header says."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
            fh.seek(0, 2)
            size = fh.tell()
            if head[:4] == b"RIFF":
                return int.from_bytes(head[4:8], "little") + 8 > size
            fh.seek(max(0, size - 12))
            return fh.read()[4:8] != b"IEND"
    except OSError:
        return True


def _whole_webp(path: Path) -> np.ndarray | None:
    """A WebP file cut short as a whole one: its RIFF chunks up to the first cut one, with the
    RIFF size that says so (None for another format, or when not even one chunk is whole)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    end = 12
    while end + 8 <= len(data):
        size = int.from_bytes(data[end + 4 : end + 8], "little")
        after = end + 8 + size + (size & 1)  # chunks are padded to an even size
        if after > len(data):
            break
        end = after
    if end == 12:
        return None
    return np.frombuffer(b"RIFF" + (end - 8).to_bytes(4, "little") + data[8:end], np.uint8)


def _bgr(image: Any) -> np.ndarray:
    """An OpenCV frame (gray, BGR or BGRA; 8 or 16 bits) as ``(H, W, 3)`` uint8 BGR."""
    import cv2

    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(image)
