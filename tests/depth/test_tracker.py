"""The depth tracker (depth/tracker.py) with a stand-in model: runs, steadiness, flow, reset."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from livebokeh.depth import DepthTracker
from livebokeh.depth.tracker import ShownDepth
from livebokeh.types import Frame
from tests.conftest import FakeDepthModel as FakeModel

W, H = 320, 180


def room(shift: int = 0) -> np.ndarray:
    """A textured far wall (blue 50) over a floor whose blue rises from 60 to 250 downwards; the
    texture (green, red) moves ``shift`` px to the right."""
    rng = np.random.default_rng(7)
    tex = cv2.GaussianBlur(rng.integers(0, 255, (H, W + 64), dtype=np.uint8), (0, 0), 2)
    img = np.zeros((H, W, 3), np.uint8)
    img[:, :, 1] = tex[:, 32 - shift : 32 - shift + W]
    img[:, :, 2] = 255 - img[:, :, 1]
    img[:, :, 0] = 50
    img[90:, :, 0] = np.linspace(60, 250, H - 90).astype(np.uint8)[:, None]
    return img


def person_mask(bottom: int = 150) -> np.ndarray:
    a = np.zeros((H, W), np.float32)
    a[40 : bottom + 1, 140:180] = 1.0
    return a


def frame(i: int, image: np.ndarray, fps: float = 30.0) -> Frame:
    return Frame(image, i, round(i * 1e9 / fps))


def test_files_run_the_model_on_every_frame_and_normalise_far_to_0_and_the_feet_to_1():
    model = FakeModel()
    tracker = DepthTracker(model, live=False)
    img, a = room(), person_mask(bottom=150)
    for i in range(5):
        f = frame(i, img)
        depth = tracker.update(f, tracker.estimate(f), a)
    assert model.calls == 5 and tracker.runs == 5 and tracker.moved == 0
    assert depth.shape == (90, 160) and depth.dtype == np.float32
    assert np.median(depth[10:40]) == pytest.approx(0.0, abs=0.02)  # the wall, the far end
    assert 0.85 < np.median(depth[73:76, 40:60]) < 1.05  # the floor beside the feet: near focus
    assert depth[89].mean() > 1.0  # the floor in front of the person is nearer than the focus


def test_live_runs_the_model_at_its_rate_by_the_frames_capture_times():
    model = FakeModel()
    tracker = DepthTracker(model, live=True, rate=2.0)
    img, a = room(), person_mask()
    ran = []
    for i in range(61):
        f = frame(i, img)
        raw = tracker.estimate(f)
        if raw is not None:
            ran.append(i)
        out = tracker.update(f, raw, a)
        assert out is not None
    assert ran == [0, 15, 30, 45, 60] and model.calls == 5
    assert tracker.moved == 56


def test_the_networks_drifting_scale_and_offset_do_not_reach_the_map():
    img, a = room(), person_mask()
    steady = DepthTracker(FakeModel(), live=False)
    drifting = DepthTracker(FakeModel(jitter=0.2), live=False)
    ref = None
    worst = 0.0
    background = cv2.resize(a, (160, 90), interpolation=cv2.INTER_AREA) == 0
    for i in range(30):
        f = frame(i, img)
        ref = steady.update(f, steady.estimate(f), a)
        out = drifting.update(f, drifting.estimate(f), a)
        if i >= 5:
            worst = max(worst, float(np.abs(out - ref)[background].max()))
    assert worst < 0.01


def test_between_live_runs_the_map_moves_with_the_picture():
    """The floor's texture moves 2 px a frame: the map moved by flow matches the model's own map
    of the new frame far better than the stale one does."""
    model = FakeModel()
    tracker = DepthTracker(model, live=True, rate=1.0)
    rng = np.random.default_rng(1)
    base = cv2.GaussianBlur(rng.integers(0, 255, (H, W + 64), dtype=np.uint8), (0, 0), 3)
    base = cv2.normalize(base, None, 0, 255, cv2.NORM_MINMAX)  # a contrasty texture, as a room's

    def picture(shift: int) -> np.ndarray:
        img = np.zeros((H, W, 3), np.uint8)
        img[:, :, 0] = base[:, 32 - shift : 32 - shift + W]  # depth follows the texture
        img[:, :, 1] = 255 - img[:, :, 0]
        img[:, :, 2] = 128
        return img

    no_one = np.zeros((H, W), np.float32)
    first = tracker.update(frame(0, picture(0)), tracker.estimate(frame(0, picture(0))), no_one)
    moved = tracker.update(frame(8, picture(16)), None, no_one)
    assert tracker.moved == 1
    truth = DepthTracker(FakeModel(), live=False)
    direct = truth.update(frame(8, picture(16)), truth.estimate(frame(8, picture(16))), no_one)
    inner = (slice(10, -10), slice(20, -20))
    err_moved = np.abs(moved - direct)[inner].mean()
    err_stale = np.abs(first - direct)[inner].mean()
    assert err_moved < 0.35 * err_stale


def test_the_map_shown_is_carried_frame_to_frame_and_kept_where_the_picture_is_still():
    rng = np.random.default_rng(2)
    base = cv2.normalize(cv2.GaussianBlur(rng.integers(0, 255, (90, 160 + 40), dtype=np.uint8), (0, 0), 2),
                         None, 0, 255, cv2.NORM_MINMAX)
    depth = cv2.GaussianBlur(rng.random((90, 160 + 40)).astype(np.float32), (0, 0), 3)

    def at(shift):
        return base[:, 20 - shift : 20 - shift + 160], depth[:, 20 - shift : 20 - shift + 160]

    shown = ShownDepth()
    g0, d0 = at(0)
    assert shown.update(g0, 0, None, None, -1) is None  # nothing yet
    first = shown.update(g0, 0, d0, g0, 0)
    np.testing.assert_array_equal(first, d0)
    assert shown.update(g0, 1, d0, g0, 0) is first  # an old map is not taken again; a still picture keeps it
    for i in range(1, 6):  # the picture moves 2 px a frame: the map follows it
        g, _ = at(2 * i)
        out = shown.update(g, 1 + i, None, None, -1)
    _, truth = at(10)
    inner = (slice(5, -5), slice(15, -15))
    assert np.abs(out - truth)[inner].mean() < 0.3 * np.abs(d0 - truth)[inner].mean()
    g, d = at(10)
    np.testing.assert_array_equal(shown.update(g, 7, d, g, 7), d)  # a new map of this very frame
    shown.reset()
    assert shown.update(g, 8, None, None, -1) is None


def test_reset_forgets_and_close_closes_the_model_once():
    model = FakeModel()
    tracker = DepthTracker(model, live=True)
    img, a = room(), person_mask()
    f = frame(0, img)
    assert tracker.update(f, None, a) is None  # nothing yet to move
    assert tracker.update(f, tracker.estimate(f), a) is not None
    tracker.reset()
    assert tracker.update(frame(1, img), None, a) is None
    assert tracker.estimate(frame(1, img)) is not None  # due again at once after a reset
    with tracker:
        pass
    tracker.close()
    assert model.closed == 1


def test_rate_must_be_positive():
    with pytest.raises(ValueError):
        DepthTracker(FakeModel(), live=True, rate=0.0)
