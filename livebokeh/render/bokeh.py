"""Halo-free, lens-like background blur and background replacement (pure functions).

The naive method blurs the whole frame and pastes the person back, so the person's colours are
smeared into the background around them (a halo), and a Gaussian on gamma-encoded pixels looks
like frosted glass. Here:

1. Only background pixels are blurred. Person pixels (weighted by ``1 - w``, ``w`` the background
   weight) are first replaced by the background around them, filled in push-pull fashion from a
   pyramid of the background alone (``image * w`` over ``w``, the normalised-convolution pair), so
   the nearest visible background stands in for what the person hides; then the aperture blur
   runs on that plate. No person colour enters the blurred background. Filling before blurring
   (rather than dividing two blurred images) keeps the band next to the person closest to the
   background behind it: ``livebokeh bench render`` measured the halo error 24% lower.
2. The blur is an aperture (disc or polygon) on linear light, with clipped highlights boosted, so
   small lights become bokeh discs.
3. It runs on a copy reduced by an integer factor so that the aperture there is at most
   ``MAX_SMALL_RADIUS`` pixels (a direct 11x11 convolution), whatever the frame size: a 720p or
   1080p frame costs a few milliseconds.
4. Light wrap lets a little of the background's light spill over the person's edge.

Everything is composited with the soft alpha in one ``cv2.blendLinear``.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from livebokeh.config import RenderConfig
from livebokeh.render.lens import aperture_kernel, from_linear, to_linear

#: Largest aperture radius, in pixels of the reduced copy (an 11x11 kernel).
MAX_SMALL_RADIUS = 5.0
_EPS = np.float32(1e-4)
#: Background weight under which the plate is filled from coarser levels.
_FILL_BELOW = 0.05


def blur_radius(cfg: RenderConfig, height: int) -> float:
    """Aperture radius in pixels for a frame ``height`` high (``fstop`` wins over ``blur`` when set)."""
    fraction = cfg.blur if cfg.fstop <= 0 else 0.06 / cfg.fstop
    return fraction * height


def background_weight(alpha: np.ndarray) -> np.ndarray:
    """Weight of each pixel as background: 1 outside the person, 0 from alpha 0.5 inwards.

    Args:
        alpha: ``(H, W)`` float32 in ``[0, 1]``.

    Returns:
        New ``(H, W)`` float32 in ``[0, 1]``.
    """
    w = np.float32(1.0) - np.float32(2.0) * alpha
    return np.clip(w, 0.0, 1.0, out=w)


def _fill(num: np.ndarray, den: np.ndarray, depth: int = 10) -> np.ndarray:
    """``num / den`` where enough background weight is present, else filled from coarser levels.

    Push-pull filling: where there is no background (inside the person) the value comes from a
    coarser pyramid level, i.e. from the nearest background around.

    Args:
        num: ``(h, w, 3)`` float32, ``image * weight`` (possibly pooled).
        den: ``(h, w)`` float32, ``weight`` pooled the same way.
    """
    ratio = num / np.maximum(den, _EPS)[:, :, None]
    h, w = den.shape
    if depth == 0 or min(h, w) < 4 or float(den.min()) >= _FILL_BELOW:
        return ratio
    coarse = _fill(cv2.pyrDown(num), cv2.pyrDown(den), depth - 1)
    coarse = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR)
    keep = np.minimum(den * np.float32(1.0 / _FILL_BELOW), np.float32(1.0))[:, :, None]
    return coarse + (ratio - coarse) * keep


def _factor(radius: float) -> int:
    return max(1, math.ceil(radius / MAX_SMALL_RADIUS - 1e-6))


def _shrink(image: np.ndarray, k: int) -> np.ndarray:
    if k == 1:
        return image
    h, w = image.shape[:2]
    return cv2.resize(image, (max(1, round(w / k)), max(1, round(h / k))), interpolation=cv2.INTER_AREA)


def blur_background(image: np.ndarray, alpha: np.ndarray, radius: float, cfg: RenderConfig | None = None) -> np.ndarray:
    """The blurred background plate of ``image``, without any person pixel in it.

    Args:
        image: ``(H, W, 3)`` uint8.
        alpha: ``(H, W)`` float32 person alpha in ``[0, 1]``.
        radius: aperture radius in pixels of ``image``.
        cfg: aperture shape, linear light and highlight settings (defaults when None).

    Returns:
        New ``(H, W, 3)`` uint8. Inside the person it holds the surrounding background colours
        (filled in), never the person's.
    """
    cfg = cfg or RenderConfig()
    h, w = alpha.shape
    k = _factor(radius)
    linear = to_linear(image, cfg.highlights) if cfg.linear else image.astype(np.float32) * np.float32(1 / 255)
    small = _shrink(linear, k)
    weight = background_weight(_shrink(alpha, k))
    sh, sw = weight.shape
    # push-pull: every pixel's background estimate from the background around it
    coarse = _fill(cv2.pyrDown(small * weight[:, :, None]), cv2.pyrDown(weight))
    coarse = cv2.resize(coarse, (sw, sh), interpolation=cv2.INTER_LINEAR)
    filled = coarse + (small - coarse) * weight[:, :, None]
    kernel = aperture_kernel(round(radius / k, 2), cfg.aperture, cfg.blades)
    plate = cv2.filter2D(filled, -1, kernel, borderType=cv2.BORDER_REFLECT)
    out = from_linear(plate) if cfg.linear else cv2.convertScaleAbs(plate, alpha=255.0)
    if k > 1:
        out = cv2.resize(out, (w, h), interpolation=cv2.INTER_LINEAR)
    return out


def light_wrap(alpha: np.ndarray, strength: float, size: float) -> np.ndarray:
    """Alpha with the background's light wrapped over the person's edge.

    Args:
        alpha: ``(H, W)`` float32 in ``[0, 1]``.
        strength: 0 (off) to 1: how much background light reaches the edge.
        size: width of the wrap in pixels (Gaussian sigma).

    Returns:
        New ``(H, W)`` float32 ``alpha * (1 - wrap)``, where ``wrap`` is largest just inside the
        edge and fades towards the middle of the person.
    """
    if strength <= 0 or size <= 0:
        return alpha.copy()
    h, w = alpha.shape
    k = max(1, int(size))
    small = _shrink(alpha, k)
    outside = cv2.GaussianBlur(np.float32(1.0) - small, (0, 0), max(0.5, size / k))
    wrap = np.float32(strength) * outside * small
    if k > 1:
        wrap = cv2.resize(wrap, (w, h), interpolation=cv2.INTER_LINEAR)
    return alpha * (np.float32(1.0) - wrap)


def composite(foreground: np.ndarray, background: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``alpha * foreground + (1 - alpha) * background``.

    Args:
        foreground, background: ``(H, W, 3)`` uint8.
        alpha: ``(H, W)`` float32 in ``[0, 1]``.

    Returns:
        New ``(H, W, 3)`` uint8.
    """
    return cv2.blendLinear(foreground, background, alpha, np.float32(1.0) - alpha)


