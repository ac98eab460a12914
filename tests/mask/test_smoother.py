import numpy as np
import pytest

from livebokeh.mask import MaskSmoother
from livebokeh.types import Mask


def _flicker(masks):
    return float(np.mean([np.abs(a - b).mean() for a, b in zip(masks[1:], masks[:-1])]))


def test_still_scene_with_noisy_edge_gives_a_steadier_mask():
    rng = np.random.default_rng(0)
    base = np.zeros((64, 64), np.float32)
    base[:, 32:] = 1
    base[:, 30:34] = 0.5  # the uncertain edge
    raw = [Mask(np.clip(base + rng.normal(0, 0.15, base.shape) * (base == 0.5), 0, 1).astype(np.float32)) for _ in range(40)]
    sm = MaskSmoother(0.8)
    smoothed = [sm.update(m).data for m in raw]
    assert _flicker(smoothed[5:]) < 0.5 * _flicker([m.data for m in raw][5:])


def test_confident_pixels_follow_at_once():
    sm = MaskSmoother(1.0)
    a = np.zeros((8, 8), np.float32)
    b = np.ones((8, 8), np.float32)
    sm.update(Mask(a))
    np.testing.assert_array_equal(sm.update(Mask(b)).data, b)  # a moving head does not trail


def test_zero_strength_passes_through_and_reset_forgets():
    m1 = Mask(np.full((4, 4), 0.5, np.float32))
    m2 = Mask(np.full((4, 4), 0.6, np.float32))
    off = MaskSmoother(0.0)
    off.update(m1)
    assert off.update(m2) is m2
    on = MaskSmoother(1.0)
    on.update(m1)
    assert on.update(m2).data[0, 0] < 0.6
    on.reset()
    assert on.update(m2) is m2
    with pytest.raises(ValueError):
        MaskSmoother(1.5)
