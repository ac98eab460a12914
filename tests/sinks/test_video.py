from fractions import Fraction

import numpy as np
import pytest

from livebokeh.errors import SinkError
from livebokeh.sinks import VideoWriter
from tests.conftest import probe_video


def _frames(n, w, h):
    rng = np.random.default_rng(3)
    base = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    return [np.roll(base, i * 3, axis=1) for i in range(n)]


@pytest.mark.parametrize(
    ("name", "codec", "size", "fps"),
    [
        ("a.mp4", "h264", (64, 48), Fraction(30000, 1001)),
        ("b.mkv", "h264", (65, 49), Fraction(25)),  # odd sizes work too
        ("c.webm", "vp9", (64, 48), Fraction(24)),
        ("d.avi", "mjpeg", (64, 48), Fraction(30)),
    ],
)
def test_writes_every_frame_at_the_given_rate(tmp_path, name, codec, size, fps):
    w, h = size
    out = tmp_path / name
    writer = VideoWriter(out, w, h, fps)
    for f in _frames(17, w, h):
        writer.write(f)
    writer.close()
    writer.close()
    p = probe_video(out)
    assert (p["codec"], p["width"], p["height"], p["frames"]) == (codec, w, h, 17)
    assert p["fps"] == fps


def test_gray_masks_in_mkv_are_lossless(tmp_path):
    rng = np.random.default_rng(0)
    masks = [rng.integers(0, 256, (40, 60), dtype=np.uint8) for _ in range(5)]
    w = VideoWriter(tmp_path / "m.mkv", 60, 40, Fraction(30), kind="gray")
    for m in masks:
        w.write(m)
    w.close()
    p = probe_video(tmp_path / "m.mkv")
    assert p["codec"] == "ffv1" and p["frames"] == 5
    for a, b in zip(masks, p["gray"]):
        np.testing.assert_array_equal(a, b)


def test_bad_outputs(tmp_path):
    with pytest.raises(SinkError, match="unknown container .xyz"):
        VideoWriter(tmp_path / "a.xyz", 64, 48, Fraction(30))
    with pytest.raises(SinkError, match="does not exist; create it first"):
        VideoWriter(tmp_path / "no" / "a.mp4", 64, 48, Fraction(30))
    with pytest.raises(SinkError, match="is a folder"):
        VideoWriter(tmp_path, 64, 48, Fraction(30))
    w = VideoWriter(tmp_path / "a.mp4", 64, 48, Fraction(30))
    with pytest.raises(SinkError, match="differs"):
        w.write(np.zeros((10, 10, 3), np.uint8))
    w.close()


def _audio_info(path):
    """(codec, seconds of decoded sound) per audio stream."""
    import av

    out = []
    with av.open(str(path)) as c:
        for s in c.streams.audio:
            samples = sum(f.samples for f in c.decode(s))
            out.append((s.codec_context.name, samples / s.codec_context.sample_rate))
    return out


def test_audio_is_copied_and_cut_to_the_video(clip, tmp_path):
    out = tmp_path / "a.mp4"
    w = VideoWriter(out, 64, 48, Fraction(30), audio_from=clip)
    for f in _frames(45, 64, 48):  # 1.5 s of video
        w.write(f)
    assert w.close() == out
    (codec, duration), = _audio_info(out)
    assert codec == "aac" and abs(duration - 1.5) < 0.05


def test_audio_is_reencoded_when_the_container_cannot_hold_it(clip, tmp_path):
    out = tmp_path / "a.webm"
    w = VideoWriter(out, 64, 48, Fraction(30), audio_from=clip)
    for f in _frames(30, 64, 48):
        w.write(f)
    w.close()
    (codec, duration), = _audio_info(out)
    assert codec == "opus" and abs(duration - 1.0) < 0.1


def test_incomplete_recordings_are_kept_as_partial_files(tmp_path):
    from livebokeh.sinks import partial_path

    out = tmp_path / "talk.mp4"
    w = VideoWriter(out, 64, 48, Fraction(30))
    for f in _frames(10, 64, 48):
        w.write(f)
    assert w.close(complete=False) == partial_path(out) == tmp_path / "talk.partial.mp4"
    assert not out.exists() and probe_video(partial_path(out))["frames"] == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["talk.partial.mp4"]  # no temporary file left


def test_existing_outputs_are_kept_unless_overwrite(tmp_path):
    out = tmp_path / "x.mp4"
    out.write_bytes(b"precious")
    with pytest.raises(SinkError, match="exists; pass --overwrite"):
        VideoWriter(out, 64, 48, Fraction(30), overwrite=False)
    assert out.read_bytes() == b"precious"
    w = VideoWriter(out, 64, 48, Fraction(30), overwrite=True)
    w.write(_frames(1, 64, 48)[0])
    w.close()
    assert probe_video(out)["frames"] == 1


def test_timestamps_are_kept_for_variable_frame_rates(tmp_path):
    import av

    out = tmp_path / "vfr.mkv"
    w = VideoWriter(out, 64, 48, Fraction(30))
    times = [0.0, 0.033, 0.1, 0.5, 0.533]
    for t, f in zip(times, _frames(5, 64, 48)):
        w.write(f, t)
    w.close()
    with av.open(str(out)) as c:
        got = [round(float(f.time), 3) for f in c.decode(video=0)]
    assert got == times


@pytest.mark.parametrize(("name", "codec"), [("a.mov", "prores"), ("a.webm", "vp9"), ("a.mkv", "ffv1")])
def test_alpha_video(tmp_path, name, codec):
    import av

    bgra = np.zeros((48, 64, 4), np.uint8)
    bgra[:, :, 1] = 200
    bgra[:, 32:, 3] = 255
    w = VideoWriter(tmp_path / name, 64, 48, Fraction(30), kind="alpha")
    for _ in range(3):
        w.write(bgra)
    w.close()
    with av.open(str(tmp_path / name)) as c:
        s = c.streams.video[0]
        assert s.codec_context.name == codec
        if codec != "vp9":  # libvpx keeps alpha in side data that FFmpeg's native decoder drops
            f = next(c.decode(s)).to_ndarray(format="bgra")
            assert f[10, 10, 3] < 10 and f[10, 50, 3] > 245
