"""Frame sources (camera, video file, image), behind one registry (:data:`SOURCES`)."""

from __future__ import annotations

from pathlib import Path

from livebokeh.sources.base import IMAGE_SUFFIXES, SOURCES, Source, is_image_path
from livebokeh.sources.camera import CameraSource
from livebokeh.sources.image import ImageSource
from livebokeh.sources.resilient import Reconnecting
from livebokeh.sources.video import VideoFileSource


def source_for_input(path: str | Path, pace: bool = False) -> Source:
    """The source that reads ``path``: a still image by its file ending, else a video."""
    if is_image_path(path):
        return SOURCES.get("image")(path)
    return SOURCES.get("video")(path, pace=pace)


__all__ = [
    "IMAGE_SUFFIXES",
    "SOURCES",
    "CameraSource",
    "ImageSource",
    "Reconnecting",
    "Source",
    "VideoFileSource",
    "is_image_path",
    "source_for_input",
]
