"""Frame sources (camera, video file, image), behind one registry (:data:`SOURCES`)."""

from __future__ import annotations

from pathlib import Path

from livebokeh.sources.animation import AnimationSource, is_animation
from livebokeh.sources.base import IMAGE_SUFFIXES, SOURCES, Source, is_image_path
from livebokeh.sources.camera import CameraSource
from livebokeh.sources.image import ImageSource
from livebokeh.sources.resilient import Reconnecting
from livebokeh.sources.video import VideoFileSource


def is_still_input(path: str | Path) -> bool:
    """Whether ``path`` is read as one still picture: an image by its file ending that is no
    animation (an animated PNG or WebP is read as a video)."""
    return is_image_path(path) and not is_animation(path)


def source_for_input(path: str | Path, pace: bool = False) -> Source:
    """The source that reads ``path``: a still image by its file ending, an animated PNG or WebP
    (every frame, as a video), else a video."""
    if is_animation(path):
        return SOURCES.get("animation")(path, pace=pace)
    if is_image_path(path):
        return SOURCES.get("image")(path)
    return SOURCES.get("video")(path, pace=pace)


__all__ = [
    "IMAGE_SUFFIXES",
    "AnimationSource",
    "SOURCES",
    "CameraSource",
    "ImageSource",
    "Reconnecting",
    "Source",
    "VideoFileSource",
    "is_animation",
    "is_image_path",
    "is_still_input",
    "source_for_input",
]
