"""What an image file's header says, read without decoding it: its picture size and, for
animated PNG and WebP, how many frames it holds.

A file's header can claim any size (a 600-byte PNG can say 50000x50000, 7.5 GB of pixels):
it is checked against :data:`MAX_PIXELS` before anything is decoded (:func:`check_pixels`).
Standard library only (the command line asks before it imports the pipeline).
"""

from __future__ import annotations

import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path

from livebokeh.errors import file_kind

#: The most pixels a picture (or a video's frame) may have: 16384x16384, 268 MP (the largest
#: phone photos have 200 MP). livebokeh needs about 17 bytes a pixel for a still (a 48 MP photo
#: peaked at 0.8 GB), so this is about 4.5 GB.
MAX_PIXELS = 1 << 28
#: Bytes read from the start of a file to find its header (a JPEG's size can follow its EXIF
#: thumbnail, up to 64 KB; larger metadata is walked further by seeking).
_HEAD = 1 << 16


@dataclass(frozen=True)
class ImageInfo:
    """A header's picture size and frame count (1 for a still)."""

    width: int
    height: int
    frames: int = 1

    @property
    def animated(self) -> bool:
        return self.frames > 1


def is_regular(path: str | Path) -> bool:
    """Whether ``path`` names a regular file (through links), found without opening it."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def not_regular_kind(path: str | Path) -> str | None:
    """What ``path`` is when it exists but is no regular file or folder (``a pipe``, ``a
    device``, ``a socket``); None otherwise."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return file_kind(mode)


def probe_image(path: str | Path) -> ImageInfo | None:
    """The header of a PNG (APNG), JPEG, WebP, BMP, GIF, TIFF, PNM, JPEG 2000 or Radiance HDR
    file; None when the file cannot be read or its format is none of these (or its header is
    damaged, or it is no regular file: a FIFO is never opened, which would wait for a writer).
    (OpenEXR, which OpenCV's wheels leave off, is left to OpenCV's own limit.)"""
    if not is_regular(path):
        return None
    try:
        with open(path, "rb") as fh:
            head = fh.read(_HEAD)
            if head[:2] == b"\xff\xd8":
                return _jpeg(fh)
            if head[:8] == b"\x89PNG\r\n\x1a\n":
                return _png(fh)
            if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
                return _webp(fh)
    except (OSError, struct.error, ValueError, IndexError):
        return None
    try:
        if head[:6] in (b"GIF87a", b"GIF89a"):
            w, h = struct.unpack("<HH", head[6:10])
            return ImageInfo(w, h)
        if head[:2] == b"BM":
            return _bmp(head)
        if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
            return _tiff(path)
        if head[:1] == b"P" and head[1:2] in b"123456":
            return _pnm(head)
        if head[:12] == b"\x00\x00\x00\x0cjP  \r\n\x87\n" or head[:4] == b"\xff\x4f\xff\x51":
            return _jp2(head)
        if head[:2] == b"#?":
            return _hdr(head)
    except (OSError, struct.error, ValueError, IndexError, KeyError):
        return None
    return None


def check_pixels(what: str, path: str | Path, width: int, height: int, frames: int = 1) -> None:
    """Raise :class:`~livebokeh.errors.SourceError` when a picture of ``width`` x ``height`` is
    more than :data:`MAX_PIXELS`: one line saying what to do."""
    if width * height > MAX_PIXELS:
        from livebokeh.errors import SourceError

        raise SourceError(
            f"{what} {path} is {width}x{height} ({width * height / 1e6:.0f} MP); livebokeh takes pictures up to "
            f"{MAX_PIXELS / 1e6:.0f} MP (16384x16384): scale it down first"
        )


def _png(fh) -> ImageInfo:
    """IHDR's size; an ``acTL`` chunk before the image data makes it an APNG of that many frames."""
    fh.seek(8)
    width = height = None
    frames = 1
    while True:
        length, kind = struct.unpack(">I4s", fh.read(8))
        if kind == b"IHDR":
            width, height = struct.unpack(">II", fh.read(8))
            fh.seek(length - 8 + 4, 1)
            continue
        if kind == b"acTL":
            frames = max(1, struct.unpack(">I", fh.read(4))[0])
            fh.seek(length - 4 + 4, 1)
            continue
        if kind in (b"IDAT", b"IEND", b"fdAT") or width is None:
            break
        fh.seek(length + 4, 1)
    if width is None:
        raise ValueError("no IHDR")
    return ImageInfo(width, height, frames)


def _jpeg(fh) -> ImageInfo:
    """The first start-of-frame marker's size (markers walked by their lengths)."""
    fh.seek(2)
    while True:
        byte = fh.read(1)
        if not byte:
            raise ValueError("no SOF")
        if byte != b"\xff":
            continue
        marker = fh.read(1)
        while marker == b"\xff":
            marker = fh.read(1)
        m = marker[0]
        if m in (0xD8, 0x01) or 0xD0 <= m <= 0xD7:
            continue  # markers without a length
        (length,) = struct.unpack(">H", fh.read(2))
        if 0xC0 <= m <= 0xCF and m not in (0xC4, 0xC8, 0xCC):
            _, height, width = struct.unpack(">BHH", fh.read(5))
            return ImageInfo(width, height)
        fh.seek(length - 2, 1)


