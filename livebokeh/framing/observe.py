"""Where the people are, from the person mask: pure functions.

Coordinates are shares of the picture: ``x`` of its width, ``y`` of its height, ``(0, 0)`` the
top left corner.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: A region smaller than this share of the picture is noise, not a person.
MIN_AREA = 0.004
#: Another region counts as a second person when at least this share of the largest one's area.
SECOND_PERSON = 0.25


@dataclass(frozen=True)
class Observation:
    """The people in one frame.

    Attributes:
        top: the top of the highest head.
        bottom: the bottom of the mask (a webcam's half-body person: the picture's bottom).
        left, right: the sides of every person kept.
        head_x: the horizontal centre of the main person's head (of everyone's, for several).
        people: regions counted as people (see :data:`SECOND_PERSON`).
    """

    top: float
    bottom: float
    left: float
    right: float
    head_x: float
    people: int


def observe(alpha: np.ndarray, threshold: float = 0.5) -> Observation | None:
    """The people in a person mask or matte.

    Args:
        alpha: (H, W) float32 in [0, 1], at any resolution (the model's is enough).
        threshold: alpha above this is the person.

    Returns:
        None when no region is large enough to be a person.

    Rule for several people: every region at least :data:`SECOND_PERSON` of the largest one's
    area is kept and framed together (a second person entering widens the frame); smaller ones
    (a hand, a passer-by far behind) are ignored.
    """
    h, w = alpha.shape
    binary = (alpha > threshold).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    if n <= 1:
        return None
    areas = stats[1:, cv2.CC_STAT_AREA]
    largest = int(areas.max())
    if largest < MIN_AREA * h * w:
        return None
    kept = [i + 1 for i, a in enumerate(areas) if a >= SECOND_PERSON * largest and a >= MIN_AREA * h * w]
    x0 = min(stats[i, cv2.CC_STAT_LEFT] for i in kept)
    y0 = min(stats[i, cv2.CC_STAT_TOP] for i in kept)
    x1 = max(stats[i, cv2.CC_STAT_LEFT] + stats[i, cv2.CC_STAT_WIDTH] for i in kept)
    y1 = max(stats[i, cv2.CC_STAT_TOP] + stats[i, cv2.CC_STAT_HEIGHT] for i in kept)
    if len(kept) == 1:
        # the head: the mask's rows near its top (a tenth of the person's height, at least 3 rows)
        main = kept[0]
        top = stats[main, cv2.CC_STAT_TOP]
        rows = max(3, int(0.1 * stats[main, cv2.CC_STAT_HEIGHT]))
        _, xs = np.nonzero(labels[top:top + rows] == main)
        head_x = (float(xs.mean()) + 0.5) / w if xs.size else (x0 + x1) / 2 / w
    else:
        head_x = (x0 + x1) / 2 / w
    return Observation(top=y0 / h, bottom=y1 / h, left=x0 / w, right=x1 / w, head_x=head_x, people=len(kept))
