import cv2
import numpy as np
import pytest

from livebokeh.errors import ConfigError
from livebokeh.render import cover, open_background, parse_colour
from livebokeh.sinks import VideoWriter


def test_colours():
    assert parse_colour("#ff8000") == (0, 128, 255)
    assert parse_colour("00FF00") == (0, 255, 0)
    assert parse_colour("green") == (0, 255, 0)
    assert parse_colour("chroma-green") == (64, 177, 0)
    assert parse_colour("greenish") is None
    bg = open_background("#0000ff")
    p = bg.plate((8, 4))
    assert p.shape == (4, 8, 3) and (p == (255, 0, 0)).all()


def test_cover_fills_the_frame_and_keeps_the_aspect():
    img = np.zeros((100, 100, 3), np.uint8)
    img[:, 45:55] = 255  # a vertical stripe in the middle
    out = cover(img, (200, 100))
    assert out.shape == (100, 200, 3)
    cols = np.where(out[50, :, 0] > 128)[0]
    assert 80 <= cols.min() and cols.max() <= 120 and len(cols) > 15  # scaled 2x, centred, not squeezed


def test_image_background(tmp_path):
    p = tmp_path / "bg.png"
    cv2.imwrite(str(p), np.full((30, 40, 3), 77, np.uint8))
    bg = open_background(str(p))
    assert bg.plate((64, 48)).shape == (48, 64, 3) and int(bg.plate((64, 48))[0, 0, 0]) == 77


def test_video_background_loops(tmp_path):
    from fractions import Fraction

    path = tmp_path / "bg.mkv"
    w = VideoWriter(path, 32, 24, Fraction(10))
    for v in (10, 120, 240):
        w.write(np.full((24, 32, 3), v, np.uint8))
    w.close()
    with open_background(str(path)) as bg:
        levels = [int(bg.plate((32, 24)).mean()) for _ in range(7)]
    assert [round(v / 10) for v in levels] == [1, 12, 24, 1, 12, 24, 1]


def test_bad_backgrounds(tmp_path):
    with pytest.raises(ConfigError, match="needs a background"):
        open_background("")
    with pytest.raises(ConfigError, match="neither a file nor a colour"):
        open_background(str(tmp_path / "nope.jpg"))
