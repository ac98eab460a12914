"""Animated PNG and WebP: every frame, as a video, with its delays."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from livebokeh.errors import SourceError
from livebokeh.sources import AnimationSource, ImageSource, is_animation, is_still_input, source_for_input
from livebokeh.sources import animation as animation_module


def make_animation(path, levels=(0, 40, 80, 120, 160), delays=(50, 100, 200, 5, 100), size=(40, 30)):
    a = cv2.Animation()
    a.frames = [np.full((size[1], size[0], 3), v, np.uint8) for v in levels]
    a.durations = list(delays)
    a.loop_count = 0
    assert cv2.imwriteanimation(str(path), a)
    return path


def _frames(source):
    with source as s:
        info = s.info
        frames = []
        while (f := s.read()) is not None:
            frames.append(f)
    return info, frames


@pytest.mark.parametrize("suffix", [".png", ".webp"])
def test_every_frame_with_its_delay(tmp_path, suffix):
    path = make_animation(tmp_path / f"a{suffix}")
    assert is_animation(path) and not is_still_input(path)
    source = source_for_input(path)
    assert isinstance(source, AnimationSource)
    info, frames = _frames(source)
    assert not info.still and info.frame_count == 5 and (info.width, info.height) == (40, 30)
    assert [round(float(f.image.mean())) for f in frames] == [0, 40, 80, 120, 160]
    assert [f.index for f in frames] == list(range(5))
    # each frame at the sum of the delays before it; a 5 ms delay plays as 100 ms, as in browsers
    assert [f.time_s for f in frames] == [0.0, 0.05, 0.15, 0.35, 0.45]
    assert float(info.fps) == pytest.approx(5 / 0.55, rel=0.01)


@pytest.mark.parametrize("suffix", [".png", ".webp"])
def test_a_still_png_or_webp_stays_a_still(tmp_path, suffix):
    path = tmp_path / f"s{suffix}"
    cv2.imwrite(str(path), np.full((30, 40, 3), 7, np.uint8))
    assert is_still_input(path) and not is_animation(path)
    assert isinstance(source_for_input(path), ImageSource)
    one = make_animation(tmp_path / f"one{suffix}", levels=(9,), delays=(100,))
    assert is_still_input(one)  # an animation of one frame is a picture


def test_long_animations_are_decoded_in_groups_with_the_same_frames(tmp_path, monkeypatch):
    path = make_animation(tmp_path / "a.webp", levels=tuple(range(0, 250, 10)), delays=(40,) * 25)
    _, whole = _frames(AnimationSource(path))
    monkeypatch.setattr(animation_module, "BUDGET", 40 * 30 * 4 * 3)  # three frames at a time
    _, grouped = _frames(AnimationSource(path))
    assert len(whole) == len(grouped) == 25
    assert all(np.array_equal(a.image, b.image) and a.time_s == b.time_s for a, b in zip(whole, grouped))


def test_played_as_a_camera_each_frame_comes_at_its_delay(tmp_path):
    """``--camera anim.webp`` (or ``--input`` without outputs): the clip camera paces an animation
    as it paces a video (a virtual clock that moves when slept on)."""
    from livebokeh.sources import ClipCamera, is_clip
    from tests.sources.test_clip import Clock

    path = make_animation(tmp_path / "a.webp")
    assert is_clip(str(path))
    clock = Clock()
    with ClipCamera(path, clock_ns=clock, sleep=clock.sleep) as cam:
        assert cam.info.live and (cam.info.width, cam.info.height) == (40, 30)
        start = clock.ns
        shown = []
        while (f := cam.read()) is not None:
            shown.append(((f.capture_ns - start) / 1e9, round(float(f.image.mean()))))
    assert shown == [(pytest.approx(t, abs=1e-6), v) for t, v in
                     [(0.0, 0), (0.05, 40), (0.15, 80), (0.35, 120), (0.45, 160)]]


def test_a_broken_animation_is_one_line(tmp_path):
    path = make_animation(tmp_path / "a.png")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])  # the header (and its frame count) survive, the frames do not
    try:
        info, frames = _frames(AnimationSource(path))
    except SourceError as err:
        assert "\n" not in str(err) and str(path) in str(err)
    else:
        assert len(frames) < 5 and info.frame_count == 5


def test_an_animation_background_loops_frame_by_frame(tmp_path):
    from livebokeh.render import open_background

    path = make_animation(tmp_path / "bg.webp", levels=(10, 120, 240), delays=(100, 100, 100))
    with open_background(str(path)) as bg:
        levels = [round(float(bg.plate((32, 24)).mean()) / 10) for _ in range(7)]
    assert levels == [1, 12, 24, 1, 12, 24, 1]


def _claiming(path, frames):
    """``path``'s APNG with its ``acTL`` chunk rewritten to claim ``frames`` frames (CRC fixed)."""
    import struct
    import zlib

    data = bytearray(path.read_bytes())
    at = data.find(b"acTL")
    data[at + 4:at + 8] = struct.pack(">I", frames)
    data[at + 12:at + 16] = struct.pack(">I", zlib.crc32(bytes(data[at:at + 12])) & 0xFFFFFFFF)
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("claimed", [1000, 2**31 - 1])
def test_an_apng_claiming_more_frames_than_it_holds_gives_all_it_holds(tmp_path, caplog, claimed):
    """acTL patched to claim 1000 frames: 'no frame of the animation can be decoded' (OpenCV, asked
    for more than the file holds, says it failed and gives the frames it has). FFmpeg reads 20."""
    import logging

    levels = tuple(range(0, 200, 10))
    path = _claiming(make_animation(tmp_path / "a.png", levels=levels, delays=(100,) * 20), claimed)
    with caplog.at_level(logging.WARNING):
        info, frames = _frames(AnimationSource(path))
    assert [round(float(f.image.mean())) for f in frames] == list(levels)
    assert info.frame_count == 20 and float(info.fps) == pytest.approx(10, rel=0.01)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and f"its header says {claimed}" in warnings[0]
    source = AnimationSource(path)  # looped (a background): opened again at each loop, said once
    with caplog.at_level(logging.WARNING):
        for _ in range(2):
            _frames(source)
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 2


@pytest.mark.parametrize("suffix", [".png", ".webp"])
def test_a_cut_animation_gives_the_frames_before_the_cut_then_says_truncated(tmp_path, suffix):
    """Cut to 60%: every frame was lost (libwebp decodes nothing of a cut WebP; its whole chunks
    are decoded instead); FFmpeg decodes the 12 APNG frames before the cut."""
    levels = tuple(range(0, 200, 10))
    path = make_animation(tmp_path / f"a{suffix}", levels=levels, delays=(100,) * 20, size=(64, 48))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 6 // 10])
    frames = []
    with pytest.raises(SourceError) as info, AnimationSource(path) as source:
        while (f := source.read()) is not None:
            frames.append(f)
    assert 8 <= len(frames) < 20
    means = [float(f.image.mean()) for f in frames]  # WebP is lossy: within a level or two
    assert np.abs(np.array(means) - np.array(levels[: len(frames)])).max() < 2.5, means
    text = str(info.value)
    assert "\n" not in text and "truncated" in text and f"ends after {len(frames)} frames, cut inside" in text
    assert "header's" not in text  # (a WebP's header has no count; its chunks seen were called one)
