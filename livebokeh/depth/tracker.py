"""Depth maps that hold steady along a stream: the model's relative depth normalised with a
slowly changing scale, and moved by optical flow between model runs.

The network's output drifts in scale and offset from frame to frame, and a per-frame min-max
would make a still background's blur breathe. So each new map is first *aligned* to the
previous normalised one (moved to the new frame by optical flow): the scale and offset that
match them best over the background pixels the flow explains (a weighted least-squares fit
over thousands of pixels, steady where a percentile jumps). Then the far end and the focus
plane of :mod:`livebokeh.depth.normalise` pull the map towards 0 and 1 a little on each run:
the far end over :data:`FAR_SETTLE_S` seconds (the scale settles slowly), the focus plane over
:data:`FOCUS_SETTLE_S` (it follows the person). Last, each pixel keeps a share of its history
where the flow explains the picture (sensor noise does not reach the blur).

Files run the model on every frame; live, at most :data:`LIVE_RATE` times a second, and the
frames between get the last map moved to them by optical flow, kept exactly where the picture
is still (as the live matte of :mod:`livebokeh.mask.tracker` keeps the mask): the flow's own
noise never moves a still background's blur. :class:`ShownDepth` carries the maps, live, from
frame to frame to every frame shown.

Who may call what: :meth:`DepthTracker.estimate` from any thread (files: several at once);
:meth:`DepthTracker.update` and :meth:`DepthTracker.reset` in stream order, one at a time;
a :class:`ShownDepth` from the rendering thread.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from livebokeh.closing import Closeable
from livebokeh.depth.normalise import (
    background_depth,
    far_depth,
    fit_affine,
    focus_depth,
    normalised,
    trusted_background,
)
from livebokeh.mask.flow import FlowEstimator, small_gray, warp_all
from livebokeh.mask.smoother import consistency
from livebokeh.mask.tracker import still_weight
from livebokeh.types import Frame

log = logging.getLogger(__name__)

#: Live: most depth model runs a second (each about 12.5 ms of one core here): 25 ms of CPU a
#: second. The maps between are moved by optical flow.
LIVE_RATE = 2.0
#: Seconds over which the far end of the normalisation settles on each frame's (the time
#: constant; the alignment to the last map keeps the scale steady in between). Measured with
#: ``livebokeh bench depth`` on a webcam clip (office720p, files): the blur's flicker on still
#: pixels 0.40% of its radius at 0.5 s, 0.59% at 1 s, 0.85% at 2 s.
FAR_SETTLE_S = 0.5
#: Seconds over which the focus plane follows the person. Faster makes the background breathe
#: as a talking head moves (office720p live, flicker p95 4.1% at 0.25 s, 1.7% at 0.5 s, 0.8% at
#: 1 s); slower lets the floor at a walking person's feet lag out of focus.
FOCUS_SETTLE_S = 0.5
#: Largest share of a pixel's history in each new map, where the flow explains the picture
#: (flicker on four clips, files: 0.24-0.85% at 0.9 against 0.47-1.25% at 0.6).
HISTORY = 0.9


class SupportsEstimate(Protocol):
    """What the tracker needs of a depth model (:class:`livebokeh.depth.DepthEstimator`)."""

    def estimate(self, image: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray: ...

    def close(self) -> None: ...


@dataclass
class _State:
    depth: np.ndarray  # normalised, (h, w) float32: 0 = far end, 1 = focus plane
    trusted: np.ndarray  # where it measured the background, (h, w) float32
    gray: np.ndarray  # the frame at the map's size
    index: int


class DepthTracker(Closeable):
    """One stream's depth maps (see the module text). Closing it closes the estimator.

    Args:
        estimator: the depth model.
        live: a live stream: the model runs at most ``rate`` times a second (else every frame).
        fps: the stream's frame rate (the settling times are in seconds).
        rate: live: most model runs a second.
    """

    def __init__(self, estimator: SupportsEstimate, live: bool = False, fps: float = 30.0,
                 rate: float = LIVE_RATE) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.estimator = estimator
        self.live = live
        self.fps = fps if fps > 0 else 30.0
        self.rate = rate
        self._flow = FlowEstimator()
        self._state: _State | None = None
        self._last_run_ns: int | None = None
        self._lock = threading.Lock()
        self.runs = 0  # model runs so far
        self.moved = 0  # maps moved by flow to a frame the model did not see

    def shown(self) -> ShownDepth:
        """A carrier of this stream's maps to every frame shown (live)."""
        return ShownDepth()

    def reset(self) -> None:
        """The stream starts again (a cut): forget the last map and the normalisation."""
        with self._lock:
            self._state = None
            self._last_run_ns = None

    def due(self, frame: Frame) -> bool:
        """The model should run on ``frame``: always for files; live, when ``1 / rate`` seconds
        have passed since the last run (by the frames' capture times)."""
        if not self.live:
            return True
        with self._lock:
            last = self._last_run_ns
            if last is not None and frame.capture_ns - last < 1e9 / self.rate:
                return False
            self._last_run_ns = frame.capture_ns
            return True

    def estimate(self, frame: Frame) -> np.ndarray | None:
        """The model's map of ``frame`` (relative inverse depth at :func:`~livebokeh.depth.map_size`),
        or None when it is not due (live). Any thread."""
        if not self.due(frame):
            return None
        return self.estimator.estimate(frame.image)

    def update(self, frame: Frame, raw: np.ndarray | None, alpha: np.ndarray) -> np.ndarray | None:
        """The normalised background depth of ``frame``, in stream order.

        Args:
            frame: the frame.
            raw: its map from :meth:`estimate`, or None (live, not due): then the last map is
                moved to this frame by optical flow.
            alpha: ``(h, w)`` float32 person alpha (the model's mask; any size covering the frame).

        Returns:
            New ``(h, w)`` float32 at the map's size: 0 at the far end, 1 at the focus plane,
            more in front of it; the person's pixels hold the background's depth around them.
            None before the first run.
        """
        state = self._state
        if raw is None:
            if state is None:
                return None
            gray = small_gray(frame.image, (state.gray.shape[1], state.gray.shape[0]))
            if frame.index == state.index:
                return state.depth
            self.moved += 1
            return carried(state.depth, state.gray, gray, self._flow)
        self.runs += 1
        h, w = raw.shape
        gray = small_gray(frame.image, (w, h))
        a = cv2.resize(alpha, (w, h), interpolation=cv2.INTER_AREA if alpha.shape[1] > w else cv2.INTER_LINEAR)
        trusted = trusted_background(a)
        filled = background_depth(raw, trusted)
        far, focus = far_depth(filled, trusted), focus_depth(raw, filled, a)
        if state is None or state.depth.shape != raw.shape:
            if focus is None:  # nobody in view yet: the nearest background is in focus
                focus = float(np.percentile(filled, 95))
            depth = normalised(filled, far, focus)
        else:
            depth = self._aligned(filled, far, focus, trusted, gray, state, frame.index)
        self._state = _State(depth, trusted, gray, frame.index)
        return depth

    def _aligned(self, filled: np.ndarray, far: float, focus: float | None, trusted: np.ndarray,
                 gray: np.ndarray, state: _State, index: int) -> np.ndarray:
        """``filled`` in the last map's units (moved here by flow), re-anchored a little."""
        flow = self._flow.backward(gray, state.gray)
        prev, prev_trusted, prev_gray = warp_all(flow, state.depth, state.trusted, state.gray)
        agree = consistency(gray, prev_gray)
        fit = fit_affine(filled, prev, trusted * prev_trusted * agree)
        if fit is None:  # nothing to align on: start the normalisation again
            return normalised(filled, far, focus if focus is not None else float(np.percentile(filled, 95)))
        a, b = fit
        dt = max(1, index - state.index) / self.fps
        f0 = (a * far + b) * (1.0 - math.exp(-dt / FAR_SETTLE_S))
        f1 = 1.0
        if focus is not None:
            f1 += (a * focus + b - 1.0) * (1.0 - math.exp(-dt / FOCUS_SETTLE_S))
        span = max(f1 - f0, 1e-3)
        # the new map and the moved history, both in the re-anchored units
        scale, shift = np.float32(a / span), np.float32((b - f0) / span)
        depth = filled * scale + shift
        history = (prev - np.float32(f0)) * np.float32(1.0 / span)
        keep = agree * (np.float32(HISTORY) * prev_trusted)
        return depth + (history - depth) * keep

    def _release(self) -> None:
        self._state = None
        self.estimator.close()


