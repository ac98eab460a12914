"""The benches read their stills, portraits and masks through one checked reader
(:func:`livebokeh.bench.common.read_pair`): a pipe is never opened, a damaged or mismatched
pair is left out with one line, and no bench crashes, hangs or scores a grey picture."""

import logging
import os
import threading
from contextlib import contextmanager

import cv2
import numpy as np
import pytest

from livebokeh.bench import common
from livebokeh.bench import render as bench_render
from livebokeh.errors import ConfigError


@contextmanager
def watched_fifo(path):
    """A FIFO at ``path``; yields a list that holds True once anything opened it for reading.
    Whoever opens it is let go at once (a writer opens and closes its end), so code that opens a
    FIFO fails the test instead of hanging it."""
    os.mkfifo(path)
    opened, stop = [], threading.Event()

    def watch():
        while not stop.is_set():
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)  # succeeds only while a reader has it open
            except OSError:
                stop.wait(0.01)
                continue
            opened.append(True)
            os.close(fd)  # the reader sees the end of the file

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    try:
        yield opened
    finally:
        stop.set()
        t.join()


def _scene(h, w, seed=0):
    return cv2.GaussianBlur(np.random.default_rng(seed).integers(0, 255, (h, w, 3), np.uint8), (0, 0), 2)


def _person(h, w, box):
    m = np.zeros((h, w), np.uint8)
    y0, y1, x0, x1 = box
    m[y0:y1, x0:x1] = 255
    return m


def _jpeg(path, image):
    ok, buf = cv2.imencode(".jpg", image)
    assert ok
    path.write_bytes(bytes(buf))


def test_a_pipe_among_the_stills_is_left_out_and_never_opened(tmp_path, caplog):
    """`bench models` (and quality, live) hung for ever on a FIFO named hs_011.jpg: still_pairs
    checked the mask only, and the reader opened the photo."""
    stills = tmp_path / "stills"
    stills.mkdir()
    _jpeg(stills / "hs_001.jpg", _scene(48, 64))
    cv2.imwrite(str(stills / "hs_001.png"), _person(48, 64, (10, 40, 20, 40)))
    cv2.imwrite(str(stills / "hs_011.png"), _person(48, 64, (10, 40, 20, 40)))
    _jpeg(stills / "hs_012.jpg", _scene(48, 64))
    with watched_fifo(stills / "hs_011.jpg") as photo_opened, watched_fifo(stills / "hs_012.png") as mask_opened:
        pairs = common.still_pairs(tmp_path)
        with caplog.at_level(logging.WARNING, logger="livebokeh"):
            kept = [p.name for _img, _ref, p in common.read_pairs(pairs)]
    assert not photo_opened and not mask_opened
    assert kept == ["hs_001.jpg"]
    assert "hs_011.jpg: it is a pipe, not a file" in caplog.text
    assert "hs_012.jpg: its mask hs_012.png is a pipe, not a file" in caplog.text
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 2


