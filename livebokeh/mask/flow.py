"""Dense optical flow (OpenCV's DIS, ultrafast) and backward warping, at mask resolution.

OpenCV's DIS needs pictures of at least about 32 pixels a side: smaller ones raise an error
or, for some shapes (128x16, 40x8), crash the process (SIGSEGV in OpenCV 4.11). Pictures with
a side under :data:`MIN_SIDE` are scaled up to it for the flow, which is scaled back down.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np


def small_gray(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``(H, W, 3)`` uint8 BGR -> ``(h, w)`` uint8 gray at ``size = (w, h)`` (new array)."""
    small = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    return cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)


#: Shortest side DIS is given (every shape from 32x32 to 32x10000 was checked; under it, some
#: shapes fail or crash).
MIN_SIDE = 32


class FlowEstimator:
    """DIS optical flow; one instance per thread (OpenCV's DIS object keeps state)."""

    def __init__(self) -> None:
        self._local = threading.local()

    def _dis(self) -> cv2.DISOpticalFlow:
        dis = getattr(self._local, "dis", None)
        if dis is None:
            dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
            self._local.dis = dis
        return dis

    def backward(self, current: np.ndarray, previous: np.ndarray) -> np.ndarray:
        """Flow ``f`` with ``current(x) ~ previous(x + f(x))``: ``(h, w, 2)`` float32, pixels.

        Args:
            current, previous: ``(h, w)`` uint8 gray pictures of one size, any size from 1x1.
        """
        h, w = current.shape[:2]
        if min(h, w) >= MIN_SIDE:
            return self._dis().calc(current, previous, None)
        # too small for DIS: the flow of the pictures stretched to MIN_SIDE, brought back
        big = (max(w, MIN_SIDE), max(h, MIN_SIDE))
        up = [cv2.resize(g, big, interpolation=cv2.INTER_LINEAR) for g in (current, previous)]
        flow = cv2.resize(self._dis().calc(up[0], up[1], None), (w, h), interpolation=cv2.INTER_AREA)
        flow *= np.array([w / big[0], h / big[1]], np.float32)
        return flow


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``image`` (at ``t-1``) moved to ``t`` with the backward flow from :meth:`FlowEstimator.backward`.

    Args:
        image: ``(h, w)`` or ``(h, w, c)`` array at the flow's size.
        flow: ``(h, w, 2)`` float32.

    Returns:
        New array shaped like ``image``; pixels that come from outside are taken from the border.
    """
    return warp_all(flow, image)[0]


def warp_all(flow: np.ndarray, *images: np.ndarray) -> tuple[np.ndarray, ...]:
    """Several images moved by the same flow; the sampling map is built once for all of them.

    Args:
        flow: ``(h, w, 2)`` float32 backward flow.
        images: ``(h, w)`` or ``(h, w, c)`` arrays at the flow's size.

    Returns:
        New arrays, one per image, in order.
    """
    h, w = flow.shape[:2]
    coords = cv2.add(flow, _grid(w, h))  # absolute sampling positions, (h, w, 2)
    return tuple(cv2.remap(im, coords, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE) for im in images)


_GRIDS: dict[tuple[int, int], np.ndarray] = {}


def _grid(w: int, h: int) -> np.ndarray:
    g = _GRIDS.get((w, h))
    if g is None:
        xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        g = np.dstack([xs, ys])
        g.flags.writeable = False
        _GRIDS[(w, h)] = g
    return g
