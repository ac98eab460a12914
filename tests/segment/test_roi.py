import cv2
import numpy as np

from livebokeh.segment.base import Segmenter, SegmenterOptions
from livebokeh.segment.passes import roi_box


class Blurry(Segmenter):
    """A fake model that sees a bright square at 64x64 only: edges are as coarse as its input."""

    calls = 0

    @property
    def input_size(self):
        return (64, 64)

    def _segment(self, image):
        Blurry.calls += 1
        small = cv2.resize(image[:, :, 0], (64, 64), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
        return np.clip((small - 0.2) * 2, 0, 1).astype(np.float32)


def _frame():
    img = np.zeros((512, 512, 3), np.uint8)
    img[200:330, 220:301] = 255  # a small 'person': an odd-sized box the 64x64 grid cannot follow
    return img


def test_roi_pass_runs_a_second_time_on_the_region_and_sharpens_the_edge():
    img = _frame()
    truth = img[:, :, 0] > 0
    import cv2

    plain = Blurry(SegmenterOptions(roi=False))
    roi = Blurry(SegmenterOptions(roi=True))
    Blurry.calls = 0
    a = plain.segment(img).data
    assert Blurry.calls == 1
    b = roi.segment(img).data
    assert Blurry.calls == 3 and a.shape == b.shape == (64, 64)

    def err(m):
        return np.abs((cv2.resize(m, (512, 512)) > 0.5) != truth).mean()

    assert err(b) < err(a)


def test_roi_pass_skips_when_the_person_fills_the_frame():
    img = np.full((128, 128, 3), 255, np.uint8)
    Blurry.calls = 0
    Blurry(SegmenterOptions(roi=True)).segment(img)
    assert Blurry.calls == 1


def test_roi_box():
    m = np.zeros((100, 100), bool)
    m[40:60, 30:50] = True
    assert roi_box(m, 0.1) == (24, 34, 56, 66)
    assert roi_box(np.zeros((4, 4), bool), 0.1) is None


def test_tta_averages_the_mirrored_pass():
    img = _frame()
    Blurry.calls = 0
    plain = Blurry(SegmenterOptions(roi=False)).segment(img).data
    assert Blurry.calls == 1
    both = Blurry(SegmenterOptions(roi=False, tta=True)).segment(img).data
    assert Blurry.calls == 3  # one more pass, on the mirror image
    mirrored = Blurry(SegmenterOptions(roi=False)).segment(np.ascontiguousarray(img[:, ::-1])).data[:, ::-1]
    np.testing.assert_allclose(both, (plain + mirrored) / 2, atol=1e-6)


def test_the_early_roi_exit_never_skips_a_pass_the_doubled_mask_would_run():
    from livebokeh.segment.passes import ROI_MARGIN, ROI_MIN_ZOOM, roi_box, roi_too_large

    rng = np.random.default_rng(0)
    exits = 0
    for t in range(400):
        h, w = (256, 256) if t % 2 else (144, 256)
        m = np.zeros((h, w), np.float32)
        centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        axes = (int(rng.integers(1, w)), int(rng.integers(1, h)))
        cv2.ellipse(m, centre, axes, 0, 0, 360, float(rng.uniform(0.5, 1)), -1)
        m = cv2.GaussianBlur(m, (0, 0), float(rng.uniform(0.5, 4)))
        box = roi_box(cv2.resize(m, (2 * w, 2 * h), interpolation=cv2.INTER_LINEAR) > 0.5, ROI_MARGIN)
        too_large = box is not None and (box[2] - box[0]) * (box[3] - box[1]) * ROI_MIN_ZOOM**2 > 4 * w * h
        if roi_too_large(m > 0.5, ROI_MIN_ZOOM, ROI_MARGIN):
            exits += 1
            assert too_large, (t, centre, axes)
    assert exits > 50  # the shortcut is taken for large people
