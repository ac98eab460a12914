"""Virtual camera output through pyvirtualcam (v4l2loopback on Linux, OBS Virtual Camera elsewhere)."""

from __future__ import annotations

import logging
import os
import platform
from pathlib import Path
from typing import Any

from livebokeh.errors import ConfigError, SetupError, SinkError
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


#: Where Linux tells which modules are loaded and which video devices are virtual.
SYSFS = Path("/sys")


def modules_dir(release: str | None = None) -> Path:
    """The running kernel's modules (``/lib/modules/RELEASE``)."""
    return Path("/lib/modules") / (release or platform.release())


def check_backend(backend: str) -> None:
    """Raises ConfigError when ``backend`` (``virtual_camera.backend``) names no pyvirtualcam
    backend of this system (``obs`` on Linux): a wrong setting, told before anything opens."""
    import pyvirtualcam

    known = list(pyvirtualcam.camera.BACKENDS)
    if backend and backend not in known:
        instead = f"; leave it empty (any) or use {', '.join(known)}" if known else ""
        raise ConfigError(f"virtual camera backend {backend!r} (--vcam-backend, virtual_camera.backend) is not "
                          f"available on {platform.system()}{instead}")


def loopback_problem(device: str = "", sysfs: Path | None = None, modules: Path | None = None) -> str | None:
    """Why no v4l2loopback device can take frames now, as a sentence that names the fix; None
    when one can, or when this system does not say (no sysfs).

    Args:
        device: the device asked for (``virtual_camera.device``); empty = any loopback device.
        sysfs: the sysfs root (:data:`SYSFS`).
        modules: the running kernel's modules folder (:func:`modules_dir`).
    """
    sysfs = sysfs or SYSFS
    if not (sysfs / "module").is_dir():
        return None  # no sysfs here (a container, another OS): pyvirtualcam will tell
    if not (sysfs / "module" / "v4l2loopback").is_dir():
        dep = (modules or modules_dir()) / "modules.dep"
        try:
            installed = "v4l2loopback.ko" in dep.read_text(errors="replace")
        except OSError:
            installed = False
        if installed:
            return f"the v4l2loopback module is installed but not loaded: run `{LINUX_SETUP}` (and load it at boot)"
        return (f"the v4l2loopback module is not installed: install v4l2loopback-dkms (Fedora: akmod-v4l2loopback), "
                f"then run `{LINUX_SETUP}`")
    virtual = sysfs / "devices" / "virtual" / "video4linux"
    found = sorted(p.name for p in virtual.glob("video*")) if virtual.is_dir() else []
    if not found:
        return f"v4l2loopback is loaded but has no device: reload it with `sudo modprobe -r v4l2loopback && {LINUX_SETUP}`"
    if device:
        if not os.path.exists(device):
            return (f"virtual camera device {device} (--vcam-device, virtual_camera.device) does not exist; "
                    f"the v4l2loopback devices here: {', '.join('/dev/' + n for n in found)}")
        if Path(os.path.realpath(device)).name not in found:
            return (f"{device} (--vcam-device, virtual_camera.device) is no v4l2loopback device; those here: "
                    f"{', '.join('/dev/' + n for n in found)}")
    return None


def check_available(vc: Any, required: bool = False) -> None:
    """Checks, before a camera opens, that the virtual camera ``vc`` (the ``[virtual_camera]``
    settings) can take frames: ConfigError for a backend this system lacks, SetupError (exit 3)
    when v4l2loopback or its device is missing (``required``: the run cannot do without it, so
    turning it off is not offered). Other backends (OBS, ones registered in-process) are tried
    when the sink opens."""
    import pyvirtualcam

    check_backend(vc.backend)
    candidates = [vc.backend] if vc.backend else list(pyvirtualcam.camera.BACKENDS)
    if platform.system() != "Linux" or candidates != ["v4l2loopback"]:
        return
    problem = loopback_problem(vc.device)
    if problem:
        instead = "; --on-demand needs it" if required else "; or run with --no-virtual-camera"
        raise SetupError(f"no virtual camera: {problem}{instead}")


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

        check_backend(backend)
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
