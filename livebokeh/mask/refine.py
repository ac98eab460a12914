"""Pure functions from a model-resolution probability map to a frame-resolution alpha."""

from __future__ import annotations

import cv2
import numpy as np


def remap(prob: np.ndarray, low: float, high: float) -> np.ndarray:
    """Stretch probabilities so that ``<= low`` is 0 and ``>= high`` is 1, linear between.

    Args:
        prob: ``(H, W)`` float32 in ``[0, 1]``.
        low, high: ``0 <= low < high <= 1``.

    Returns:
        New ``(H, W)`` float32 array in ``[0, 1]``.
    """
    if not 0.0 <= low < high <= 1.0:
        raise ValueError(f"need 0 <= low < high <= 1, got low={low}, high={high}")
    scale = np.float32(1.0 / (high - low))
    out = (prob - np.float32(low)) * scale
    return np.clip(out, 0.0, 1.0, out=out)


def upsample(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize ``(h, w)`` float32 to ``size = (width, height)`` with bilinear interpolation (new array)."""
    width, height = size
    if mask.shape == (height, width):
        return mask.copy()
    return cv2.resize(mask, (width, height), interpolation=cv2.INTER_LINEAR)


def feather(alpha: np.ndarray, sigma: float) -> np.ndarray:
    """Soften edges with a Gaussian of ``sigma`` pixels (new ``(H, W)`` float32 array).

    For speed the blur runs at a reduced size when ``sigma`` is large.
    """
    if sigma <= 0.3:
        return alpha.copy()
    h, w = alpha.shape
    scale = min(1.0, 2.0 / sigma)
    if scale < 0.75:
        small = cv2.resize(alpha, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        small = cv2.GaussianBlur(small, (0, 0), sigma * scale)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return cv2.GaussianBlur(alpha, (0, 0), sigma)


def frame_alpha(prob: np.ndarray, size: tuple[int, int], low: float, high: float, feather_frac: float) -> np.ndarray:
    """Model-resolution probability -> frame-resolution alpha.

    Args:
        prob: ``(h, w)`` float32 person probability at model resolution.
        size: frame ``(width, height)``.
        low, high: see :func:`remap`.
        feather_frac: feather sigma as a fraction of the frame height.

    Returns:
        ``(height, width)`` float32 alpha in ``[0, 1]``.

    The probability is upsampled before it is remapped, so the edge stays where the model put
    the 0.5 crossing and is not stair-stepped by the low model resolution.
    """
    width, height = size
    alpha = remap(upsample(prob, size), low, high)
    return feather(alpha, feather_frac * height)
