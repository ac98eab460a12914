import cv2
import numpy as np
import pytest

from livebokeh.mask import feather, remap, upsample


def test_remap_stretches_between_low_and_high():
    p = np.array([[0.0, 0.2, 0.5, 0.8, 1.0]], np.float32)
    out = remap(p, 0.2, 0.8)
    np.testing.assert_allclose(out, [[0, 0, 0.5, 1, 1]], atol=1e-6)
    assert out is not p and p[0, 2] == 0.5
    with pytest.raises(ValueError):
        remap(p, 0.8, 0.2)


def test_upsample_to_frame_size():
    m = np.zeros((4, 4), np.float32)
    m[:, 2:] = 1
    out = upsample(m, (40, 20))
    assert out.shape == (20, 40) and out.dtype == np.float32
    assert out[:, :15].max() == 0 and out[:, 26:].min() == 1


@pytest.mark.parametrize("sigma", [0.0, 1.5, 12.0])
def test_feather_softens_the_edge_but_keeps_it_in_place(sigma):
    a = np.zeros((100, 200), np.float32)
    a[:, 100:] = 1
    out = feather(a, sigma)
    assert out.shape == a.shape and out.dtype == np.float32
    row = out[50]
    assert abs(row[99] + row[100] - 1.0) < 0.1  # symmetric around the edge
    if sigma:
        assert 0.05 < row[100 - int(sigma)] < 0.45
    else:
        np.testing.assert_array_equal(out, a)
    assert out is not a


def test_remove_islands_drops_small_blobs_only():
    from livebokeh.mask import remove_islands

    p = np.zeros((100, 100), np.float32)
    p[10:60, 10:60] = 0.9  # the person
    p[80:84, 80:84] = 0.8  # a false detection
    out = remove_islands(p, 0.05)
    assert out[82, 82] == 0 and out[30, 30] == np.float32(0.9)
    np.testing.assert_array_equal(remove_islands(p, 0.0), p)
    assert out is not p and p[82, 82] == np.float32(0.8)


def test_guided_upsampling_snaps_the_edge_to_the_picture():
    from livebokeh.mask import guided_upsample

    guide = np.zeros((120, 160), np.uint8)
    guide[:, 80:] = 200  # the true edge at x = 80
    prob = np.zeros((30, 40), np.float32)
    prob[:, 19:] = 1.0  # the model's edge, coarse and 4 px off at full size
    plain = cv2.resize(prob, (160, 120), interpolation=cv2.INTER_LINEAR)
    guided = guided_upsample(prob, guide, radius=6, eps=1e-4)
    assert guided.shape == (120, 160) and guided.dtype == np.float32
    err_plain = np.abs((plain > 0.5).astype(int) - (guide > 100)).mean()
    err_guided = np.abs((guided > 0.5).astype(int) - (guide > 100)).mean()
    assert err_guided < err_plain


def test_refine_alpha_works_at_a_reduced_size_and_returns_frame_size():
    import dataclasses

    from livebokeh.config import MaskConfig
    from livebokeh.mask import refine_alpha

    img = np.random.default_rng(0).integers(0, 255, (720, 1280, 3), dtype=np.uint8)
    prob = np.zeros((256, 256), np.float32)
    prob[60:200, 80:180] = 1.0
    from livebokeh.mask import resolve_auto
    from livebokeh.types import SegmenterTraits

    probability = resolve_auto(MaskConfig(), SegmenterTraits())
    for cfg in (probability, dataclasses.replace(probability, guided="on", islands=0.0)):
        a = refine_alpha(prob, img, cfg)
        assert a.shape == (720, 1280) and a.dtype == np.float32 and 0 <= a.min() and a.max() <= 1
        assert a[400, 640] > 0.99 and a[50, 50] < 0.01


def test_automatic_mask_settings_follow_the_backend():
    from livebokeh.config import MaskConfig
    from livebokeh.errors import ConfigError
    from livebokeh.mask import resolve_auto
    from livebokeh.types import SegmenterTraits

    fine, coarse, matte = SegmenterTraits(), SegmenterTraits(coarse_edges=True), SegmenterTraits(matte=True)
    auto = MaskConfig()
    assert auto.guided == "auto" and auto.lookahead == -1 and auto.low == auto.high == -1
    f, c, m = resolve_auto(auto, fine), resolve_auto(auto, coarse), resolve_auto(auto, matte)
    assert (f.guided, f.lookahead, f.low, f.high) == ("off", 0, 0.4, 0.6)
    assert (c.guided, c.lookahead, c.low, c.high) == ("on", 2, 0.4, 0.6)
    assert (m.guided, m.lookahead, m.low, m.high) == ("off", 0, 0.0, 1.0)  # an alpha matte is used as it is
    explicit = MaskConfig(guided="on", lookahead=4, low=0.3, high=0.7)
    assert resolve_auto(explicit, fine) == explicit == resolve_auto(explicit, matte)
    # one end given, the other automatic: checked once both are known
    assert resolve_auto(MaskConfig(low=0.5), matte).high == 1.0
    with pytest.raises(ConfigError, match=r"mask.low \(0.7\) must be smaller than mask.high \(0.6\)"):
        resolve_auto(MaskConfig(low=0.7), fine)


def test_a_matte_keeps_its_soft_edge_and_a_probability_is_stretched():
    """Matting models' half-transparent hair stays half transparent; a probability map is remapped."""
    import dataclasses

    from livebokeh.config import MaskConfig
    from livebokeh.mask import refine_alpha, resolve_auto
    from livebokeh.types import SegmenterTraits

    img = np.zeros((120, 160, 3), np.uint8)
    prob = np.full((120, 160), 0.3, np.float32)
    prob[40:80, 60:100] = 1.0
    base = dataclasses.replace(MaskConfig(), feather=0.0, islands=0.0)
    matte = refine_alpha(prob, img, resolve_auto(base, SegmenterTraits(matte=True)))
    stretched = refine_alpha(prob, img, resolve_auto(base, SegmenterTraits()))
    assert matte[10, 10] == pytest.approx(0.3, abs=1e-6) and stretched[10, 10] == 0.0
    assert matte[60, 80] == stretched[60, 80] == 1.0
    with pytest.raises(ValueError, match="resolve them first"):
        refine_alpha(prob, img, base)
