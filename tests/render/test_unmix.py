"""Unmixing the person's edge: its own colours, not the old background's, go over a new one."""

import cv2
import numpy as np
import pytest

from livebokeh.config import RenderConfig
from livebokeh.render import background_estimate, composite, render_bokeh, unmix, unmix_foreground

GREEN = np.array([64, 177, 0], np.float32)
BLUE = np.array([200, 60, 20], np.uint8)


def _hairy(h=240, w=320):
    """A person-coloured disc whose rim fades out over 12 px (hair), over a keying green."""
    rng = np.random.default_rng(5)
    fg = np.clip(rng.normal((60, 90, 160), 20, (h, w, 3)), 0, 255).astype(np.float32)  # skin-ish, textured
    yy, xx = np.mgrid[:h, :w]
    alpha = np.clip((80 - np.hypot(yy - h / 2, xx - w / 2)) / 12, 0, 1).astype(np.float32)
    frame = np.rint(alpha[..., None] * fg + (1 - alpha[..., None]) * GREEN).astype(np.uint8)
    return frame, fg, alpha


def test_unmix_undoes_a_known_mixture():
    f = np.array([[10, 200, 90], [250, 5, 128]], np.float32)
    b = np.array([[0, 255, 0], [30, 30, 30]], np.float32)
    a = np.array([0.3, 0.8], np.float32)
    mixed = a[:, None] * f + (1 - a[:, None]) * b
    np.testing.assert_allclose(unmix(mixed, a, b), f, atol=1e-3)
    # clipped to the pixel range, and left alone where the person hardly shows
    assert unmix(np.array([[0, 0, 0]], np.float32), np.array([0.5], np.float32), np.array([[255, 255, 255]]))[0].max() == 0
    faint = unmix(np.array([[7, 8, 9]], np.uint8), np.array([0.0], np.float32), np.array([[255, 0, 0]], np.float32))
    np.testing.assert_array_equal(faint, [[7, 8, 9]])


def test_the_background_estimate_sees_behind_the_person():
    frame, _, alpha = _hairy()
    est = background_estimate(frame, alpha)
    assert est.shape == frame.shape and est.dtype == np.float32
    inside = alpha >= 0.05  # the person and its rim: filled from the green around (and the faintest rim)
    assert np.abs(est[inside] - GREEN).mean() < 1.0 and np.abs(est[inside] - GREEN).max() < 6.0
    small = background_estimate(frame, cv2.resize(alpha, (160, 120), interpolation=cv2.INTER_AREA))
    assert small.shape == (120, 160, 3) and np.abs(small[alpha[::2, ::2] >= 0.05] - GREEN).mean() < 1.5


def test_replacement_keeps_no_green_rim():
    frame, fg, alpha = _hairy()
    new = np.broadcast_to(BLUE, frame.shape).copy()
    exact = alpha[..., None] * fg + (1 - alpha[..., None]) * BLUE.astype(np.float32)
    rim = (alpha > 0.05) & (alpha < 0.95)
    cfg = RenderConfig(effect="replace", light_wrap=0.0)
    before = render_bokeh(frame, alpha, RenderConfig(effect="replace", light_wrap=0.0, unmix=False), new)
    after = render_bokeh(frame, alpha, cfg, new)
    err_before = np.abs(before - exact)[rim].mean()
    err_after = np.abs(after - exact)[rim].mean()
    assert err_before > 10 and err_after < 0.1 * err_before
    greenness = lambda x: float((x[..., 1].astype(float) - x[..., [0, 2]].mean(axis=2))[rim].mean())  # noqa: E731
    assert greenness(after) == pytest.approx(greenness(exact), abs=1.5) and greenness(before) > greenness(exact) + 20
    # where the alpha is 0 or 1 nothing changes
    solid = (alpha == 0) | (alpha == 1)
    np.testing.assert_array_equal(after[solid], before[solid])


def test_unmixed_composite_at_the_working_size_matches_its_tiles():
    """The composite unmixes only the mixed tiles; the same pixels as unmixing the whole frame."""
    frame, _, alpha = _hairy(360, 640)
    small = cv2.resize(alpha, (320, 180), interpolation=cv2.INTER_AREA)
    new = np.broadcast_to(BLUE, frame.shape).copy()
    est = background_estimate(frame, small)
    tiled = composite(frame, new, small, est)
    full_alpha = cv2.resize(small, (640, 360), interpolation=cv2.INTER_LINEAR)
    full_est = cv2.resize(np.clip(est, 0, 255).astype(np.uint8), (640, 360), interpolation=cv2.INTER_LINEAR)
    fg = np.rint(unmix(frame, full_alpha, full_est)).astype(np.uint8)
    whole = cv2.blendLinear(fg, new, full_alpha, 1 - full_alpha)
    np.testing.assert_array_equal(tiled, whole)


def test_unmix_foreground_is_the_frame_where_the_alpha_is_whole():
    frame, fg, alpha = _hairy()
    out = unmix_foreground(frame, alpha)
    assert out.dtype == np.uint8 and out.shape == frame.shape
    solid = (alpha == 0) | (alpha == 1)
    np.testing.assert_array_equal(out[solid], frame[solid])
    rim = (alpha > 0.1) & (alpha < 0.9)
    assert np.abs(out[rim] - fg[rim]).mean() < 0.25 * np.abs(frame[rim] - fg[rim]).mean()
    hd = cv2.resize(frame, (1280, 960))
    assert unmix_foreground(hd, cv2.resize(alpha, (1280, 960))).shape == hd.shape  # estimated at a smaller size
