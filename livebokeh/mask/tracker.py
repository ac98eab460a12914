"""The live matte: the model's masks carried from frame to frame, still where the picture is still.

Live, the model does not see every frame (it rests between runs to leave the cores to the
camera's rate), and its result for a frame arrives a few frames later. :class:`LiveMatte` keeps
the mask that is shown and moves it with the picture:

- every frame, the shown mask is moved from the previous frame to this one by optical flow
  (between neighbouring frames, where the flow is most accurate); where the picture did not
  change (within sensor noise) it is kept exactly as it was, so a still edge cannot shimmer
  from the flow's own noise;
- when a model result arrives (for this frame or an earlier one, moved here by flow), it is
  blended in with :func:`~livebokeh.mask.smoother.history_weight`: where everything moved since
  the last result as the flow said, the history counts as much as in the file mode's smoothing;
  where the flow did not explain the picture, the new result wins;
- :attr:`LiveMatte.motion` and :attr:`LiveMatte.change` count how far the person's edge moved and
  how much of the picture changed, so that the model runs when the picture changes and rests
  while it does not.

Everything runs at the mask's size; the flow at most :data:`TRACK_WIDTH` pixels wide.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np

from livebokeh.mask.flow import FlowEstimator, small_gray, warp_all
from livebokeh.mask.smoother import NOISE_LEVEL, consistency, history_weight

#: The optical flow between frames is computed at most this wide (and scaled to the mask): 0.6 ms
#: a frame here against 1.6 ms at 512 px, for moves of the mask's edge within a pixel of it.
TRACK_WIDTH = 320
#: Frames whose moves are kept to carry a late result along (a model result older than that is
#: moved at once).
TRAIL = 24
#: Results of a new stream blended in without smoothing (the model's memory is still settling).
WARM_RESULTS = 3
#: Tracking pixels a point may move before the history left there counts a third as much against
#: the next model result (the flow carrying a mask drifts with the distance).
TRAVEL_SCALE = 6.0
#: A frame is another picture (a cut, a jump of the camera; what is shown is then no history for
#: the next result) when more than this share of it changed beyond noise since the frame before ...
CUT_CHANGED = 0.2
#: ... and the flow explains the changed part no better than this (mean agreement).
CUT_AGREEMENT = 0.35
#: Gray levels of change (5x5 mean) above :data:`NOISE_LEVEL` at which a pixel counts as moving
#: (between the two, the kept and the moved mask are mixed).
STILL_RAMP = 4.0


@dataclass(frozen=True)
class Measurement:
    """A model result for the live matte.

    Attributes:
        mask: ``(h, w)`` float32, the model's output as an alpha: 0 and 1 are its levels
            for background and person, and a model's confident outputs may lie beyond them
            (:func:`~livebokeh.mask.refine.stretch`; clip what is shown).
        gray: ``(th, tw)`` uint8, the gray picture of its frame at :func:`track_size`.
        index: its frame's number.
        unsure: ``(h, w)`` float32, how unsure the model was (:func:`~livebokeh.mask.smoother.uncertainty`
            of its own output, when ``mask`` is that output stretched); None: taken from ``mask``.
    """

    mask: np.ndarray
    gray: np.ndarray
    index: int
    unsure: np.ndarray | None = None


def track_size(mask_shape: tuple[int, int]) -> tuple[int, int]:
    """``(w, h)`` of the gray pictures the flow is computed on, for a mask of ``(h, w)``: the
    mask's size, brought down to at most :data:`TRACK_WIDTH` wide."""
    h, w = mask_shape
    if w <= TRACK_WIDTH:
        return w, h
    return TRACK_WIDTH, max(1, round(h * TRACK_WIDTH / w))


def track_gray(image: np.ndarray, mask_shape: tuple[int, int]) -> np.ndarray:
    """``image`` ``(H, W, 3)`` uint8 BGR as the ``(th, tw)`` uint8 gray the live matte tracks."""
    return small_gray(image, track_size(mask_shape))


