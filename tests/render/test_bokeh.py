import cv2
import numpy as np
import pytest

from livebokeh.config import RenderConfig
from livebokeh.render import (
    aperture_kernel,
    blur_background,
    blur_radius,
    composite,
    from_linear,
    light_wrap,
    render_bokeh,
    to_linear,
)
from livebokeh.render.bokeh import SNAP, TILE


def _scene(h=240, w=320):
    """Fine grey texture as background and a saturated red disc as the 'person' with a soft edge."""
    rng = np.random.default_rng(7)
    img = rng.integers(90, 170, size=(h, w, 3), dtype=np.uint8)
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot(yy - h / 2, xx - w / 2)
    alpha = np.clip((60 - r) / 3 + 0.5, 0, 1).astype(np.float32)
    img[alpha > 0.5] = (20, 20, 230)  # BGR red
    return img, alpha, r


def _laplacian_var(img, region):
    lap = cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.CV_64F)
    return float(lap[region].var())


def test_render_is_pure_and_keeps_the_person_sharp():
    img, alpha, r = _scene()
    img.flags.writeable = False
    before = img.copy()
    out = render_bokeh(img, alpha, RenderConfig(blur=0.05))
    np.testing.assert_array_equal(img, before)
    assert out.shape == img.shape and out.dtype == np.uint8 and out is not img
    inside = r < 45  # inside the person, beyond the light wrap
    np.testing.assert_array_equal(out[inside], img[inside])
    outside = r > 80
    assert _laplacian_var(out, outside) < 0.05 * _laplacian_var(img, outside)


def test_no_person_colour_bleeds_into_the_background():
    img, alpha, r = _scene()
    cfg = RenderConfig(blur=0.08, light_wrap=0.0)
    radius = blur_radius(cfg, img.shape[0])
    band = (r > 62) & (r < 62 + 24)
    out = render_bokeh(img, alpha, cfg)
    naive = composite(img, cv2.GaussianBlur(img, (0, 0), radius / 2), alpha)

    def redness(x):
        return float((x[..., 2].astype(int) - x[..., :2].mean(axis=2))[band].mean())

    base = redness(cv2.GaussianBlur(img, (0, 0), 1))  # the texture is neutral grey
    assert redness(naive) - base > 15  # the naive method makes a red halo
    assert redness(out) - base < (redness(naive) - base) / 5


def test_blur_background_fills_the_person_with_background_colours():
    img, alpha, r = _scene()
    bg = blur_background(img, alpha, 20)
    centre = bg[r < 20]
    assert np.abs(centre[:, 2].astype(int) - centre[:, 0].astype(int)).mean() < 20  # grey, not red


def _point_response(cfg, h=360, w=640, at=(200, 320)):
    img = np.full((h, w, 3), 0, np.uint8)
    y, x = at
    img[y - 1 : y + 2, x - 1 : x + 2] = 255  # a small bright light
    alpha = np.zeros((h, w), np.float32)
    out = render_bokeh(img, alpha, cfg)
    energy = to_linear(out).sum(axis=2)
    yy, xx = np.mgrid[:h, :w]
    return energy, np.hypot(yy - y, xx - x)


def test_a_bright_point_becomes_a_flat_disc_of_the_configured_radius():
    cfg = RenderConfig(blur=0.06, light_wrap=0.0)  # radius 21.6 px at 360 px height
    radius = blur_radius(cfg, 360)
    energy, d = _point_response(cfg)
    inside = energy[d <= radius].sum() / energy.sum()
    assert inside >= 0.8, inside
    core = energy[d <= 0.6 * radius]
    assert core.std() / core.mean() < 0.15  # flat-topped
    assert energy[d > radius + 6].sum() / energy.sum() < 0.02
    # a Gaussian of the same size is a bump: its centre is several times its mid-radius level
    g_energy, g_d = _point_response(RenderConfig(blur=0.06, aperture="gaussian", light_wrap=0.0))
    g_core = g_energy[g_d <= 0.6 * radius]
    assert g_core.max() / g_energy[(g_d > 0.55 * radius) & (g_d < 0.65 * radius)].mean() > 2.0
    assert core.max() / energy[(d > 0.55 * radius) & (d < 0.65 * radius)].mean() < 1.3


