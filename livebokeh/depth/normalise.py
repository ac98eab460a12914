"""From the model's relative inverse depth to a map a lens can use (pure functions).

The network's output is inverse depth (larger = nearer) with no metric scale and no fixed
offset, both changing a little from frame to frame. A lens's blur (the circle of confusion) is
proportional to ``|1/S - 1/S_focus|``, the distance from the focus plane in inverse depth, so
an affine map of the output is all it needs: here **0 is the far end of the background and 1
the focus plane** (the person); a value ``n`` is blurred by ``|1 - n|`` times the far end's
blur (:func:`livebokeh.render.circle_of_confusion`), more than 1 is in front of the person.

- The far end is a low percentile of the background's depth (the person and a margin around
  them left out), so the farthest wall gets the blur ``--blur`` (or ``--fstop``) sets.
- The focus plane is where the person is: when their feet are in view, the depth of the ground
  under their feet (measured on 120 full-body photos of ``../shared/data/stills``, the network
  puts a person's own pixels 12 to 21% nearer the background than the floor they stand on: its
  map is soft around a person); when the frame cuts them, the 75th percentile of their own depth.
- The person's pixels, and a margin around them where the soft map mixes their depth into the
  background's, get the depth of the background around them (push-pull filling), so the
  background next to a person is blurred for its own depth, not theirs.
"""

from __future__ import annotations

import cv2
import numpy as np

from livebokeh.render.fill import push_pull

#: Width of the band around the person whose depth is not trusted, as a share of the map's
#: height (about 5 px of a 320x180 map): the network's map is soft at a person's outline.
MARGIN = 0.03
#: Percentile of the background's depth taken as its far end.
FAR_PERCENTILE = 5.0
#: Percentile of a person's own depth taken as theirs when their feet are out of view.
PERSON_PERCENTILE = 75.0
#: A person whose lowest point is at least this share of the height above the frame's bottom
#: edge stands in view: the focus is the ground under their feet.
FEET_CLEARANCE = 0.02
#: Share of a person's height, from their lowest point, taken as their feet.
FEET = 0.05
#: Fewest person pixels (share of the map) for a focus plane: fewer is nobody in view.
MIN_PERSON = 0.002
#: Smallest span between the focus plane and the far end, in the model's units (flat scenes).
MIN_SPAN = 1e-3


def trusted_background(alpha: np.ndarray, margin: float = MARGIN) -> np.ndarray:
    """Where the depth map measures the background: 0 on the person and a band around them.

    Args:
        alpha: ``(h, w)`` float32 person alpha in ``[0, 1]`` at the depth map's size.
        margin: the band's width as a share of ``h``.

    Returns:
        New ``(h, w)`` float32 in ``[0, 1]``: 1 where the background's depth is trusted.
    """
    h = alpha.shape[0]
    r = max(1, round(margin * h))
    grown = cv2.dilate(alpha, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    w = np.float32(1.0) - np.float32(2.0) * grown
    return np.clip(w, 0.0, 1.0, out=w)


def background_depth(depth: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``depth`` with the untrusted pixels (``weight`` 0: the person, the band around them)
    filled from the trusted background around them (push-pull).

    Args:
        depth: ``(h, w)`` float32.
        weight: ``(h, w)`` float32 in ``[0, 1]`` from :func:`trusted_background`.

    Returns:
        New ``(h, w)`` float32; equal to ``depth`` where ``weight`` is 1. Where nothing is
        trusted (the person fills the frame) it is ``depth`` itself.
    """
    if float(weight.max()) <= 0.0:
        return depth.copy()
    return push_pull(depth * weight, weight)


def far_depth(background: np.ndarray, weight: np.ndarray) -> float:
    """The background's far end: :data:`FAR_PERCENTILE` of its trusted depth (of all of it
    when nothing is trusted)."""
    trusted = background[weight > 0.5]
    return float(np.percentile(trusted if trusted.size >= 16 else background, FAR_PERCENTILE))


def focus_depth(depth: np.ndarray, background: np.ndarray, alpha: np.ndarray) -> float | None:
    """The depth of the focus plane: where the person is (see the module text).

    Args:
        depth: ``(h, w)`` float32, the model's map.
        background: ``(h, w)`` float32, the same with the person filled (:func:`background_depth`).
        alpha: ``(h, w)`` float32 person alpha at the map's size.

    Returns:
        The focus plane's depth in the map's units, or None when nobody is in view.
    """
    h, w = alpha.shape
    person = alpha > 0.5
    if person.sum() < max(4, MIN_PERSON * h * w):
        return None
    rows = np.flatnonzero(person.any(axis=1))
    top, bottom = int(rows[0]), int(rows[-1])
    if bottom < h * (1.0 - FEET_CLEARANCE) - 1:
        # the ground under the feet: the background filled in there from around them (on the
        # generated room, nearer the truth than the floor on the feet's rows either side, where
        # the network's soft map still mixes in the person: rank correlation 0.90 against 0.88)
        feet = person.copy()
        feet[: max(top, bottom - max(1, round(FEET * (bottom - top + 1)))) + 1] = False
        return float(np.median(background[feet]))
    inner = cv2.erode(person.view(np.uint8), np.ones((3, 3), np.uint8)).view(bool)
    return float(np.percentile(depth[inner if inner.any() else person], PERSON_PERCENTILE))


def normalised(depth: np.ndarray, far: float, focus: float) -> np.ndarray:
    """``depth`` mapped so that ``far`` is 0 and ``focus`` is 1: new ``(h, w)`` float32."""
    span = max(focus - far, MIN_SPAN)
    return (depth - np.float32(far)) * np.float32(1.0 / span)


def fit_affine(src: np.ndarray, dst: np.ndarray, weight: np.ndarray) -> tuple[float, float] | None:
    """The ``(a, b)`` that make ``a * src + b`` closest to ``dst`` (weighted least squares), or
    None when the weighted pixels cannot tell (too few, or ``src`` flat over them).

    Args:
        src, dst: ``(h, w)`` float32.
        weight: ``(h, w)`` float32, >= 0.
    """
    total = float(weight.sum())
    if total < 16.0:
        return None
    ms = float((weight * src).sum()) / total
    md = float((weight * dst).sum()) / total
    ds = src - np.float32(ms)
    var = float((weight * ds * ds).sum()) / total
    if var < 1e-8:
        return None
    cov = float((weight * ds * (dst - np.float32(md))).sum()) / total
    a = cov / var
    return a, md - a * ms
