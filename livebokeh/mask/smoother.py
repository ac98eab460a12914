"""Temporal smoothing of masks: the only place where state crosses frames.

Flicker (the edge shimmering while the person sits still) comes from the model changing its mind
a little on every frame; the usual cure, an exponential moving average, makes the mask trail
behind a moving head. Here the previous smoothed mask is first *moved* to the current frame with
dense optical flow, then blended with the new mask:

- where the flow explains the picture (the current frame matches the previous one warped), the
  warped history gets a large weight: still or moving, the edge holds steady without lag;
- where it does not (occlusions, fast motion the flow missed, a scene cut), the new mask is taken;
- where the model is confident (probability near 0 or 1) the new mask counts more, where it
  hesitates (the shimmering edge) the history counts more, as in MediaPipe's smoothing.

:class:`MaskSmoother` is causal (live use). :class:`LookaheadSmoother` also looks at the next
frames (files, where the future is known): each mask is blended with its neighbours warped to it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np

from livebokeh.mask.flow import FlowEstimator, warp_all
from livebokeh.types import Mask

#: Photometric error (gray levels) tolerated as sensor noise.
NOISE_LEVEL = 5.0
#: Further error (gray levels) at which the warped history loses ~63% of its weight.
CONSISTENCY_SCALE = 12.0
#: Largest share of the history in a blend.
MAX_HISTORY = 0.95


def consistency(current: np.ndarray, warped_previous: np.ndarray) -> np.ndarray:
    """How well the warped previous frame explains the current one: ``(h, w)`` float32 in ``(0, 1]``."""
    err = cv2.absdiff(current, warped_previous).astype(np.float32)
    err = cv2.blur(err, (5, 5)) - np.float32(NOISE_LEVEL)
    return np.exp(np.maximum(err, 0.0) * np.float32(-1.0 / CONSISTENCY_SCALE))


def uncertainty(prob: np.ndarray) -> np.ndarray:
    """How unsure a model's output is: ``(h, w)`` float32, 1 at probability 0.5, 0 at 0 or 1."""
    return np.float32(1.0) - np.float32(2.0) * np.abs(prob - np.float32(0.5))


def history_weight(prob: np.ndarray, strength: float, agree: np.ndarray | None,
                   unsure: np.ndarray | None = None) -> np.ndarray:
    """Share of the (warped) history for each pixel.

    With flow (``agree`` given): ``strength`` scaled by how well the flow explains the picture,
    and halved where the model is confident. Without flow: by the model's uncertainty alone
    (confident pixels follow at once, as in MediaPipe's smoothing). ``unsure``: the model's
    :func:`uncertainty`, when ``prob`` is no longer its own output (stretched to an alpha).
    """
    uncertainty_ = uncertainty(prob) if unsure is None else unsure
    if agree is None:
        return np.float32(strength * MAX_HISTORY) * uncertainty_
    return np.float32(strength * MAX_HISTORY) * (np.float32(0.5) + np.float32(0.5) * uncertainty_) * agree


@dataclass
class _State:
    mask: np.ndarray
    gray: np.ndarray | None


class MaskSmoother:
    """Causal, flow-compensated temporal smoothing (see the module text).

    Args:
        strength: 0 (off) to 1 (strongest).
        flow: move the history with optical flow before blending (needs the frames' gray images).
    """

    def __init__(self, strength: float, flow: bool = True) -> None:
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"smoothing strength must be in [0, 1], got {strength}")
        self.strength = float(strength)
        self.flow = flow
        self._flow = FlowEstimator()
        self._state: _State | None = None

    def reset(self) -> None:
        """Forget the history (scene cuts, source changes)."""
        self._state = None

    def update(self, mask: Mask, gray: np.ndarray | None = None) -> Mask:
        """Blend ``mask`` with the history and return the smoothed mask.

        Args:
            mask: the model's mask for this frame (model resolution).
            gray: this frame as ``uint8`` gray at the mask's size (for the flow); None = no flow.
        """
        current = mask.data
        prev = self._state
        if gray is not None and gray.shape != current.shape:
            raise ValueError(f"gray {gray.shape} must match the mask {current.shape}")
        if self.strength == 0.0 or prev is None or prev.mask.shape != current.shape:
            self._state = _State(current, gray)
            return mask
        history, agree = prev.mask, None
        if self.flow and gray is not None and prev.gray is not None:
            f = self._flow.backward(gray, prev.gray)
            history, moved_gray = warp_all(f, prev.mask, prev.gray)
            agree = consistency(gray, moved_gray)
        w = history_weight(current, self.strength, agree)
        out = current + (history - current) * w
        out = np.clip(out, 0.0, 1.0, out=out).astype(np.float32, copy=False)
        result = Mask(out)
        self._state = _State(result.data, gray)
        return result


class LookaheadSmoother:
    """Non-causal smoothing for files: the causal pass, then each mask blended with the next ones.

    Items go in with :meth:`push` and come out ``lookahead`` items later (:meth:`flush` at the
    end gives the rest). The output for frame ``t`` is the causal result at ``t`` averaged with
    the causal results of ``t+1 .. t+lookahead`` warped back to ``t``, each weighted by how well
    the flow explains the picture: a symmetric window, so no side of a motion is favoured.
    """

    def __init__(self, strength: float, lookahead: int = 2, flow: bool = True) -> None:
        self.causal = MaskSmoother(strength, flow)
        self.lookahead = max(0, int(lookahead))
        self.strength = strength
        self._flow = FlowEstimator()
        self._buffer: deque[tuple[object, np.ndarray, np.ndarray | None]] = deque()  # (key, causal mask, gray)

    def reset(self) -> None:
        self.causal.reset()
        self._buffer.clear()

    def push(self, key: object, mask: Mask, gray: np.ndarray | None) -> list[tuple[object, Mask]]:
        """Add one frame's raw mask; returns the (key, smoothed mask) pairs now complete."""
        smoothed = self.causal.update(mask, gray).data
        self._buffer.append((key, smoothed, gray))
        out = []
        while len(self._buffer) > self.lookahead:
            out.append(self._emit(self.lookahead))
        return out

    def flush(self) -> list[tuple[object, Mask]]:
        out = []
        while self._buffer:
            out.append(self._emit(len(self._buffer) - 1))
        return out

    def _emit(self, ahead: int) -> tuple[object, Mask]:
        key, smoothed, gray = self._buffer[0]
        if ahead == 0 or self.strength == 0.0:
            self._buffer.popleft()
            return key, Mask(smoothed)
        total = np.ones_like(smoothed)
        acc = smoothed.copy()
        for i in range(1, ahead + 1):
            _, future, g_future = self._buffer[i]
            if gray is not None and g_future is not None and self.causal.flow:
                f = self._flow.backward(gray, g_future)
                moved, moved_gray = warp_all(f, future, g_future)
                w = consistency(gray, moved_gray) * np.float32(self.strength * 0.5 ** (i - 1))
                acc += moved * w
            else:
                w = np.full_like(smoothed, np.float32(self.strength * 0.5 ** (i - 1)))
                acc += future * w
            total += w
        self._buffer.popleft()
        return key, Mask(np.clip(acc / total, 0.0, 1.0).astype(np.float32))
