"""Mask refinement (pure functions) and temporal smoothing (:class:`MaskSmoother`)."""

from livebokeh.mask.refine import feather, frame_alpha, remap, upsample
from livebokeh.mask.smoother import MaskSmoother

__all__ = ["MaskSmoother", "feather", "frame_alpha", "remap", "upsample"]
