"""``--save-mask``: the final alpha of every frame as 8-bit grayscale."""

from __future__ import annotations

from pathlib import Path

from livebokeh.sinks.base import SINKS, Sink
from livebokeh.sinks.files import check_pattern, is_pattern, numbered
from livebokeh.sinks.image import check_image_path, write_image
from livebokeh.sinks.video import VideoWriter, live_capture
from livebokeh.types import Composite, StreamInfo


@SINKS.register("mask")
class MaskSink(Sink):
    """Writes alpha as 0..255 gray.

    - ``PATH`` with a printf pattern (``masks/%05d.png``): one PNG per frame, named by
      the number of its source frame counted from 1 (:func:`~livebokeh.sinks.files.numbered`).
    - a still input: one image.
    - a video input: a video with the same frame count (lossless FFV1 for ``.mkv``).
    """

    name = "mask"

    def __init__(self, path: str | Path, info: StreamInfo, overwrite: bool = True) -> None:
        self.path = Path(path)
        self._live = info.live
        self.overwrite = overwrite
        self.frames = 0
        self._writer: VideoWriter | None = None
        self._pattern = is_pattern(path)
        if self._pattern:
            check_pattern("--save-mask", path)
            check_image_path(str(path) % 0)
        elif info.still:
            check_image_path(path)
        else:
            self._writer = VideoWriter(path, info.width, info.height, info.fps, kind="gray", overwrite=overwrite)

    def write(self, item: Composite) -> None:
        gray = item.alpha.to_uint8()
        if self._writer is not None:
            self._writer.write(gray, item.frame.time_s, live_capture(item, self._live))
        elif self._pattern:
            write_image(numbered(self.path, item.frame.index), gray)
        else:
            write_image(self.path, gray, self.overwrite)
        self.frames += 1

    def _release(self) -> None:
        if self._writer is not None:
            self._writer.close(self.complete)
