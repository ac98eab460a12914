"""Depth: a monocular depth model beside the person matte, for a blur that grows with distance.

- :mod:`livebokeh.depth.estimator`: the network (TCMonoDepth small, ONNX), :class:`DepthOptions`,
  :class:`DepthEstimator`.
- :mod:`livebokeh.depth.normalise`: pure functions from its relative inverse depth to a map with
  the far end at 0 and the focus plane (the person) at 1.
- :mod:`livebokeh.depth.tracker`: :class:`DepthTracker`, the map of every frame of a stream,
  normalised with a slowly changing scale and moved by optical flow between model runs.

The blur itself is :func:`livebokeh.render.defocus_background`.
"""

from livebokeh.depth.estimator import MODEL, DepthEstimator, DepthOptions, map_size
from livebokeh.depth.normalise import (
    background_depth,
    far_depth,
    fit_affine,
    focus_depth,
    normalised,
    trusted_background,
)
from livebokeh.depth.tracker import LIVE_RATE, DepthTracker

__all__ = [
    "LIVE_RATE",
    "MODEL",
    "DepthEstimator",
    "DepthOptions",
    "DepthTracker",
    "background_depth",
    "far_depth",
    "fit_affine",
    "focus_depth",
    "map_size",
    "normalised",
    "trusted_background",
]
