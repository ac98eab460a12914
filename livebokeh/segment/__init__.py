"""Person segmentation backends, behind one registry (:data:`SEGMENTERS`).

Every backend is built from :class:`SegmenterOptions` (how it shares the machine, which passes
run) with its own options inside (``own``): :class:`MediaPipeOptions`, :class:`DeepLabOptions`,
:class:`RVMOptions`; :meth:`SegmenterOptions.from_config` picks the chosen backend's.
"""

from livebokeh.segment.base import SEGMENTERS, Segmenter, SegmenterOptions, create_segmenter

# importing a backend registers it; this order is the order every list of backends shows
from livebokeh.segment.selfie import MediaPipeOptions  # noqa: I001
from livebokeh.segment.deeplab import DeepLabOptions
from livebokeh.segment.rvm import RVMOptions

__all__ = ["SEGMENTERS", "DeepLabOptions", "MediaPipeOptions", "RVMOptions", "Segmenter", "SegmenterOptions",
           "create_segmenter"]
