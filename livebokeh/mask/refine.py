"""Pure functions from a model-resolution probability map to a frame-resolution alpha."""

from __future__ import annotations

import cv2
import numpy as np

from livebokeh.config import AUTO_MASK_RANGE, MaskConfig
from livebokeh.types import SegmenterTraits


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
    out = stretch(prob, low, high)
    return np.clip(out, 0.0, 1.0, out=out)


def stretch(prob: np.ndarray, low: float, high: float) -> np.ndarray:
    """:func:`remap` without the clip: ``low`` is 0, ``high`` is 1, and what lies beyond keeps its
    distance (a confident 0.9 of a probability model at levels 0.4 and 0.6 is 2.5). The live matte
    blends these, so that a blend of a confident result and an unsure history stays as confident
    as a blend of the model's own outputs would, and each model's results are in the same terms
    (an alpha of 0 and 1 means the same for all); what is shown is clipped to ``[0, 1]``.

    Args:
        prob: ``(H, W)`` float32.
        low, high: ``low < high``.

    Returns:
        New ``(H, W)`` float32 array.
    """
    return (prob - np.float32(low)) * np.float32(1.0 / (high - low))


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


def remove_islands(prob: np.ndarray, min_share: float) -> np.ndarray:
    """Drop small false detections: person blobs smaller than ``min_share`` of the largest one.

    Args:
        prob: ``(h, w)`` float32 person probability (model resolution).
        min_share: 0 (off) to 1.

    Returns:
        New ``(h, w)`` float32 with the pixels of the dropped blobs set to 0.
    """
    out = prob.copy()
    if min_share <= 0:
        return out
    binary = (prob > 0.5).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    if n <= 2:  # background plus at most one blob
        return out
    areas = stats[1:, cv2.CC_STAT_AREA]
    small = np.flatnonzero(areas < min_share * areas.max()) + 1
    if small.size:
        out[np.isin(labels, small)] = 0.0
    return out


def guided_upsample(prob: np.ndarray, guide: np.ndarray, radius: float, eps: float) -> np.ndarray:
    """Upsample a probability map so that its edges follow the picture's edges.

    A guided filter (He et al.) with the luminance as guide, fitted at the guide's size.

    Args:
        prob: ``(h, w)`` float32 in ``[0, 1]``.
        guide: ``(H, W)`` uint8 gray picture (the size of the result).
        radius: filter radius in guide pixels.
        eps: regularisation (larger = smoother, closer to plain upsampling).

    Returns:
        New ``(H, W)`` float32 in ``[0, 1]``.
    """
    H, W = guide.shape
    g = guide.astype(np.float32) * np.float32(1 / 255)
    p = cv2.resize(prob, (W, H), interpolation=cv2.INTER_LINEAR)
    r = max(1, round(radius))
    ksize = (2 * r + 1, 2 * r + 1)
    mean_i = cv2.blur(g, ksize)
    mean_p = cv2.blur(p, ksize)
    cov_ip = cv2.blur(g * p, ksize) - mean_i * mean_p
    var_i = cv2.blur(g * g, ksize) - mean_i * mean_i
    a = cov_ip / (var_i + np.float32(eps))
    b = mean_p - a * mean_i
    q = cv2.blur(a, ksize) * g + cv2.blur(b, ksize)
    return np.clip(q, 0.0, 1.0, out=q)


#: Refinement runs on a copy of the frame at most this wide, then is upsampled once.
WORK_WIDTH = 640
#: The guided filter runs at most this wide (measured: Boundary IoU as at 640, a third of the cost).
GUIDED_WIDTH = 256


