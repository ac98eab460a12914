"""``livebokeh doctor``: is this machine ready for live use? Each check says how to fix what fails.

Exit status 0 only when live use will work: a camera opens and a virtual camera is available.
"""

from __future__ import annotations

import argparse
import glob
import importlib.metadata
import importlib.util
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True  # needed for live use


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "missing"


def check_packages() -> Check:
    names = ["numpy", "opencv-contrib-python", "mediapipe", "ai-edge-litert", "onnxruntime", "tensorflow", "av",
             "pyvirtualcam", "inotify_simple"]
    versions = {n: _version(n) for n in names}
    if versions["onnxruntime"] == "missing" and _version("onnxruntime-gpu") != "missing":
        versions["onnxruntime"] = f"(gpu) {_version('onnxruntime-gpu')}"
    optional = {"tensorflow"} | ({"inotify_simple"} if platform.system() != "Linux" else set())  # an extra; Linux only
    missing = [n for n, v in versions.items() if v == "missing" and n not in optional]
    detail = ", ".join(f"{n} {v}" for n, v in versions.items())
    return Check("packages", not missing, f"Python {platform.python_version()}; {detail}",
                 f"pip install {' '.join(missing)}" if missing else "")


def check_cameras(max_index: int = 4) -> Check:
    import cv2

    from livebokeh.sources.camera import default_api

    found = []
    candidates: list[int | str] = sorted(glob.glob("/dev/video*")) if platform.system() == "Linux" else list(range(max_index))
    for dev in candidates:
        cap = cv2.VideoCapture(dev, default_api())
        try:
            if cap.isOpened():
                ok, img = cap.read()
                if ok and img is not None:
                    found.append(f"{dev}: {img.shape[1]}x{img.shape[0]} @ {cap.get(cv2.CAP_PROP_FPS):.0f} fps")
        finally:
            cap.release()
    if found:
        return Check("cameras", True, "; ".join(found))
    return Check("cameras", False, "no camera delivers frames",
                 "connect a webcam (and close apps that hold it); on Linux `v4l2-ctl --list-devices` lists them")


def check_virtual_camera() -> Check:
    system = platform.system()
    if system == "Linux":
        module = Path("/sys/module/v4l2loopback")
        if not module.exists():
            return Check("virtual camera", False, "the v4l2loopback module is not loaded",
                         "sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label=livebokeh "
                         "(package v4l2loopback-dkms)")
        names = []
        for d in sorted(glob.glob("/sys/devices/virtual/video4linux/video*")):
            try:
                names.append(f"/dev/{Path(d).name} ({Path(d, 'name').read_text().strip()})")
            except OSError:
                names.append(f"/dev/{Path(d).name}")
        caps_file = module / "parameters" / "exclusive_caps"
        caps = caps_file.read_text().strip() if caps_file.exists() else "?"
        ok = bool(names)
        fix = "" if ok else "reload: sudo modprobe -r v4l2loopback && sudo modprobe v4l2loopback devices=1 exclusive_caps=1"
        detail = f"v4l2loopback loaded; devices: {', '.join(names) or 'none'}; exclusive_caps={caps}"
        if caps and "N" in caps.upper().replace("Y", ""):
            detail += " (Chrome needs exclusive_caps=1 to list the device)"
        return Check("virtual camera", ok, detail, fix)
    try:
        import pyvirtualcam

        with pyvirtualcam.Camera(320, 240, 30) as cam:
            return Check("virtual camera", True, f"{cam.backend}: {cam.device}")
    except Exception as err:  # noqa: BLE001 - any failure is the finding
        return Check("virtual camera", False, " ".join(str(err).split()),
                     "install OBS Studio 28+ and start its Virtual Camera once")