def render_bokeh(image: np.ndarray, alpha: np.ndarray, cfg: RenderConfig, replacement: np.ndarray | None = None) -> np.ndarray:
    """Render one output frame.

    Args:
        image: ``(H, W, 3)`` uint8 BGR frame; not modified.
        alpha: ``(H, W)`` float32 person alpha in ``[0, 1]``, same size as ``image``.
        cfg: effect, strength, aperture, light wrap.
        replacement: ``(H, W, 3)`` uint8 BGR new background for ``effect = "replace"``.

    Returns:
        New ``(H, W, 3)`` uint8 BGR frame: the person as captured over the blurred (or
        replaced) background.
    """
    if image.shape[:2] != alpha.shape:
        raise ValueError(f"alpha {alpha.shape} does not match image {image.shape[:2]}")
    height = image.shape[0]
    if cfg.effect == "none":
        return image.copy()
    if cfg.effect == "replace":
        if replacement is None or replacement.shape != image.shape:
            raise ValueError("effect 'replace' needs a replacement background of the frame's size")
        plate = replacement
    else:
        radius = blur_radius(cfg, height)
        if radius < 1.0:
            return image.copy()
        plate = blur_background(image, alpha, radius, cfg)
    a = light_wrap(alpha, cfg.light_wrap, cfg.light_wrap_size * height)
    return composite(image, plate, a)
