"""Push-pull filling: a picture's values where a weight says they are known, filled in elsewhere
from the known values around (a pyramid of the normalised-convolution pair ``image * w``, ``w``)."""

from __future__ import annotations

import cv2
import numpy as np

_EPS = np.float32(1e-4)
#: Weight under which a pixel is filled from coarser levels.
_FILL_BELOW = 0.05


def push_pull(num: np.ndarray, den: np.ndarray, depth: int = 10) -> np.ndarray:
    """``num / den`` where enough weight is present, else filled from coarser levels.

    Where the weight is missing (for a background weight: inside the person) the value comes
    from a coarser pyramid level, i.e. from the nearest weighted pixels around.

    Args:
        num: ``(h, w, 3)`` or ``(h, w)`` float32, ``image * weight`` (possibly pooled).
        den: ``(h, w)`` float32, ``weight`` pooled the same way.

    Returns:
        New float32 shaped like ``num``.
    """
    per_pixel = (lambda a: a[:, :, None]) if num.ndim == 3 else (lambda a: a)
    ratio = num / per_pixel(np.maximum(den, _EPS))
    h, w = den.shape
    if depth == 0 or min(h, w) < 4 or float(den.min()) >= _FILL_BELOW:
        return ratio
    coarse = push_pull(cv2.pyrDown(num), cv2.pyrDown(den), depth - 1)
    coarse = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR)
    keep = per_pixel(np.minimum(den * np.float32(1.0 / _FILL_BELOW), np.float32(1.0)))
    return coarse + (ratio - coarse) * keep
