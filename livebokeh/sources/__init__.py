"""Frame sources (camera, video file, image), behind one registry (:data:`SOURCES`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from livebokeh.sources.animation import AnimationSource, is_animation
from livebokeh.sources.base import IMAGE_SUFFIXES, SOURCES, Source, is_image_path
from livebokeh.sources.camera import CameraSource
from livebokeh.sources.clip import ClipCamera
from livebokeh.sources.image import ImageSource
from livebokeh.sources.resilient import Reconnecting
from livebokeh.sources.video import VideoFileSource

if TYPE_CHECKING:
    from livebokeh.config import CameraConfig


def is_still_input(path: str | Path) -> bool:
    """Whether ``path`` is read as one still picture: an image by its file ending that is no
    animation (an animated PNG or WebP is read as a video)."""
    return is_image_path(path) and not is_animation(path)


def source_for_input(path: str | Path) -> Source:
    """The source that reads ``path``: a still image by its file ending, an animated PNG or WebP
    (every frame, as a video), else a video."""
    if is_animation(path):
        return SOURCES.get("animation")(path)
    if is_image_path(path):
        return SOURCES.get("image")(path)
    return SOURCES.get("video")(path)


def is_clip(device: str) -> bool:
    """``--camera`` names a file (a video played as a camera), not a camera index or device."""
    p = Path(device)
    return not device.strip().isdigit() and p.is_file() and not str(p).startswith("/dev/")


def check_camera_device(device: str) -> None:
    """A ``--camera`` that names a file (a path with a file ending, or a folder) that is not a
    video there: one line saying so (not "the camera could not be opened")."""
    from livebokeh.errors import SourceError

    text = device.strip()
    if text.isdigit() or "://" in text or text.startswith("/dev/"):
        return  # an index, a stream address or a device
    p = Path(text)
    if p.is_dir():
        raise SourceError(f"--camera {device} is a folder; give a camera index (0, 1, ...), a device such as "
                          "/dev/video2, or a video file to play as a camera")
    if p.suffix and not p.exists():
        raise SourceError(f"--camera {device}: no such file; give a camera index (0, 1, ...), a device such as "
                          "/dev/video2, or a video file to play as a camera")


def camera_source(c: CameraConfig) -> Source:
    """The live source the ``[camera]`` settings name (unopened): a webcam that is reopened when
    it is lost (:class:`Reconnecting`), or a video file played as a camera (:class:`ClipCamera`)."""
    if is_clip(c.device):
        return SOURCES.get("clip")(c.device, loop=c.loop)
    check_camera_device(c.device)
    return Reconnecting(lambda: CameraSource(c.device, c.width, c.height, c.fps, c.fourcc), watchdog_s=c.watchdog)


__all__ = [
    "IMAGE_SUFFIXES",
    "AnimationSource",
    "SOURCES",
    "CameraSource",
    "ClipCamera",
    "ImageSource",
    "Reconnecting",
    "Source",
    "VideoFileSource",
    "camera_source",
    "is_animation",
    "is_clip",
    "is_image_path",
    "is_still_input",
    "source_for_input",
]
