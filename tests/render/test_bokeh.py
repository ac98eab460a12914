import cv2
import numpy as np
import pytest

from livebokeh.config import RenderConfig
from livebokeh.render import blur_background, composite, render_bokeh


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
    inside = alpha >= 1.0
    np.testing.assert_array_equal(out[inside], img[inside])
    outside = r > 80
    assert _laplacian_var(out, outside) < 0.05 * _laplacian_var(img, outside)


def test_no_person_colour_bleeds_into_the_background():
    img, alpha, r = _scene()
    radius = 0.08 * img.shape[0]
    band = (r > 62) & (r < 62 + 24)
    out = render_bokeh(img, alpha, RenderConfig(blur=0.08))
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


def test_effect_none_and_zero_blur_return_a_copy():
    img, alpha, _ = _scene()
    for cfg in (RenderConfig(effect="none"), RenderConfig(blur=0.0)):
        out = render_bokeh(img, alpha, cfg)
        np.testing.assert_array_equal(out, img)
        assert out is not img


def test_mismatched_alpha_is_refused():
    img, alpha, _ = _scene()
    with pytest.raises(ValueError, match="does not match"):
        render_bokeh(img, alpha[:-1], RenderConfig())
