import numpy as np
import pytest

from livebokeh.mask import LookaheadSmoother, MaskSmoother
from livebokeh.types import Mask
from tests.conftest import iou

H, W = 144, 256


def _texture(seed=3):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (H // 4, W // 4), dtype=np.uint8)
    import cv2

    return cv2.resize(base, (W, H), interpolation=cv2.INTER_CUBIC)


def _square(x, y=40, size=50):
    m = np.zeros((H, W), np.float32)
    m[y : y + size, x : x + size] = 1.0
    return m


def _scene(x, rng, noise=4.0):
    """Gray frame: a textured background and a brighter textured square at x, with sensor noise."""
    g = _texture().astype(np.float32)
    sq = _square(x) > 0
    g[sq] = np.clip(np.roll(_texture(9), x, axis=1)[sq].astype(np.float32) * 0.5 + 120, 0, 255)
    g += rng.normal(0, noise, g.shape)
    return np.clip(g, 0, 255).astype(np.uint8)


def _jitter(mask, rng):
    """What a model does on a still scene: the edge wobbles from frame to frame."""
    import cv2

    soft = cv2.GaussianBlur(mask, (0, 0), 2.0)
    noisy = soft + rng.normal(0, 0.12, mask.shape).astype(np.float32) * (soft * (1 - soft) * 4)
    return Mask(np.clip(noisy, 0, 1).astype(np.float32))


def _flicker(masks):
    return float(np.mean([np.abs(a - b).mean() for a, b in zip(masks[1:], masks[:-1])]))


def test_still_scene_with_noise_gives_a_near_constant_mask():
    rng = np.random.default_rng(0)
    truth = _square(100)
    raw = [_jitter(truth, rng) for _ in range(40)]
    grays = [_scene(100, rng) for _ in range(40)]
    sm = MaskSmoother(0.8, flow=True)
    out = [sm.update(m, g).data for m, g in zip(raw, grays)]
    assert _flicker(out[5:]) < 0.4 * _flicker([m.data for m in raw][5:])
    assert iou(out[-1] > 0.5, truth > 0.5) > 0.95


def test_a_square_moving_8px_per_frame_is_followed_without_lag():
    rng = np.random.default_rng(1)
    sm = MaskSmoother(0.8, flow=True)
    for t in range(20):
        x = 10 + 8 * t
        got = sm.update(_jitter(_square(x), rng), _scene(x, rng)).data
        assert iou(got > 0.5, _square(x) > 0.5) > 0.9, t


def test_without_flow_an_ema_would_trail_but_confident_pixels_still_follow():
    sm = MaskSmoother(1.0, flow=False)
    sm.update(Mask(np.zeros((8, 8), np.float32)))
    np.testing.assert_array_equal(sm.update(Mask(np.ones((8, 8), np.float32))).data, 1.0)


def test_zero_strength_passes_through_and_reset_forgets():
    m1 = Mask(np.full((4, 4), 0.5, np.float32))
    m2 = Mask(np.full((4, 4), 0.6, np.float32))
    off = MaskSmoother(0.0)
    off.update(m1)
    assert off.update(m2) is m2
    on = MaskSmoother(1.0, flow=False)
    on.update(m1)
    assert on.update(m2).data[0, 0] < 0.6
    on.reset()
    assert on.update(m2) is m2
    with pytest.raises(ValueError):
        MaskSmoother(1.5)
    with pytest.raises(ValueError, match="must match"):
        on.update(m2, np.zeros((3, 3), np.uint8))


def test_lookahead_delays_then_flushes_every_frame_in_order():
    rng = np.random.default_rng(2)
    la = LookaheadSmoother(0.8, lookahead=2)
    out = []
    for t in range(10):
        x = 10 + 8 * t
        got = la.push(t, _jitter(_square(x), rng), _scene(x, rng))
        assert len(got) == (1 if t >= 2 else 0)
        out += got
    out += la.flush()
    assert [k for k, _ in out] == list(range(10))
    for t, m in out:
        assert iou(m.data > 0.5, _square(10 + 8 * t) > 0.5) > 0.9, t
