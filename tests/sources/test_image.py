import cv2
import numpy as np
import pytest

from livebokeh.errors import SourceError
from livebokeh.sources import ImageSource


@pytest.mark.parametrize(
    "image",
    [
        np.full((30, 40), 128, np.uint8),  # grayscale
        np.dstack([np.full((30, 40, 3), 90, np.uint8), np.full((30, 40), 255, np.uint8)]),  # RGBA
        np.full((30, 40, 3), 200, np.uint8),
    ],
)
def test_any_png_becomes_one_bgr_frame(tmp_path, image):
    p = tmp_path / "x.png"
    cv2.imwrite(str(p), image)
    with ImageSource(p) as src:
        assert src.info.still and src.info.frame_count == 1 and not src.info.live
        f = src.read()
        assert f.image.shape == (30, 40, 3) and f.index == 0
        assert src.read() is None


def test_unreadable_images(tmp_path):
    p = tmp_path / "x.jpg"
    p.write_bytes(b"not a jpeg")
    with pytest.raises(SourceError, match="cannot read .* as an image"):
        ImageSource(p).open()
    empty = tmp_path / "e.png"
    empty.write_bytes(b"")
    with pytest.raises(SourceError, match="cannot read"):
        ImageSource(empty).open()
    with pytest.raises(SourceError, match="does not exist"):
        ImageSource(tmp_path / "none.png").open()
