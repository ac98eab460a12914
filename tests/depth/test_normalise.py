"""Pure normalisation of the depth model's output (depth/normalise.py)."""

from __future__ import annotations

import numpy as np
import pytest

from livebokeh.depth import (
    background_depth,
    far_depth,
    fit_affine,
    focus_depth,
    normalised,
    trusted_background,
)
from livebokeh.depth.normalise import PERSON_PERCENTILE

H, W = 90, 160


def room_depth() -> np.ndarray:
    """Inverse depth of a floor rising towards the bottom (near) under a far wall (0.2)."""
    d = np.full((H, W), 0.2, np.float32)
    rows = np.arange(45, H)
    d[45:] = (0.2 + (rows - 44) / 45 * 0.8)[:, None]
    return d


def standing(bottom: int = 70) -> np.ndarray:
    a = np.zeros((H, W), np.float32)
    a[20 : bottom + 1, 70:90] = 1.0
    return a


def test_the_person_and_a_band_around_them_are_not_trusted():
    a = standing()
    w = trusted_background(a)
    assert w.dtype == np.float32 and w.shape == a.shape
    assert w[a > 0].max() == 0.0
    assert w[40, 67] == 0.0 and w[40, 92] == 0.0  # the margin (3% of 90 rows: 3 px)
    assert w[40, 40] == 1.0 and w[5, 80] == 1.0


def test_the_person_gets_the_background_around_them():
    d = room_depth()
    a = standing()
    person = d.copy()
    person[a > 0] = 0.9  # the network's person, nearer than the wall behind them
    filled = background_depth(person, trusted_background(a))
    assert np.abs(filled[25:36, 72:88] - 0.2).max() < 0.02  # the wall behind the chest
    assert np.abs(filled - person)[trusted_background(a) == 1].max() == 0.0
    assert background_depth(person, np.zeros_like(a)) is not person  # nothing trusted: a copy
    np.testing.assert_array_equal(background_depth(person, np.zeros_like(a)), person)


def test_focus_is_the_ground_under_the_feet_when_they_are_in_view():
    d = room_depth()
    a = standing(bottom=70)
    person = d.copy()
    person[a > 0] = 0.5  # the network puts them nearer the wall than the floor they stand on
    filled = background_depth(person, trusted_background(a))
    focus = focus_depth(person, filled, a)
    # the floor filled in under the feet (from around them, the nearer floor below included), not the person's 0.5
    assert d[68, 60] <= focus <= d[76, 60]


def test_focus_is_the_persons_own_depth_when_the_frame_cuts_them():
    d = room_depth()
    a = standing(bottom=H - 1)
    person = d.copy()
    person[a > 0] = np.linspace(0.6, 0.9, int(a.sum()), dtype=np.float32)
    focus = focus_depth(person, background_depth(person, trusted_background(a)), a)
    inner = person[21:H - 1, 71:89]
    assert focus == pytest.approx(np.percentile(inner, PERSON_PERCENTILE), abs=0.02)


def test_nobody_in_view_has_no_focus():
    d = room_depth()
    a = np.zeros((H, W), np.float32)
    assert focus_depth(d, d, a) is None


def test_the_far_end_is_a_low_percentile_of_the_trusted_background():
    d = room_depth()
    a = standing()
    assert far_depth(d, trusted_background(a)) == pytest.approx(0.2)


def test_normalised_puts_far_at_0_and_focus_at_1():
    d = room_depth()
    n = normalised(d, 0.2, 0.6)
    assert n.dtype == np.float32
    assert n[0, 0] == pytest.approx(0.0) and n[H - 1, 0] == pytest.approx(2.0, abs=1e-5)
    assert np.isfinite(normalised(d, 0.5, 0.5)).all()  # a flat scene does not divide by zero


def test_fit_affine_finds_scale_and_offset_and_refuses_what_cannot_tell():
    rng = np.random.default_rng(0)
    src = rng.random((H, W)).astype(np.float32)
    dst = 2.5 * src - 0.7
    w = np.ones_like(src)
    a, b = fit_affine(src, dst, w)
    assert a == pytest.approx(2.5, rel=1e-4) and b == pytest.approx(-0.7, abs=1e-4)
    assert fit_affine(src, dst, np.zeros_like(src)) is None
    assert fit_affine(np.ones_like(src), dst, w) is None
