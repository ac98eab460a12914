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
