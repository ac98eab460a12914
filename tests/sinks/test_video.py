from fractions import Fraction

import numpy as np
import pytest

from livebokeh.errors import SinkError
from livebokeh.sinks import VideoWriter
from tests.conftest import probe_video


def _frames(n, w, h):
    rng = np.random.default_rng(3)
    base = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    return [np.roll(base, i * 3, axis=1) for i in range(n)]


@pytest.mark.parametrize(
    ("name", "codec", "size", "fps"),
    [
        ("a.mp4", "h264", (64, 48), Fraction(30000, 1001)),
        ("b.mkv", "h264", (65, 49), Fraction(25)),  # odd sizes work too
        ("c.webm", "vp9", (64, 48), Fraction(24)),
        ("d.avi", "mjpeg", (64, 48), Fraction(30)),
    ],
)
def test_writes_every_frame_at_the_given_rate(tmp_path, name, codec, size, fps):
    w, h = size
    out = tmp_path / name
    writer = VideoWriter(out, w, h, fps)
    for f in _frames(17, w, h):
        writer.write(f)
    writer.close()
    writer.close()
    p = probe_video(out)
    assert (p["codec"], p["width"], p["height"], p["frames"]) == (codec, w, h, 17)
    assert p["fps"] == fps


def test_gray_masks_in_mkv_are_lossless(tmp_path):
    rng = np.random.default_rng(0)
    masks = [rng.integers(0, 256, (40, 60), dtype=np.uint8) for _ in range(5)]
    w = VideoWriter(tmp_path / "m.mkv", 60, 40, Fraction(30), gray=True)
    for m in masks:
        w.write(m)
    w.close()
    p = probe_video(tmp_path / "m.mkv")
    assert p["codec"] == "ffv1" and p["frames"] == 5
    for a, b in zip(masks, p["gray"]):
        np.testing.assert_array_equal(a, b)


def test_bad_outputs(tmp_path):
    with pytest.raises(SinkError, match="unknown container .xyz"):
        VideoWriter(tmp_path / "a.xyz", 64, 48, Fraction(30))
    with pytest.raises(SinkError, match="does not exist; create it first"):
        VideoWriter(tmp_path / "no" / "a.mp4", 64, 48, Fraction(30))
    with pytest.raises(SinkError, match="is a folder"):
        VideoWriter(tmp_path, 64, 48, Fraction(30))
    w = VideoWriter(tmp_path / "a.mp4", 64, 48, Fraction(30))
    with pytest.raises(SinkError, match="differs"):
        w.write(np.zeros((10, 10, 3), np.uint8))
    w.close()
