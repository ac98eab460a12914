"""``livebokeh doctor``: is this machine ready for live use? Each check says how to fix what fails.

Exit status 0 only when live use will work: a camera opens, a virtual camera is available and the
default backend's weights are usable (or only not downloaded yet: the first run downloads them).
With ``--no-devices`` the exit status covers the checks that ran, and doctor does not call the
machine ready.
"""

from __future__ import annotations

import glob
import importlib.metadata
import importlib.util
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

from livebokeh.errors import OneLineParser


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True  # needed for live use
    #: What live use still waits for though nothing failed (the default weights' first download).
    pending: str = ""


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "missing"


#: OpenCV comes as one of these wheels (each holds cv2; the default install brings opencv-python).
OPENCV_DISTS = ("opencv-python", "opencv-contrib-python", "opencv-python-headless", "opencv-contrib-python-headless")


def check_packages() -> Check:
    names = ["numpy", "opencv-python", "ai-edge-litert", "onnxruntime", "tensorflow", "av", "pyvirtualcam",
             "inotify_simple"]
    versions = {n: _version(n) for n in names}
    if versions["opencv-python"] == "missing":
        other = next((d for d in OPENCV_DISTS if _version(d) != "missing"), None)
        if other:
            versions["opencv-python"] = f"({other}) {_version(other)}"
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
                 "pip install 'tensorflow[and-cuda]' matching your driver",
                 required=False)


def _fix(problem: str) -> str:
    """The what-to-do part of a model problem's line (its last clause)."""
    return problem.rsplit("; ", 1)[-1]


def _default_model():
    """The default settings' backend and the manifest of its weights (None: it needs no file)."""
    from livebokeh import models
    from livebokeh.config import Config

    cfg = Config()
    return cfg.segmenter.backend, models.for_backend(cfg.segmenter.backend, getattr(cfg.backend_options(), "model", ""))


def check_model_cache() -> Check:
    """The per-user cache can take downloads (a warning: files can also come from elsewhere)."""
    from livebokeh import models

    problem = models.cache_problem()
    if problem:
        return Check("model cache", False, f"{problem}: downloads cannot be saved", f"{models.CACHE_FIX}, or set "
                     f"{models.MODEL_DIR_VAR} to a folder holding the model files", required=False)
    folder = models.model_dir()
    extra = f"; model folder {folder} ({models.MODEL_DIR_VAR}) first" if folder else ""
    return Check("model cache", True, f"{models.cache_dir()}{extra}", required=False)


def check_models() -> Check:
    """The other backends' models: available offline or not. Nothing is downloaded or deleted."""
    from livebokeh import models
    from livebokeh.config import BACKENDS

    _, default = _default_model()
    parts, fixes = [], []
    for m in models.manifests().values():
        if default is not None and m.name == default.name:
            continue  # the default backend's: its own check
        found = models.find(m.name)
        if found.ok:
            parts.append(f"{m.name}: {found.path}")
        elif found.problem:
            parts.append(f"{m.name}: {found.problem}")
            fixes.append(_fix(found.problem))
        else:
            use = f"--backend {m.backend}" if m.backend in BACKENDS else f"--{m.backend}"  # the depth model: --depth
            parts.append(f"{m.name}: not downloaded (optional, for {use}: "
                         f"`livebokeh models download {m.backend}`)")
    return Check("models", not fixes, "; ".join(parts) or "none", "; ".join(dict.fromkeys(fixes)), required=False)


def _loads(backend: str) -> str:
    """Build the default backend as a run would ("" when it loads, else the one-line reason)."""
    from livebokeh.config import Config, with_backend
    from livebokeh.errors import LivebokehError, one_line
    from livebokeh.segment import SegmenterOptions, create_segmenter

    try:
        with create_segmenter(backend, SegmenterOptions.from_config(with_backend(Config(), backend))):
            return ""
    except LivebokehError as err:
        return one_line(err)
    except Exception as err:  # noqa: BLE001 - whatever the runtime raises for a bad file is the finding
        return f"{type(err).__name__}: {one_line(err)}"


def check_default_backend() -> Check:
    """The default backend's weights: usable, or not downloaded yet (the first run downloads them).
    A file given through the environment that is not the release is loaded to see that it works."""
    from livebokeh import models

    backend, m = _default_model()
    name = "default backend"
    if m is None:
        return Check(name, True, f"{backend}: needs no weights file")
    found = models.find(m.name)
    blocked = models.cache_problem()
    if found.problem and (found.damaged is None or blocked):  # nothing a run could mend by itself
        return Check(name, False, f"{backend} (the default): {found.problem}", _fix(found.problem))
    if not found.ok:
        if blocked:
            return Check(name, False, f"{backend} (the default): {m.label} not downloaded, and the cache cannot "
                         f"take it: {blocked}", f"{models.CACHE_FIX}, or set {models.MODEL_DIR_VAR} to a folder "
                         f"holding {m.file}")
        what = (found.problem.split("; ", 1)[0] + "; the first run downloads it again" if found.damaged else
                f"{m.label} ({m.size / 1e6:.1f} MB) is not downloaded yet; the first run downloads it")
        return Check(name, False, f"{backend} (the default): {what}, which needs internet access", f"livebokeh models download {backend}", required=False,
                     pending=f"{backend}'s weights are downloaded (the first run does it, with internet access; "
                             f"or `livebokeh models download {backend}` now)")
    if found.source in ("cache", "model dir"):
        return Check(name, True, f"{backend}: {found.path} ({found.source}, checksum ok)")
    differs = models.check(found.path, m)
    if not differs:
        return Check(name, True, f"{backend}: {found.path} ({found.source}, the release file)")
    why = _loads(backend)
    where = f"{m.env_var}={found.path}" if found.source == "environment" else str(found.path)
    if why:
        return Check(name, False, f"{backend} (the default): {where} does not load: {why}",
                     f"fix or unset {m.env_var}" if found.source == "environment" else "give the right file")
    return Check(name, True, f"{backend}: {where} (not the release file: {differs}; it loads)")


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
    if st.problem:  # a folder where the unit goes
        return Check("service", False, st.problem, required=False)
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


def run_checks(skip_devices: bool = False) -> list[Check]:
    checks = [check_packages(), check_default_backend(), check_model_cache(), check_models(), check_gpu(),
              check_service()]
    if not skip_devices:
        checks += [check_cameras(), check_virtual_camera()]
    return checks


def main(argv: list[str]) -> int:
    p = OneLineParser(prog="livebokeh doctor", description=__doc__.split("\n\n")[0].replace("``", ""))
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
    pending = [c.pending for c in checks if c.pending]
    if not ready:
        summary = "not ready for live use: fix the FAIL lines above"
    elif args.no_devices:
        summary = "no problem found; the camera and the virtual camera were not checked (--no-devices)"
        if pending:
            summary += f"; live use also waits until {'; '.join(pending)}"
    elif pending:
        summary = f"ready for live use once {'; '.join(pending)}"
    else:
        summary = "ready for live use"
    print(summary, file=sys.stderr)
    return 0 if ready else 1
