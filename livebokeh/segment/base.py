"""The segmenter interface and its registry."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from types import TracebackType

import numpy as np

from livebokeh.registry import Registry
from livebokeh.types import Mask

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SegmenterOptions:
    """What every backend is built from.

    Attributes:
        model: backend-specific model variant (for MediaPipe: ``general`` or ``landscape``).
        threads: CPU threads the backend may use.
        size: input height for backends with a free input size (DeepLab); 0 = the backend's
            default (DeepLab: 257 on the CPU, 513 on a GPU).
        aspect: ``square`` input, or ``frame`` (the input keeps the frame's aspect ratio).
        runtime: ``auto``, ``tflite`` or ``keras`` (DeepLab).
        precision: ``auto`` (float32), ``float32`` or ``mixed`` (float16 compute, DeepLab keras).
        weights: weights file; empty = the cache, the environment variable or a download.
        frame_size: ``(width, height)`` of the frames to come, when known.
    """

    model: str = "general"
    threads: int = 2
    size: int = 0
    aspect: str = "square"
    runtime: str = "auto"
    precision: str = "auto"
    weights: str = ""
    frame_size: tuple[int, int] | None = None


class Segmenter(ABC):
    """Turns a picture into a person-probability mask at the model's resolution.

    A segmenter is stateless between calls: temporal smoothing lives in
    :class:`livebokeh.mask.MaskSmoother`. Use it as a context manager or call :meth:`close`
    (safe to call twice). Heavy libraries are imported when the segmenter is built, not when
    its module is imported.
    """

    def __init__(self, options: SegmenterOptions) -> None:
        self.options = options
        self._closed = False

    @property
    @abstractmethod
    def input_size(self) -> tuple[int, int]:
        """Model input as ``(width, height)``."""

    @abstractmethod
    def _segment(self, image: np.ndarray) -> np.ndarray:
        """Backend work: ``(H, W, 3)`` uint8 BGR -> ``(h, w)`` float32 person probability."""

    def segment(self, image: np.ndarray) -> Mask:
        """Segment one picture.

        Args:
            image: ``(H, W, 3)`` uint8 BGR, any size; it is not modified.

        Returns:
            :class:`Mask` at the model's resolution (``input_size``), float32 in ``[0, 1]``.
        """
        if self._closed:
            raise RuntimeError(f"{type(self).__name__} is closed")
        return Mask(self._segment(image))

    def _release(self) -> None:
        """Backend clean-up; called once."""

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._release()

    def __enter__(self) -> Segmenter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


SEGMENTERS: Registry[type[Segmenter]] = Registry("segmenter backend")


def create_segmenter(backend: str, options: SegmenterOptions) -> Segmenter:
    """Build the registered backend ``backend``."""
    cls = SEGMENTERS.get(backend)
    seg = cls(options)
    log.debug("segmenter: %s, input %dx%d", backend, *seg.input_size)
    return seg