def check_gpu() -> Check:
    from livebokeh.segment.deeplab.segmenter import nvidia_driver_present

    if not nvidia_driver_present():
        return Check("GPU", True, "no NVIDIA driver: DeepLab runs on the CPU (TFLite)", required=False)
    if importlib.util.find_spec("tensorflow") is None:
        return Check("GPU", False, "NVIDIA driver found but TensorFlow (DeepLab's GPU runtime) is not installed",
                     "pip install 'livebokeh[tensorflow]'",
                     required=False)
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return Check("GPU", True, f"TensorFlow sees {', '.join(g.name for g in gpus)}", required=False)
    return Check("GPU", False, "NVIDIA driver found but TensorFlow sees no GPU",
                 "pip install 'tensorflow[and-cuda]<2.20' (mediapipe 0.10.21 needs protobuf<5) matching your driver",
                 required=False)


def check_models() -> Check:
    from livebokeh import models
    from livebokeh.errors import LivebokehError
    from livebokeh.segment.selfie import bundled_model_path

    parts, ok = [], True
    try:
        parts.append(f"mediapipe selfie models: {bundled_model_path('general').parent}")
    except LivebokehError as err:
        parts.append(f"mediapipe: {err}")
        ok = False
    for name in models.manifests():
        try:
            parts.append(f"{name}: {models.locate(name, download_missing=False)}")
        except LivebokehError:
            parts.append(f"{name}: not downloaded (optional: `livebokeh models download {name}`)")
    return Check("models", ok, "; ".join(parts), "" if ok else "pip install mediapipe==0.10.21")


def check_service() -> Check:
    """The always-on service (Linux): installed, enabled, running, on demand? Never required."""
    if platform.system() != "Linux":
        return Check("service", True, "no systemd service on this system: start livebokeh from a login item",
                     required=False)
    from livebokeh.commands.service import state
    from livebokeh.errors import LivebokehError, one_line

    try:
        st = state()
    except LivebokehError as err:  # HOME unusable, say
        return Check("service", False, one_line(err), required=False)
    if not st.installed:
        return Check("service", True, st.line(), required=False)
    running = st.active == "active"
    if running:
        fix = ""
    elif st.enabled != "enabled":
        fix = "systemctl --user enable --now livebokeh.service"
    else:
        fix = "journalctl --user -u livebokeh says why; `livebokeh service status`"
    return Check("service", running, st.line(), fix, required=False)


def check_default_backend() -> Check:
    """The default backend's weights are here (a first live run would otherwise download them)."""
    from livebokeh import models
    from livebokeh.config import Config
    from livebokeh.errors import LivebokehError

    backend = Config().segmenter.backend
    if backend not in models.manifests():
        return Check("default backend", True, f"{backend}: bundled", required=False)
    try:
        where = models.locate(backend, download_missing=False)
    except LivebokehError:
        return Check("default backend", False, f"{backend} (the default): weights not downloaded; the first run "
                     "downloads them (and fails offline)",
                     f"livebokeh models download {backend}, or use --backend mediapipe (bundled)", required=False)
    return Check("default backend", True, f"{backend}: {where}", required=False)


def run_checks(skip_devices: bool = False) -> list[Check]:
    checks = [check_packages(), check_models(), check_default_backend(), check_gpu(), check_service()]
    if not skip_devices:
        checks += [check_cameras(), check_virtual_camera()]
    return checks


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="livebokeh doctor", description=__doc__.split("\n\n")[0].replace("``", ""))
    p.add_argument("--no-devices", action="store_true", help="skip the camera and virtual-camera checks")
    args = p.parse_args(argv)
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    checks = run_checks(args.no_devices)
    for c in checks:
        mark = "ok  " if c.ok else ("FAIL" if c.required else "warn")
        print(f"[{mark}] {c.name}: {c.detail}")
        if not c.ok and c.fix:
            print(f"       fix: {c.fix}")
    ready = all(c.ok for c in checks if c.required)
    print("ready for live use" if ready else "not ready for live use: fix the FAIL lines above", file=sys.stderr)
    return 0 if ready else 1
