"""Lens-like blur: aperture kernels and linear-light conversion (pure functions).

A real lens spreads each out-of-focus point into a disc of light (the shape of its aperture),
adding light linearly: small bright lights become visible discs ("bokeh"), not the grey smudge
of a Gaussian on gamma-encoded pixels. Here the blur is a disc (or a polygon with ``blades``
sides) on linear-light values, with an optional boost of highlights that the 8-bit frame clipped.
"""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np

GAMMA = 2.2

#: uint8 sRGB-ish value -> linear light in [0, 1] (a 2.2 power curve).
TO_LINEAR = ((np.arange(256, dtype=np.float64) / 255.0) ** GAMMA).astype(np.float32)


@functools.lru_cache(maxsize=32)
def aperture_kernel(radius: float, shape: str = "disc", blades: int = 6, rotation_deg: float = 15.0) -> np.ndarray:
    """Normalised ``(2n+1, 2n+1)`` float32 kernel with ``n = ceil(radius)``: a disc or a polygon.

    The edge is anti-aliased (8x supersampling), so non-integer radii are honoured.

    Args:
        radius: aperture radius in pixels (> 0).
        shape: ``disc``, ``polygon`` (``blades`` sides) or ``gaussian`` (sigma = radius / 2).
    """
    if radius <= 0:
        raise ValueError(f"radius must be positive, got {radius}")
    n = max(1, math.ceil(radius))
    size = 2 * n + 1
    if shape == "gaussian":
        g = cv2.getGaussianKernel(size, radius / 2.0).astype(np.float32)
        k = g @ g.T
        return (k / k.sum()).astype(np.float32)
    ss = 8
    big = np.zeros((size * ss, size * ss), np.uint8)
    c = (size * ss - 1) / 2.0
    r = radius * ss
    if shape == "disc":
        cv2.circle(big, (round(c), round(c)), round(r), 255, -1, lineType=cv2.LINE_8)
    elif shape == "polygon":
        if blades < 3:
            raise ValueError(f"a polygon needs at least 3 blades, got {blades}")
        angles = np.deg2rad(rotation_deg) + np.arange(blades) * 2 * np.pi / blades
        pts = np.stack([c + r * np.cos(angles), c + r * np.sin(angles)], axis=1).round().astype(np.int32)
        cv2.fillPoly(big, [pts], 255)
    else:
        raise ValueError(f"unknown aperture shape {shape!r}")
    k = cv2.resize(big.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA)
    return (k / k.sum()).astype(np.float32)


@functools.lru_cache(maxsize=16)
def linear_lut(highlights: float = 0.0, threshold: float = 0.8) -> np.ndarray:
    """uint8 value -> linear light, with values at or above ``threshold`` (linear) boosted.

    The boost brightens what the camera clipped (a lamp, a window, a reflection) by up to
    ``1 + highlights`` (smoothly, squared ramp) so that it blooms into a bokeh disc. It is
    applied per channel, folded into the table, so it costs nothing at run time.
    """
    lin = TO_LINEAR.astype(np.float64)
    ramp = np.clip((lin - threshold) / (1.0 - threshold), 0.0, 1.0)
    return (lin * (1.0 + highlights * ramp * ramp)).astype(np.float32)


def to_linear(image: np.ndarray, highlights: float = 0.0) -> np.ndarray:
    """``(H, W, 3)`` uint8 -> new float32 linear light (``[0, 1]``, more for boosted highlights)."""
    return cv2.LUT(image, linear_lut(float(highlights)))


def from_linear(linear: np.ndarray) -> np.ndarray:
    """float32 linear light (any shape; values above 1 clip) -> new uint8."""
    x = np.clip(linear, 0.0, 1.0)
    x = cv2.pow(x, 1.0 / GAMMA)
    return cv2.convertScaleAbs(x, alpha=255.0)
