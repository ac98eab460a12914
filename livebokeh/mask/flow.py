"""Dense optical flow (OpenCV's DIS, ultrafast) and backward warping, at mask resolution."""

from __future__ import annotations

import threading

import cv2
import numpy as np


def small_gray(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``(H, W, 3)`` uint8 BGR -> ``(h, w)`` uint8 gray at ``size = (w, h)`` (new array)."""
    small = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    return cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)


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
        """Flow ``f`` with ``current(x) ~ previous(x + f(x))``: ``(h, w, 2)`` float32, pixels."""
        return self._dis().calc(current, previous, None)


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``image`` (at ``t-1``) moved to ``t`` with the backward flow from :meth:`FlowEstimator.backward`.

    Args:
        image: ``(h, w)`` or ``(h, w, c)`` array at the flow's size.
        flow: ``(h, w, 2)`` float32.

    Returns:
        New array shaped like ``image``; pixels that come from outside are taken from the border.
    """
    h, w = flow.shape[:2]
    grid_x, grid_y = _grid(w, h)
    return cv2.remap(image, grid_x + flow[:, :, 0], grid_y + flow[:, :, 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


_GRIDS: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}


def _grid(w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    g = _GRIDS.get((w, h))
    if g is None:
        xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        xs.flags.writeable = False
        ys.flags.writeable = False
        g = _GRIDS[(w, h)] = (xs, ys)
    return g
