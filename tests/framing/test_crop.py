"""Cutting and scaling the crop, and the framed pipeline: sizes, content, repeatability."""

from __future__ import annotations

import cv2
import numpy as np

from livebokeh.config import FramingConfig, MaskConfig, RenderConfig
from livebokeh.framing import Crop
from livebokeh.framing.crop import crop_rect, cut, pixel_box, resample, scaled
from livebokeh.pipeline import Pipeline
from tests.conftest import FakeSegmenter, FakeSource, ListSink


def _psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def _picture(w=320, h=180):
    rng = np.random.default_rng(0)
    return cv2.GaussianBlur(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), (0, 0), 3)


def test_the_whole_picture_comes_back_as_it_was():
    img = _picture()
    whole = (0.0, 0.0, 320.0, 180.0)
    np.testing.assert_array_equal(resample(img, whole, whole, (320, 180), cv2.INTER_LINEAR), img)


def test_a_crop_is_the_part_of_the_picture_scaled_up():
    img = _picture()
    crop = Crop(0.5, 0.5, 0.5)
    assert crop_rect(crop, (320, 180)) == (80.0, 45.0, 160.0, 90.0)
    box = pixel_box(crop, (320, 180))
    assert box == (80, 45, 160, 90)
    out = scaled(cut(img, box), (320, 180))
    reference = cv2.resize(img[45:135, 80:240], (320, 180), interpolation=cv2.INTER_CUBIC)
    np.testing.assert_array_equal(out, reference)
    # never outside the picture, never smaller than 2x2
    assert pixel_box(Crop(0.99, 0.01, 0.5), (320, 180)) == (160, 0, 160, 90)
    assert pixel_box(Crop(0.5, 0.5, 0.001), (320, 180))[2:] == (2, 2)
    # a mask is resampled sub-pixel exact: a quarter-pixel move moves it a little, less than a whole one
    quarter = resample(img, (0, 0, 320, 180), (80.25, 45.0, 160, 90), (320, 180))
    whole = resample(img, (0, 0, 320, 180), (81.0, 45.0, 160, 90), (320, 180))
    at = resample(img, (0, 0, 320, 180), (80.0, 45.0, 160, 90), (320, 180))
    assert 0 < np.abs(quarter.astype(int) - at.astype(int)).mean() < np.abs(whole.astype(int) - at.astype(int)).mean()


class _Person(FakeSource):
    """A bright half-body 'person' that steps from the left third to the right third midway."""

    def read(self):
        frame = super().read()
        if frame is None:
            return None
        img = np.full_like(frame.image, 60)
        img[::4] = 90  # some texture for the blur to smooth
        x = 100 if frame.index < self.count // 2 else 170
        img[100:, x:x + 60] = 220  # the body, to the picture's bottom
        img[80:100, x + 15:x + 45] = 220  # the head
        return type(frame)(img, frame.index, frame.capture_ns)


def _framed_run(framing):
    sink = ListSink()
    src = _Person(count=60, width=320, height=180, fps=30)
    with src, Pipeline(src, FakeSegmenter(), [sink], MaskConfig(smoothing=0.0), RenderConfig(),
                       framing=framing) as p:
        report = p.run()
    return sink, report


def test_files_are_framed_at_a_constant_size_the_same_on_every_run():
    cfg = FramingConfig(enabled=True, lookahead=0.3)
    a, report = _framed_run(cfg)
    b, _ = _framed_run(cfg)
    assert report.frames_out == 60 and [c.frame.index for c in a.items] == list(range(60))
    assert all(c.image.shape == (180, 320, 3) and c.picture.shape == (180, 320, 3) for c in a.items)
    np.testing.assert_array_equal(np.stack([c.image for c in a.items]), np.stack([c.image for c in b.items]))
    # zoomed in on the person, who is centred: the bright columns sit in the middle of the output
    for c in (a.items[10], a.items[55]):
        cols = np.nonzero((c.image[-5:] > 180).all(axis=2).any(axis=0))[0]
        assert cols.size > 60  # wider than in the picture: zoomed in
        assert abs((cols.min() + cols.max()) / 2 - 160) < 25
        # the person is sharp (copied, scaled), the room behind is blurred
        assert c.image[c.image.shape[0] // 2:, cols.min() + 10:cols.max() - 10].min() > 180
    # the alpha follows the framed picture (the source's pixels the output shows, for --alpha-output)
    alpha = a.items[10].alpha.data
    person = (a.items[10].picture > 180).all(axis=2)
    assert a.items[10].shown is not None and a.items[10].shown[2] < 320
    assert ((alpha > 0.5) == person).mean() > 0.97


def test_framing_off_leaves_the_picture_whole():
    off, _ = _framed_run(FramingConfig(enabled=False))
    on, _ = _framed_run(FramingConfig(enabled=True, lookahead=0.0))
    assert off.items[20].shown is None and off.items[20].picture is off.items[20].frame.image  # off: all of it
    assert (off.items[20].picture[-5:] > 180).all(axis=2).any(axis=0).sum() == 60  # the person 60 columns wide
    assert (off.items[20].image[-5:] > 180).all(axis=2).any(axis=0).sum() == 60
    assert (on.items[20].image[-5:] > 180).all(axis=2).any(axis=0).sum() > 80  # on (causal): zoomed in


def test_live_framing_follows_and_the_key_turns_it_off():
    """Live: the causal operator frames the person (the overlay's state says so); with ``f`` the
    output goes back to the whole picture at once, at the same size."""
    from livebokeh.controls import LiveControls

    controls = LiveControls(RenderConfig(), framing=True)
    sink = ListSink()

    turned = []

    class Camera(_Person):
        def read(self):
            if len(sink.items) >= 40 and not turned:  # (two frames may go out between two reads)
                turned.append(controls.handle_key("f"))  # the user turns it off
            if len(sink.items) >= 60:
                return None
            return super().read()

    src = Camera(count=10**6, live=True, width=320, height=180, fps=100)
    with src, Pipeline(src, FakeSegmenter(), [sink], MaskConfig(smoothing=0.0), controls=controls,
                       framing=FramingConfig(enabled=True)) as p:
        p.run()
    framed = [c for c in sink.items if c.shown is not None]
    assert framed and all(c.image.shape == (180, 320, 3) for c in sink.items)
    last = sink.items[-1]
    assert last.shown is None and not controls.framing and controls.framing_state == "off"
    assert max(c.frame.index for c in framed) < last.frame.index  # framed first, whole after the key