def still_weight(current: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """1 where ``current`` equals ``previous`` within sensor noise, falling to 0 where it moved:
    ``(h, w)`` float32 for two ``(h, w)`` uint8 pictures."""
    err = cv2.blur(cv2.absdiff(current, previous).astype(np.float32), (5, 5))
    return np.clip((np.float32(NOISE_LEVEL + STILL_RAMP) - err) * np.float32(1 / STILL_RAMP), 0.0, 1.0)


def _to_mask(field: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A per-pixel map at the tracking size brought to the mask's ``shape`` (bilinear)."""
    h, w = shape
    if field.shape[:2] == (h, w):
        return field
    return cv2.resize(field, (w, h), interpolation=cv2.INTER_LINEAR)


class LiveMatte:
    """The mask shown live (see the module text). Use from one thread.

    Args:
        strength: temporal smoothing, 0 (each result as it is) to 1 (strongest).
        flow: move the mask with optical flow (False: it stays where the model saw it).
    """

    def __init__(self, strength: float = 1.0, flow: bool = True) -> None:
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"smoothing strength must be in [0, 1], got {strength}")
        self.strength, self.flow = float(strength), flow
        self._flow = FlowEstimator()
        #: the moves between the last frames shown: (frame number, flow from the frame before,
        #: its stillness, the box that changed), to carry late results along
        self._trail: deque[tuple[int, np.ndarray | None, np.ndarray, tuple[int, int, int, int] | None]] = deque(
            maxlen=TRAIL)
        self._mask: np.ndarray | None = None
        self._gray: np.ndarray | None = None
        self._agree: np.ndarray | None = None  # how well the moves since the last result explain the picture
        self._seen = -1  # the newest result blended in
        self._results = 0  # results blended in since the stream started
        self._from = 0  # results of earlier frames belong to another stream
        #: How far the person's edge moved, in pixels of the mask summed over the frames so far
        #: (a running total: the model's pacing takes differences).
        self.motion = 0.0
        #: The share of the picture that changed, summed over the frames so far (someone coming
        #: into an empty picture moves no edge yet).
        self.change = 0.0
        #: Frames whose mask was moved to them from an earlier frame's.
        self.moved = 0

    def reset(self, index: int = 0) -> None:
        """Forget the stream (a new one starts at frame ``index``)."""
        self._mask = self._gray = self._agree = None
        self._seen, self._from, self._results = -1, index, 0
        self._trail.clear()

    @property
    def shape(self) -> tuple[int, int] | None:
        return None if self._mask is None else (int(self._mask.shape[0]), int(self._mask.shape[1]))

    def convert(self, old: tuple[float, float], new: tuple[float, float], shape: tuple[int, int]) -> None:
        """Another model takes over (a backend or its size changed mid-stream): what is shown is
        kept, in the new model's terms, so the new results blend into it rather than jump.

        Args:
            old, new: the model outputs ``(low, high)`` that map to alpha 0 and 1 before and
                after (``mask.low``/``mask.high`` as resolved for each: ``(0, 1)`` for a matte).
            shape: ``(h, w)`` of the new model's masks.
        """
        if self._mask is None:
            return
        (lo0, hi0), (lo1, hi1) = old, new
        alpha = (self._mask - np.float32(lo0)) * np.float32(1 / (hi0 - lo0))
        mask = np.float32(lo1) + alpha * np.float32(hi1 - lo1)
        h, w = shape
        if mask.shape != (h, w):
            mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR)
        tw, th = track_size(shape)
        gray = self._gray
        if gray is not None and gray.shape != (th, tw):
            gray = cv2.resize(gray, (tw, th), interpolation=cv2.INTER_AREA)
        self._mask, self._gray = mask.astype(np.float32, copy=False), gray
        self._agree = np.ones((th, tw), np.float32)
        self._trail.clear()  # its moves were at the old tracking size

    def update(self, gray: np.ndarray, index: int, result: Measurement | None = None) -> np.ndarray | None:
        """The mask of frame ``index``.

        Args:
            gray: the frame as ``(th, tw)`` uint8 gray (:func:`track_gray`).
            index: its number (increasing).
            result: the newest model result (it is blended in once, when it is new).

        Returns:
            ``(h, w)`` float32 in the results' terms (a new array, or the previous one when nothing
            moved and nothing came), or None before the first result.
        """
        if result is not None and (result.index <= self._seen or result.index < self._from):
            result = None
        if self._mask is not None and self._gray is not None and self._gray.shape != gray.shape:
            self.reset(self._from)  # another tracking size: another stream
        if self._mask is None:
            if self._gray is not None and self._gray.shape == gray.shape:
                self._step(gray, self._gray, index)  # the trail, for the first result to come along
            self._gray = gray
            if result is None:
                return None
            mask = self._moved_here(result, gray)
            self._set(mask, gray, result.index)
            return mask
        mask, agree = self._propagate(gray, index)
        if result is not None:
            m = self._moved_here(result, gray)
            if m.shape != mask.shape:  # another model size: start from the new result
                mask, agree = m, np.ones(gray.shape, np.float32)
            # the first results of a stream are taken as they come: a model warming up (a fresh
            # recurrent memory) refines its first masks fast, and history would hold them back
            strength = self.strength if self._results >= WARM_RESULTS else 0.0
            unsure = None
            if result.unsure is not None and result.unsure.shape == m.shape:
                unsure = self._moved_here(dataclasses.replace(result, mask=result.unsure), gray)
            w = history_weight(m, strength, _to_mask(agree, m.shape), unsure)
            mask = m + (mask - m) * w
            self._set(mask, gray, result.index)
            return mask
        self._mask, self._gray, self._agree = mask, gray, agree
        return mask

    def _set(self, mask: np.ndarray, gray: np.ndarray, seen: int) -> None:
        self._mask, self._gray, self._seen = mask, gray, seen
        self._results += 1
        self._agree = np.ones(gray.shape, np.float32)

    def _propagate(self, gray: np.ndarray, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The shown mask and its agreement (at the tracking size) moved from the previous frame
        to this one (frame ``index``). The mask is warped only in the box around what changed,
        and kept exactly where the picture is still; the move is kept on the trail."""
        prev_mask, prev_gray, agree = self._mask, self._gray, self._agree
        still, f, box = self._step(gray, prev_gray, index)
        if f is None or box is None:
            return prev_mask, agree  # nothing moved: the very same mask
        moved_gray, moved_agree = warp_all(f, prev_gray, agree)
        step = consistency(gray, moved_gray)
        changed = still < 0.5
        if changed.mean() > CUT_CHANGED and float(step[changed].mean()) < CUT_AGREEMENT:
            agree = np.zeros_like(agree)  # another picture (a cut, a jump): the next result is taken as it is
        else:
            # what moved was carried by the flow, which drifts (and agrees with anything on a plain
            # wall): the farther it moved since the last result, the more the next result counts
            travelled = cv2.magnitude(f[..., 0], f[..., 1]) * (still - np.float32(1.0)) * np.float32(1.0 / TRAVEL_SCALE)
            agree = moved_agree * step * np.exp(travelled)  # (where the picture is still, nothing travelled)
        self._measure_motion(f, prev_mask)
        self.moved += 1
        return _warp_box(prev_mask, f, still, box), agree

    def _step(self, gray: np.ndarray, prev_gray: np.ndarray, index: int) -> tuple[np.ndarray, np.ndarray | None,
                                                                               tuple[int, int, int, int] | None]:
        """The move from the frame before to frame ``index``: its stillness, the flow (None when
        nothing moved, or without flow) and the box that changed; kept on the trail."""
        still = still_weight(gray, prev_gray)
        self.change += 1.0 - float(still.mean())
        box = _changed_box(still)
        f = self._flow.backward(gray, prev_gray) if self.flow and box is not None else None
        self._trail.append((index, f, still, box))
        return still, f, box

    def _measure_motion(self, f: np.ndarray, mask: np.ndarray) -> None:
        """Add this frame's move of the edge (mean flow length where the mask is fractional,
        in mask pixels) to :attr:`motion`."""
        fh, fw = f.shape[:2]
        small = np.clip(cv2.resize(mask, (fw, fh), interpolation=cv2.INTER_AREA), 0.0, 1.0)
        edge = small * (1.0 - small)
        total = float(edge.sum())
        if total < 1e-3:
            return
        length = cv2.magnitude(f[..., 0], f[..., 1])
        self.motion += float((edge * length).sum()) / total * (mask.shape[1] / fw)

    def _moved_here(self, result: Measurement, gray: np.ndarray) -> np.ndarray:
        """The result's mask moved from its frame to this one (as it is when that is this frame):
        along the trail of moves between the frames shown since its frame, when its frame was
        shown (consecutive frames: the flow at its most accurate; measured on the animated head
        of the data, 9 frames on, IoU 0.95 with the model's own mask against 0.86 moved at once),
        else at once by the flow between its frame and this one."""
        mask = result.mask
        if not self.flow or result.gray.shape != gray.shape:
            return mask.copy()
        steps = [i for i, step in enumerate(self._trail) if step[0] == result.index]
        if steps and steps[-1] < len(self._trail) - 1:
            moved = mask
            for _index, f, still, box in list(self._trail)[steps[-1] + 1:]:
                if f is not None and box is not None:
                    moved = _warp_box(moved, f, still, box)
            return moved if moved is not mask else mask.copy()
        if steps:
            return mask.copy()  # its frame is this one
        still = still_weight(gray, result.gray)
        box = _changed_box(still)
        if box is None:
            return mask.copy()
        return _warp_box(mask, self._flow.backward(gray, result.gray), still, box)


#: Tracking pixels around what changed that are warped too (the flow's own reach).
BOX_MARGIN = 4


def _changed_box(still: np.ndarray) -> tuple[int, int, int, int] | None:
    """``(x0, y0, x1, y1)`` at the tracking size around the pixels that are not still, with a
    margin; None when everything is still."""
    moving = still < 1.0
    rows, cols = np.flatnonzero(moving.any(axis=1)), np.flatnonzero(moving.any(axis=0))
    if rows.size == 0:
        return None
    h, w = still.shape
    return (max(0, int(cols[0]) - BOX_MARGIN), max(0, int(rows[0]) - BOX_MARGIN),
            min(w, int(cols[-1]) + 1 + BOX_MARGIN), min(h, int(rows[-1]) + 1 + BOX_MARGIN))


def _warp_box(mask: np.ndarray, f: np.ndarray, still: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """``mask`` (at its own size) moved by the backward flow ``f`` (at the tracking size) inside
    ``box`` (tracking pixels), kept where ``still``; a new array."""
    h, w = mask.shape
    fh, fw = f.shape[:2]
    sx, sy = w / fw, h / fh
    x0, y0, x1, y1 = box
    mx0, my0 = int(x0 * sx), int(y0 * sy)
    mx1, my1 = min(w, int(np.ceil(x1 * sx))), min(h, int(np.ceil(y1 * sy)))
    size = (mx1 - mx0, my1 - my0)
    # the flow and the stillness over the box, at the mask's size (pixel centres aligned)
    f_box = cv2.resize(f[y0:y1, x0:x1], size, interpolation=cv2.INTER_LINEAR)
    keep = cv2.resize(still[y0:y1, x0:x1], size, interpolation=cv2.INTER_LINEAR)
    xs = np.arange(mx0, mx1, dtype=np.float32)
    ys = np.arange(my0, my1, dtype=np.float32)
    map_x = f_box[..., 0] * np.float32(sx) + xs[None, :]
    map_y = f_box[..., 1] * np.float32(sy) + ys[:, None]
    moved = cv2.remap(mask, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    out = mask.copy()
    region = out[my0:my1, mx0:mx1]
    region += (moved - region) * (1.0 - keep)
    return out


def _scaled_flow(f: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A flow field at the tracking size as the flow of a mask of ``shape`` (sizes and lengths scaled)."""
    h, w = shape
    fh, fw = f.shape[:2]
    if (fh, fw) == (h, w):
        return f
    out = cv2.resize(f, (w, h), interpolation=cv2.INTER_LINEAR)
    out[..., 0] *= np.float32(w / fw)
    out[..., 1] *= np.float32(h / fh)
    return out
