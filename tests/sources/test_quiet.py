"""Native libraries' own lines kept off stderr around a decode (livebokeh.sources.quiet)."""

from __future__ import annotations

import os
import threading

import cv2
import numpy as np

from livebokeh.sources.quiet import quiet_native


def test_native_lines_are_kept_off_stderr_and_other_lines_kept(capfd):
    with quiet_native():
        os.write(2, b"libpng error: Not enough image data\n")
        os.write(2, b"another thread's warning\n")
        os.write(2, b"[ERROR:0@0.051] global loadsave.cpp:1074 imdecode_ can't read header: OpenCV(5.1.0) x\n\n")
        os.write(2, b"\r 50%|#####     | 5/10")
    err = capfd.readouterr().err
    assert "libpng" not in err and "[ERROR" not in err
    assert "another thread's warning\n" in err and err.endswith("\r 50%|#####     | 5/10")


def test_a_damaged_png_decodes_without_a_native_line(capfd):
    _, data = cv2.imencode(".png", np.random.default_rng(0).integers(0, 255, (48, 64, 3), np.uint8))
    cut = data[: len(data) * 9 // 10]  # libpng: "PNG input buffer is incomplete"
    capfd.readouterr()
    assert cv2.imdecode(cut, cv2.IMREAD_COLOR) is None
    assert "libpng" in capfd.readouterr().err  # what the library prints by itself
    with quiet_native():
        assert cv2.imdecode(cut, cv2.IMREAD_COLOR) is None
    assert capfd.readouterr().err == ""


def test_decodes_on_several_threads_share_one_window(capfd):
    """Overlapping windows on two threads: stderr is the real one again after both."""
    inside, release = threading.Event(), threading.Event()

    def other():
        with quiet_native():
            inside.set()
            release.wait(10)

    t = threading.Thread(target=other)
    t.start()
    inside.wait(10)
    with quiet_native():
        release.set()
        t.join(10)
        os.write(2, b"libpng warning: x\n")
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "after\n"


def test_a_block_keeps_its_list_when_another_leaves_first():
    """Two blocks whose lists were both empty: the one leaving first removed the other's list
    (lists compare by content, `remove` takes the first equal one), and the other got no lines."""
    from livebokeh.sources import quiet

    inside, release = threading.Event(), threading.Event()

    def other():
        with quiet_native():
            inside.set()
            release.wait(10)

    with quiet_native() as mine:  # registered first
        t = threading.Thread(target=other)
        t.start()
        inside.wait(10)
        release.set()
        t.join(10)  # the other block leaves first, while both lists are still empty
        os.write(2, b"libpng warning: x\n")
    assert mine == ["libpng warning: x"]
    assert quiet._watchers == []
