import numpy as np
import pytest

from livebokeh.mask import feather, frame_alpha, remap, upsample


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


def test_frame_alpha_shape_and_range():
    prob = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    out = frame_alpha(prob, (320, 180), 0.2, 0.8, 0.004)
    assert out.shape == (180, 320) and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1
