"""Virtual camera output through pyvirtualcam (v4l2loopback on Linux, OBS Virtual Camera elsewhere)."""

from __future__ import annotations

import logging
import platform
from typing import Any

from livebokeh.errors import SinkError
from livebokeh.sinks.base import SINKS, Sink
from livebokeh.types import Composite, StreamInfo

log = logging.getLogger(__name__)

LINUX_SETUP = (
    "sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label=livebokeh"
)


def setup_hint(system: str | None = None, required: bool = False) -> str:
    """How to get a virtual camera on this OS, as one sentence (``required``: the run cannot do
    without one, so turning it off is not offered)."""
    system = system or platform.system()
    instead = "; --on-demand needs it" if required else ", or run with --no-virtual-camera"
    if system == "Linux":
        return f"load a v4l2loopback device with `{LINUX_SETUP}` (package v4l2loopback-dkms){instead}"
    return f"install OBS Studio 28 or newer and click 'Start Virtual Camera' once{instead}"


@SINKS.register("virtual-camera")
class VirtualCameraSink(Sink):
    """Sends every rendered frame to a virtual camera that video-call apps and OBS can select.

    Args:
        info: the stream (size and frame rate announced to the device).
        device: device to use (``/dev/video10``, ``OBS Virtual Camera``); empty = first free one.
        backend: pyvirtualcam backend name; empty = every backend in turn.
        fps: frame rate announced to the device; 0 = the stream's.
        required: the run needs it (``--on-demand``): its error does not offer turning it off.
    """

    name = "virtual-camera"

    def __init__(self, info: StreamInfo, device: str = "", backend: str = "", fps: float = 0.0,
                 required: bool = False) -> None:
        import pyvirtualcam

        if backend and backend not in pyvirtualcam.camera.BACKENDS:
            known = ", ".join(pyvirtualcam.camera.BACKENDS) or "none on this system"
            raise SinkError(f"unknown virtual camera backend {backend!r}; available: {known}")
        if not pyvirtualcam.camera.BACKENDS:
            raise SinkError(f"no virtual camera backend for {platform.system()}; {setup_hint(required=required)}")
        rate = float(fps or info.fps)
        try:
            self._cam: Any = pyvirtualcam.Camera(
                info.width,
                info.height,
                rate,
                fmt=pyvirtualcam.PixelFormat.BGR,
                device=device or None,
                backend=backend or None,
            )
        except (RuntimeError, ValueError, OSError) as err:
            reason = "; ".join(line.strip() for line in str(err).splitlines() if line.strip()) or type(err).__name__
            where = f"device {device}" if device else "any device"
            raise SinkError(f"no virtual camera ({where}: {reason}); {setup_hint(required=required)}") from None
        self.device = self._cam.device
        self.frames = 0
        log.info("virtual camera: %s (%s), %dx%d @ %.4g fps", self.device, self._cam.backend,
                 info.width, info.height, rate)

    def write(self, item: Composite) -> None:
        try:
            self._cam.send(item.image)
        except (RuntimeError, OSError, ValueError) as err:
            raise SinkError(f"virtual camera {self.device} stopped accepting frames: {err}") from None
        self.frames += 1

    def _release(self) -> None:
        self._cam.close()
