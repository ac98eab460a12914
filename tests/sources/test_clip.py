"""A video file played as a camera: real time on a virtual clock, frames a slow reader misses skipped."""

from __future__ import annotations

import av
import numpy as np
import pytest

from livebokeh.config import CameraConfig
from livebokeh.sources import ClipCamera, Reconnecting, camera_source, is_clip


def numbered_clip(path, frames=12, fps=10, size=(64, 48)):
    """A lossless clip whose frame ``i`` is gray level ``10 * i`` (its number can be read back; up to 25 frames)."""
    with av.open(str(path), "w") as c:
        s = c.add_stream("ffv1", rate=fps)
        s.width, s.height, s.pix_fmt = size[0], size[1], "bgr0"
        for i in range(frames):
            img = np.full((size[1], size[0], 3), (10 * i) % 250, np.uint8)
            for packet in s.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)
    return path


class Clock:
    """Virtual monotonic time: sleeping moves it on; a reader's own work is ``work(s)``."""

    def __init__(self) -> None:
        self.ns = 1_000_000_000
        self.slept: list[float] = []

    def __call__(self) -> int:
        return self.ns

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.ns += int(seconds * 1e9)

    def work(self, seconds: float) -> None:
        self.ns += int(seconds * 1e9)


def level(frame) -> int:
    return int(round(float(frame.image.mean()) / 10))


def test_frames_come_at_the_clips_own_pace_and_numbers(tmp_path):
    clock = Clock()
    cam = ClipCamera(numbered_clip(tmp_path / "c.mkv"), clock_ns=clock, sleep=clock.sleep)
    with cam:
        info = cam.info
        assert info.live and (info.width, info.height) == (64, 48)
        start = clock.ns
        frames = []
        while (f := cam.read()) is not None:
            frames.append(f)
            assert f.time_s is None  # timed like a camera: by capture, not by the file
    assert [f.index for f in frames] == list(range(12))
    assert [level(f) for f in frames] == list(range(12))
    # frame i is delivered at its presentation time, i / 10 s after the start
    assert [round((f.capture_ns - start) / 1e8) for f in frames] == list(range(12))
    assert cam.skipped == 0 and cam.delivered == 12


def test_a_slow_reader_gets_the_newest_frame_and_the_gaps_are_counted(tmp_path):
    clock = Clock()
    cam = ClipCamera(numbered_clip(tmp_path / "c.mkv", frames=20), clock_ns=clock, sleep=clock.sleep)
    got = []
    with cam:
        while (f := cam.read()) is not None:
            got.append(f.index)
            clock.work(0.25)  # the reader needs two and a half frame periods for each frame
    # a camera delivers at its rate, whatever the reader: frame numbers jump by 2 or 3
    assert got[0] == 0 and got == sorted(got)
    gaps = {b - a for a, b in zip(got, got[1:])}
    assert gaps <= {2, 3} and len(got) < 20
    assert cam.skipped == 20 - len(got) and cam.delivered == len(got)


def test_loop_goes_on_counting_without_starting_a_new_stream(tmp_path):
    clock = Clock()
    cam = ClipCamera(numbered_clip(tmp_path / "c.mkv", frames=5), loop=True, clock_ns=clock, sleep=clock.sleep)
    with cam:
        assert cam.info.frame_count is None  # endless
        frames = [cam.read() for _ in range(12)]
    assert [f.index for f in frames] == list(range(12))
    assert [level(f) for f in frames] == [0, 1, 2, 3, 4] * 2 + [0, 1]
    assert not any(f.cut for f in frames)  # a jump of the picture, which the live matte sees by itself
    # the repeats follow each other at the clip's pace: no pause, no burst
    steps = {round((b.capture_ns - a.capture_ns) / 1e8) for a, b in zip(frames, frames[1:])}
    assert steps == {1}


def test_interrupt_ends_a_waiting_read(tmp_path):
    cam = ClipCamera(numbered_clip(tmp_path / "c.mkv"))
    with cam:
        cam.interrupt()
        assert cam.read() is None


def test_camera_setting_picks_a_clip_or_a_webcam(tmp_path):
    clip = numbered_clip(tmp_path / "c.mkv")
    assert is_clip(str(clip)) and not is_clip("0") and not is_clip("/dev/video0")
    assert isinstance(camera_source(CameraConfig(device=str(clip), loop=True)), ClipCamera)
    assert camera_source(CameraConfig(device=str(clip), loop=True)).loop
    assert isinstance(camera_source(CameraConfig(device="1")), Reconnecting)


