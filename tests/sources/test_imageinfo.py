"""Image headers read without decoding: sizes, animation frame counts, and sizes that are refused."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

from livebokeh.errors import SourceError
from livebokeh.sources.imageinfo import MAX_PIXELS, ImageInfo, check_pixels, probe_image


def _png_claiming(path, width, height, rows=2):
    """A tiny PNG whose header claims ``width`` x ``height`` (its data holds a few rows)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + bytes(min(width, 4096) * 3) for _ in range(rows))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    return path


def _jpeg_claiming(path, width, height):
    """A real small JPEG whose start-of-frame is rewritten to claim another size."""
    ok, data = cv2.imencode(".jpg", np.full((8, 8, 3), 100, np.uint8))
    data = bytearray(data.tobytes())
    sof = data.find(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".bmp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm", ".jp2",
                                    ".hdr"])
@pytest.mark.parametrize("shape", [(37, 53), (1, 1), (16, 1000), (1000, 16)])
def test_the_size_of_every_format_opencv_writes(tmp_path, suffix, shape):
    img = np.random.default_rng(0).integers(0, 255, (*shape, 3), np.uint8)
    if suffix in (".pgm", ".pbm"):
        img = img[..., 0]
    if suffix == ".hdr":
        img = img.astype(np.float32) / 255
    if suffix == ".jp2" and min(shape) < 32:
        pytest.skip("OpenJPEG writes no picture this thin")
    path = tmp_path / f"x{suffix}"
    assert cv2.imwrite(str(path), img)
    assert probe_image(path) == ImageInfo(shape[1], shape[0], 1)


def test_lossless_webp_and_a_jpeg_with_a_large_exif_block(tmp_path):
    img = np.full((21, 34, 3), 9, np.uint8)
    lossless = tmp_path / "l.webp"
    cv2.imwrite(str(lossless), img, [cv2.IMWRITE_WEBP_QUALITY, 101])
    assert probe_image(lossless) == ImageInfo(34, 21)
    ok, data = cv2.imencode(".jpg", img)
    data = data.tobytes()
    app1 = b"\xff\xe1" + struct.pack(">H", 60002) + b"Exif\x00\x00" + bytes(59994)  # 60 KB of metadata first
    path = tmp_path / "exif.jpg"
    path.write_bytes(data[:2] + app1 + data[2:])
    assert probe_image(path) == ImageInfo(34, 21)


@pytest.mark.parametrize("suffix", [".png", ".webp"])
def test_animations_count_their_frames(tmp_path, suffix):
    a = cv2.Animation()
    a.frames = [np.full((30, 40, 3), 40 * i, np.uint8) for i in range(5)]
    a.durations = [100] * 5
    path = tmp_path / f"a{suffix}"
    assert cv2.imwriteanimation(str(path), a)
    assert probe_image(path) == ImageInfo(40, 30, 5) and probe_image(path).animated


@pytest.mark.parametrize("content", [b"", b"\x89PNG\r\n\x1a\n", b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHD", b"\xff\xd8\xff",
                                     b"RIFF\x00\x00\x00\x00WEBP", b"not an image at all", b"P6\n# only a comment\n"])
def test_damaged_or_unknown_headers_say_nothing(tmp_path, content):
    path = tmp_path / "x.png"
    path.write_bytes(content)
    assert probe_image(path) is None
    assert probe_image(tmp_path / "missing.png") is None


def test_claimed_sizes_are_read_as_claimed(tmp_path):
    assert probe_image(_png_claiming(tmp_path / "big.png", 50000, 50000)) == ImageInfo(50000, 50000)
    assert probe_image(_jpeg_claiming(tmp_path / "big.jpg", 60000, 60000)) == ImageInfo(60000, 60000)


def test_check_pixels_refuses_beyond_the_limit_in_one_line():
    check_pixels("input", "p.png", 16384, 16384)  # exactly the limit
    check_pixels("input", "p.png", 12240, 16320)  # a 200 MP phone photo
    with pytest.raises(SourceError) as info:
        check_pixels("background image", "big.png", 50000, 50000)
    text = str(info.value)
    assert "\n" not in text and "background image big.png is 50000x50000 (2500 MP)" in text and "scale it down" in text
    assert MAX_PIXELS == 16384 * 16384


_MAGICS = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8", b"RIFF\x10\x00\x00\x00WEBP", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*",
           b"P6", b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\xff\x4f\xff\x51", b"#?RADIANCE\n"]


def test_any_bytes_after_a_magic_give_a_size_or_nothing(tmp_path):
    """Headers cut or garbled anywhere never raise: the decoder then says what is wrong."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    path = tmp_path / "x.img"

    @settings(max_examples=300, deadline=None)
    @given(st.sampled_from(_MAGICS), st.binary(max_size=200))
    def check(magic, tail):
        path.write_bytes(magic + tail)
        info = probe_image(path)
        assert info is None or (isinstance(info.width, int) and isinstance(info.height, int) and info.frames >= 1)

    check()
