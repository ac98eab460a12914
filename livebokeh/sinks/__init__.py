"""Outputs (virtual camera, preview window, video and image files, masks), behind :data:`SINKS`."""

from livebokeh.sinks.base import SINKS, Sink, check_output_path
from livebokeh.sinks.image import ImageFileSink
from livebokeh.sinks.mask import MaskSink
from livebokeh.sinks.preview import PreviewSink, display_available
from livebokeh.sinks.video import AlphaVideoSink, VideoFileSink, VideoWriter
from livebokeh.sinks.virtualcam import VirtualCameraSink, setup_hint

__all__ = [
    "SINKS",
    "AlphaVideoSink",
    "ImageFileSink",
    "MaskSink",
    "PreviewSink",
    "Sink",
    "VideoFileSink",
    "VideoWriter",
    "VirtualCameraSink",
    "check_output_path",
    "display_available",
    "setup_hint",
]
