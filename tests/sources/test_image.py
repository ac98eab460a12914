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


@pytest.mark.parametrize("kind", ["png", "jpg", "bigtiff"])
@pytest.mark.parametrize("what", ["input", "background image", "mask"])
def test_a_header_claiming_a_huge_picture_is_refused_before_decoding(tmp_path, monkeypatch, kind, what):
    """A 600-byte PNG saying 50000x50000 was an OpenCV assertion ('internal error'); 20000x20000
    would be decoded into 1.2 GB; a deflated BigTIFF claiming 17000x17000 was decoded (4.3 GB).
    Refused by its header, in one line, nothing decoded."""
    import zlib

    from livebokeh.sources.image import read_image
    from tests.sources.test_imageinfo import _jpeg_claiming, _png_claiming, bigtiff

    if kind == "png":
        path = _png_claiming(tmp_path / "big.png", 50000, 50000)
    elif kind == "jpg":
        path = _jpeg_claiming(tmp_path / "big.jpg", 20000, 20000)
    else:
        path = bigtiff(tmp_path / "big.tif", 17000, 17000, compression=8, data=zlib.compress(bytes(1 << 16)))

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


def test_a_decoded_picture_beyond_the_limit_is_refused(tmp_path, monkeypatch):
    """A format whose header livebokeh does not read (Sun raster) is checked once decoded."""
    from livebokeh.sources import imageinfo
    from livebokeh.sources.image import read_image

    p = tmp_path / "x.ras"
    assert cv2.imwrite(str(p), np.zeros((20, 30, 3), np.uint8))
    assert imageinfo.probe_image(p) is None
    assert read_image(p).shape == (20, 30, 3)
    monkeypatch.setattr(imageinfo, "MAX_PIXELS", 500)
    with pytest.raises(SourceError) as info:
        read_image(p, what="background image")
    assert "\n" not in str(info.value) and f"background image {p} is 30x20" in str(info.value)


def test_opencv_refuses_to_decode_beyond_the_limit_in_a_fresh_process(tmp_path):
    """OpenCV's own limit (1 GP) is set to livebokeh's (268 MP) before OpenCV loads: a Sun
    raster claiming 17000x17000 (a format whose header livebokeh does not read) is not decoded."""
    import os
    import struct
    import subprocess
    import sys

    from tests.conftest import REPO

    p = tmp_path / "big.ras"
    p.write_bytes(struct.pack(">8I", 0x59A66A95, 17000, 17000, 24, 17000 * 17000 * 3, 1, 0, 0) + bytes(4096))
    code = ("import sys, livebokeh\n"
            "from livebokeh.errors import SourceError\n"
            "from livebokeh.sources.image import read_image\n"
            "try:\n    read_image(sys.argv[1])\nexcept SourceError as err:\n    print(err)\n")
    env = {k: v for k, v in os.environ.items() if k != "OPENCV_IO_MAX_IMAGE_PIXELS"}
    env["PYTHONPATH"] = str(REPO)
    out = subprocess.run([sys.executable, "-c", code, str(p)], capture_output=True, text=True, env=env, timeout=120,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert f"input {p} is larger than livebokeh takes (268 MP" in out.stdout and "scale it down" in out.stdout
