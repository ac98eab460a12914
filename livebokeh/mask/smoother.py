"""Temporal smoothing of masks: the only place where state crosses frames."""

from __future__ import annotations

import numpy as np

from livebokeh.types import Mask


class MaskSmoother:
    """Uncertainty-weighted blending with the previous mask (as in MediaPipe's smoothing).

    Where the model is confident (probability near 0 or 1) the new mask is taken as it is, so a
    moving person is followed without lag; where it hesitates (near 0.5, the shimmering edge) the
    previous value is kept in proportion to ``strength``. Call :meth:`reset` on scene cuts and
    source changes.
    """

    def __init__(self, strength: float) -> None:
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"smoothing strength must be in [0, 1], got {strength}")
        self.strength = float(strength)
        self._previous: np.ndarray | None = None

    def reset(self) -> None:
        self._previous = None

    def update(self, mask: Mask) -> Mask:
        """Blend ``mask`` (model resolution) with the state and return the smoothed mask."""
        current = mask.data
        prev = self._previous
        if self.strength == 0.0 or prev is None or prev.shape != current.shape:
            self._previous = current
            return mask
        # uncertainty 1 at p = 0.5, 0 at p in {0, 1}
        d = current - np.float32(0.5)
        uncertainty = np.float32(1.0) - np.float32(4.0) * d * d
        weight = np.float32(self.strength) * uncertainty
        out = current + (prev - current) * weight
        out = np.clip(out, 0.0, 1.0, out=out).astype(np.float32, copy=False)
        result = Mask(out)
        self._previous = result.data
        return result
