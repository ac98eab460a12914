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
           b"II+\x00\x08\x00\x00\x00", b"MM\x00+\x00\x08\x00\x00", b"BM" + bytes(12) + b"\x0c\x00\x00\x00", b"P6",
           b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\xff\x4f\xff\x51", b"#?RADIANCE\n"]


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


def bigtiff(path, width, height, order="<", size_type=16, compression=1, data=None):
    """A BigTIFF (64-bit offsets; magic ``II+\\0`` or ``MM\\0+``) of one RGB strip, its sides
    given as ``size_type`` (3 SHORT, 4 LONG, 16 LONG8); ``data`` the strip (a real picture's
    bytes, or a few deflated ones for a claimed size)."""
    data = bytes(width * height * 3) if data is None else data
    size_fmt = {3: "H", 4: "I", 16: "Q"}[size_type]

    def entry(tag, kind, count, value_fmt, *values):
        value = struct.pack(order + value_fmt, *values)
        return struct.pack(order + "HHQ", tag, kind, count) + value + bytes(8 - len(value))

    entries = [entry(256, size_type, 1, size_fmt, width), entry(257, size_type, 1, size_fmt, height),
               entry(258, 3, 3, "HHH", 8, 8, 8), entry(259, 3, 1, "H", compression), entry(262, 3, 1, "H", 2),
               None, entry(277, 3, 1, "H", 3), entry(278, 4, 1, "I", height), entry(279, 16, 1, "Q", len(data)),
               entry(284, 3, 1, "H", 1)]
    ifd_size = 8 + 20 * len(entries) + 8
    entries[5] = entry(273, 16, 1, "Q", 16 + ifd_size)  # the strip right after the directory
    magic = b"II" if order == "<" else b"MM"
    head = magic + struct.pack(order + "HHHQ", 43, 8, 0, 16)
    ifd = struct.pack(order + "Q", len(entries)) + b"".join(entries) + struct.pack(order + "Q", 0)
    path.write_bytes(head + ifd + data)
    return path


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("size_type", [3, 4, 16])
def test_bigtiff_headers_are_read(tmp_path, order, size_type):
    """BigTIFF went unrecognised: a 283 KB deflated one claiming 17000x17000 was decoded (4.3 GB)."""
    width = 17000 if size_type != 3 else 60000
    path = bigtiff(tmp_path / "big.tif", width, 17000, order, size_type, compression=8,
                   data=zlib.compress(bytes(1 << 16)))
    assert probe_image(path) == ImageInfo(width, 17000)


def test_a_real_bigtiff_has_its_size(tmp_path):
    img = np.random.default_rng(0).integers(0, 255, (3, 5, 3), np.uint8)
    path = bigtiff(tmp_path / "small.tif", 5, 3, data=img[:, :, ::-1].tobytes())  # RGB on disk
    assert probe_image(path) == ImageInfo(5, 3)
    decoded = cv2.imread(str(path))
    assert decoded is not None and (decoded == img).all()  # OpenCV reads it as written


def os2_bmp(path, image):
    """An OS/2 1.x BMP: a 12-byte ``BITMAPCOREHEADER`` with 16-bit sides, 24-bit BGR rows bottom up."""
    h, w = image.shape[:2]
    stride = (w * 3 + 3) // 4 * 4
    rows = b"".join(image[y].tobytes() + bytes(stride - w * 3) for y in range(h - 1, -1, -1))
    header = struct.pack("<IHHHH", 12, w, h, 1, 24)
    path.write_bytes(b"BM" + struct.pack("<IHHI", 14 + 12 + len(rows), 0, 0, 26) + header + rows)
    return path


def test_an_os2_bmp_has_its_size(tmp_path):
    """Its 16-bit sides were read as 32-bit ones: a 64x48 picture claimed 3145792x1572865."""
    img = np.random.default_rng(1).integers(0, 255, (48, 64, 3), np.uint8)
    path = os2_bmp(tmp_path / "os2.bmp", img)
    assert probe_image(path) == ImageInfo(64, 48)
    decoded = cv2.imread(str(path))
    assert decoded is not None and (decoded == img).all()  # OpenCV reads it as written


def test_a_top_down_bmp_has_its_size(tmp_path):
    path = tmp_path / "x.bmp"
    cv2.imwrite(str(path), np.zeros((7, 9, 3), np.uint8))
    data = bytearray(path.read_bytes())
    data[22:26] = struct.pack("<i", -7)  # rows top down: a negative height
    path.write_bytes(bytes(data))
    assert probe_image(path) == ImageInfo(9, 7)
