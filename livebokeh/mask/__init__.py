"""Mask refinement (pure functions), optical flow, and temporal smoothing (the only cross-frame state)."""

from livebokeh.mask.flow import FlowEstimator, small_gray, warp, warp_all
from livebokeh.mask.refine import (
    feather,
    guided_upsample,
    refine_alpha,
    remap,
    remove_islands,
    resolve_auto,
    upsample,
)
from livebokeh.mask.smoother import LookaheadSmoother, MaskSmoother

__all__ = [
    "FlowEstimator",
    "LookaheadSmoother",
    "MaskSmoother",
    "feather",
    "guided_upsample",
    "refine_alpha",
    "remap",
    "remove_islands",
    "resolve_auto",
    "small_gray",
    "upsample",
    "warp",
    "warp_all",
]
