"""Model-agnostic passes around a segmentation model (pure functions): the region-of-interest
pass that looks again at the person's region, and the mirrored pass.

Each takes the model as a function ``infer(image) -> mask`` (``(H, W, 3)`` uint8 BGR in, ``(h,
w)`` float32 in ``[0, 1]`` out, at the model's output size), so any backend can use them.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

#: A model: ``(H, W, 3)`` uint8 BGR -> ``(h, w)`` float32 person probability (or alpha).
Infer = Callable[[np.ndarray], np.ndarray]

#: The ROI pass runs when the person's region is at least this many times smaller (per side).
ROI_MIN_ZOOM = 1.2
#: Margin around the person's bounding box, as a share of its size.
ROI_MARGIN = 0.1


def extent(person: np.ndarray) -> tuple[int, int, int, int] | None:
    """Bounding box ``(x0, y0, x1, y1)`` of the True pixels of a 2-D array; None if there are none."""
    rows, cols = np.flatnonzero(person.any(axis=1)), np.flatnonzero(person.any(axis=0))
    if cols.size == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def _margins(width: int, height: int, margin: float) -> tuple[int, int]:
    return int(width * margin) + 4, int(height * margin) + 4


def roi_box(person: np.ndarray, margin: float) -> tuple[int, int, int, int] | None:
    """Bounding box ``(x0, y0, x1, y1)`` of the True pixels, grown by ``margin`` of its size; None if empty."""
    box = extent(person)
    if box is None:
        return None
    h, w = person.shape
    x0, y0, x1, y1 = box
    mx, my = _margins(x1 - x0, y1 - y0, margin)
    return max(0, x0 - mx), max(0, y0 - my), min(w, x1 + mx), min(h, y1 + my)


def roi_too_large(person: np.ndarray, zoom: float, margin: float) -> bool:
    """Whether the ROI box on the grid twice ``person``'s size is sure to be too large for ``zoom``.

    Bilinear doubling moves a region's extent by at most one pixel a side, so the doubled box is at
    least twice this extent less 2 pixels, plus at least one side's margin (or the whole side):
    when even that lower bound fails the ROI test, the doubled mask need not be made.
    """
    box = extent(person)
    if box is None:
        return False
    h, w = person.shape
    x0, y0, x1, y1 = box
    bw, bh = max(0, 2 * (x1 - x0) - 2), max(0, 2 * (y1 - y0) - 2)
    mx, my = _margins(bw, bh, margin)
    return min(2 * w, bw + mx) * min(2 * h, bh + my) * zoom**2 > 4 * w * h


def mirrored(infer: Infer, image: np.ndarray) -> np.ndarray:
    """``infer`` of the mirrored picture, mirrored back: ``(h, w)`` float32 (a view, not a copy)."""
    return infer(np.ascontiguousarray(image[:, ::-1]))[:, ::-1]


def roi_pass(image: np.ndarray, first: np.ndarray, infer: Infer, output_size: tuple[int, int]) -> np.ndarray:
    """The mask ``first`` of ``image`` improved by a second pass on the person's region.

    When the region around the person (with :data:`ROI_MARGIN`) is at least
    :data:`ROI_MIN_ZOOM` times smaller per side than the frame, ``infer`` runs on that crop of
    ``image`` and its result replaces ``first`` inside the region (blended over a few pixels at
    the region's inner borders), on a grid twice ``output_size``, then shrunk back.

    Args:
        image: ``(H, W, 3)`` uint8 BGR, the whole frame; not modified.
        first: ``(h, w)`` float32, ``infer(image)`` (``output_size = (w, h)``).
        infer: the model.
        output_size: ``(w, h)`` of the masks.

    Returns:
        ``(h, w)`` float32 in ``[0, 1]``: ``first`` itself when the pass does not pay.
    """
    if roi_too_large(first > 0.5, ROI_MIN_ZOOM, ROI_MARGIN):  # a webcam's usual framing
        return first
    w, h = output_size
    ow, oh = 2 * w, 2 * h
    out = cv2.resize(first, (ow, oh), interpolation=cv2.INTER_LINEAR)
    box = roi_box(out > 0.5, ROI_MARGIN)
    if box is None:
        return first
    x0, y0, x1, y1 = box  # in pixels of the doubled grid
    if (x1 - x0) * (y1 - y0) * ROI_MIN_ZOOM**2 > ow * oh:
        return first
    H, W = image.shape[:2]
    fx0, fy0 = x0 * W // ow, y0 * H // oh
    fx1, fy1 = max(fx0 + 8, -(-x1 * W // ow)), max(fy0 + 8, -(-y1 * H // oh))
    crop = np.ascontiguousarray(image[fy0:fy1, fx0:fx1])
    second = cv2.resize(infer(crop), (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
    # blend over a few pixels at the region's inner borders so no seam shows
    ramp = np.ones((y1 - y0, x1 - x0), np.float32)
    n = max(1, min(8, (x1 - x0) // 8, (y1 - y0) // 8))
    edge = np.linspace(0.0, 1.0, n, endpoint=False, dtype=np.float32)
    if x0 > 0:
        ramp[:, :n] *= edge[None, :]
    if x1 < ow:
        ramp[:, -n:] *= edge[::-1][None, :]
    if y0 > 0:
        ramp[:n, :] *= edge[:, None]
    if y1 < oh:
        ramp[-n:, :] *= edge[::-1][:, None]
    region = out[y0:y1, x0:x1]
    out[y0:y1, x0:x1] = region + (second - region) * ramp
    return cv2.resize(out, (w, h), interpolation=cv2.INTER_AREA)
