"""Background blur without halos.

The naive method blurs the whole frame and pastes the person back, so the person's colours are
smeared into the background around them (a halo). Here only background pixels are blurred:
normalised convolution ``blur(image * w) / blur(w)`` with ``w`` the background weight, so no
person colour enters the blurred background; then the sharp frame and the blurred background
are blended with the soft alpha. The blur runs on a reduced-resolution copy, sized so that the
small-scale kernel stays a few pixels wide, which keeps a 720p frame to a few milliseconds.
"""

from __future__ import annotations

import cv2
import numpy as np

from livebokeh.config import RenderConfig

#: Sigma (in pixels of the reduced image) that the downscale aims for.
_SMALL_SIGMA = 3.0
_EPS = np.float32(1e-3)
#: Background weight under which the plate is filled from coarser levels.
_FILL_BELOW = 0.05


def background_weight(alpha: np.ndarray) -> np.ndarray:
    """Weight of each pixel as background: 1 outside the person, 0 from alpha 0.5 inwards.

    Args:
        alpha: ``(H, W)`` float32 in ``[0, 1]``.

    Returns:
        New ``(H, W)`` float32 in ``[0, 1]``.
    """
    w = np.float32(1.0) - np.float32(2.0) * alpha
    return np.clip(w, 0.0, 1.0, out=w)


def blur_background(image: np.ndarray, alpha: np.ndarray, radius: float) -> np.ndarray:
    """Blur the background of ``image`` without letting person pixels into it.

    Args:
        image: ``(H, W, 3)`` uint8.
        alpha: ``(H, W)`` float32 person alpha in ``[0, 1]``.
        radius: blur radius in pixels of ``image`` (about two Gaussian sigmas).

    Returns:
        New ``(H, W, 3)`` uint8: the blurred background plate. Inside the person it holds the
        surrounding background colours (filled in), never the person's.
    """
    h, w = alpha.shape
    sigma = max(radius / 2.0, 0.5)
    scale = min(1.0, _SMALL_SIGMA / sigma)
    sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
    if scale < 1.0:
        small = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
        small_alpha = cv2.resize(alpha, (sw, sh), interpolation=cv2.INTER_AREA)
    else:
        small, small_alpha = image, alpha
    # Grow the person by a pixel of the small image, so that edge pixels the model placed a
    # little too far out do not carry person colour into the background.
    small_alpha = cv2.dilate(small_alpha, np.ones((3, 3), np.uint8))
    weight = background_weight(small_alpha)
    s = sigma * scale
    num = cv2.GaussianBlur(small.astype(np.float32) * weight[:, :, None], (0, 0), s)
    den = cv2.GaussianBlur(weight, (0, 0), s)
    bg = _fill(num, den)
    bg = np.clip(bg, 0, 255).astype(np.uint8)
    if scale < 1.0:
        bg = cv2.resize(bg, (w, h), interpolation=cv2.INTER_LINEAR)
    return bg


def _fill(num: np.ndarray, den: np.ndarray, depth: int = 8) -> np.ndarray:
    """``num / den`` where enough background weight is near, else filled from coarser levels.

    Push-pull filling: deep inside the person (no background within the blur radius) the
    plate takes the background colours of a coarser pyramid level instead of the person's.

    Args:
        num: ``(h, w, 3)`` float32, blurred ``image * weight``.
        den: ``(h, w)`` float32, blurred ``weight``.
    """
    ratio = num / np.maximum(den, _EPS)[:, :, None]
    h, w = den.shape
    if depth == 0 or min(h, w) < 4 or float(den.min()) >= _FILL_BELOW:
        if float(den.max()) < _EPS:  # no background at all: keep the picture
            return num / np.float32(_EPS)
        return ratio
    coarse = _fill(cv2.pyrDown(num), cv2.pyrDown(den), depth - 1)
    coarse = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR)
    keep = np.minimum(den * np.float32(1.0 / _FILL_BELOW), np.float32(1.0))[:, :, None]
    return coarse + (ratio - coarse) * keep


def composite(foreground: np.ndarray, background: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``alpha * foreground + (1 - alpha) * background``.

    Args:
        foreground, background: ``(H, W, 3)`` uint8.
        alpha: ``(H, W)`` float32 in ``[0, 1]``.

    Returns:
        New ``(H, W, 3)`` uint8.
    """
    inv = np.float32(1.0) - alpha
    return cv2.blendLinear(foreground, background, alpha, inv)


def render_bokeh(image: np.ndarray, alpha: np.ndarray, cfg: RenderConfig) -> np.ndarray:
    """Render one output frame.

    Args:
        image: ``(H, W, 3)`` uint8 BGR frame; not modified.
        alpha: ``(H, W)`` float32 person alpha in ``[0, 1]``, same size as ``image``.
        cfg: effect and strength.

    Returns:
        New ``(H, W, 3)`` uint8 BGR frame: the person as captured, the background blurred.
    """
    if image.shape[:2] != alpha.shape:
        raise ValueError(f"alpha {alpha.shape} does not match image {image.shape[:2]}")
    radius = cfg.blur * image.shape[0]
    if cfg.effect == "none" or radius < 1.0:
        return image.copy()
    return composite(image, blur_background(image, alpha, radius), alpha)
