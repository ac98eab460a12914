"""The mask metrics of ``../shared/data/README.md`` (pure functions)."""

from __future__ import annotations

import cv2
import numpy as np


def iou(pred: np.ndarray, ref: np.ndarray) -> float:
    """IoU of two boolean masks (1.0 when both are empty)."""
    a, b = pred.astype(bool), ref.astype(bool)
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def _inner_band(mask: np.ndarray, d: float) -> np.ndarray:
    m = mask.astype(np.uint8)
    dist = cv2.distanceTransform(m, cv2.DIST_L2, 3)
    return (m > 0) & (dist <= d)


def boundary_iou(pred: np.ndarray, ref: np.ndarray, band: float = 0.02) -> float:
    """Boundary IoU (Cheng et al., 2021): IoU of the masks' inner bands, ``band`` x the image diagonal wide."""
    h, w = ref.shape
    d = max(1.0, band * float(np.hypot(h, w)))
    return iou(_inner_band(pred, d), _inner_band(ref, d))


def flicker_still(masks: list[np.ndarray], lumas: list[np.ndarray], still_levels: int = 2) -> float:
    """Per mille mean ``|m_t - m_(t-1)|`` over pixels whose luminance changed by less than ``still_levels``.

    Args:
        masks: float masks in ``[0, 1]``, one per frame.
        lumas: uint8 luminance of the same frames.
    """
    vals = []
    for t in range(1, len(masks)):
        still = cv2.absdiff(lumas[t], lumas[t - 1]) < still_levels
        if still.any():
            vals.append(float(np.abs(masks[t] - masks[t - 1])[still].mean()))
    return 1000.0 * float(np.mean(vals)) if vals else 0.0


def flicker_vs_reference(masks: list[np.ndarray], refs: list[np.ndarray]) -> float:
    """Per mille mean ``|(m_t - m_(t-1)) - (g_t - g_(t-1))|``: mask change the reference does not explain."""
    vals = [float(np.abs((masks[t] - masks[t - 1]) - (refs[t] - refs[t - 1])).mean()) for t in range(1, len(masks))]
    return 1000.0 * float(np.mean(vals)) if vals else 0.0


def chroma_key(image: np.ndarray) -> np.ndarray:
    """Person mask (float 0/1) of a green-screen frame: background is hue 40-90, saturation > 60, value > 40."""
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
    h, s, v = cv2.split(hsv)
    background = (h >= 40) & (h <= 90) & (s > 60) & (v > 40)
    return (~background).astype(np.float32)


def picture_area(frames: list[np.ndarray], level: int = 24) -> tuple[slice, slice]:
    """Rows and columns of a clip's picture, without the black bars of a letterbox: the bounding
    box of the pixels brighter than ``level`` in any frame. (``d0_greenscreen.mp4`` has 27 black
    rows at the bottom, which the chroma key, blind to black, would count as person.)"""
    brightest = np.max([f.max(axis=2) for f in frames], axis=0)
    rows, cols = np.flatnonzero(brightest.max(axis=1) > level), np.flatnonzero(brightest.max(axis=0) > level)
    if rows.size == 0:
        return slice(None), slice(None)
    return slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)