@pytest.mark.slow
def test_camera_file_runs_the_live_path_with_its_outputs(tmp_path, memory_vcam, selfie_models):
    from livebokeh.cli import main

    clip = numbered_clip(tmp_path / "c.mkv", frames=30, fps=30, size=(96, 64))
    masks = tmp_path / "m"
    masks.mkdir()
    stats = tmp_path / "s.json"
    code = main(["--camera", str(clip), "--backend", "mediapipe", "--vcam-backend", "memory", "--no-preview",
                 "--save-mask", str(masks / "%05d.png"), "--stats-json", str(stats), "-q"])
    assert code == 0
    import json

    report = json.loads(stats.read_text())
    assert report["live"] and report["frames_in"] == 30
    assert report["frames_out"] + report["dropped"] == 30
    names = sorted(p.name for p in masks.iterdir())
    # one mask per frame that went out, named by its frame's number counted from 1
    assert len(names) == report["frames_out"] == len(memory_vcam[0].frames)
    assert all(1 <= int(n[:5]) <= 30 for n in names)


def test_a_clip_can_be_played_at_another_rate(tmp_path):
    clock = Clock()
    cam = ClipCamera(numbered_clip(tmp_path / "c.mkv", frames=6, fps=10), fps=20, clock_ns=clock, sleep=clock.sleep)
    with cam:
        assert cam.info.fps == 20
        start = clock.ns
        frames = [cam.read() for _ in range(6)]
    assert [round((f.capture_ns - start) / 5e7) for f in frames] == list(range(6))  # every 50 ms


@pytest.mark.slow
def test_a_green_screen_clip_played_as_a_camera_keeps_its_masks_by_frame_number(tmp_path, data_dir, default_weights):
    """The live path checked as the held-out checks do it: --camera FILE --save-mask PATTERN
    --stats-json; each saved mask is named by its source frame, and it matches that frame's
    chroma key (never another frame's)."""
    import json

    import cv2

    from livebokeh.bench.common import video_frames
    from livebokeh.bench.metrics import chroma_key, iou, picture_area
    from livebokeh.cli import main

    clip = data_dir / "videos" / "d0_greenscreen.mp4"
    masks, stats = tmp_path / "m", tmp_path / "s.json"
    masks.mkdir()
    assert main(["--camera", str(clip), "--no-virtual-camera", "--no-preview", "--save-mask",
                 str(masks / "%05d.png"), "--stats-json", str(stats), "-q"]) == 0
    report = json.loads(stats.read_text())
    frames = video_frames(clip, 1000)
    assert report["frames_in"] == len(frames) and report["frames_out"] + report["dropped"] == len(frames)
    saved = sorted(masks.iterdir())
    assert len(saved) == report["frames_out"] and report["frames_out"] >= len(frames) // 2
    rows, cols = picture_area(frames)
    scores, empty = [], []
    for path in saved:
        i = int(path.stem) - 1  # counted from 1
        m = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        assert m.shape == frames[i].shape[:2]
        empty.append(not m.any())
        if m.any():
            scores.append(iou(m[rows, cols] > 127, chroma_key(frames[i])[rows, cols] > 0.5))
    # only the frames before the model's first mask are all background; then every mask fits its frame
    assert empty == sorted(empty, reverse=True) and len(scores) >= len(saved) // 2
    assert float(np.mean(scores)) > 0.9


@pytest.mark.parametrize("flag", ["--output", "--stats-json", "--alpha-output"])
def test_a_clip_played_as_the_camera_is_an_input_never_replaced(tmp_path, flag, capsys):
    from livebokeh.cli import main

    clip = numbered_clip(tmp_path / "c.mkv", frames=4)
    before = clip.read_bytes()
    code = main(["--camera", str(clip), flag, str(clip), "--overwrite", "--no-virtual-camera", "--no-preview", "-q"])
    assert code == 2 and "would replace the input" in capsys.readouterr().err
    assert clip.read_bytes() == before


def test_a_truncated_clip_loops_from_where_it_stops(tmp_path):
    from fractions import Fraction

    from livebokeh.sinks import VideoWriter

    full = tmp_path / "full.mkv"
    w = VideoWriter(full, 64, 48, Fraction(30))
    for i in range(60):
        w.write(np.full((48, 64, 3), i * 4, np.uint8))
    w.close()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size * 2 // 3])
    clock = Clock()
    with ClipCamera(cut, clock_ns=clock, sleep=clock.sleep) as once:
        with pytest.raises(Exception, match="truncated|corrupt"):  # played once, as a file: its end is told
            while once.read() is not None:
                pass
    clock = Clock()
    with ClipCamera(cut, loop=True, clock_ns=clock, sleep=clock.sleep) as looped:
        frames = [looped.read() for _ in range(80)]  # more than the frames it holds: it went round
    assert all(f is not None for f in frames) and [f.index for f in frames] == list(range(80))
