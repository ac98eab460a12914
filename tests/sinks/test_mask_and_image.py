from fractions import Fraction

import cv2
import numpy as np
import pytest

from livebokeh.errors import ConfigError, SinkError
from livebokeh.sinks import ImageFileSink, MaskSink
from livebokeh.sinks.files import is_pattern
from livebokeh.types import Composite, Frame, Mask, StreamInfo


def _item(i, w=32, h=24):
    img = np.full((h, w, 3), i, np.uint8)
    alpha = np.zeros((h, w), np.float32)
    alpha[:, : w // 2] = 1.0
    alpha[0, 0] = 0.5
    return Composite(Frame(img, i, 0), img.copy(), Mask(alpha))


VIDEO = StreamInfo("v", 32, 24, Fraction(30), live=False, frame_count=3)
STILL = StreamInfo("s", 32, 24, Fraction(1), live=False, frame_count=1, still=True)


def test_pattern_writes_one_png_per_frame_numbered_from_1(tmp_path):
    sink = MaskSink(tmp_path / "m_%04d.png", VIDEO)
    for i in range(3):
        sink.write(_item(i))
    sink.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["m_0001.png", "m_0002.png", "m_0003.png"]  # frame 0 is the first: 1, as FFmpeg counts
    m = cv2.imread(str(tmp_path / "m_0002.png"), cv2.IMREAD_UNCHANGED)
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
    for bad in ("m%s.png", "m%d_%d.png", "m%i.png", "%05d/m.png", "100%_%d.png", "m%d%.png"):
        with pytest.raises(ConfigError, match="not a valid pattern; put one %d or %05d in the file name"):
            MaskSink(tmp_path / bad, VIDEO)
    with pytest.raises(ConfigError, match="unknown image type"):
        MaskSink(tmp_path / "m.txt", STILL)
    assert is_pattern("a/%05d.png") and not is_pattern("a/b.png") and not is_pattern("100%.png") and not is_pattern("a%%b.png")


def test_alpha_output_stores_the_persons_own_colours(tmp_path):
    """The colour channels of --alpha-output hold the person's colours at its soft edge, not the
    old background's: over a new background the edge shows no rim (with unmix off: the frame)."""
    from livebokeh.sinks.video import AlphaVideoSink

    h, w = 48, 64
    fg, green = np.array([40, 60, 200], np.float32), np.array([0, 255, 0], np.float32)
    alpha = np.zeros((h, w), np.float32)
    alpha[:, 20:] = np.clip(np.linspace(0.0, 2.0, w - 20), 0, 1)  # a ramp from background to person
    frame = np.rint(alpha[..., None] * fg + (1 - alpha[..., None]) * green).astype(np.uint8)
    item = Composite(Frame(frame, 0, 0), frame.copy(), Mask(alpha))
    for unmix, name in ((True, "u_%d.png"), (False, "f_%d.png")):
        sink = AlphaVideoSink(tmp_path / name, VIDEO, unmix=unmix)
        sink.write(item)
        sink.close()
    unmixed = cv2.imread(str(tmp_path / "u_1.png"), cv2.IMREAD_UNCHANGED)
    as_captured = cv2.imread(str(tmp_path / "f_1.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(unmixed[..., 3], as_captured[..., 3])
    np.testing.assert_array_equal(as_captured[..., :3], frame)
    ramp = (alpha > 0.1) & (alpha < 0.9)
    err, err_frame = np.abs(unmixed[..., :3][ramp] - fg), np.abs(frame[ramp] - fg)
    assert err.mean() < 0.05 * err_frame.mean()
    assert err[alpha[ramp] > 0.3].max() <= 4  # 8-bit rounding of the mixture, divided by the alpha
    whole = (alpha == 0) | (alpha == 1)
    np.testing.assert_array_equal(unmixed[..., :3][whole], frame[whole])
