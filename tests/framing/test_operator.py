"""The operator's behaviour on synthetic paths: dead zone, damping, bounds, people leaving and coming."""

from __future__ import annotations

import numpy as np
import pytest

from livebokeh.config import FramingConfig
from livebokeh.framing import (
    WHOLE,
    Crop,
    LookaheadFraming,
    Observation,
    Operator,
    ideal_crop,
    observe,
)
from livebokeh.framing.operator import LOST_S, clamp

FPS = 30.0


def person(x: float, top: float = 0.3, width: float = 0.3, bottom: float = 1.0) -> Observation:
    """A half-body person whose head is centred at ``x``."""
    return Observation(top=top, bottom=bottom, left=x - width / 2, right=x + width / 2, head_x=x, people=1)


def run(op: Operator, observations) -> list[Crop]:
    return [op.update(o) for o in observations]


def test_the_ideal_crop_places_the_head_and_fills_the_frame():
    cfg = FramingConfig()
    c = ideal_crop(person(0.4, top=0.4), cfg)
    assert c.h == pytest.approx(0.6 / cfg.share)  # head to bottom fills `share` of the crop
    top_in_crop = (0.4 - (c.cy - c.h / 2)) / c.h
    assert top_in_crop == pytest.approx(cfg.headroom, abs=1e-6) or c.cy == pytest.approx(1 - c.h / 2)
    assert c.cx == pytest.approx(0.4)
    # never beyond zoom_max, never outside the picture
    tiny = ideal_crop(person(0.02, top=0.9, width=0.05), cfg)
    assert tiny.h == pytest.approx(1 / cfg.zoom_max) and tiny.cx - tiny.h / 2 >= 0 and tiny.cy + tiny.h / 2 <= 1


def test_two_people_are_framed_together():
    cfg = FramingConfig()
    both = Observation(top=0.35, bottom=1.0, left=0.1, right=0.8, head_x=0.45, people=2)
    c = ideal_crop(both, cfg)
    assert c.cx - c.h / 2 <= 0.1 and c.cx + c.h / 2 >= 0.8  # both inside


def test_observe_finds_the_person_the_head_and_a_second_person():
    a = np.zeros((144, 256), np.float32)
    a[50:, 100:140] = 1.0  # a body
    a[30:50, 110:130] = 1.0  # a head
    o = observe(a)
    assert o.people == 1 and o.top == pytest.approx(30 / 144) and o.bottom == 1.0
    assert o.head_x == pytest.approx(120 / 256, abs=0.01)
    a[60:, 10:40] = 1.0  # a second person, large enough
    a[5:8, 250:253] = 1.0  # a speck: ignored
    o2 = observe(a)
    assert o2.people == 2 and o2.left == pytest.approx(10 / 256) and o2.right == pytest.approx(140 / 256)
    assert observe(np.zeros((144, 256), np.float32)) is None


def test_small_movements_inside_the_dead_zone_never_move_the_frame():
    cfg = FramingConfig()
    op = Operator(cfg, FPS)
    run(op, [person(0.5)] * 90)  # settle
    settled = op.update(person(0.5))
    rng = np.random.default_rng(0)
    # mask noise and a speaker swaying: within the dead zone
    crops = run(op, [person(0.5 + rng.uniform(-0.8, 0.8) * cfg.dead_zone, top=0.3 + rng.uniform(-0.02, 0.02))
                     for _ in range(300)])
    assert all(c == settled for c in crops)  # not a pixel: no jitter, no zoom pumping


