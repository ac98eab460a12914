"""Video files, decoded with PyAV (FFmpeg)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

from livebokeh.errors import SourceError
from livebokeh.sources.base import SOURCES, Source
from livebokeh.types import Frame, StreamInfo

log = logging.getLogger(__name__)


@SOURCES.register("video")
class VideoFileSource(Source):
    """Every frame of a video file, in order.

    Args:
        path: the file.
        pace: deliver frames at the file's frame rate, like a camera (for playback into a
            virtual camera); the stream is then live. Without it frames come as fast as they
            are asked for and none is ever dropped.
        clock_ns: monotonic clock, injectable for tests.
    """

    def __init__(self, path: str | Path, pace: bool = False, clock_ns: Any = time.monotonic_ns) -> None:
        self.path = Path(path)
        self.pace = pace
        self._clock_ns = clock_ns
        self._container: Any = None
        self._frames: Iterator[Any] | None = None
        self._peeked: tuple[Any, float | None] | None = None
        self._index = 0
        self._t0 = 0
        self._start = 0.0
        self._decoded = 0
        self._last_time: float | None = None

    def _open(self) -> StreamInfo:
        import av

        if not self.path.is_file():
            raise SourceError(f"input {self.path} does not exist; check the path")
        if self.path.stat().st_size == 0:
            raise SourceError(f"input {self.path} is empty (0 bytes); pass a video file")
        try:
            container = av.open(str(self.path), mode="r")
        except (av.FFmpegError, OSError, ValueError) as err:
            raise SourceError(f"cannot read {self.path} as a video ({_reason(err)}); is it a video file?") from None
        if not container.streams.video:
            container.close()
            raise SourceError(f"{self.path} has no video stream; pass a video or image file")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        fps = stream.average_rate or stream.guessed_rate or Fraction(30)
        width, height = stream.codec_context.width, stream.codec_context.height
        if not width or not height:
            container.close()
            raise SourceError(f"{self.path}: the video stream has no picture size; the file may be corrupt")
        self._container = container
        self._frames = container.decode(stream)
        self._index = 0
        self._decoded = 0
        self._last_time = None
        self._start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        # Peek at the first frame: phone clips carry a rotation that changes the picture's shape.
        self._peeked = self._decode_next()
        if self._peeked is not None:
            height, width = self._peeked[0].shape[:2]
        self._t0 = self._clock_ns()
        count = stream.frames or None
        return StreamInfo(
            name=self.path.name,
            width=int(width),
            height=int(height),
            fps=Fraction(fps),
            live=self.pace,
            frame_count=count,
        )

    def _decode_next(self) -> tuple[Any, float | None] | None:
        """Next decoded picture, upright, with its time in seconds; None at the end."""
        import av

        try:
            vf = next(self._frames)
        except StopIteration:
            self._check_complete()
            return None
        except av.FFmpegError as err:
            if self._index == 0:
                raise SourceError(f"cannot decode {self.path} ({_reason(err)}); the file may be corrupt") from None
            raise SourceError(
                f"{self.path} is corrupt after frame {self._index} ({_reason(err)}); the frames before were kept"
            ) from None
        image = upright(to_bgr(vf), getattr(vf, "rotation", 0) or 0)
        t = None if vf.time is None else max(0.0, float(vf.time) - self._start)
        self._decoded += 1
        if t is not None:
            self._last_time = t
        return image, t

    def _check_complete(self) -> None:
        """At the end: did the file hold as many frames (or as much time) as its header says?"""
        expected = self._info.frame_count if self._info is not None else None
        fps = float(self._info.fps) if self._info is not None and self._info.fps else 30.0
        duration = self._container.duration / 1e6 if self._container is not None and self._container.duration else None
        short = (expected and self._decoded < expected - 1) or (
            duration is not None and self._last_time is not None and self._last_time + 3 / fps < duration
        )
        if short:
            raise SourceError(
                f"{self.path} ends after {self._decoded} frames, before its header says it should: the file is "
                "truncated; the frames before were kept"
            )

    def read(self) -> Frame | None:
        if self._frames is None:
            return None
        if self._peeked is not None:
            decoded, self._peeked = self._peeked, None
        else:
            decoded = self._decode_next()
        if decoded is None:
            return None
        image, time_s = decoded
        if self.pace:
            due = self._t0 + int(self._index * 1e9 / float(self.info.fps))
            wait = due - self._clock_ns()
            if wait > 0:
                time.sleep(wait / 1e9)
        frame = Frame(image, self._index, self._clock_ns(), time_s)
        self._index += 1
        return frame

    def _release(self) -> None:
        if self._container is not None:
            self._container.close()
        self._container = None
        self._frames = None
        self._peeked = None


#: FFmpeg colour spaces that swscale converts with BT.601's matrix, as OpenCV's ``YUV2BGR_I420``
#: does: 2 unspecified (swscale's default), 5 BT470BG, 6 SMPTE170M.
_BT601 = frozenset({2, 5, 6})
#: FFmpeg's ``AVCOL_RANGE_JPEG``: full-range levels, which OpenCV's conversion does not expect.
_FULL_RANGE = 2


def to_bgr(frame: Any) -> Any:
    """A decoded PyAV video frame as a new ``(H, W, 3)`` uint8 BGR array.

    8-bit 4:2:0 BT.601 video-range pictures (H.264 and VP9 files' usual format) go through
    OpenCV's vectorised conversion, within 3 levels of swscale (rounding): reading a 1280x720
    H.264 file took 2.96 ms of CPU a frame this way against 3.85 ms (about the same at 1080p). Everything else (BT.709 or full-range levels, other pixel
    formats, odd sizes) goes through swscale, which honours the frame's colour tags.
    """
    import cv2

    if (
        frame.format.name == "yuv420p"
        and frame.colorspace in _BT601
        and frame.color_range != _FULL_RANGE
        and frame.width % 2 == 0
        and frame.height % 2 == 0
    ):
        return cv2.cvtColor(frame.to_ndarray(), cv2.COLOR_YUV2BGR_I420)
    return frame.to_ndarray(format="bgr24")


def upright(image: Any, rotation: float) -> Any:
    """Apply a display-matrix rotation (degrees counter-clockwise, as FFmpeg reports it) to a picture."""
    import cv2

    turn = round(-rotation / 90) % 4  # FFmpeg's autorotate: theta = -rotation
    if turn == 1:
        return cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE)
    if turn == 2:
        return cv2.rotate(image, cv2.ROTATE_180)
    if turn == 3:
        return cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return image


def _reason(err: BaseException) -> str:
    text = getattr(err, "strerror", None) or str(err)
    return text.splitlines()[0] if text else type(err).__name__
