from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from livebokeh.errors import SourceError
from livebokeh.sources import ImageSource, VideoFileSource, source_for_input
from tests.conftest import probe_video


def test_reads_every_frame_of_a_real_clip(clip):
    expected = probe_video(clip)
    with VideoFileSource(clip) as src:
        info = src.info
        frames = []
        while (f := src.read()) is not None:
            frames.append(f)
    assert (info.width, info.height) == (expected["width"], expected["height"])
    assert info.fps == expected["fps"] and not info.live
    assert len(frames) == expected["frames"]
    assert [f.index for f in frames] == list(range(len(frames)))
    assert frames[0].image.shape == (info.height, info.width, 3)


def test_pace_makes_a_file_live(clip):
    with VideoFileSource(clip, pace=True) as src:
        assert src.info.live


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", r"is empty \(0 bytes\)"),
        (b"hello, this is just text\n" * 50, "cannot read"),
    ],
)
def test_bad_files_are_source_errors(tmp_path, content, message):
    p = tmp_path / "bad.mp4"
    p.write_bytes(content)
    with pytest.raises(SourceError, match=message):
        VideoFileSource(p).open()


@pytest.mark.parametrize("name", ["cut.mp4", "cut.mkv"])
def test_truncated_files_are_a_clear_error(clip, tmp_path, name):
    import numpy as np

    from livebokeh.sinks import VideoWriter

    full = tmp_path / f"full{Path(name).suffix}"
    if full.suffix == ".mp4":
        full.write_bytes(clip.read_bytes())  # its index sits at the end: a cut file cannot open
    else:
        w = VideoWriter(full, 64, 48, Fraction(30))
        for i in range(60):
            w.write(np.full((48, 64, 3), i * 4, np.uint8))
        w.close()
    data = full.read_bytes()
    p = tmp_path / name
    p.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(SourceError) as info:
        with VideoFileSource(p) as src:
            while src.read() is not None:
                pass
    assert "\n" not in str(info.value)
    assert any(w in str(info.value) for w in ("truncated", "corrupt", "cannot read"))


def test_missing_file(tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        VideoFileSource(tmp_path / "nope.mp4").open()


def test_source_for_input_picks_by_file_ending(tmp_path):
    assert isinstance(source_for_input(tmp_path / "a.JPG"), ImageSource)
    assert isinstance(source_for_input(tmp_path / "a.mkv"), VideoFileSource)


def test_close_twice_is_safe(clip):
    src = VideoFileSource(clip)
    src.open()
    src.close()
    src.close()
    assert src.read() is None


def test_phone_rotation_is_applied(tmp_path):
    """A clip whose track matrix says 'turn 90 degrees clockwise' (as phones record portrait)."""
    import struct

    import av
    import numpy as np

    path = tmp_path / "rot.mp4"
    c = av.open(str(path), "w")
    s = c.add_stream("libx264", rate=30)
    s.width, s.height, s.pix_fmt = 64, 32, "yuv420p"
    for i in range(5):
        img = np.zeros((32, 64, 3), np.uint8)
        img[:, :16] = 255  # a white stripe on the left of the stored picture
        f = av.VideoFrame.from_ndarray(img, format="bgr24")
        f.pts = i
        for p in s.encode(f):
            c.mux(p)
    for p in s.encode(None):
        c.mux(p)
    c.close()
    data = bytearray(path.read_bytes())
    matrix = data.find(b"tkhd") - 4 + 48
    data[matrix : matrix + 36] = struct.pack(">9i", 0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000)
    path.write_bytes(bytes(data))
    with VideoFileSource(path) as src:
        assert (src.info.width, src.info.height) == (32, 64)  # upright: portrait
        frame = src.read()
    assert frame.image.shape == (64, 32, 3)
    assert frame.image[:8].mean() > 200 and frame.image[-8:].mean() < 20  # left edge turned to the top


def _yuv_frame(colorspace: int, color_range: int):
    import av
    import cv2

    rng = np.random.default_rng(7)
    image = cv2.GaussianBlur(rng.integers(0, 256, (48, 64, 3), np.uint8), (5, 5), 0)
    image[:8, :8] = (0, 0, 255)  # a saturated patch, where the colour matrices differ most
    frame = av.VideoFrame.from_ndarray(image, format="bgr24").reformat(format="yuv420p")
    frame.colorspace, frame.color_range = colorspace, color_range
    return frame


@pytest.mark.parametrize("colorspace", [2, 5, 6])
def test_bt601_frames_take_opencvs_conversion_within_rounding_of_swscale(colorspace):
    from livebokeh.sources.video import to_bgr

    frame = _yuv_frame(colorspace, 1)
    ours, swscale = to_bgr(frame).astype(int), frame.to_ndarray(format="bgr24").astype(int)
    assert ours.shape == (48, 64, 3)
    assert np.abs(ours - swscale).max() <= 3 and np.abs(ours - swscale).mean() < 1.5


@pytest.mark.parametrize(("colorspace", "color_range"), [(1, 1), (6, 2)])  # BT.709; full-range levels
def test_other_colour_tags_go_through_swscale(colorspace, color_range):
    from livebokeh.sources.video import to_bgr

    frame = _yuv_frame(colorspace, color_range)
    assert np.array_equal(to_bgr(frame), frame.to_ndarray(format="bgr24"))
    # the tags matter: read as BT.601 video range, the same bytes give other colours
    assert np.abs(to_bgr(_yuv_frame(6, 1)).astype(int) - to_bgr(frame).astype(int)).max() > 8


def test_real_clip_frames_match_swscale(clip):
    import av

    from livebokeh.sources.video import to_bgr

    with av.open(str(clip)) as container:
        frame = next(container.decode(video=0))
        assert np.abs(to_bgr(frame).astype(int) - frame.to_ndarray(format="bgr24").astype(int)).max() <= 3
