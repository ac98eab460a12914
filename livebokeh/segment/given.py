"""``--mask PATH``: render with masks made earlier instead of running a segmenter.

PATH is a grayscale image (used for every frame), a printf pattern of PNGs as written by
``--save-mask masks/%05d.png`` (frame ``i`` reads ``PATH % i``), or a mask video (frame ``i``
reads the video's frame ``i``). Values 0..255 map to alpha 0..1; masks of another size are scaled
to the frame. They are taken as the final alpha: no smoothing, remapping or feathering is added.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from livebokeh.closing import Closeable
from livebokeh.errors import SourceError
from livebokeh.sinks.files import is_pattern
from livebokeh.sources.base import is_image_path
from livebokeh.sources.image import read_image
from livebokeh.types import Frame, Mask, SegmenterTraits


log = logging.getLogger(__name__)


def _read_gray(path: Path) -> np.ndarray:
    return read_image(path, gray=True, what="mask")


class GivenMasks(Closeable):
    """Masks made earlier, by frame: ``segment_frame(frame) -> Mask`` from files (what the
    pipeline asks of a segmenter; there is no picture-only ``segment``: a mask belongs to a frame)."""

    #: Given masks are final alphas, read by frame index (no memory of their own).
    traits = SegmenterTraits(matte=True, roi_helps=False)

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._static: np.ndarray | None = None
        self._video: Any = None
        self._next_index = 0
        self._warned_size = False
        self._first = 0  # the number of frame 0's mask: 0, or 1 for tools that count from 1 (ffmpeg)
        if is_pattern(self.path):
            if not Path(self.path % 0).is_file() and Path(self.path % 1).is_file():
                self._first = 1
                log.info("--mask %s starts at %s: it is taken as frame 0's", self.path, self.path % 1)
            _read_gray(Path(self.path % self._first))  # fail early when the first one is missing
        elif is_image_path(self.path):
            self._static = _read_gray(Path(self.path))
        else:
            from livebokeh.errors import SourceError
            from livebokeh.sources.video import VideoFileSource

            self._video = VideoFileSource(self.path)
            try:
                self._video.open()
            except SourceError as err:  # (the video source calls its file "input": here it is the masks')
                raise SourceError(f"--mask: {str(err).removeprefix('input ')}") from None

    @property
    def count(self) -> int | None:
        """How many frames the masks cover (None: one image for every frame, or not known)."""
        if self._video is not None:
            return self._video.info.frame_count
        if self._static is not None:
            return None
        n = 0
        while Path(self.path % (n + self._first)).is_file():
            n += 1
        return n

    def check_frames(self, frames: int | None) -> None:
        """Warn once when the masks cover another number of frames than the input has."""
        count = self.count
        if frames and count is not None and count != frames:
            more = "the frames after them stop the run" if count < frames else "the extra masks are not used"
            log.warning("--mask %s holds %d masks for an input of %d frames: %s", self.path, count, frames, more)

    def segment_frame(self, frame: Frame) -> Mask:
        if self._static is not None:
            gray = self._static
        elif self._video is not None:
            gray = None
            while self._next_index <= frame.index:
                f = self._video.read()
                if f is None:
                    raise SourceError(f"mask video {self.path} has fewer frames than the input (it ends before frame "
                                      f"{frame.index + 1}, counted from 1): the frames before were kept")
                self._next_index += 1
                gray = f.image[:, :, 1]
            if gray is None:
                raise SourceError(f"mask video {self.path}: frame {frame.index + 1} was asked for twice")
        else:
            path = Path(self.path % (frame.index + self._first))
            if not path.is_file():
                raise SourceError(f"--mask {self.path} has no mask for frame {frame.index + 1} of the input ({path}); "
                                  "it ends before the input: the frames before were kept")
            gray = _read_gray(path)
        if gray.shape != (frame.height, frame.width):
            if not self._warned_size:
                self._warned_size = True
                log.warning("--mask %s: masks are %dx%d, the frames %dx%d; they are scaled to fit", self.path,
                            gray.shape[1], gray.shape[0], frame.width, frame.height)
            gray = cv2.resize(gray, (frame.width, frame.height), interpolation=cv2.INTER_LINEAR)
        return Mask.from_array(gray)

    def _release(self) -> None:
        if self._video is not None:
            self._video.close()
            self._video = None
