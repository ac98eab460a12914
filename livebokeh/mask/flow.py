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
