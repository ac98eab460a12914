import numpy as np
import pytest

from livebokeh.types import Composite, Frame, Mask


def test_frame_is_frozen_and_its_image_read_only():
    img = np.zeros((4, 6, 3), np.uint8)
    f = Frame(img, 3, 123)
    assert (f.width, f.height, f.index, f.capture_ns) == (6, 4, 3, 123)
    with pytest.raises(ValueError):
        f.image[0, 0, 0] = 1
    with pytest.raises(AttributeError):
        f.index = 4  # type: ignore[misc]


@pytest.mark.parametrize("bad", [np.zeros((4, 6), np.uint8), np.zeros((4, 6, 4), np.uint8), np.zeros((4, 6, 3), np.float32)])
def test_frame_rejects_wrong_shapes_and_dtypes(bad):
    with pytest.raises(ValueError, match="uint8"):
        Frame(bad, 0, 0)


def test_mask_requires_float32_2d():
    with pytest.raises(ValueError):
        Mask(np.zeros((4, 4), np.float64))
    with pytest.raises(ValueError):
        Mask(np.zeros((4, 4, 1), np.float32))


def test_mask_from_array_scales_uint8_and_clips_floats():
    m = Mask.from_array(np.array([[0, 255], [51, 102]], np.uint8))
    np.testing.assert_allclose(m.data, [[0, 1], [0.2, 0.4]], atol=1e-6)
    m2 = Mask.from_array(np.array([[-1.0, 2.0]]))
    assert m2.data.dtype == np.float32 and m2.data.tolist() == [[0.0, 1.0]]
    assert m.to_uint8().tolist() == [[0, 255], [51, 102]]


def test_composite_marks_its_image_read_only():
    img = np.zeros((2, 2, 3), np.uint8)
    c = Composite(Frame(img.copy(), 0, 0), img, Mask(np.zeros((2, 2), np.float32)))
    assert not c.image.flags.writeable


def test_composite_alpha_at_frame_size_from_a_working_size_mask():
    img = np.zeros((8, 16, 3), np.uint8)
    small = np.zeros((4, 8), np.float32)
    small[:, 4:] = 1.0
    c = Composite(Frame(img.copy(), 0, 0), img, Mask(small))
    assert c.mask.shape == (4, 8) and c.alpha.shape == (8, 16)
    assert c.alpha is c.alpha  # upsampled once, on first use
    assert c.alpha.data[:, :7].max() == 0.0 and c.alpha.data[:, 9:].min() == 1.0
    same = Composite(Frame(img.copy(), 0, 0), img, Mask(np.ones((8, 16), np.float32)))
    assert same.alpha is same.mask