def test_highlights_are_boosted_in_linear_light():
    plain, _ = _point_response(RenderConfig(blur=0.06, highlights=0.0, light_wrap=0.0))
    boosted, _ = _point_response(RenderConfig(blur=0.06, highlights=3.0, light_wrap=0.0))
    assert boosted.sum() > 3.0 * plain.sum()


def test_polygon_aperture_has_corners():
    k = aperture_kernel(20.0, "polygon", 6)
    disc = aperture_kernel(20.0, "disc")
    assert k.shape == disc.shape == (41, 41)
    np.testing.assert_allclose([k.sum(), disc.sum()], [1, 1], rtol=1e-5)
    assert (k > 0).sum() < (disc > 0).sum()  # a hexagon inside the same circle
    with pytest.raises(ValueError):
        aperture_kernel(0.0)


def test_linear_light_round_trip():
    x = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    back = from_linear(to_linear(x))
    assert np.abs(back.astype(int) - x.astype(int)).max() <= 1


def test_fstop_sets_the_radius():
    assert blur_radius(RenderConfig(fstop=2.0), 720) == pytest.approx(0.03 * 720)
    assert blur_radius(RenderConfig(fstop=1.4), 720) > blur_radius(RenderConfig(fstop=4.0), 720)
    assert blur_radius(RenderConfig(blur=0.02), 1000) == pytest.approx(20.0)


def test_light_wrap_touches_only_the_inner_edge():
    _, alpha, r = _scene()
    wrapped = light_wrap(alpha, 0.5, 6.0)
    assert wrapped.dtype == np.float32 and wrapped is not alpha
    edge = (r > 52) & (r < 57)
    assert (alpha[edge] - wrapped[edge]).mean() > 0.05
    np.testing.assert_allclose(wrapped[r < 30], alpha[r < 30], atol=1e-3)
    np.testing.assert_array_equal(wrapped[alpha == 0], 0)
    np.testing.assert_array_equal(light_wrap(alpha, 0.0, 6.0), alpha)


def test_replace_puts_the_person_on_the_new_background():
    img, alpha, r = _scene()
    plate = np.zeros_like(img)
    plate[:] = (0, 255, 0)
    out = render_bokeh(img, alpha, RenderConfig(effect="replace", light_wrap=0.0), plate)
    np.testing.assert_array_equal(out[alpha == 0], plate[alpha == 0])
    np.testing.assert_array_equal(out[alpha == 1], img[alpha == 1])
    with pytest.raises(ValueError, match="replacement background"):
        render_bokeh(img, alpha, RenderConfig(effect="replace"))


def test_effect_none_and_zero_blur_return_a_copy():
    img, alpha, _ = _scene()
    for cfg in (RenderConfig(effect="none"), RenderConfig(blur=0.0)):
        out = render_bokeh(img, alpha, cfg)
        np.testing.assert_array_equal(out, img)
        assert out is not img


