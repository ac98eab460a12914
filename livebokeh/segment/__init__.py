"""Person segmentation backends, behind one registry (:data:`SEGMENTERS`)."""

from livebokeh.segment.base import SEGMENTERS, Segmenter, SegmenterOptions, create_segmenter
from livebokeh.segment import selfie as _selfie  # noqa: F401  (registers "mediapipe")
from livebokeh.segment import deeplab as _deeplab  # noqa: F401  (registers "deeplab")
from livebokeh.segment import rvm as _rvm  # noqa: F401  (registers "rvm")

__all__ = ["SEGMENTERS", "Segmenter", "SegmenterOptions", "create_segmenter"]
