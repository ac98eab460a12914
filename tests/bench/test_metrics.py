import numpy as np

from livebokeh.bench.metrics import boundary_iou, chroma_key, flicker_still, flicker_vs_reference, iou


def test_iou_and_boundary_iou():
    a = np.zeros((100, 100), bool)
    a[20:80, 20:80] = True
    b = np.roll(a, 3, axis=1)
    assert iou(a, a) == 1.0 and boundary_iou(a, a) == 1.0
    assert boundary_iou(a, b) < iou(a, b) < 1.0  # the boundary sees edge errors sharper
    assert iou(np.zeros((4, 4)), np.zeros((4, 4))) == 1.0


def test_flicker_counts_still_pixels_only():
    lum = [np.zeros((10, 10), np.uint8)] * 3
    masks = [np.zeros((10, 10), np.float32), np.full((10, 10), 0.1, np.float32), np.zeros((10, 10), np.float32)]
    assert abs(flicker_still(masks, lum) - 100.0) < 1e-4
    moving = [np.zeros((10, 10), np.uint8), np.full((10, 10), 50, np.uint8), np.zeros((10, 10), np.uint8)]
    assert flicker_still(masks, moving) == 0.0
    assert abs(flicker_vs_reference(masks, masks)) < 1e-9


def test_chroma_key():
    img = np.zeros((2, 2, 3), np.uint8)
    img[0, 0] = (60, 180, 60)  # green screen
    img[1, 1] = (90, 120, 200)  # skin
    k = chroma_key(img)
    assert k[0, 0] == 0 and k[1, 1] == 1


def test_picture_area_leaves_out_letterbox_bars():
    from livebokeh.bench.metrics import picture_area

    frames = [np.zeros((40, 50, 3), np.uint8) for _ in range(3)]
    frames[0][5:30, 2:50] = 200  # the picture, black bars above and below, one at the left
    frames[2][5:31, 3:10] = 90
    assert picture_area(frames) == (slice(5, 31), slice(2, 50))
    assert picture_area([np.zeros((4, 4, 3), np.uint8)]) == (slice(None), slice(None))  # all black: everything
