from fractions import Fraction

import numpy as np
import pytest

from livebokeh.errors import SinkError
from livebokeh.sinks import VirtualCameraSink, setup_hint
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


def test_unknown_backend(memory_vcam):
    with pytest.raises(SinkError, match="unknown virtual camera backend 'obs'; available: memory"):
        VirtualCameraSink(INFO, backend="obs")


def test_setup_hints_per_os():
    assert "sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label=livebokeh" in setup_hint("Linux")
    assert "OBS" in setup_hint("Windows") and "OBS" in setup_hint("Darwin")