def test_mismatched_alpha_is_refused():
    img, alpha, _ = _scene()
    for wrong in (alpha[:, : alpha.shape[1] // 2], np.zeros((480, 640), np.float32), alpha[:-40]):
        with pytest.raises(ValueError, match="does not match"):
            render_bokeh(img, wrong, RenderConfig())


def test_alpha_at_working_size_renders_like_the_full_one():
    """The pipeline hands the renderer the refinement's working-size alpha: same picture."""
    img, alpha, r = _scene(480, 640)
    small = cv2.resize(alpha, (320, 240), interpolation=cv2.INTER_AREA)
    cfg = RenderConfig(blur=0.05)
    full = render_bokeh(img, cv2.resize(small, (640, 480), interpolation=cv2.INTER_LINEAR), cfg)
    out = render_bokeh(img, small, cfg)
    assert cv2.PSNR(out, full) > 40
    inside = r < 45  # inside the person, beyond the light wrap
    np.testing.assert_array_equal(out[inside], img[inside])


@pytest.mark.parametrize("shape, alpha_shape", [
    ((720, 1280), (720, 1280)), ((720, 1280), (360, 640)), ((1080, 1920), (360, 640)),
    ((768, 1366), (256, 455)), ((721, 1283), (721, 1283)), ((40, 50), (20, 25)), ((15, 15), (15, 15)),
])
def test_tiled_composite_equals_one_blend(shape, alpha_shape):
    """Same bytes as one blendLinear with the bilinearly upsampled alpha, whatever the sizes."""
    (h, w), (ah, aw) = shape, alpha_shape
    rng = np.random.default_rng(3)
    fg, bg = (rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(2))
    alpha = np.zeros((ah, aw), np.float32)
    cv2.ellipse(alpha, (aw // 2, ah // 2), (aw // 5, ah // 3), 0, 0, 360, 1.0, -1)
    alpha = cv2.GaussianBlur(alpha, (0, 0), 1.5)
    alpha[:3, :4] = 0.3  # a fractional corner tile among background ones
    alpha[ah // 2, aw // 2] = 0.999  # one fractional pixel inside the person
    full = alpha if (ah, aw) == (h, w) else cv2.resize(alpha, (w, h), interpolation=cv2.INTER_LINEAR)
    expected = cv2.blendLinear(fg, bg, full, 1 - full)
    out = composite(fg, bg, alpha)
    np.testing.assert_array_equal(out, expected)
    assert out is not bg and out is not fg


def test_an_alpha_within_snap_of_one_or_zero_blends_to_the_pixel_itself():
    """What lets the composite copy tiles whose alpha is only nearly 0 or 1: for every pair of
    8-bit values, blendLinear returns the foreground (background) value itself."""
    fg = np.repeat(np.arange(256, dtype=np.uint8), 256).reshape(256, 256)
    bg = fg.T.copy()
    fg3, bg3 = np.dstack([fg] * 3), np.dstack([bg] * 3)
    one, snap = np.float32(1.0), np.float32(SNAP)
    near_one = [one - snap, np.nextafter(one - snap, np.float32(0)), np.float32(1 - SNAP / 2), one]
    for a, expected in [*((a, fg3) for a in near_one), *((a, bg3) for a in (snap, snap / 2, np.float32(0)))]:
        alpha = np.full((256, 256), a, np.float32)
        np.testing.assert_array_equal(cv2.blendLinear(fg3, bg3, alpha, 1 - alpha), expected)


def test_tiled_composite_skips_tiles_whose_alpha_is_nearly_whole():
    """A feather's tail (alpha 1e-4 outside, 1 - 1e-4 inside) blends nothing, and gives the bytes
    of one blendLinear."""
    rng = np.random.default_rng(4)
    fg, bg = (rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8) for _ in range(2))
    alpha = np.full((360, 640), 1e-4, np.float32)
    alpha[100:260, 200:440] = 1 - 1e-4
    full = cv2.resize(alpha, (1280, 720), interpolation=cv2.INTER_LINEAR)
    out = composite(fg, bg, alpha)
    np.testing.assert_array_equal(out, cv2.blendLinear(fg, bg, full, 1 - full))
    np.testing.assert_array_equal(out[204:516, 404:876], fg[204:516, 404:876])  # inside the bilinear edge
    np.testing.assert_array_equal(out[:180], bg[:180])


def test_tiled_composite_sees_the_pixel_past_the_last_whole_tile():
    """The last row of whole tiles is blended from the alpha row just below it (the bilinear
    footprint): a person ending exactly there is not a whole-person tile."""
    rng = np.random.default_rng(5)
    fg, bg = (rng.integers(0, 256, (726, 1280, 3), dtype=np.uint8) for _ in range(2))
    alpha = np.zeros((363, 640), np.float32)
    alpha[: 45 * TILE] = 1.0  # whole tiles of person, then background in the rows past them
    full = cv2.resize(alpha, (1280, 726), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(composite(fg, bg, alpha), cv2.blendLinear(fg, bg, full, 1 - full))


@pytest.mark.parametrize("size", [(64, 48), (1280, 720), (1920, 1080), (33, 17)])
def test_any_frame_size(size):
    w, h = size
    img = np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)
    alpha = np.zeros((h, w), np.float32)
    alpha[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = 1
    assert render_bokeh(img, alpha, RenderConfig()).shape == (h, w, 3)
