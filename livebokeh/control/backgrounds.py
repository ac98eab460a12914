"""The control page's background picker: the user's chosen folder, and the pictures uploaded.

Nothing in a request becomes a path: the picker lists the files it offers (each under an id it
made, ``folder:NAME`` or ``uploads:NAME``) and a request names one of those ids; an upload is
size-limited, decoded as a picture (JPEG, PNG, WebP; its size read from its header first, so a
small file cannot claim a huge picture) or as a video (MP4, MOV, WebM, Matroska; one frame
decoded) before it is kept, under a name made from its content (``upload-HASH.EXT``), in the
user's own data folder (``$XDG_DATA_HOME/livebokeh/backgrounds``, by default
``~/.local/share/livebokeh/backgrounds``). Nothing is written anywhere else.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from livebokeh.errors import ConfigError
from livebokeh.sources.base import IMAGE_SUFFIXES

#: Largest upload kept, in bytes.
MAX_UPLOAD = 32 * 2**20
#: Largest picture accepted, in pixels (a 50-megapixel photo).
MAX_PIXELS = 50_000_000
#: Largest video frame accepted (4K).
MAX_VIDEO_SIDE = 4096
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi"})


def uploads_dir(create: bool = False) -> Path:
    """Where uploaded backgrounds are kept (the user's data folder, see the module's text)."""
    base = os.environ.get("XDG_DATA_HOME", "")
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".local" / "share"
    folder = root / "livebokeh" / "backgrounds"
    if create:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ConfigError(f"cannot make {folder} for uploaded backgrounds ({err.strerror})") from None
    return folder


@dataclass(frozen=True)
class Item:
    """A background the picker offers."""

    id: str
    path: Path
    kind: str  # "image" or "video"
    origin: str  # "folder" (the user's chosen one) or "uploads"

    def public(self) -> dict[str, str]:
        """What the page sees (no path)."""
        return {"id": self.id, "name": self.path.name, "kind": self.kind, "origin": self.origin}


def kind_of(path: Path) -> str | None:
    suffix = path.suffix.lower()
    return "image" if suffix in IMAGE_SUFFIXES else "video" if suffix in VIDEO_SUFFIXES else None


def listing(folder: str | Path | None) -> dict[str, Item]:
    """Every background offered: the pictures and videos directly in ``folder`` (the user's
    choice, ``[control] backgrounds``) and those uploaded, by id."""
    items: dict[str, Item] = {}
    sources = [("uploads", uploads_dir())]
    if folder:
        sources.insert(0, ("folder", Path(folder).expanduser()))
    for origin, where in sources:
        try:
            entries = sorted(where.iterdir())
        except OSError:
            continue
        for path in entries:
            kind = kind_of(path)
            if kind is None or path.name.startswith(".") or not path.is_file():
                continue
            item = Item(f"{origin}:{path.name}", path, kind, origin)
            items[item.id] = item
    return items


def image_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` from a JPEG, PNG or WebP header; None for anything else."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data[:3] == b"\xff\xd8\xff":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                return None
            marker = data[i + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                i += 2
                continue
            length = struct.unpack(">H", data[i + 2:i + 4])[0]
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                h, w = struct.unpack(">HH", data[i + 5:i + 9])
                return w, h
            i += 2 + length
        return None
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        chunk = data[12:16]
        if chunk == b"VP8X":
            w = int.from_bytes(data[24:27], "little") + 1
            h = int.from_bytes(data[27:30], "little") + 1
            return w, h
        if chunk == b"VP8L":
            bits = int.from_bytes(data[21:25], "little")
            return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        if chunk == b"VP8 ":
            w, h = struct.unpack("<HH", data[26:30])
            return w & 0x3FFF, h & 0x3FFF
    return None


_IMAGE_ENDINGS = {b"\x89PNG": ".png", b"\xff\xd8\xff": ".jpg", b"RIFF": ".webp"}


def check_upload(data: bytes) -> tuple[str, str]:
    """``(kind, file ending)`` of an upload, once decoded; ConfigError when it is too big, or
    neither a picture nor a video livebokeh reads."""
    if len(data) > MAX_UPLOAD:
        raise ConfigError(f"the upload is {len(data) / 2**20:.1f} MB; the most is {MAX_UPLOAD // 2**20} MB")
    if not data:
        raise ConfigError("the upload is empty")
    size = image_size(data)
    if size is not None:
        w, h = size
        if not (0 < w and 0 < h and w * h <= MAX_PIXELS):
            raise ConfigError(f"the picture is {w}x{h}; pictures up to {MAX_PIXELS // 10**6} megapixels are taken")
        import cv2
        import numpy as np

        from livebokeh.sources.quiet import quiet_native

        with quiet_native():  # a damaged upload: the run's terminal gets no libpng or OpenCV lines
            image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if image is None or image.shape[:2] != (h, w):
            raise ConfigError("the picture could not be decoded; it may be damaged")
        ending = next(e for magic, e in _IMAGE_ENDINGS.items() if data.startswith(magic))
        return "image", ending
    return "video", _check_video(data)


def _check_video(data: bytes) -> str:
    import av

    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            from livebokeh.sources.video import video_stream

            stream = video_stream(container)
            if stream is None:
                raise ConfigError("the upload is neither a picture (JPEG, PNG, WebP) nor a video")
            w, h = stream.codec_context.width, stream.codec_context.height
            if not (0 < w <= MAX_VIDEO_SIDE and 0 < h <= MAX_VIDEO_SIDE):
                raise ConfigError(f"the video is {w}x{h}; videos up to {MAX_VIDEO_SIDE} pixels a side are taken")
            next(container.decode(stream))
            names = container.format.name.split(",")
    except ConfigError:
        raise
    except (av.FFmpegError, StopIteration, OSError, ValueError):
        raise ConfigError("the upload is neither a picture (JPEG, PNG, WebP) nor a video livebokeh can read") from None
    for name, ending in (("mp4", ".mp4"), ("mov", ".mov"), ("webm", ".webm"), ("matroska", ".mkv")):
        if name in names:
            return ending
    raise ConfigError(f"videos in {names[0]} are not taken; give an MP4, MOV, WebM or MKV file")


def store_upload(data: bytes) -> Path:
    """Keep an upload (checked by :func:`check_upload`) in :func:`uploads_dir`, named by its
    content; the same content uploaded again is the same file."""
    from livebokeh.sinks.files import write_bytes

    _, ending = check_upload(data)
    path = uploads_dir(create=True) / f"upload-{hashlib.sha256(data).hexdigest()[:16]}{ending}"
    if not path.is_file():
        try:
            write_bytes(path, data, overwrite=False)
        except Exception:  # noqa: BLE001 - the same upload, written meanwhile by another request
            if not path.is_file():
                raise
    return path


def thumbnail(item: Item, width: int = 160) -> bytes:
    """A small JPEG of ``item`` (a video's first frame)."""
    import cv2

    if item.kind == "image":
        from livebokeh.sources.image import read_image

        image = read_image(item.path, what="background")
    else:
        from livebokeh.sources.video import VideoFileSource

        with VideoFileSource(item.path) as video:
            frame = video.read()
        if frame is None:
            raise ConfigError(f"{item.path.name} has no frame that can be read")
        image = frame.image
    h, w = image.shape[:2]
    small = cv2.resize(image, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return bytes(buf)
