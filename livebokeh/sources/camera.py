"""Webcams through OpenCV's VideoCapture."""

from __future__ import annotations

import logging
import platform
import time
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import cv2

from livebokeh.errors import SourceError
from livebokeh.sources.base import SOURCES, Source
from livebokeh.types import Frame, StreamInfo

log = logging.getLogger(__name__)


def default_api() -> int:
    """The capture API that opens cameras fastest and honours FOURCC on this OS."""
    return {
        "Linux": cv2.CAP_V4L2,
        "Windows": cv2.CAP_DSHOW,
        "Darwin": cv2.CAP_AVFOUNDATION,
    }.get(platform.system(), cv2.CAP_ANY)


def parse_device(device: str | int) -> int | str:
    """``"0"`` -> 0 (an index); anything else (``/dev/video2``, a URL) stays a string."""
    if isinstance(device, int):
        return device
    text = str(device).strip()
    return int(text) if text.isdigit() else text


def decode_fourcc(value: float) -> str:
    code = int(value)
    chars = "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4))
    return chars if chars.isprintable() and code else "?"


@SOURCES.register("camera")
class CameraSource(Source):
    """A live camera.

    The requested pixel format is set before the size (many UVC cameras only offer high
    resolutions at full frame rate as MJPG, and drivers pick the mode when the size is set);
    the mode the camera really gave is read back, logged and reported in :class:`StreamInfo`.

    Args:
        device: index (``0``) or path (``/dev/video2``).
        width, height, fps: requested mode.
        fourcc: requested pixel format such as ``MJPG``; empty keeps the camera's default.
        capture_factory: ``(device, api) -> cv2.VideoCapture``-like object; injectable for tests.
        clock_ns: monotonic clock for capture timestamps.
    """

    def __init__(
        self,
        device: str | int = 0,
        width: int = 1280,
        height: int = 720,
        fps: float = 30.0,
        fourcc: str = "MJPG",
        capture_factory: Callable[[int | str, int], Any] | None = None,
        clock_ns: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self.device = parse_device(device)
        self.requested = (int(width), int(height), float(fps), fourcc)
        self._factory = capture_factory or cv2.VideoCapture
        self._clock_ns = clock_ns
        self._cap: Any = None
        self._index = 0
        self._first: Any = None

    def _hint(self) -> str:
        if platform.system() == "Linux":
            return "list cameras with `v4l2-ctl --list-devices` (or `ls /dev/video*`)"
        return "check that the camera is connected and not used by another app"

    def _open(self) -> StreamInfo:
        width, height, fps, fourcc = self.requested
        name = f"camera {self.device}"
        cap = self._factory(self.device, default_api())
        if cap is None or not cap.isOpened():
            if cap is not None:
                cap.release()
            raise SourceError(
                f"{name} could not be opened; {self._hint()}, then pass --camera INDEX|PATH, "
                "or --input FILE to process a file"
            )
        if fourcc:
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*fourcc))
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        cap.set(cv2.CAP_PROP_FPS, fps)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        ok, image = cap.read()
        if not ok or image is None:
            cap.release()
            raise SourceError(
                f"{name} opened but gives no frames (busy in another app, or not a capture device); "
                f"{self._hint()}"
            )
        real_h, real_w = image.shape[:2]
        real_fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0) or fps
        real_fourcc = decode_fourcc(cap.get(cv2.CAP_PROP_FOURCC))
        log.info(
            "%s: %dx%d @ %.4g fps %s (asked %dx%d @ %.4g fps %s)",
            name, real_w, real_h, real_fps, real_fourcc, width, height, fps, fourcc or "default",
        )
        if (real_w, real_h) != (width, height):
            log.warning("%s does not offer %dx%d; using %dx%d", name, width, height, real_w, real_h)
        self._cap = cap
        self._first = image
        self._index = 0
        return StreamInfo(
            name=name,
            width=int(real_w),
            height=int(real_h),
            fps=Fraction(real_fps).limit_denominator(1001),
            live=True,
        )

    @property
    def mode(self) -> str:
        """The mode in use, e.g. ``1280x720 @ 30 fps``."""
        info = self.info
        return f"{info.width}x{info.height} @ {float(info.fps):.4g} fps"

    def read(self) -> Frame | None:
        if self._cap is None:
            return None
        if self._first is not None:
            image, self._first = self._first, None
        else:
            ok, image = self._cap.read()
            if not ok or image is None:
                raise SourceError(
                    f"camera {self.device} stopped delivering frames (unplugged or taken by another app); "
                    "reconnect it and start livebokeh again"
                )
        frame = Frame(_bgr(image), self._index, self._clock_ns())
        self._index += 1
        return frame

    def _release(self) -> None:
        if self._cap is not None:
            self._cap.release()
        self._cap = None
        self._first = None


def _bgr(image: Any) -> Any:
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image
