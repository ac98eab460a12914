"""The blur by depth (render/defocus.py): the circle of confusion and the plate blurred by levels."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from livebokeh.config import RenderConfig
from livebokeh.render import (
    blur_background,
    blur_radius,
    circle_of_confusion,
    defocus_background,
    far_and_max_radius,
    level_radii,
    render_bokeh,
    to_linear,
)
from livebokeh.render.defocus import LEVELS, SHARP_BELOW

W, H = 640, 360


def texture(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(0, 255, (H, W, 3), dtype=np.uint8), (0, 0), 1.0)


def detail(image: np.ndarray, region: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.CV_32F)[region].var())


def test_circle_of_confusion_grows_on_both_sides_of_the_focus_plane_up_to_the_largest():
    depth = np.array([[0.0, 0.5, 1.0, 1.5, 2.0, 4.0]], np.float32)
    coc = circle_of_confusion(depth, 10.0, 15.0)
    assert coc.dtype == np.float32 and coc.shape == depth.shape
    np.testing.assert_allclose(coc[0], [10.0, 5.0, 0.0, 5.0, 10.0, 15.0])


def test_level_radii_are_even_up_to_the_largest():
    np.testing.assert_allclose(level_radii(20.0), [5.0, 10.0, 15.0, 20.0])
    assert len(level_radii(8.0)) == LEVELS


def test_far_radius_is_the_blur_and_max_blur_only_raises_the_largest():
    cfg = RenderConfig(blur=0.03)
    assert far_and_max_radius(cfg, 720) == pytest.approx((21.6, 21.6))
    assert far_and_max_radius(dataclasses.replace(cfg, max_blur=0.05), 720) == pytest.approx((21.6, 36.0))
    assert far_and_max_radius(dataclasses.replace(cfg, max_blur=0.01), 720) == pytest.approx((21.6, 21.6))


def test_focus_distance_scales_an_fstop_lens_as_one_blurs_at_infinity():
    at_1m = blur_radius(RenderConfig(fstop=2.0), 720)
    assert at_1m == pytest.approx(0.03 * 720)  # unchanged at the reference focus
    at_3m = blur_radius(RenderConfig(fstop=2.0, focus_distance=3.0), 720)
    assert at_3m == pytest.approx(at_1m * 0.95 / 2.95)
    # without fstop the blur is the blur, wherever the focus
    assert blur_radius(RenderConfig(blur=0.02, focus_distance=3.0), 720) == pytest.approx(0.02 * 720)


def test_everything_at_the_far_end_is_the_uniform_blur():
    image, alpha = texture(), np.zeros((H // 2, W // 2), np.float32)
    cfg = RenderConfig()
    far, top = far_and_max_radius(cfg, H)
    plate, sharpness = defocus_background(image, alpha, circle_of_confusion(np.zeros((45, 80), np.float32), far, top),
                                          top, cfg)
    assert plate.shape == image.shape and plate.dtype == np.uint8
    assert sharpness.shape == alpha.shape and sharpness.dtype == np.float32 and sharpness.max() == 0.0
    np.testing.assert_array_equal(plate, blur_background(image, alpha, far, cfg))


def test_everything_in_focus_is_the_picture_itself():
    image = texture()
    alpha = np.zeros((H // 2, W // 2), np.float32)
    alpha[60:, 120:200] = 1.0
    out = render_bokeh(image, alpha, RenderConfig(light_wrap=0.0), depth=np.ones((45, 80), np.float32))
    np.testing.assert_array_equal(out, image)


def test_blur_grows_with_the_distance_from_the_focus_plane():
    image = texture(1)
    alpha = np.zeros((H // 2, W // 2), np.float32)
    depth = np.repeat(np.linspace(1.0, 0.0, 8, dtype=np.float32)[None], 45, axis=0)  # focus left, far right
    depth = cv2.resize(depth, (80, 45), interpolation=cv2.INTER_NEAREST)
    out = render_bokeh(image, alpha, RenderConfig(light_wrap=0.0), depth=depth)
    bands = np.array_split(np.arange(W), 8)
    kept = []
    for cols in bands:
        region = np.zeros((H, W), bool)
        region[20:-20, cols[0] + 12 : cols[-1] - 12] = True
        kept.append(detail(out, region) / detail(image, region))
    assert kept[0] > 0.95  # in focus: the picture itself
    assert all(a > b for a, b in zip(kept, kept[1:])), kept  # strictly less detail farther away
    assert kept[-1] < 0.02


def test_in_front_of_the_focus_plane_blurs_as_much_as_as_far_behind():
    image = texture(2)
    alpha = np.zeros((H // 2, W // 2), np.float32)
    region = np.zeros((H, W), bool)
    region[40:-40, 40:-40] = True
    behind = render_bokeh(image, alpha, RenderConfig(), depth=np.full((45, 80), 0.5, np.float32))
    front = render_bokeh(image, alpha, RenderConfig(), depth=np.full((45, 80), 1.5, np.float32))
    np.testing.assert_array_equal(behind, front)
    assert detail(front, region) < 0.1 * detail(image, region)


def test_the_person_keeps_every_pixel_at_any_depth():
    image = texture(3)
    alpha = np.zeros((H, W), np.float32)
    alpha[100:, 250:400] = 1.0
    depth = np.repeat(np.linspace(0.0, 1.8, 45, dtype=np.float32)[:, None], 80, axis=1)
    for cfg in (RenderConfig(light_wrap=0.0), RenderConfig(light_wrap=0.0, fstop=1.4, max_blur=0.08)):
        out = render_bokeh(image, alpha, cfg, depth=depth)
        inner = cv2.erode(alpha, np.ones((3, 3), np.uint8)) == 1.0
        np.testing.assert_array_equal(out[inner], image[inner])
    # with the light wrap, past its reach too (within it, the background's light is the one at its depth)
    out = render_bokeh(image, alpha, RenderConfig(), depth=depth)
    inner = cv2.erode(alpha, np.ones((41, 41), np.uint8)) == 1.0
    np.testing.assert_array_equal(out[inner], image[inner])


def test_no_person_colour_enters_the_background_at_any_depth():
    """A saturated red person over a grey background: the plate around them stays grey."""
    bg = np.full((H, W, 3), 120, np.uint8)
    image = bg.copy()
    alpha = np.zeros((H, W), np.float32)
    alpha[80:, 260:380] = 1.0
    image[alpha > 0] = (0, 0, 255)
    band = (cv2.dilate(alpha, np.ones((41, 41), np.uint8)) > 0) & (alpha == 0)
    for level in (0.0, 0.3, 0.7, 1.5):
        out = render_bokeh(image, alpha, RenderConfig(light_wrap=0.0), depth=np.full((45, 80), level, np.float32))
        assert np.abs(out[band].astype(int) - 120).max() <= 2, level


@pytest.mark.parametrize("depth_value", [0.0, 0.25, 0.5])
def test_a_small_light_becomes_a_disc_of_its_own_radius_at_every_level(depth_value):
    """Lens character at any depth: a point light spreads into a flat disc whose radius is the
    pixel's circle of confusion, in linear light (its energy kept), at 1280x720 and the default
    blur (levels at 5.4, 10.8, 16.2 and 21.6 px)."""
    h, w = 720, 1280
    image = np.zeros((h, w, 3), np.uint8)
    y, x = h // 2, w // 2
    image[y - 1 : y + 2, x - 1 : x + 2] = 255
    cfg = RenderConfig(light_wrap=0.0)
    far, top = far_and_max_radius(cfg, h)
    radius = far * (1.0 - depth_value)
    depth = np.full((90, 160), depth_value, np.float32)
    out = render_bokeh(image, np.zeros((h, w), np.float32), cfg, depth=depth)
    energy = to_linear(out).sum(axis=2)
    yy, xx = np.mgrid[:h, :w]
    d = np.hypot(yy - y, xx - x)
    assert energy[d <= radius * 1.15].sum() / energy.sum() >= 0.8
    core = energy[d <= 0.5 * radius]
    assert core.std() / core.mean() < 0.15  # flat, not a Gaussian's peak
    flat = render_bokeh(image, np.zeros((h, w), np.float32), dataclasses.replace(cfg, linear=False), depth=depth)
    assert out[d <= 0.5 * radius].mean() > 2 * flat[d <= 0.5 * radius].mean()  # linear light keeps it bright


def test_sharpness_fades_from_the_picture_to_the_first_level():
    image, alpha = texture(), np.zeros((H // 2, W // 2), np.float32)
    cfg = RenderConfig()
    far, top = far_and_max_radius(cfg, H)
    step = level_radii(top)[0]
    coc = np.array([[0.0, SHARP_BELOW * step, 0.75 * step + 0.25 * SHARP_BELOW * step, step, 2 * step]], np.float32)
    coc = np.repeat(np.repeat(coc, 45, axis=0), 16, axis=1)
    _, sharpness = defocus_background(image, alpha, coc, top, cfg)
    row = sharpness[90, 8 :: 64]
    assert row[0] == 1.0 and row[1] == pytest.approx(1.0, abs=1e-5) and 0.0 < row[2] < 1.0
    assert row[3] == pytest.approx(0.0, abs=1e-5) and row[4] == 0.0


def test_depth_is_ignored_for_replacement_and_none():
    image = texture()
    alpha = np.zeros((H, W), np.float32)
    alpha[100:, 250:400] = 1.0
    depth = np.zeros((45, 80), np.float32)
    plate = np.full_like(image, 40)
    for cfg in (RenderConfig(effect="replace", light_wrap=0.0), RenderConfig(effect="none")):
        np.testing.assert_array_equal(render_bokeh(image, alpha, cfg, plate, depth=depth),
                                      render_bokeh(image, alpha, cfg, plate))


def test_a_distance_that_is_not_a_number_is_blurred_as_the_farthest():
    """A depth map holding NaN failed the render stage ("cannot convert float NaN to integer")."""
    image, alpha = texture(), np.zeros((H // 2, W // 2), np.float32)
    cfg = RenderConfig()
    far, top = far_and_max_radius(cfg, H)
    depth = np.full((45, 80), 0.5, np.float32)
    depth[10:30, 20:60] = np.nan
    coc = circle_of_confusion(depth, far, top)
    with np.errstate(all="raise"):  # no numpy warning either
        plate, sharpness = defocus_background(image, alpha, coc, top, cfg)
    known = circle_of_confusion(np.where(np.isnan(depth), 0.5, depth), far, top)
    known[10:30, 20:60] = top
    expected = defocus_background(image, alpha, known, top, cfg)
    np.testing.assert_array_equal(plate, expected[0])
    np.testing.assert_array_equal(sharpness, expected[1])
    assert np.isfinite(sharpness).all()
    everything = defocus_background(image, alpha, np.full((45, 80), np.nan, np.float32), top, cfg)[0]
    np.testing.assert_array_equal(everything, defocus_background(image, alpha, np.full((45, 80), top, np.float32),
                                                                 top, cfg)[0])
