"""Cutting a crop out of a picture and scaling it to the output: pure functions.

The renderer works on the whole-pixel box around the crop, at the picture's own resolution
(at 2x zoom a quarter of the pixels), and the result is resampled once to the output size with
the crop's exact, sub-pixel position, so a slow pan moves smoothly instead of a pixel at a time.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from livebokeh.framing.operator import Crop

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels, x1 and y1 excluded


def crop_rect(crop: Crop, size: tuple[int, int]) -> tuple[float, float, float, float]:
    """The crop in picture pixels: ``(left, top, width, height)``, for a picture of ``size = (w, h)``."""
    w, h = size
    return (crop.cx - crop.h / 2) * w, (crop.cy - crop.h / 2) * h, crop.h * w, crop.h * h


def crop_box(crop: Crop, size: tuple[int, int]) -> Box:
    """The whole-pixel box that holds the crop (and the pixels its resampling reads), inside the picture."""
    w, h = size
    left, top, cw, ch = crop_rect(crop, size)
    return (max(0, math.floor(left) - 1), max(0, math.floor(top) - 1),
            min(w, math.ceil(left + cw) + 1), min(h, math.ceil(top + ch) + 1))


def resample(src: np.ndarray, src_box: tuple[float, float, float, float], rect: tuple[float, float, float, float],
             size: tuple[int, int], interpolation: int = cv2.INTER_CUBIC) -> np.ndarray:
    """The part ``rect`` of the picture, scaled to ``size = (w, h)``, from ``src``, which shows the
    picture's region ``src_box`` (both ``(left, top, width, height)`` in picture pixels) at its own
    resolution. Returns a new array of ``src``'s dtype and channels."""
    sh, sw = src.shape[:2]
    bx, by, bw, bh = src_box
    left, top, cw, ch = rect
    dw, dh = size
    sx, sy = sw / bw, sh / bh  # src pixels per picture pixel
    # destination pixel centre u -> picture x = left + (u + 0.5) * cw / dw -> src x (centres at +0.5)
    m = np.array([[sx * cw / dw, 0.0, (left - bx + 0.5 * cw / dw) * sx - 0.5],
                  [0.0, sy * ch / dh, (top - by + 0.5 * ch / dh) * sy - 0.5]])
    return cv2.warpAffine(src, m, (dw, dh), flags=interpolation | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)
