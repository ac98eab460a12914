from fractions import Fraction

import numpy as np
import pytest

from livebokeh.errors import ConfigError, SinkError
from livebokeh.sinks import VirtualCameraSink, setup_hint
from livebokeh.sinks.virtualcam import check_available, check_backend, loopback_problem
from livebokeh.types import Composite, Frame, Mask, StreamInfo

INFO = StreamInfo("cam", 64, 48, Fraction(30), live=True)


def _item(i):
    img = np.full((48, 64, 3), (i, 2 * i, 3 * i), np.uint8)
    return Composite(Frame(img, i, 0), img.copy(), Mask(np.ones((48, 64), np.float32)))


def test_frames_reach_a_real_pyvirtualcam_camera(memory_vcam):
    sink = VirtualCameraSink(INFO)
    for i in range(4):
        sink.write(_item(i))
    sink.close()
    sink.close()
    (cam,) = memory_vcam
    assert (cam.width, cam.height, cam.fps) == (64, 48, 30.0)
    assert len(cam.frames) == 4 and cam.closed
    np.testing.assert_array_equal(cam.frames[3], _item(3).image)  # BGR passed through unchanged
    assert sink.device == "memory0"


def test_fps_and_device_options(memory_vcam):
    VirtualCameraSink(INFO, device="memory0", backend="memory", fps=15).close()
    assert memory_vcam[0].fps == 15.0


def test_missing_device_says_how_to_make_one(memory_vcam):
    with pytest.raises(SinkError) as info:
        VirtualCameraSink(INFO, device="/dev/video42")
    text = str(info.value)
    assert "no virtual camera (device /dev/video42: 'memory' backend: device /dev/video42 does not exist)" in text
    assert "--no-virtual-camera" in text and "\n" not in text


def test_unknown_backend_is_a_wrong_setting(memory_vcam):
    with pytest.raises(ConfigError, match="virtual camera backend 'obs' .* is not available on .*; leave it empty "
                                          r"\(any\) or use memory"):
        VirtualCameraSink(INFO, backend="obs")
    with pytest.raises(ConfigError, match="'unitycapture'"):
        check_backend("unitycapture")
    check_backend("")  # any
    check_backend("memory")


def _sysfs(tmp_path, loaded=True, devices=("video10",), installed=False):
    """A sysfs tree (and a kernel modules folder) as Linux shows v4l2loopback."""
    sysfs, modules = tmp_path / "sys", tmp_path / "modules"
    (sysfs / "module" / "videodev").mkdir(parents=True)
    modules.mkdir()
    (modules / "modules.dep").write_text("kernel/drivers/media/v4l2-core/videodev.ko.zst:\n" + (
        "updates/dkms/v4l2loopback.ko.zst: kernel/drivers/media/v4l2-core/videodev.ko.zst\n" if installed else ""))
    if loaded:
        (sysfs / "module" / "v4l2loopback").mkdir()
    for name in devices:
        (sysfs / "devices" / "virtual" / "video4linux" / name).mkdir(parents=True)
    return sysfs, modules


@pytest.mark.parametrize("state, said", [
    ({"loaded": False}, "the v4l2loopback module is not installed: install v4l2loopback-dkms"),
    ({"loaded": False, "installed": True}, "the v4l2loopback module is installed but not loaded: run `sudo modprobe"),
    ({"devices": ()}, "v4l2loopback is loaded but has no device: reload it"),
])
def test_a_missing_loopback_module_or_device_is_told_with_its_fix(tmp_path, state, said):
    sysfs, modules = _sysfs(tmp_path, **state)
    problem = loopback_problem("", sysfs, modules)
    assert problem.startswith(said) and "\n" not in problem


def test_the_device_asked_for_must_be_a_loopback_device(tmp_path):
    sysfs, modules = _sysfs(tmp_path, devices=("video10", "video11"))
    assert loopback_problem("", sysfs, modules) is None
    dev = tmp_path / "dev"
    dev.mkdir()
    for name in ("video10", "video3"):
        (dev / name).touch()
    (dev / "by-label").symlink_to(dev / "video10")
    assert loopback_problem(str(dev / "video10"), sysfs, modules) is None
    assert loopback_problem(str(dev / "by-label"), sysfs, modules) is None  # a link to one
    assert "is no v4l2loopback device; those here: /dev/video10, /dev/video11" in loopback_problem(
        str(dev / "video3"), sysfs, modules)  # a webcam, say
    assert "does not exist" in loopback_problem(str(dev / "video12"), sysfs, modules)


def test_without_sysfs_the_check_leaves_it_to_pyvirtualcam(tmp_path):
    assert loopback_problem("/dev/video10", tmp_path / "no-sys", tmp_path) is None


def test_check_available_raises_a_setup_error_before_anything_opens(tmp_path, monkeypatch):
    import platform

    import pyvirtualcam.camera as pvc

    from livebokeh.config import VirtualCameraConfig
    from livebokeh.errors import SetupError
    from livebokeh.sinks import virtualcam

    sysfs, _ = _sysfs(tmp_path, loaded=False, devices=())
    monkeypatch.setattr(virtualcam, "SYSFS", sysfs)
    monkeypatch.setattr(virtualcam, "modules_dir", lambda release=None: tmp_path / "modules")
    monkeypatch.setattr(platform, "system", lambda: "Linux")
    monkeypatch.setattr(pvc, "BACKENDS", {"v4l2loopback": object})
    with pytest.raises(SetupError, match="not installed.*; or run with --no-virtual-camera$"):
        check_available(VirtualCameraConfig())
    with pytest.raises(SetupError, match="not installed.*; --on-demand needs it$"):
        check_available(VirtualCameraConfig(on_demand=True), required=True)
    with pytest.raises(ConfigError, match="'obs'"):
        check_available(VirtualCameraConfig(backend="obs"))
    (sysfs / "module" / "v4l2loopback").mkdir()
    (sysfs / "devices" / "virtual" / "video4linux" / "video10").mkdir(parents=True)
    check_available(VirtualCameraConfig())  # loaded, with a device: nothing to say
    # a backend registered in-process (tests, plugins) is not v4l2loopback: tried when the sink opens
    monkeypatch.setattr(pvc, "BACKENDS", {"v4l2loopback": object, "memory": object})
    (sysfs / "module" / "v4l2loopback").rmdir()
    check_available(VirtualCameraConfig())
    with pytest.raises(SetupError):
        check_available(VirtualCameraConfig(backend="v4l2loopback"))


def test_setup_hints_per_os():
    assert "sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label=livebokeh" in setup_hint("Linux")
    assert "OBS" in setup_hint("Windows") and "OBS" in setup_hint("Darwin")