def test_a_still_cut_short_a_folder_or_a_missing_mask_is_said_not_decoded_grey(tmp_path):
    whole = cv2.imencode(".jpg", _scene(48, 64))[1].tobytes()
    (tmp_path / "cut.jpg").write_bytes(whole[: len(whole) // 3])
    (tmp_path / "whole.jpg").write_bytes(whole)
    (tmp_path / "folder.png").mkdir()
    assert common.read_pair(tmp_path / "cut.jpg", tmp_path / "none.png") == "it is cut short (no end of the picture)"
    assert common.read_pair(tmp_path / "whole.jpg", tmp_path / "none.png") == "it has no mask none.png"
    assert common.read_pair(tmp_path / "whole.jpg", tmp_path / "folder.png", "matte") == \
        "its matte folder.png is a folder, not a file"
    assert common.read_pair(tmp_path / "gone.jpg", tmp_path / "none.png") == "it does not exist"


def test_a_still_far_larger_than_a_picture_is_never_read_whole(tmp_path, monkeypatch):
    """A 6 GB sparse file named .jpg was read whole (a MemoryError traceback under a memory limit)."""
    big = tmp_path / "big.jpg"
    with open(big, "wb") as fh:
        fh.write(cv2.imencode(".jpg", _scene(48, 64))[1].tobytes())
        fh.truncate(6 << 30)  # sparse: no room taken
    noheader = tmp_path / "noheader.png"
    with open(noheader, "wb") as fh:
        fh.truncate(300 << 20)
    reads = []
    real = os.fdopen
    monkeypatch.setattr(os, "fdopen", lambda *a, **kw: reads.append(a) or real(*a, **kw))
    assert common.read_still(big) == "is 6144 MB, more than a picture of its size takes"
    assert common.read_still(noheader) == "is 300 MB, more than a picture takes"
    assert reads == []


def _render_data(tmp_path):
    """A data folder whose least-person stills are each unusable, and one good still (a quarter
    person) with a known scene; the bad ones' masks, all empty, are taken first."""
    stills = tmp_path / "data" / "stills"
    stills.mkdir(parents=True)
    good = _scene(320, 320, seed=1)
    cv2.imwrite(str(stills / "hs_001.jpg"), good, [cv2.IMWRITE_JPEG_QUALITY, 100])
    cv2.imwrite(str(stills / "hs_001.png"), _person(320, 320, (160, 320, 80, 240)))
    empty = np.zeros((480, 640), np.uint8)
    # a mask of another size than its photo
    _jpeg(stills / "hs_009.jpg", _scene(480, 640))
    cv2.imwrite(str(stills / "hs_009.png"), np.zeros((400, 400), np.uint8))
    # a mask without its photo
    cv2.imwrite(str(stills / "hs_010.png"), empty)
    # a damaged photo (cut to a third)
    whole = cv2.imencode(".jpg", _scene(480, 640))[1].tobytes()
    (stills / "hs_011.jpg").write_bytes(whole[: len(whole) // 3])
    cv2.imwrite(str(stills / "hs_011.png"), empty)
    # a photo that is a pipe (made by the caller), with a mask
    cv2.imwrite(str(stills / "hs_012.png"), empty)
    return tmp_path / "data", good


def test_bench_renders_scene_leaves_out_each_still_it_cannot_use(tmp_path, monkeypatch):
    """`bench render` read its background stills by hand: a mask of another size than its photo,
    or one without its photo, was a cv2 traceback; a damaged photo put libjpeg's raw line on the
    terminal and was used half grey; a FIFO hung it. Each is left out with one line."""
    data, good = _render_data(tmp_path)
    stills = data / "stills"
    with watched_fifo(stills / "hs_012.jpg") as photo_opened, watched_fifo(stills / "hs_013.png") as mask_opened:
        scene, left = bench_render.scene_photo(data)
    assert not photo_opened and not mask_opened
    assert scene is not None and scene.shape == good.shape
    assert cv2.PSNR(scene[:150], good[:150]) > 40  # the good still's top, outside the inpainted person
    assert left == ["still hs_013.jpg for the background scene: its mask hs_013.png is a pipe, not a file",
                    "still hs_009.jpg for the background scene: its mask is 400x400, the photo 640x480",
                    "still hs_010.jpg for the background scene: it does not exist",
                    "still hs_011.jpg for the background scene: it is cut short (no end of the picture)",
                    "still hs_012.jpg for the background scene: it is a pipe, not a file"]


def test_bench_render_runs_over_unusable_stills_and_says_each_once(tmp_path, monkeypatch, capfd):
    data, _good = _render_data(tmp_path)
    portraits = data / "portraits"
    portraits.mkdir()
    cv2.imwrite(str(portraits / "p_1.jpg"), _scene(480, 320, seed=2))
    cv2.imwrite(str(portraits / "p_1.png"), cv2.GaussianBlur(_person(480, 320, (100, 480, 80, 240)), (0, 0), 3))
    (data / "stills" / "hs_001.jpg").unlink()  # no still left: the noise texture, said
    monkeypatch.setattr(bench_render, "speed", lambda cfg, size, runs=40: {"size": "1x1", "ms_ours": 1.0,
                                                                         "ms_naive": 1.0, "ratio": 1.0})
    with watched_fifo(data / "stills" / "hs_012.jpg") as opened:
        report = bench_render.run(data, backends=())
    assert not opened
    assert report["halo"]["portraits"] == 1
    skipped = report["skipped"]
    for name in ("hs_001", "hs_009", "hs_010", "hs_011", "hs_012"):
        assert len([line for line in skipped if f"still {name}.jpg " in line]) == 1, skipped
    assert skipped[-1].startswith("the background scene: no still of ") and "noise texture" in skipped[-1]
    err = capfd.readouterr().err
    assert "JPEG" not in err and "Traceback" not in err  # libjpeg's own lines kept off the terminal
    assert "left out: still hs_011.jpg for the background scene: it is cut short" in bench_render.render(report)


def test_bench_framing_and_depth_take_their_portraits_through_the_reader(tmp_path, caplog):
    from livebokeh.bench import depth, framing

    folder = tmp_path / "portraits"
    folder.mkdir()
    photo = _scene(480, 320, seed=3)
    matte = _person(480, 320, (100, 480, 80, 240))
    cv2.imwrite(str(folder / "p_2.jpg"), photo)
    cv2.imwrite(str(folder / "p_2.png"), matte)
    cv2.imwrite(str(folder / "p_1.png"), matte)
    with watched_fifo(folder / "p_1.jpg") as opened, caplog.at_level(logging.WARNING, logger="livebokeh"):
        person, alpha = framing._portrait(tmp_path)  # the first that can be used
    assert not opened
    assert person.shape == photo.shape and np.array_equal(alpha, matte.astype(np.float32) / 255)
    assert "p_1.jpg: it is a pipe, not a file" in caplog.text

    name = next(iter(depth.PORTRAITS))
    cv2.imwrite(str(folder / f"{name}.jpg"), photo)
    cv2.imwrite(str(folder / f"{name}.png"), matte[:240])
    with pytest.raises(ConfigError, match=rf"cannot use .*{name}\.jpg: its matte is 320x240, the photo 320x480; "
                                          r"pass --data DIR"):
        depth.check_portraits(folder)
    cv2.imwrite(str(folder / f"{name}.png"), matte)
    got_photo, got_matte = depth.check_portraits(folder)
    assert np.array_equal(got_matte, matte)


def test_bench_live_makes_no_moving_camera_clip_from_stills_it_cannot_use(tmp_path, caplog):
    from livebokeh.bench import live

    stills = tmp_path / "stills"
    stills.mkdir()
    _jpeg(stills / "hs_001.jpg", _scene(48, 64))
    cv2.imwrite(str(stills / "hs_001.png"), np.zeros((10, 10), np.uint8))
    with caplog.at_level(logging.WARNING, logger="livebokeh"):
        assert live.moving_camera_clip(tmp_path, tmp_path) is None
    assert "hs_001.jpg: its mask is 10x10, the photo 64x48" in caplog.text
    assert not (tmp_path / "moving_camera.mkv").exists()


def test_a_pair_read_again_for_each_backend_is_said_once(tmp_path, caplog):
    """`bench quality` reads its stills and portraits again for each backend (and the portraits
    twice a backend): a bad pair was said each time."""
    stills = tmp_path / "stills"
    stills.mkdir()
    _jpeg(stills / "hs_001.jpg", _scene(48, 64))
    cv2.imwrite(str(stills / "hs_001.png"), np.zeros((10, 10), np.uint8))
    pairs = common.still_pairs(tmp_path)
    said: set = set()
    with caplog.at_level(logging.WARNING, logger="livebokeh"):
        for _backend in range(3):
            assert list(common.read_pairs(pairs, said)) == []
    assert caplog.text.count("hs_001.jpg: its mask is 10x10") == 1
