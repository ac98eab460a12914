"""The live matte: carried by the picture's motion, still where the picture is still."""

from __future__ import annotations

import numpy as np
import pytest

from livebokeh.bench.metrics import iou
from livebokeh.mask.tracker import (
    TRACK_WIDTH,
    WARM_RESULTS,
    LiveMatte,
    Measurement,
    still_weight,
    track_gray,
    track_size,
)

H, W = 180, 320


def scene(x: int, noise_seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A textured picture with a textured 'person' block whose left edge is at ``x``; and its mask."""
    rng = np.random.default_rng(7)
    img = rng.integers(30, 110, (H, W, 3), dtype=np.uint8)
    person = rng.integers(140, 240, (120, 80, 3), dtype=np.uint8)
    img[40:160, x : x + 80] = person
    if noise_seed is not None:  # sensor noise, a level or two
        n = np.random.default_rng(noise_seed).integers(-2, 3, img.shape)
        img = np.clip(img.astype(int) + n, 0, 255).astype(np.uint8)
    mask = np.zeros((H, W), np.float32)
    mask[40:160, x : x + 80] = 1.0
    return img, mask


def measured(img: np.ndarray, mask: np.ndarray, index: int) -> Measurement:
    return Measurement(mask, track_gray(img, mask.shape), index)


def test_a_still_picture_keeps_its_mask_exactly_between_results():
    matte = LiveMatte()
    img, mask = scene(100, noise_seed=0)
    first = matte.update(track_gray(img, mask.shape), 0, measured(img, mask, 0))
    for t in range(1, 12):  # sensor noise, no result: the very same mask, not a re-warped one
        noisy, _ = scene(100, noise_seed=t)
        shown = matte.update(track_gray(noisy, mask.shape), t)
        np.testing.assert_array_equal(shown, first)
    assert matte.motion == 0.0 and matte.change < 0.01


def test_the_mask_follows_motion_between_results():
    matte = LiveMatte()
    img, mask = scene(60)
    matte.update(track_gray(img, mask.shape), 0, measured(img, mask, 0))
    for t in range(1, 16):  # 3 px a frame, the model never runs again
        img, truth = scene(60 + 3 * t)
        shown = matte.update(track_gray(img, mask.shape), t)
    assert iou(shown > 0.5, truth > 0.5) > 0.93
    assert iou(mask > 0.5, truth > 0.5) < 0.6  # where the old mask stands, it would be wrong
    assert matte.motion > 30  # 45 px of edge movement, roughly
    assert matte.moved == 15


def test_an_old_result_is_moved_to_the_frame_it_arrives_at():
    matte = LiveMatte(strength=0.0)
    img0, mask0 = scene(60)
    matte.update(track_gray(img0, mask0.shape), 0, measured(img0, mask0, 0))
    for t in range(1, 4):
        img, truth = scene(60 + 4 * t)
        matte.update(track_gray(img, mask0.shape), t)
    img5, truth5 = scene(80)
    late = measured(*scene(68), 2)  # the model's result for frame 2 comes at frame 5
    shown = matte.update(track_gray(img5, truth5.shape), 5, late)
    assert iou(shown > 0.5, truth5 > 0.5) > 0.93


def test_results_are_blended_with_what_is_shown_and_each_counts_once():
    img, mask = scene(100)
    gray = track_gray(img, mask.shape)
    changed = mask.copy()
    changed[100:160, 100:140] = 0.5  # the model changes its mind on a still picture
    strong, none = LiveMatte(strength=1.0), LiveMatte(strength=0.0)
    for m in (strong, none):
        for i in range(WARM_RESULTS):  # the first results of a stream are taken as they come
            m.update(gray, i, measured(img, mask, i))
    n = WARM_RESULTS
    result = Measurement(changed, gray, n)
    a, b = strong.update(gray, n, result), none.update(gray, n, result)
    np.testing.assert_allclose(b, changed)  # no smoothing: the result as it is
    region = (slice(100, 160), slice(100, 140))
    assert 0.5 < a[region].mean() < 1.0  # smoothing: between what was shown and the result
    again = strong.update(gray, n + 1, result)  # the same result again is not blended twice
    np.testing.assert_array_equal(again, a)


def test_a_streams_first_results_are_taken_as_they_come():
    img, mask = scene(100)
    gray = track_gray(img, mask.shape)
    matte = LiveMatte(strength=1.0)
    matte.update(gray, 0, measured(img, mask * 0.6, 0))  # a model warming up: unsure at first
    second = matte.update(gray, 1, measured(img, mask, 1))
    np.testing.assert_allclose(second, mask)


def test_a_new_stream_forgets_and_results_of_the_old_one_are_ignored():
    matte = LiveMatte()
    img, mask = scene(100)
    gray = track_gray(img, mask.shape)
    matte.update(gray, 0, measured(img, mask, 0))
    matte.reset(10)
    assert matte.update(gray, 10, measured(img, mask, 3)) is None  # frame 3 is of the old stream
    assert matte.update(gray, 11, measured(img, mask, 10)) is not None


def test_convert_keeps_what_is_shown_in_the_new_models_terms():
    matte = LiveMatte()
    img, mask = scene(100)
    soft = mask.copy()
    soft[40:160, 96:104] = 0.5  # a soft edge of a matte
    matte.update(track_gray(img, mask.shape), 0, measured(img, soft, 0))
    # a matte (0..1 is alpha) hands over to a probability model (0.4..0.6 stretched to alpha), at another size
    matte.convert((0.0, 1.0), (0.4, 0.6), (90, 160))
    assert matte.shape == (90, 160)
    shown = matte.update(track_gray(img, (90, 160)), 1)
    alpha = np.clip((shown - 0.4) / 0.2, 0, 1)
    assert np.abs(alpha.mean() - soft.mean()) < 0.01
    assert 0.45 < shown[60, 49] < 0.55  # the half-transparent edge stays half-transparent


def test_tracking_size_and_still_weight():
    assert track_size((360, 640)) == (TRACK_WIDTH, 180) and track_size((144, 256)) == (256, 144)
    a = np.full((20, 20), 100, np.uint8)
    b = a.copy()
    b[:, 10:] = 160
    w = still_weight(a, b)
    assert w[:, :5].min() == 1.0 and w[:, 15:].max() == 0.0


@pytest.mark.parametrize("strength", [-0.1, 1.5])
def test_bad_strength(strength):
    with pytest.raises(ValueError):
        LiveMatte(strength)


def test_after_a_jump_of_the_picture_the_next_result_is_taken_as_it_is():
    matte = LiveMatte(strength=1.0)
    img, mask = scene(40)
    for i in range(WARM_RESULTS + 1):  # past the stream's first results: history counts
        matte.update(track_gray(img, mask.shape), i, measured(img, mask, i))
    n = WARM_RESULTS + 1
    rng = np.random.default_rng(3)
    other = rng.integers(0, 255, img.shape, dtype=np.uint8)  # another picture altogether
    other_mask = np.zeros_like(mask)
    other_mask[20:100, 200:300] = 1.0
    matte.update(track_gray(other, mask.shape), n)
    shown = matte.update(track_gray(other, mask.shape), n + 1, measured(other, other_mask, n + 1))
    np.testing.assert_allclose(shown, other_mask, atol=1e-6)


def test_a_late_result_is_carried_along_the_frames_shown_since():
    """Moved frame by frame (the flow between neighbours), a result 6 frames old lands where the
    person is now, as well as one moved in one step from its own frame would at best."""
    matte = LiveMatte(strength=0.0)
    img, mask = scene(40)
    matte.update(track_gray(img, mask.shape), 0, measured(img, mask, 0))
    grays = {}
    for t in range(1, 7):  # 5 px a frame
        frame, _ = scene(40 + 5 * t)
        grays[t] = track_gray(frame, mask.shape)
        matte.update(grays[t], t)
    late_img, late_mask = scene(45)  # the model's result for frame 1 comes at frame 7
    img7, truth7 = scene(75)
    shown = matte.update(track_gray(img7, mask.shape), 7, Measurement(late_mask, grays[1], 1))
    assert iou(shown > 0.5, truth7 > 0.5) > 0.95


def test_an_unsure_result_does_not_wear_down_a_confident_history():
    """The live matte blends each model's output stretched by its levels but not clipped (as the
    file mode blends the model's own outputs): one unsure result (probability 0.5) after confident
    ones (0.9, at levels 0.4 and 0.6) leaves the pixel shown as person, where clipped alphas
    would have faded it to about 0.97 at once and further with each unsure result."""
    from livebokeh.mask.smoother import uncertainty
    from livebokeh.mask.tracker import WARM_RESULTS
    from livebokeh.mask.refine import stretch

    gray = np.full((36, 64), 120, np.uint8)
    sure = np.full((36, 64), 0.9, np.float32)
    unsure = np.full((36, 64), 0.5, np.float32)
    assert stretch(sure, 0.4, 0.6)[0, 0] == pytest.approx(2.5)
    matte = LiveMatte(1.0)
    for i in range(WARM_RESULTS + 1):
        matte.update(gray, i, Measurement(stretch(sure, 0.4, 0.6), gray, i, uncertainty(sure)))
    shown = []
    for i in range(WARM_RESULTS + 1, WARM_RESULTS + 4):
        out = matte.update(gray, i, Measurement(stretch(unsure, 0.4, 0.6), gray, i, uncertainty(unsure)))
        shown.append(float(np.clip(out, 0.0, 1.0).min()))
    assert shown == [1.0, 1.0, 1.0]
