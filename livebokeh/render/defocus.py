"""A blur that grows with the distance from the focus plane (pure functions).

A lens spreads a point at distance ``S`` into a circle of confusion whose radius is
proportional to ``|1/S - 1/S_focus|``. With a depth map normalised so that the far end of the
background is 0 and the focus plane (the person) 1 (:mod:`livebokeh.depth.normalise`), that is
``far_radius * |1 - depth|``: the far end gets the blur ``--blur`` or ``--fstop`` sets, the
floor at the person's feet next to none, and what is in front of the person grows again
(:func:`circle_of_confusion`).

The blur is built on the uniform one of :mod:`livebokeh.render.bokeh`, with everything that
makes it lens-like kept at every depth: the person is first replaced by the background around
them (no halo), the picture is reduced and taken to linear light with its highlights boosted,
and each level is the aperture's disc or polygon (:func:`livebokeh.render.aperture_kernel`).
Then:

1. The reduced plate is blurred at :data:`LEVELS` radii evenly spaced up to the largest circle
   of confusion, and each pixel blends the two levels around its own circle (a tent in the
   radius). Levels no pixel needs are not computed.
2. Below the first level's radius (about one pixel of the reduced plate), the pixel is blended
   with the picture itself at full resolution (wholly the picture below :data:`SHARP_BELOW` of
   that radius): :func:`defocus_background` returns that share as ``sharpness``, and :func:`livebokeh.render.render_bokeh` folds it into the composite's alpha
   (``alpha + (1 - alpha) * sharpness``), so the floor at the person's feet keeps its detail and
   costs only the composite's blend where it is partly sharp.

``livebokeh bench depth`` measured this against a per-pixel gather of the same discs (every
pixel averaging its neighbours within its own radius): see its ``cost`` rows.
"""

from __future__ import annotations

import cv2
import numpy as np

from livebokeh.config import RenderConfig
from livebokeh.render.lens import aperture_kernel
from livebokeh.render.plate import background_plate, plate_to_frame, reduction

#: Blurred levels of the plate (besides the unblurred picture).
LEVELS = 4
#: Share of the first level's radius below which a pixel is the picture itself: from there to
#: the first level's radius it fades into the blur. At 1280x720 and the default blur (first
#: level 5.4 px): what blurs less than 2.7 px stays sharp. The fade costs the composite a
#: blend; from 0 the blended share of the generated room's pixels went from 14% to 25% and the
#: composite's time by 0.4 ms.
SHARP_BELOW = 0.5


def circle_of_confusion(depth: np.ndarray, far_radius: float, max_radius: float) -> np.ndarray:
    """Blur radius of each pixel: ``far_radius * |1 - depth|``, at most ``max_radius``.

    Args:
        depth: ``(h, w)`` float32 normalised depth: 0 at the far end, 1 at the focus plane, more
            in front of it (:class:`livebokeh.depth.DepthTracker`).
        far_radius: the far end's radius (any unit, usually pixels of the frame).
        max_radius: the largest radius.

    Returns:
        New ``(h, w)`` float32 in ``[0, max_radius]``, in ``far_radius``'s unit.
    """
    coc = np.abs(depth.astype(np.float32, copy=False) - np.float32(1.0))
    coc *= np.float32(far_radius)
    return np.minimum(coc, np.float32(max_radius), out=coc)


def level_radii(max_radius: float, levels: int = LEVELS) -> np.ndarray:
    """The blurred levels' radii, evenly spaced up to ``max_radius``: ``(levels,)`` float64."""
    return max_radius * np.arange(1, levels + 1, dtype=np.float64) / levels


def defocus_background(image: np.ndarray, alpha: np.ndarray, coc: np.ndarray, max_radius: float,
                       cfg: RenderConfig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The background plate of ``image`` blurred by each pixel's own circle of confusion.

    Args:
        image: ``(H, W, 3)`` uint8.
        alpha: ``(h, w)`` float32 person alpha in ``[0, 1]``, at the image's size or smaller
            (same aspect ratio).
        coc: ``(hd, wd)`` float32 blur radius in pixels of ``image``, at any size covering the
            frame (:func:`circle_of_confusion` of a depth map); NaN counts as ``max_radius``.
        max_radius: the largest radius ``coc`` may hold, in pixels of ``image`` (it sets the
            reduction and the levels, so keep it fixed along a stream).
        cfg: aperture shape, linear light and highlight settings (defaults when None).

    Returns:
        ``(plate, sharpness)``: the plate, new ``(H, W, 3)`` uint8 with the surrounding
        background's colours inside the person (never the person's); and new ``(h, w)`` float32
        in ``[0, 1]`` at the alpha's size, the share of the picture itself each pixel takes
        (1 in focus, 0 from the first level's radius on).
    """
    cfg = cfg or RenderConfig()
    if not np.isfinite(coc).all():  # a distance not known (a depth map's NaN): blurred as the farthest
        coc = np.nan_to_num(coc, nan=max_radius, posinf=max_radius, neginf=0.0)
    H, W = image.shape[:2]
    h, w = alpha.shape
    k = reduction(max_radius, W, H)
    filled = background_plate(image, alpha, k, cfg)
    sh, sw = filled.shape[:2]
    radii = level_radii(max_radius)
    step = float(radii[0])  # the first level's radius, in pixels of the image
    # position of each pixel among the levels: 0 = in focus, 1 = the first level, ...
    pos = cv2.resize(coc, (sw, sh), interpolation=cv2.INTER_AREA if coc.shape[1] > sw else cv2.INTER_LINEAR)
    pos *= np.float32(1.0 / step)
    top = max(1, min(LEVELS, int(np.ceil(float(pos.max()) - 1e-6))))
    plate = np.zeros_like(filled)
    for level in range(1, top + 1):
        # a tent around each level: they sum to 1 at every pixel (below the first level the
        # first takes all, the picture itself coming in through the sharpness; above the last
        # the last does)
        weight = np.abs(pos - np.float32(level))
        np.subtract(np.float32(1.0), weight, out=weight)
        if level == 1:
            weight[pos < 1.0] = 1.0
        if level == top:
            weight[pos > level] = 1.0
        np.maximum(weight, 0.0, out=weight)
        rows, cols = np.flatnonzero((weight > 0).any(axis=1)), np.flatnonzero((weight > 0).any(axis=0))
        if rows.size == 0:
            continue
        kernel = aperture_kernel(round(float(radii[level - 1]) / k, 2), cfg.aperture, cfg.blades)
        # only the box where this level counts, with a margin of the kernel's reach
        y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        n = kernel.shape[0] // 2
        ya, yb, xa, xb = max(0, y0 - n), min(sh, y1 + n), max(0, x0 - n), min(sw, x1 + n)
        blurred = cv2.filter2D(filled[ya:yb, xa:xb], -1, kernel, borderType=cv2.BORDER_REFLECT)
        box = weight[y0:y1, x0:x1]
        plate[y0:y1, x0:x1] += blurred[y0 - ya : y1 - ya, x0 - xa : x1 - xa] * cv2.merge((box, box, box))
    # the picture's own share: 1 in focus (up to SHARP_BELOW of the first level's radius), down
    # to 0 at the first level's radius
    share = np.float32(1.0 / (1.0 - SHARP_BELOW)) - coc * np.float32(1.0 / (step * (1.0 - SHARP_BELOW)))
    np.clip(share, 0.0, 1.0, out=share)
    sharpness = cv2.resize(share, (w, h), interpolation=cv2.INTER_AREA if coc.shape[1] > w else cv2.INTER_LINEAR)
    return plate_to_frame(plate, (W, H), cfg), sharpness