def carried(depth: np.ndarray, gray_from: np.ndarray, gray_to: np.ndarray, flow: FlowEstimator) -> np.ndarray:
    """``depth`` of the picture ``gray_from`` moved to ``gray_to`` by optical flow, kept exactly
    where the picture is still (:func:`livebokeh.mask.tracker.still_weight`).

    Args:
        depth: ``(h, w)`` float32.
        gray_from, gray_to: ``(h, w)`` uint8.
        flow: the estimator (one per thread).

    Returns:
        ``(h, w)`` float32: ``depth`` itself when nothing moved, else a new array.
    """
    still = still_weight(gray_to, gray_from)
    if float(still.min()) >= 1.0:
        return depth
    moved = warp_all(flow.backward(np.ascontiguousarray(gray_to), np.ascontiguousarray(gray_from)), depth)[0]
    return moved + still * (depth - moved)


class ShownDepth:
    """Live: the depth map shown, carried from frame to frame as the live matte carries the mask
    (between neighbouring frames, kept exactly where the picture is still); each new map from
    the tracker is moved from its frame to the frame it arrives at and taken as it is (the
    tracker has smoothed it already). Use from one thread, in frame order."""

    def __init__(self) -> None:
        self._flow = FlowEstimator()
        self._depth: np.ndarray | None = None
        self._gray: np.ndarray | None = None
        self._seen = -1

    def reset(self) -> None:
        self._depth = self._gray = None
        self._seen = -1

    def update(self, gray: np.ndarray, index: int, depth: np.ndarray | None, depth_gray: np.ndarray | None,
               depth_index: int) -> np.ndarray | None:
        """The map of frame ``index``.

        Args:
            gray: the frame as uint8 gray, any size (the live matte's tracking picture).
            index: its number.
            depth: the newest map from :meth:`DepthTracker.update`, of frame ``depth_index``
                (taken once, when it is new), or None.
            depth_gray: that frame as uint8 gray at ``gray``'s size.

        Returns:
            ``(h, w)`` float32 at the map's size, or None before the first map.
        """
        if depth is not None and depth_index > self._seen and depth_gray is not None:
            h, w = depth.shape
            here = _at(gray, (w, h))
            self._depth, self._gray, self._seen = carried(depth, _at(depth_gray, (w, h)), here, self._flow), here, depth_index
            return self._depth
        if self._depth is None or self._gray is None:
            return None
        h, w = self._depth.shape
        here = _at(gray, (w, h))
        self._depth, self._gray = carried(self._depth, self._gray, here, self._flow), here
        return self._depth


def _at(gray: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``gray`` at ``size = (w, h)`` (itself when it is that size)."""
    if gray.shape[1] == size[0] and gray.shape[0] == size[1]:
        return gray
    return cv2.resize(gray, size, interpolation=cv2.INTER_AREA)