def test_a_step_is_followed_critically_damped_within_the_speed_limit():
    cfg = FramingConfig()
    op = Operator(cfg, FPS)
    run(op, [person(0.35)] * 120)
    start = op.update(person(0.35))
    crops = run(op, [person(0.55)] * 120)  # a step to one side, beyond the dead zone
    xs = np.array([c.cx for c in crops])
    goal = ideal_crop(person(0.55), cfg).cx
    assert np.all(np.diff(xs) >= -1e-12)  # monotonic: no oscillation
    assert xs.max() <= goal + 1e-9  # no overshoot
    assert abs(xs[-1] - goal) < 0.005  # arrived
    speed = np.abs(np.diff(np.concatenate([[start.cx], xs]))) * FPS
    assert speed.max() <= cfg.speed + 1e-9
    settle = int(np.argmax(np.abs(xs - goal) < 0.05 * abs(goal - start.cx)))
    assert settle / FPS <= cfg.response * 1.5 + abs(goal - start.cx) / cfg.speed


def test_bounds_hold_whatever_the_person_does():
    cfg = FramingConfig(zoom_max=2.0)
    op = Operator(cfg, FPS)
    rng = np.random.default_rng(1)
    for _ in range(600):
        o = None if rng.random() < 0.1 else person(rng.uniform(0, 1), top=rng.uniform(0, 0.95),
                                                   width=rng.uniform(0.01, 1))
        c = op.update(o)
        assert 0.5 - 1e-9 <= c.h <= 1.0 + 1e-9
        assert c.cx - c.h / 2 >= -1e-9 and c.cx + c.h / 2 <= 1 + 1e-9
        assert c.cy - c.h / 2 >= -1e-9 and c.cy + c.h / 2 <= 1 + 1e-9


def test_a_person_leaving_widens_the_frame_and_coming_back_reframes_quickly():
    cfg = FramingConfig()
    op = Operator(cfg, FPS)
    run(op, [person(0.7, top=0.5)] * 90)
    gone = run(op, [None] * int(4 * FPS))
    assert gone[int(LOST_S * FPS) - 2].h < 1.0  # it waits a moment first
    assert gone[-1] == WHOLE or abs(gone[-1].h - 1.0) < 0.01
    back = run(op, [person(0.6, top=0.5)] * int(2 * FPS))  # back, near where the frame is
    goal = ideal_crop(person(0.6, top=0.5), cfg)

    def arrival(crops):
        return next(i for i, c in enumerate(crops) if abs(c.cx - goal.cx) < 0.005 and abs(c.h - goal.h) < 0.005) / FPS

    quick = arrival(back)  # a re-frame: a long way (zoom 1 -> 1.7, a pan), at the quick pace
    op2 = Operator(cfg, FPS)  # an ordinary move of a person in sight: the operator's own pace
    run(op2, [person(0.48, top=0.5)] * int(4 * FPS))
    assert quick < arrival(run(op2, [person(0.6, top=0.5)] * int(4 * FPS)))  # a short way, slower


def test_files_with_look_ahead_start_before_the_move_and_keep_every_item_in_order():
    cfg = FramingConfig(lookahead=0.5)
    framing = LookaheadFraming(cfg, FPS)
    path = [person(0.35)] * 60 + [person(0.6)] * 60
    out = []
    for i, o in enumerate(path):
        out += framing.push(i, o)
    out += framing.flush()
    assert [i for i, _ in out] == list(range(120))
    xs = np.array([c.cx for _, c in out])
    assert xs[55] > xs[0] + 0.01  # already moving before the person moved at frame 60: no lag
    mid = (ideal_crop(person(0.35), cfg).cx + ideal_crop(person(0.6), cfg).cx) / 2
    assert abs(xs[60] - mid) < 0.03  # half-way when the person moves
    assert np.all(np.diff(xs) >= -1e-12)  # smooth, one way
    live = np.array([c.cx for c in run(Operator(cfg, FPS), path)])
    assert live[59] == pytest.approx(live[45])  # live cannot know before: still where it settled


def test_clamp_keeps_the_crop_inside():
    assert clamp(Crop(0.0, 0.0, 0.2), 2.0) == Crop(0.25, 0.25, 0.5)
    assert clamp(Crop(0.9, 0.5, 1.5), 2.0) == WHOLE
