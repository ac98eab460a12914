"""``--save-mask``: the final alpha of every frame as 8-bit grayscale."""

from __future__ import annotations

from pathlib import Path

from livebokeh.sinks.base import SINKS, Sink
from livebokeh.sinks.files import is_pattern
from livebokeh.sinks.image import ImageSequence, check_image_path, write_image
from livebokeh.sinks.video import VideoWriter, live_capture
from livebokeh.types import Composite, StreamInfo


@SINKS.register("mask")
class MaskSink(Sink):
    """Writes alpha as 0..255 gray.

    - ``PATH`` with a printf pattern (``masks/%05d.png``): one PNG per frame, named by
      the number of its source frame counted from 1 (:func:`~livebokeh.sinks.files.numbered`;
      :class:`~livebokeh.sinks.image.ImageSequence`: claimed for the run).
    - a still input: one image.
    - a video input: a video with the same frame count (lossless FFV1 for ``.mkv``).
    """

    name = "mask"

    def __init__(self, path: str | Path, info: StreamInfo, overwrite: bool = False) -> None:
        self.path = Path(path)
        self._live = info.live
        self.overwrite = overwrite
        self.frames = 0
        self._writer: VideoWriter | None = None
        self._sequence: ImageSequence | None = None
        if is_pattern(path):
            self._sequence = ImageSequence("--save-mask", path, overwrite)
        elif info.still:
            check_image_path(path, "--save-mask")
        else:
            self._writer = VideoWriter(path, info.width, info.height, info.fps, kind="gray", overwrite=overwrite,
                                       steady_fps=info.steady_fps)

    def write(self, item: Composite) -> None:
        gray = item.alpha.to_uint8()
        if self._writer is not None:
            self._writer.write(gray, item.frame.time_s, live_capture(item, self._live))
        elif self._sequence is not None:
            self._sequence.write(item.frame.index, gray)
        else:
            write_image(self.path, gray, self.overwrite)
        self.frames += 1

    def _release(self) -> None:
        try:
            if self._writer is not None:
                self._writer.close(self.complete)
        finally:
            if self._sequence is not None:
                if self.complete:
                    self._sequence.mark_complete()
                self._sequence.close()