def _webp(fh) -> ImageInfo:
    """A simple WebP's size (VP8 or VP8L), or an extended one's canvas with its ANMF frames counted."""
    fh.seek(12)
    info = None
    frames = 0
    while True:
        head = fh.read(8)
        if len(head) < 8:
            break
        kind, length = head[:4], struct.unpack("<I", head[4:])[0]
        body_at = fh.tell()
        if kind == b"VP8X":
            data = fh.read(10)
            w = 1 + int.from_bytes(data[4:7], "little")
            h = 1 + int.from_bytes(data[7:10], "little")
            info = ImageInfo(w, h)
            if not data[0] & 0x02:  # no animation flag
                return info
        elif kind == b"VP8 " and info is None:
            data = fh.read(10)
            w, h = struct.unpack("<HH", data[6:10])
            return ImageInfo(w & 0x3FFF, h & 0x3FFF)
        elif kind == b"VP8L" and info is None:
            data = fh.read(5)
            bits = int.from_bytes(data[1:5], "little")
            return ImageInfo((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
        elif kind == b"ANMF":
            frames += 1
        fh.seek(body_at + length + (length & 1))
    if info is None:
        raise ValueError("no WebP image chunk")
    return ImageInfo(info.width, info.height, max(1, frames))


def _bmp(head: bytes) -> ImageInfo:
    """The info header's size: 16-bit sides in OS/2's 12-byte ``BITMAPCOREHEADER``, else 32-bit
    ones (negative height: the rows run top down)."""
    (header_size,) = struct.unpack("<I", head[14:18])
    if header_size == 12:
        w, h = struct.unpack("<HH", head[18:22])
    else:
        w, h = struct.unpack("<ii", head[18:26])
    return ImageInfo(abs(w), abs(h))


#: TIFF field types of a size: SHORT, LONG and (BigTIFF) LONG8, as ``struct`` formats.
_TIFF_TYPES = {3: "H", 4: "I", 16: "Q"}


def _tiff(path: str | Path) -> ImageInfo:
    """The first image's width and length tags (classic TIFF, or BigTIFF's 64-bit offsets)."""
    with open(path, "rb") as fh:
        data = fh.read(16)
        order = "<" if data[:2] == b"II" else ">"
        big = struct.unpack(order + "H", data[2:4])[0] == 43
        if big:  # BigTIFF: offset size 8, then the first directory's 64-bit offset
            (offset,) = struct.unpack(order + "Q", data[8:16])
            count_fmt, entry_fmt, value_size = "Q", "HHQ8s", 20
        else:
            (offset,) = struct.unpack(order + "I", data[4:8])
            count_fmt, entry_fmt, value_size = "H", "HHI4s", 12
        fh.seek(offset)
        (count,) = struct.unpack(order + count_fmt, fh.read(struct.calcsize(count_fmt)))
        size: dict[int, int] = {}
        for _ in range(min(count, 512)):
            tag, kind, _n, value = struct.unpack(order + entry_fmt, fh.read(value_size))
            if tag in (256, 257):
                fmt = _TIFF_TYPES.get(kind, "I")
                size[tag] = struct.unpack(order + fmt, value[: struct.calcsize(fmt)])[0]
        return ImageInfo(size[256], size[257])


def _pnm(head: bytes) -> ImageInfo:
    """``P1``..``P6``: the width and height after the magic, comments skipped."""
    words: list[bytes] = []
    for line in head[2:].splitlines():
        words += line.split(b"#")[0].split()
        if len(words) >= 2:
            return ImageInfo(int(words[0]), int(words[1]))
    raise ValueError("no PNM size")


def _jp2(head: bytes) -> ImageInfo:
    """JPEG 2000: the ``ihdr`` box of a JP2 file, or a bare codestream's SIZ marker."""
    if head[:4] == b"\xff\x4f\xff\x51":  # SOC, then SIZ: Lsiz, Rsiz, Xsiz, Ysiz, XOsiz, YOsiz
        xsiz, ysiz, xo, yo = struct.unpack(">IIII", head[8:24])
        return ImageInfo(xsiz - xo, ysiz - yo)
    at = head.find(b"ihdr")
    if at < 0:
        raise ValueError("no ihdr")
    height, width = struct.unpack(">II", head[at + 4:at + 12])
    return ImageInfo(width, height)


def _hdr(head: bytes) -> ImageInfo:
    """Radiance HDR: the resolution line after the header's blank line (``-Y h +X w``)."""
    _, _, rest = head.partition(b"\n\n")
    words = rest.split(b"\n", 1)[0].split()
    if len(words) != 4:
        raise ValueError("no HDR resolution")
    sizes = {words[0][-1:]: int(words[1]), words[2][-1:]: int(words[3])}
    return ImageInfo(sizes[b"X"], sizes[b"Y"])
