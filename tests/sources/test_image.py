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


@pytest.mark.parametrize("kind", ["png", "jpg"])
@pytest.mark.parametrize("what", ["input", "background image"])
def test_a_header_claiming_a_huge_picture_is_refused_before_decoding(tmp_path, monkeypatch, kind, what):
    """A 600-byte PNG saying 50000x50000 was an OpenCV assertion ('internal error'); 20000x20000
    would be decoded into 1.2 GB. Refused by its header, in one line, nothing decoded."""
    from livebokeh.sources.image import read_image
    from tests.sources.test_imageinfo import _jpeg_claiming, _png_claiming

    path = (_png_claiming(tmp_path / "big.png", 50000, 50000) if kind == "png"
            else _jpeg_claiming(tmp_path / "big.jpg", 20000, 20000))

    def never(*a, **k):
        raise AssertionError("decoded")

    monkeypatch.setattr(cv2, "imdecode", never)
    with pytest.raises(SourceError) as info:
        read_image(path, what=what)
    assert "\n" not in str(info.value) and f"{what} {path} is" in str(info.value) and "scale it down" in str(info.value)


def test_opencvs_own_errors_are_one_line(tmp_path, monkeypatch):
    """A format this OpenCV cannot decode (OpenEXR is off in its wheels), a picture over its own
    limit: OpenCV raises, and that is one line naming the file."""
    from livebokeh.sources.image import read_image

    p = tmp_path / "x.exr"
    p.write_bytes(b"v/1\x01" + bytes(64))

    def fails(*a, **k):
        raise cv2.error("OpenCV(4.11.0) /io/opencv/modules/imgcodecs/src/grfmt_exr.cpp:103: error: (-213:The "
                        "function/feature is not implemented) imgcodecs: OpenEXR codec is disabled in function 'initOpenEXR'\n")

    monkeypatch.setattr(cv2, "imdecode", fails)
    with pytest.raises(SourceError) as info:
        read_image(p)
    text = str(info.value)
    assert "\n" not in text and str(p) in text and "OpenEXR codec is disabled" in text and "grfmt" not in text
