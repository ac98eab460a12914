from fractions import Fraction

import cv2
import numpy as np
import pytest

from livebokeh.errors import SinkError
from livebokeh.sinks import ImageFileSink, MaskSink
from livebokeh.sinks.mask import is_pattern
from livebokeh.types import Composite, Frame, Mask, StreamInfo


def _item(i, w=32, h=24):
    img = np.full((h, w, 3), i, np.uint8)
    alpha = np.zeros((h, w), np.float32)
    alpha[:, : w // 2] = 1.0
    alpha[0, 0] = 0.5
    return Composite(Frame(img, i, 0), img.copy(), Mask(alpha))


VIDEO = StreamInfo("v", 32, 24, Fraction(30), live=False, frame_count=3)
STILL = StreamInfo("s", 32, 24, Fraction(1), live=False, frame_count=1, still=True)


def test_pattern_writes_one_png_per_frame_numbered_by_index(tmp_path):
    sink = MaskSink(tmp_path / "m_%04d.png", VIDEO)
    for i in range(3):
        sink.write(_item(i))
    sink.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["m_0000.png", "m_0001.png", "m_0002.png"]
    m = cv2.imread(str(tmp_path / "m_0001.png"), cv2.IMREAD_UNCHANGED)
    assert m.dtype == np.uint8 and m.ndim == 2
    assert m[5, 0] == 255 and m[5, -1] == 0 and m[0, 0] == 128


def test_still_mask_and_image(tmp_path):
    MaskSink(tmp_path / "m.png", STILL).write(_item(0))
    assert cv2.imread(str(tmp_path / "m.png"), cv2.IMREAD_UNCHANGED).shape == (24, 32)
    s = ImageFileSink(tmp_path / "o.jpg")
    s.write(_item(7))
    assert cv2.imread(str(tmp_path / "o.jpg")).shape == (24, 32, 3)
    with pytest.raises(SinkError, match="single image"):
        s.write(_item(8))


def test_bad_mask_paths(tmp_path):
    with pytest.raises(SinkError, match="not a valid pattern"):
        MaskSink(tmp_path / "m%q.mkv", VIDEO)
    with pytest.raises(SinkError, match="unknown image type"):
        MaskSink(tmp_path / "m.txt", STILL)
    assert is_pattern("a/%05d.png") and not is_pattern("a/b.png") and not is_pattern("100%.png")
