import cv2
import numpy as np
import pytest

from livebokeh.errors import SourceError
from livebokeh.sources import CameraSource
from livebokeh.sources.camera import decode_fourcc, parse_device


class FakeCapture:
    """Stands in for cv2.VideoCapture: records settings, offers one fixed mode."""

    def __init__(self, device, api, opened=True, frames=3, mode=(640, 480)):
        self.device, self.api, self.opened = device, api, opened
        self.calls = []
        self.frames_left = frames
        self.mode = mode
        self.released = False

    def isOpened(self):
        return self.opened

    def set(self, prop, value):
        self.calls.append((prop, value))
        return True

    def get(self, prop):
        if prop == cv2.CAP_PROP_FPS:
            return 30.0
        if prop == cv2.CAP_PROP_FOURCC:
            return float(cv2.VideoWriter_fourcc(*"MJPG"))
        return 0.0

    def read(self):
        if self.frames_left <= 0:
            return False, None
        self.frames_left -= 1
        w, h = self.mode
        return True, np.zeros((h, w, 3), np.uint8)

    def release(self):
        self.released = True


def test_fourcc_is_set_before_the_size_and_the_real_mode_is_reported():
    caps = []

    def factory(device, api):
        caps.append(FakeCapture(device, api))
        return caps[-1]

    with CameraSource("0", 1920, 1080, 30, "MJPG", capture_factory=factory) as cam:
        info = cam.info
        props = [p for p, _ in caps[0].calls]
        assert props.index(cv2.CAP_PROP_FOURCC) < props.index(cv2.CAP_PROP_FRAME_WIDTH)
        assert props.index(cv2.CAP_PROP_FOURCC) < props.index(cv2.CAP_PROP_FRAME_HEIGHT)
        assert (info.width, info.height) == (640, 480)  # what the camera gave, not what was asked
        assert info.live and cam.mode == "640x480 @ 30 fps"
        assert caps[0].device == 0  # "0" is an index
        frames = [cam.read() for _ in range(3)]
        assert [f.index for f in frames] == [0, 1, 2]
        with pytest.raises(SourceError, match="stopped delivering frames"):
            cam.read()
    assert caps[0].released


def test_unopenable_camera_names_what_to_do():
    with pytest.raises(SourceError, match=r"camera 3 could not be opened.*--camera INDEX\|PATH"):
        CameraSource(3, capture_factory=lambda d, a: FakeCapture(d, a, opened=False)).open()


def test_camera_that_gives_no_frames():
    with pytest.raises(SourceError, match="gives no frames"):
        CameraSource(0, capture_factory=lambda d, a: FakeCapture(d, a, frames=0)).open()


def test_real_opencv_with_a_missing_device():
    with pytest.raises(SourceError, match="could not be opened"):
        CameraSource("/dev/video-does-not-exist").open()


def test_helpers():
    assert parse_device("2") == 2 and parse_device("/dev/video2") == "/dev/video2"
    assert decode_fourcc(cv2.VideoWriter_fourcc(*"YUYV")) == "YUYV"
    assert decode_fourcc(0) == "?"
