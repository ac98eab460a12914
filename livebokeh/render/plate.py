"""The background plate the aperture blurs: the picture reduced, in linear light, with the person
replaced by the background around them (pure functions shared by the uniform blur of
:mod:`livebokeh.render.bokeh` and the depth-aware one of :mod:`livebokeh.render.defocus`)."""

from __future__ import annotations

import math

import cv2
import numpy as np

from livebokeh.config import RenderConfig
from livebokeh.render.fill import push_pull
from livebokeh.render.lens import from_linear, to_linear

#: Largest aperture radius, in pixels of the reduced copy (an 11x11 kernel).
MAX_SMALL_RADIUS = 5.0


def background_weight(alpha: np.ndarray) -> np.ndarray:
    """Weight of each pixel as background: 1 outside the person, 0 from alpha 0.5 inwards.

    Args:
        alpha: ``(H, W)`` float32 in ``[0, 1]``.

    Returns:
        New ``(H, W)`` float32 in ``[0, 1]``.
    """
    w = np.float32(1.0) - np.float32(2.0) * alpha
    return np.clip(w, 0.0, 1.0, out=w)


def reduction(radius: float, width: int, height: int) -> int:
    """Reduction factor for an aperture of ``radius``: at least ``radius / MAX_SMALL_RADIUS``, and
    preferably one that divides the frame's sides, for OpenCV's integer area path (1920x1080 with
    a 32 px aperture: 8 instead of 7, 0.8 ms instead of 6.2 ms)."""
    k = max(1, math.ceil(radius / MAX_SMALL_RADIUS - 1e-6))
    for j in range(k, k + k // 2 + 1):
        if width % j == 0 and height % j == 0:
            return j
    return k


def shrink(image: np.ndarray, k: int) -> np.ndarray:
    """``image`` (any channels) area-reduced ``k`` times (itself when ``k`` is 1)."""
    if k == 1:
        return image
    h, w = image.shape[:2]
    return cv2.resize(image, (max(1, round(w / k)), max(1, round(h / k))), interpolation=cv2.INTER_AREA)


def background_plate(image: np.ndarray, alpha: np.ndarray, k: int, cfg: RenderConfig) -> np.ndarray:
    """The picture reduced ``k`` times, in linear light when ``cfg.linear``, with the person
    replaced by the background around them (push-pull): what the aperture blurs.

    Args:
        image: ``(H, W, 3)`` uint8.
        alpha: ``(h, w)`` float32 person alpha in ``[0, 1]``, at the image's size or smaller.
        k: the reduction factor (:func:`reduction`).
        cfg: linear light and highlight settings.

    Returns:
        New ``(round(H / k), round(W / k), 3)`` float32 (linear light, or the encoded values in
        ``[0, 1]``), without any person colour in it.
    """
    if cfg.linear:  # linear light before averaging: a small bright light keeps its energy
        small = shrink(to_linear(image, cfg.highlights), k)
    else:  # averaging commutes with the scaling: shrink the 8-bit frame (OpenCV's fast path) first
        small = shrink(image, k).astype(np.float32) * np.float32(1 / 255)
    sh, sw = small.shape[:2]
    weight = resized_weight(alpha, (sw, sh))
    # push-pull: every pixel's background estimate from the background around it
    coarse = push_pull(cv2.pyrDown(small * weight[:, :, None]), cv2.pyrDown(weight))
    coarse = cv2.resize(coarse, (sw, sh), interpolation=cv2.INTER_LINEAR)
    return coarse + (small - coarse) * weight[:, :, None]


def resized_weight(alpha: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """:func:`background_weight` of ``alpha`` brought to ``size = (w, h)``: new ``(h, w)`` float32."""
    sw, sh = size
    ah, aw = alpha.shape
    if (ah, aw) == (sh, sw):
        return background_weight(alpha)
    # area averaging where OpenCV has its fast integer path, bilinear otherwise (8x cheaper)
    whole = aw % sw == 0 and ah % sh == 0
    return background_weight(cv2.resize(alpha, (sw, sh), interpolation=cv2.INTER_AREA if whole else cv2.INTER_LINEAR))


def plate_to_frame(plate: np.ndarray, size: tuple[int, int], cfg: RenderConfig) -> np.ndarray:
    """A blurred plate from :func:`background_plate` back to 8 bits at the frame's ``size = (W, H)``:
    new ``(H, W, 3)`` uint8."""
    out = from_linear(plate) if cfg.linear else cv2.convertScaleAbs(plate, alpha=255.0)
    if out.shape[1] != size[0] or out.shape[0] != size[1]:
        out = cv2.resize(out, size, interpolation=cv2.INTER_LINEAR)
    return out
