"""Video files through PyAV: H.264 in MP4 by default, FFV1 for lossless masks."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from livebokeh.errors import SinkError
from livebokeh.sinks.base import SINKS, Sink, check_output_path
from livebokeh.types import Composite, StreamInfo

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Codec:
    """An encoder and its pixel format (for even frame sizes; odd sizes use ``odd_pix_fmt``)."""

    name: str
    pix_fmt: str
    odd_pix_fmt: str
    options: tuple[tuple[str, str], ...] = ()


_H264 = Codec("libx264", "yuv420p", "yuv444p", (("crf", "18"), ("preset", "veryfast")))
_VP9 = Codec("libvpx-vp9", "yuv420p", "yuv444p", (("crf", "30"), ("b", "0"), ("deadline", "realtime"), ("cpu-used", "8")))
_MJPEG = Codec("mjpeg", "yuvj420p", "yuvj444p", (("q", "3"),))
_FFV1_GRAY = Codec("ffv1", "gray", "gray")

#: Container (by file ending) -> codec for colour video.
COLOR_CODECS: dict[str, Codec] = {
    ".mp4": _H264,
    ".m4v": _H264,
    ".mov": _H264,
    ".mkv": _H264,
    ".webm": _VP9,
    ".avi": _MJPEG,
}
#: Container -> codec for 8-bit masks (lossless where the container allows it).
MASK_CODECS: dict[str, Codec] = {**COLOR_CODECS, ".mkv": _FFV1_GRAY, ".avi": Codec("ffv1", "gray", "gray")}

_FASTSTART = frozenset({".mp4", ".m4v", ".mov"})


class VideoWriter:
    """Writes ``(H, W, 3)`` BGR or ``(H, W)`` gray uint8 frames, one per call, at a fixed rate.

    Frame ``i`` gets presentation time ``i / fps``, so the output has exactly as many frames as
    were written, at the input's rate. :meth:`close` flushes the encoder and finalises the file.
    """

    def __init__(self, path: str | Path, width: int, height: int, fps: Fraction, gray: bool = False) -> None:
        import av

        self.path = check_output_path(path)
        table = MASK_CODECS if gray else COLOR_CODECS
        suffix = self.path.suffix.lower()
        if suffix not in table:
            raise SinkError(
                f"cannot write video {self.path.name}: unknown container {suffix or '(none)'}; "
                f"use one of {', '.join(table)}"
            )
        codec = table[suffix]
        odd = width % 2 or height % 2
        pix_fmt = codec.odd_pix_fmt if odd else codec.pix_fmt
        options = dict(codec.options)
        container_options = {"movflags": "+faststart"} if suffix in _FASTSTART else {}
        try:
            self._container = av.open(str(self.path), mode="w", options=container_options)
            stream = self._container.add_stream(codec.name, rate=fps, options=options)
            stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
            stream.codec_context.time_base = Fraction(1) / Fraction(fps)
        except (av.FFmpegError, OSError, ValueError) as err:
            raise SinkError(f"cannot write {self.path}: {err}") from None
        self._stream: Any = stream
        self._format = "gray" if gray else "bgr24"
        self._size = (width, height)
        self.frames = 0
        self._closed = False
        log.info("writing %s: %dx%d @ %.4g fps, %s %s", self.path, width, height, float(fps), codec.name, pix_fmt)

    def write(self, image: np.ndarray) -> None:
        import av

        h, w = image.shape[:2]
        if (w, h) != self._size:
            raise SinkError(f"{self.path.name}: frame {w}x{h} differs from the video's {self._size[0]}x{self._size[1]}")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format=self._format)
        frame.pts = self.frames
        frame.time_base = self._stream.codec_context.time_base
        try:
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        except (av.FFmpegError, OSError) as err:
            raise SinkError(f"writing {self.path} failed: {err}; is the disk full?") from None
        self.frames += 1

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        import av

        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
        except (av.FFmpegError, OSError) as err:
            log.error("finishing %s failed: %s", self.path, err)
        finally:
            self._container.close()
        log.info("wrote %d frames to %s", self.frames, self.path)


@SINKS.register("video")
class VideoFileSink(Sink):
    """The rendered frames as a video file (H.264 MP4 by default; the container follows the file ending)."""

    name = "video"

    def __init__(self, path: str | Path, info: StreamInfo) -> None:
        self._writer = VideoWriter(path, info.width, info.height, info.fps)

    @property
    def frames(self) -> int:
        return self._writer.frames

    def write(self, item: Composite) -> None:
        self._writer.write(item.image)

    def _release(self) -> None:
        self._writer.close()
