"""On demand: the camera runs only while the virtual camera has a reader. The inotify watch is
real; a plain file stands in for the v4l2loopback device, opened and closed by the test (and by
another process)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest

from livebokeh.errors import ConfigError
from livebokeh.sources.ondemand import OnDemand, ReaderWatch, check_supported, openers
from tests.conftest import FakeSource, until

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="inotify and /proc: Linux only")




@pytest.fixture
def device(tmp_path):
    path = tmp_path / "video10"
    path.write_bytes(b"")
    return path


def test_the_watch_counts_readers_besides_the_writer_own(device):
    writer = open(device, "wb")  # the virtual camera's own descriptor, held before the watch
    watch = ReaderWatch(device)
    try:
        assert watch.readers == 0
        a = open(device, "rb")
        assert watch.wait(10) == 1
        b = open(device, "rb")
        assert watch.wait(10) == 2
        a.close()
        assert watch.wait(10) == 1
        b.close()
        assert watch.wait(10) == 0
        # another process
        proc = subprocess.Popen([sys.executable, "-c", f"f = open({str(device)!r}); print('in', flush=True); input()"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "in"
        until(lambda: watch.wait(0.5) == 1, "the other process's reader")
        proc.communicate("")
        until(lambda: watch.wait(0.5) == 0, "the other process to close")
    finally:
        watch.close()
        watch.close()
        writer.close()


def test_a_reader_that_came_first_is_seen(device):
    early = open(device, "rb")
    try:
        assert (str(os.getpid()), str(early.fileno())) in openers(device)
        watch = ReaderWatch(device)  # this process's descriptors before the watch are the writer's...
        assert watch.readers == 0
        watch.close()
    finally:
        early.close()
    other = subprocess.Popen([sys.executable, "-c", f"f = open({str(device)!r}); print('in', flush=True); input()"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "in"
        watch = ReaderWatch(device)  # ... another process's are readers
        assert watch.readers == 1
        watch.close()
    finally:
        other.communicate("")


class Camera(FakeSource):
    def __init__(self):
        super().__init__(count=10**9, live=True, fps=200)
        self.is_open = False

    def _open(self):
        self.is_open = True
        return super()._open()

    def _release(self):
        self.is_open = False
        super()._release()


class Cameras:
    """Makes fake live cameras and counts those open."""

    def __init__(self):
        self.made: list[Camera] = []

    def __call__(self):
        cam = Camera()
        self.made.append(cam)
        return cam

    def open_now(self) -> int:
        return sum(1 for c in self.made if c.is_open)


def test_the_camera_runs_only_while_the_device_is_read(device):
    cams = Cameras()
    source = OnDemand(cams, grace_s=0.0)
    info = source.open()
    assert info.live and cams.open_now() == 1  # opened once to learn the stream
    source.watch(device)
    frames: list = []
    ended = threading.Event()

    def read():
        while (frame := source.read()) is not None:
            frames.append(frame)
        ended.set()

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    try:
        until(lambda: cams.open_now() == 0, "the camera released with nobody reading")
        assert frames == []
        for session in (1, 2):
            reader = open(device, "rb")
            before = len(frames)
            until(lambda: len(frames) >= before + 5, f"frames for reader {session}")
            assert cams.open_now() == 1 and source.sessions == session
            reader.close()
            until(lambda: cams.open_now() == 0, f"the camera released after reader {session}")
        indexes = [f.index for f in frames]
        assert indexes == list(range(len(frames)))  # numbered on across sessions
        assert not ended.is_set()  # idle, not ended
    finally:
        source.interrupt()
        thread.join(30)
        source.close()
        source.close()
    assert ended.is_set() and cams.open_now() == 0


def test_it_says_where_it_cannot_work():
    with pytest.raises(ConfigError, match="needs Linux"):
        check_supported("Windows")
    check_supported("Linux")


def test_the_command_on_demand_end_to_end(device, monkeypatch, selfie_models):
    """``livebokeh --on-demand``: the virtual camera opens at once; frames reach it only while
    an app reads the device, the webcam is released when the app leaves, and Ctrl-C ends it."""
    import pyvirtualcam
    from pyvirtualcam import camera as pvc

    import livebokeh.sources as sources
    from livebokeh.cli import main

    cams = Cameras()
    monkeypatch.setattr(sources, "CameraSource", lambda *a, **k: cams())
    sent: list[np.ndarray] = []

    class FileCamera:
        """A pyvirtualcam backend whose device is the stand-in file (it does not open it)."""

        def __init__(self, *, width, height, fps, fourcc, device, **kw):
            self.width, self.height, self.fourcc, self.path = width, height, fourcc, device

        def send(self, frame):
            sent.append(frame)

        def device(self):
            return self.path

        def native_fourcc(self):
            return self.fourcc

        def close(self):
            pass

    saved = dict(pvc.BACKENDS)
    pvc.BACKENDS.clear()
    pyvirtualcam.register_backend("file", FileCamera)
    outcome = {}

    def app():
        until(lambda: cams.made and cams.open_now() == 0, "the camera released at the start")
        reader = open(device, "rb")
        until(lambda: len(sent) >= 3, "frames for the reader")
        outcome["on"] = cams.open_now()
        reader.close()
        until(lambda: cams.open_now() == 0, "the camera released after the reader")
        outcome["sent"] = len(sent)
        os.kill(os.getpid(), signal.SIGINT)

    thread = threading.Thread(target=app, daemon=True)
    thread.start()
    try:
        code = main(["--on-demand", "--vcam-backend", "file", "--vcam-device", str(device), "--no-preview",
                     "--backend", "mediapipe"])
    finally:
        pvc.BACKENDS.clear()
        pvc.BACKENDS.update(saved)
    thread.join(30)
    assert code == 130 and outcome["on"] == 1 and outcome["sent"] >= 3
    assert len(cams.made) >= 2 and cams.open_now() == 0  # opened to learn the stream, then for the reader


@pytest.mark.parametrize("argv, said", [
    (["--input", "clip.mp4"], "--on-demand is for the camera"),
    (["--no-virtual-camera"], "leave out --no-virtual-camera"),
])
def test_the_command_refuses_on_demand_without_a_camera_or_virtual_camera(argv, said, capsys):
    from livebokeh.cli import main

    assert main(["--on-demand", "--no-preview", *argv]) == 2
    assert said in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--on-demand"], [], ["--vcam-device", "/dev/video10"]])
def test_without_v4l2loopback_the_webcam_is_never_opened(tmp_path, monkeypatch, capsys, argv):
    """The service's path (and any live run with a virtual camera): no loopback device, no camera
    light; exit 3, which the unit does not restart on."""
    import platform

    import pyvirtualcam.camera as pvc

    import livebokeh.sources as sources
    from livebokeh.cli import main
    from livebokeh.sinks import virtualcam

    cams = Cameras()
    monkeypatch.setattr(sources, "CameraSource", lambda *a, **k: cams())
    (tmp_path / "module" / "videodev").mkdir(parents=True)  # a sysfs without v4l2loopback
    monkeypatch.setattr(virtualcam, "SYSFS", tmp_path)
    monkeypatch.setattr(virtualcam, "modules_dir", lambda release=None: tmp_path / "none")
    monkeypatch.setattr(platform, "system", lambda: "Linux")
    monkeypatch.setattr(pvc, "BACKENDS", {"v4l2loopback": object})
    assert main([*argv, "--no-preview", "--backend", "mediapipe"]) == 3
    err = capsys.readouterr().err
    assert "error: no virtual camera: the v4l2loopback module is not installed" in err and "sudo modprobe" in err
    assert ("--on-demand needs it" in err) == ("--on-demand" in argv)
    assert cams.made == []  # not even opened to learn its picture size
    (tmp_path / "module" / "v4l2loopback").mkdir()  # loaded, but with no device
    assert main([*argv, "--no-preview", "--backend", "mediapipe"]) == 3
    assert "loaded but has no device" in capsys.readouterr().err and cams.made == []


def test_without_the_models_weights_the_webcam_is_never_opened(tmp_path, monkeypatch, capsys):
    """Weights a setting names that are not there: exit 3, as the unit wants; weights missing from
    the cache: downloaded before the camera opens (offline: exit 1, the camera still closed)."""
    import platform
    import urllib.error
    import urllib.request

    import pyvirtualcam.camera as pvc

    import livebokeh.sources as sources
    from livebokeh.cli import main
    from livebokeh.sinks import virtualcam

    cams = Cameras()
    monkeypatch.setattr(sources, "CameraSource", lambda *a, **k: cams())
    (tmp_path / "module" / "v4l2loopback").mkdir(parents=True)  # v4l2loopback loaded, with a device
    (tmp_path / "devices" / "virtual" / "video4linux" / "video10").mkdir(parents=True)
    monkeypatch.setattr(virtualcam, "SYSFS", tmp_path)
    monkeypatch.setattr(platform, "system", lambda: "Linux")
    monkeypatch.setattr(pvc, "BACKENDS", {"v4l2loopback": object})
    gone = tmp_path / "gone.onnx"
    monkeypatch.setenv("LIVEBOKEH_RVM_WEIGHTS", str(gone))
    assert main(["--on-demand", "--no-preview"]) == 3
    assert f"the rvm weights {gone} (LIVEBOKEH_RVM_WEIGHTS) do not exist" in capsys.readouterr().err
    assert main(["--on-demand", "--no-preview", "--rvm-weights", str(gone)]) == 3
    assert "(--rvm-weights, rvm.weights) do not exist" in capsys.readouterr().err
    monkeypatch.delenv("LIVEBOKEH_RVM_WEIGHTS")

    def offline(*a, **k):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    assert main(["--on-demand", "--no-preview"]) == 1
    assert "the rvm model could not be downloaded" in capsys.readouterr().err
    assert cams.made == []


@pytest.mark.parametrize("on_demand", ["--on-demand", "--no-on-demand"])
def test_a_deeplab_decoder_file_that_is_not_there_exits_3_before_the_webcam_opens(tmp_path, monkeypatch, capsys,
                                                                                  on_demand):
    """`[deeplab] decoder_weights` or LIVEBOKEH_DEEPLAB_DECODER naming a missing file: was exit 1
    after the camera opened (the unit restarted it, the light blinking at each try)."""
    import platform

    import pyvirtualcam.camera as pvc

    from livebokeh import sources
    from livebokeh.cli import main
    from livebokeh.sinks import virtualcam

    cams = Cameras()
    monkeypatch.setattr(sources, "CameraSource", lambda *a, **k: cams())
    (tmp_path / "module" / "v4l2loopback").mkdir(parents=True)
    (tmp_path / "devices" / "virtual" / "video4linux" / "video10").mkdir(parents=True)
    monkeypatch.setattr(virtualcam, "SYSFS", tmp_path)
    monkeypatch.setattr(platform, "system", lambda: "Linux")
    monkeypatch.setattr(pvc, "BACKENDS", {"v4l2loopback": object})
    monkeypatch.setenv("LIVEBOKEH_DEEPLAB_WEIGHTS", str(tmp_path / "never-read.tflite"))  # checked after
    settings = tmp_path / "dec.toml"
    settings.write_text(f'[segmenter]\nbackend = "deeplab"\n[deeplab]\ndecoder = "on"\n'
                        f'decoder_weights = "{tmp_path / "dec.npz"}"\n')
    assert main(["--config", str(settings), on_demand, "--no-preview"]) == 3
    err = capsys.readouterr().err
    assert f"the deeplab decoder weights {tmp_path / 'dec.npz'} (deeplab.decoder_weights) do not exist" in err
    monkeypatch.setenv("LIVEBOKEH_DEEPLAB_DECODER", str(tmp_path / "mine.npz"))
    assert main(["--backend", "deeplab", on_demand, "--no-preview"]) == 3
    assert f"{tmp_path / 'mine.npz'} (LIVEBOKEH_DEEPLAB_DECODER) do not exist; fix or unset it" in capsys.readouterr().err
    assert main(["--backend", "deeplab", "--deeplab-decoder", "off", on_demand, "--no-preview"]) == 3  # not read
    assert "never-read.tflite" in capsys.readouterr().err  # then the weights are the first thing missing
    assert cams.made == []


@pytest.mark.parametrize("argv", [["--on-demand"], [], ["--effect", "replace"]])
def test_a_background_that_is_not_there_is_told_before_the_camera_opens(monkeypatch, capsys, argv):
    import livebokeh.sources as sources
    from livebokeh.cli import main

    cams = Cameras()
    monkeypatch.setattr(sources, "CameraSource", lambda *a, **k: cams())
    assert main([*argv, "--background", "/nonexistent/beach.jpg", "--no-preview"]) == 2
    assert "background '/nonexistent/beach.jpg' is neither a file nor a colour" in capsys.readouterr().err
    assert cams.made == []


def test_each_session_starts_fresh_at_the_first_size_and_a_busy_camera_gives_placeholders(device):
    """A new session's first frame is marked ``cut``; another camera mode is brought to the first
    stream's size; a camera that cannot be opened when a reader comes gives placeholder frames
    (the reader sees something) until it can be, without ending the stream."""
    from livebokeh.errors import SourceError

    state = {"busy": False, "width": 160}

    class Picky(Camera):
        def __init__(self):
            super().__init__()
            self.size = (state["width"], 120)

        def _open(self):
            if state["busy"]:
                raise SourceError("cannot open camera 0: it is busy")
            return super()._open()

    made = []

    def make():
        made.append(Picky())
        return made[-1]

    source = OnDemand(make, grace_s=0.0)
    info = source.open()
    source.watch(device)
    got: list = []
    thread = threading.Thread(target=lambda: [got.append(f) for f in iter(source.read, None)], daemon=True)
    thread.start()
    try:
        until(lambda: not any(c.is_open for c in made), "the camera released")
        state.update(busy=True, width=320)  # another app holds it; when free, another mode
        reader = open(device, "rb")
        until(lambda: len(got) >= 3, "placeholder frames for the reader")
        assert not any(c.is_open for c in made) and got[0].cut and not any(f.cut for f in got[1:])
        state["busy"] = False  # free again: the next try opens it
        until(lambda: any(c.is_open for c in made), "the camera opened on a retry", timeout=60)
        n = len(got)
        until(lambda: len(got) >= n + 3, "camera frames")
        reader.close()
        until(lambda: not any(c.is_open for c in made), "the camera released again")
        reader = open(device, "rb")
        n = len(got)
        until(lambda: len(got) >= n + 2, "the second session's frames")
        reader.close()
        assert got[n].cut and sum(f.cut for f in got) == 2  # one per session
        assert all(f.image.shape == (info.height, info.width, 3) for f in got)  # the first stream's size
    finally:
        source.interrupt()
        thread.join(30)
        source.close()


def test_stopping_wakes_an_idle_read(device):
    source = OnDemand(Cameras(), grace_s=0.0)
    source.open()
    source.watch(device)
    done = threading.Event()
    thread = threading.Thread(target=lambda: (source.read(), done.set()), daemon=True)
    thread.start()
    source.interrupt()  # what Pipeline.stop, abort and request_stop do
    assert done.wait(30) and source.read() is None
    source.close()


def test_a_device_that_cannot_be_watched_fails_early_in_one_line(tmp_path):
    source = OnDemand(Cameras())
    source.open()
    with pytest.raises(ConfigError, match="cannot watch .*missing.*run without --on-demand"):
        source.watch(tmp_path / "missing")
    source.close()


def test_without_a_virtual_camera_the_error_does_not_offer_turning_it_off():
    from livebokeh.sinks.virtualcam import setup_hint

    assert "--no-virtual-camera" in setup_hint("Linux")
    assert "--no-virtual-camera" not in setup_hint("Linux", required=True) and "--on-demand needs it" in \
        setup_hint("Linux", required=True)
