"""A virtual camera operator: where the crop should be (:func:`ideal_crop`, pure) and how it gets
there (:class:`Operator`, live; :class:`LookaheadFraming`, files).

A crop keeps the picture's aspect ratio: it is its centre ``(cx, cy)`` and its height ``h``, as
shares of the picture (so its width is ``h`` of the picture's width too); the zoom is ``1 / h``.

The operator moves like a good one: a goal changes only when the person has moved out of a dead
zone around it (so mask noise and a speaker's small movements never move the picture, and a still
speaker's zoom does not pump); the crop follows the goal critically damped (no overshoot) with a
bounded speed; when the person leaves, it waits a moment and then widens to the whole picture,
and when someone appears again (or first) it re-frames three times as fast.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

from livebokeh.config import FramingConfig
from livebokeh.framing.observe import Observation

T = TypeVar("T")

#: Seconds without a person before the crop widens to the whole picture.
LOST_S = 1.0
#: The goal is eased into the spring with a time constant of ``response / EASE``.
EASE = 8.0
#: Closer to the goal than this (a share of the picture: a tenth of a pixel at 720p) is arrived.
SETTLED = 1e-4
#: The person's width is kept inside this share of the crop's width.
SIDE_MARGIN = 0.9


@dataclass(frozen=True)
class Crop:
    """A crop of the picture, in shares of it: centre ``(cx, cy)``, height ``h`` (width ``h`` too)."""

    cx: float
    cy: float
    h: float

    @property
    def zoom(self) -> float:
        return 1.0 / self.h

    def as_array(self) -> np.ndarray:
        return np.array([self.cx, self.cy, self.h], np.float64)

    @staticmethod
    def of(values: np.ndarray) -> Crop:
        return Crop(float(values[0]), float(values[1]), float(values[2]))


WHOLE = Crop(0.5, 0.5, 1.0)


def clamp(crop: Crop, zoom_max: float) -> Crop:
    """``crop`` made possible: at most ``zoom_max`` zoom, never outside the picture."""
    h = min(1.0, max(1.0 / zoom_max, crop.h))
    half = h / 2
    return Crop(min(1.0 - half, max(half, crop.cx)), min(1.0 - half, max(half, crop.cy)), h)


def ideal_crop(obs: Observation, cfg: FramingConfig) -> Crop:
    """Where a careful operator would put the crop for ``obs``: the person (head to the mask's
    bottom) fills ``cfg.share`` of its height, the head's top ``cfg.headroom`` below its top edge,
    the head centred across (several people: all of them, with a margin), within
    ``cfg.zoom_max`` and the picture."""
    person = max(1e-3, obs.bottom - obs.top)
    h = person / cfg.share
    h = max(h, (obs.right - obs.left) / SIDE_MARGIN)  # everyone fits across
    h = min(1.0, max(1.0 / cfg.zoom_max, h))
    cy = obs.top - cfg.headroom * h + h / 2
    cx = obs.head_x if obs.people == 1 else (obs.left + obs.right) / 2
    return clamp(Crop(cx, cy, h), cfg.zoom_max)


def _outside(goal: Crop, ideal: Crop, dead_zone: float) -> bool:
    """The ideal crop has left the dead zone around the goal (position, or size by more than
    ``dead_zone`` of it)."""
    return (abs(ideal.cx - goal.cx) > dead_zone or abs(ideal.cy - goal.cy) > dead_zone
            or abs(ideal.h - goal.h) > dead_zone * goal.h)


class Goals:
    """The goal sequence, frame by frame, in order.

    At rest the goal holds until the ideal crop leaves the dead zone around it; then, like an
    operator who has started a pan, it is the ideal every frame until the person has stopped
    (moved less than a quarter of the dead zone) for ``response`` seconds; after :data:`LOST_S`
    without a person it is the whole picture.
    """

    def __init__(self, cfg: FramingConfig, fps: float) -> None:
        self.cfg = cfg
        self.dt = 1.0 / fps if fps > 0 else 1 / 30
        self.goal = WHOLE
        self.lost_s = LOST_S  # at the start nobody has been seen yet: the first framing is quick
        self.following_s = 0.0  # seconds the goal keeps following the ideal
        self.anchor = WHOLE  # where the person was when last seen moving
        self.jumped = False  # the last move started as a re-frame

    def update(self, obs: Observation | None) -> Crop:
        if obs is None:
            self.lost_s += self.dt
            if self.lost_s >= LOST_S and self.goal != WHOLE:
                self.goal, self.jumped, self.following_s = WHOLE, False, 0.0
            return self.goal
        came_back = self.lost_s >= LOST_S
        self.lost_s = 0.0
        ideal = ideal_crop(obs, self.cfg)
        self.following_s = max(0.0, self.following_s - self.dt)
        if self.following_s <= 0:
            if _outside(self.goal, ideal, self.cfg.dead_zone):  # a new move; after an absence, a re-frame
                self.jumped = came_back
                self.anchor, self.following_s = ideal, self.cfg.response
        elif _outside(self.anchor, ideal, self.cfg.dead_zone / 4):  # still moving
            self.anchor, self.following_s = ideal, self.cfg.response
        if self.following_s > 0:
            self.goal = ideal
        return self.goal


class Operator:
    """Live: the crop for each frame, following the goals critically damped with a bounded speed
    (causal: it knows only the frames so far).

    Args:
        cfg: the framing settings (``response``: seconds to follow a move; ``speed``: most
            shares of the picture a second).
        fps: the stream's frame rate.
    """

    def __init__(self, cfg: FramingConfig, fps: float) -> None:
        self.cfg = cfg
        self.goals = Goals(cfg, fps)
        self.dt = self.goals.dt
        self.pos = WHOLE.as_array()
        self.vel = np.zeros(3)
        self.aim = WHOLE.as_array()  # the goal eased in: the spring never gets a step (no jerk spike)

    def retune(self, cfg: FramingConfig) -> None:
        """New settings (zoom, speed ...) from the next frame on, from where the frame is now:
        the crop eases to the new goal as it would after a move."""
        self.cfg = self.goals.cfg = cfg

    def update(self, obs: Observation | None) -> Crop:
        target = self.goals.update(obs).as_array()
        quick = 3.0 if self.goals.jumped else 1.0
        t = self.dt
        # the goal eased in first, so that the spring never gets a step (no spike of jerk)
        self.aim += (target - self.aim) * (1.0 - math.exp(-t * EASE * quick / self.cfg.response))
        # critically damped spring, solved exactly over one frame (no overshoot from rest); its
        # time constant: a move is 95% done after ``response`` seconds (4.74 / omega)
        omega = quick * 4.74 / self.cfg.response
        e0, v0 = self.pos - self.aim, self.vel
        decay = math.exp(-omega * t)
        e = (e0 + (v0 + omega * e0) * t) * decay
        v = (v0 - omega * (v0 + omega * e0) * t) * decay
        limit = quick * self.cfg.speed
        if (speed := float(np.abs(v).max())) > limit:
            v *= limit / speed
            e = e0 + v * t  # the bounded step
        pos = self.aim + e
        if float(np.abs(pos - target).max()) < SETTLED and float(np.abs(v).max()) < SETTLED * omega:
            pos, v, self.aim = target.copy(), np.zeros(3), target.copy()  # arrived: it stands exactly still
        crop = clamp(Crop.of(pos), self.cfg.zoom_max)
        self.pos, self.vel = crop.as_array(), v
        return crop


class LookaheadFraming(Generic[T]):
    """Files: the goals smoothed both ways over ``cfg.lookahead`` seconds each side (a Gaussian
    window centred on the frame), so a move starts before the person moves and ends after: no lag.
    Holds back that many frames; items come out in order.

    Args:
        cfg: the framing settings.
        fps: the stream's frame rate.
    """

    def __init__(self, cfg: FramingConfig, fps: float) -> None:
        self.goals = Goals(cfg, fps)
        self.half = max(1, round(cfg.lookahead * (fps or 30)))
        sigma = self.half / 2.5
        self._weights = np.exp(-0.5 * (np.arange(-self.half, self.half + 1) / sigma) ** 2)
        self._items: deque[T] = deque()
        self._goals: deque[np.ndarray] = deque()  # the goals of the held items and of up to ``half`` before
        self._first = 0  # index in ``_goals`` of the oldest held item's goal

    @property
    def holds(self) -> int:
        return self.half

    def push(self, item: T, obs: Observation | None) -> list[tuple[T, Crop]]:
        """``item`` and its observation; returns the items now final, with their crops."""
        self._items.append(item)
        self._goals.append(self.goals.update(obs).as_array())
        out = []
        while len(self._items) > self.half:
            out.append(self._pop(ahead=self.half))
        return out

    def flush(self) -> list[tuple[T, Crop]]:
        """The items still held, at the end of the stream."""
        out = []
        while self._items:
            out.append(self._pop(ahead=len(self._items) - 1))
        return out

    def _pop(self, ahead: int) -> tuple[T, Crop]:
        behind = self._first
        goals = np.stack(list(self._goals)[self._first - behind:self._first + ahead + 1])
        w = self._weights[self.half - behind:self.half + ahead + 1]
        crop = clamp(Crop.of((goals * w[:, None]).sum(axis=0) / w.sum()), self.goals.cfg.zoom_max)
        item = self._items.popleft()
        self._first += 1
        if self._first > self.half:  # keep ``half`` goals behind the oldest held item
            self._goals.popleft()
            self._first -= 1
        return item, crop