def work_size(width: int, height: int) -> tuple[int, int]:
    """``(w, h)`` of the working copy for a ``width`` x ``height`` frame: divided by the smallest
    integer that brings it to at most :data:`WORK_WIDTH` wide."""
    k = max(1, -(-width // WORK_WIDTH))
    return max(1, width // k), max(1, height // k)


def refine_alpha(prob: np.ndarray, image: np.ndarray, cfg: MaskConfig, full_size: bool = True) -> np.ndarray:
    """Model-output probability -> frame alpha, with every refinement ``cfg`` turns on.

    Islands -> guided (``cfg.guided == "on"``) or bilinear upsampling -> remap to ``[low,
    high]`` -> feather (resolve the automatic settings first with :func:`resolve_auto`), at a
    working size of at most :data:`WORK_WIDTH` pixels wide (:func:`work_size`), then one
    bilinear upsampling to the frame's size unless ``full_size`` is False.

    Args:
        prob: ``(h, w)`` float32 person probability.
        image: ``(H, W, 3)`` uint8 BGR frame.
        cfg: the ``[mask]`` settings.
        full_size: upsample to the frame's size (False: return the working size, which
            :func:`livebokeh.render.render_bokeh` takes as it is, saving two full-size passes).

    Returns:
        ``(H, W)`` (or working size) float32 alpha in ``[0, 1]``.
    """
    H, W = image.shape[:2]
    ww, wh = work_size(W, H)
    p = remove_islands(prob, cfg.islands) if cfg.islands > 0 else prob
    if cfg.guided == "on":
        g = max(1, -(-W // GUIDED_WIDTH))
        gw, gh = max(1, W // g), max(1, H // g)
        small = image if g == 1 else cv2.resize(image, (gw, gh), interpolation=cv2.INTER_AREA)
        up = guided_upsample(p, cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), cfg.guided_radius * gh, cfg.guided_eps)
        if (gw, gh) != (ww, wh):
            up = cv2.resize(up, (ww, wh), interpolation=cv2.INTER_LINEAR)
    else:
        up = upsample(p, (ww, wh))
    if cfg.low < 0 or cfg.high < 0:
        raise ValueError("mask.low and mask.high are automatic (-1): resolve them first with resolve_auto")
    if (cfg.low, cfg.high) != (0.0, 1.0):  # an alpha matte is used as it is
        up = remap(up, cfg.low, cfg.high)
    alpha = feather(up, cfg.feather * wh)
    if full_size and (ww, wh) != (W, H):
        alpha = cv2.resize(alpha, (W, H), interpolation=cv2.INTER_LINEAR)
    return alpha


def resolve_auto(cfg: MaskConfig, traits: SegmenterTraits) -> MaskConfig:
    """The ``[mask]`` settings with their automatic values made concrete for a segmenter with
    ``traits``, once, where a run is put together.

    Measured per backend with ``livebokeh bench quality``:

    - ``low = -1``, ``high = -1``: 0.4 and 0.6 for probability models (MediaPipe, DeepLab); 0
      and 1 (no stretch) for matting models (``traits.matte``: RVM), whose output is already an
      alpha: stretching it would turn a half-transparent hair strand opaque or empty.
    - ``guided = "auto"``: on for coarse edges (``traits.coarse_edges``: DeepLab, whose output
      is 33x33 upsampled; it lifts its Boundary IoU), off otherwise (it lowers MediaPipe's,
      whose ROI pass already sharpens edges, and RVM's, whose own refiner works at 640 px).
    - ``lookahead = -1``: 2 frames for coarse edges (7% less flicker on the clips), 0 otherwise
      (MediaPipe's flicker and green-screen scores did not move, and the two extra optical flows
      a frame cost a fifth of the file throughput).

    Raises:
        ConfigError: the resolved ``low`` is not below ``high``.
    """
    import dataclasses

    from livebokeh.errors import ConfigError

    coarse = traits.coarse_edges
    changes: dict = {}
    auto_low, auto_high = AUTO_MASK_RANGE[bool(traits.matte)]
    if cfg.low < 0:
        changes["low"] = auto_low
    if cfg.high < 0:
        changes["high"] = auto_high
    if cfg.guided == "auto":
        changes["guided"] = "on" if coarse else "off"
    if cfg.lookahead < 0:
        changes["lookahead"] = 2 if coarse else 0
    low, high = changes.get("low", cfg.low), changes.get("high", cfg.high)
    if low >= high:
        raise ConfigError(f"mask.low ({low:g}) must be smaller than mask.high ({high:g}) for this backend")
    return dataclasses.replace(cfg, **changes) if changes else cfg
