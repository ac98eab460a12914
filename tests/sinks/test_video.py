import itertools
from fractions import Fraction

import numpy as np
import pytest

from livebokeh.errors import ConfigError, SinkError
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
        ("b.mkv", "h264", (64, 48), Fraction(25)),
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


@pytest.mark.parametrize(("name", "kind", "pix_fmt"), [
    ("a.mp4", "color", "yuv420p"), ("b.webm", "color", "yuv420p"), ("c.avi", "color", "yuvj420p"),
    ("m.mp4", "gray", "yuv420p"), ("d.webm", "alpha", "yuv420p"),  # alpha in side data FFmpeg's own decoder drops
])
def test_odd_sizes_are_padded_to_a_format_every_player_plays(tmp_path, name, kind, pix_fmt):
    """721x405-like pictures: 4:2:0 video (never High 4:4:4), one edge row and column repeated."""
    import av

    w, h = 65, 49
    yy, xx = np.mgrid[0:h, 0:w]  # smooth, so 4:2:0 coding keeps it close
    smooth = np.dstack([3 * xx, 4 * yy, 2 * (xx + yy)]).astype(np.uint8)
    frames = [smooth] * 3
    if kind == "gray":
        frames = [f[:, :, 0] for f in frames]
    elif kind == "alpha":
        frames = [np.dstack([f, np.full((h, w), 255, np.uint8)]) for f in frames]
    writer = VideoWriter(tmp_path / name, w, h, Fraction(30), kind=kind)
    for f in frames:
        writer.write(f)
    writer.close()
    p = probe_video(tmp_path / name)
    assert (p["width"], p["height"], p["frames"], p["pix_fmt"]) == (w + 1, h + 1, 3, pix_fmt)
    if kind == "color" and name.endswith(".mp4"):
        with av.open(str(tmp_path / name)) as c:
            got = next(c.decode(video=0)).to_ndarray(format="bgr24").astype(int)
        src = frames[0].astype(int)
        assert np.abs(got[:h, :w] - src).mean() < 12  # the picture itself, in place
        # the added column and row repeat the edge (within coding error), no black bar
        assert np.abs(got[:h, w] - got[:h, w - 1]).mean() < 12 and np.abs(got[h, :w] - got[h - 1, :w]).mean() < 12


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


@pytest.mark.parametrize(("name", "kind"), [("m.mkv", "gray"), ("m.avi", "gray"), ("a.mkv", "alpha")])
@pytest.mark.parametrize(("w", "h"), [(1, 100), (1, 2), (1, 1), (3, 2)])
@pytest.mark.parametrize("threads", [0, 2])
def test_ffv1_writes_pictures_one_pixel_wide_losslessly(tmp_path, name, kind, w, h, threads):
    """FFV1's default level cannot slice a 1-pixel-wide picture: 'writing m.mkv failed: Function
    not implemented' (--save-mask m.mkv, --alpha-output a.mkv, .avi on a 1xN video)."""
    import av

    rng = np.random.default_rng(0)
    shape = (h, w) if kind == "gray" else (h, w, 4)
    pictures = [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(4)]
    writer = VideoWriter(tmp_path / name, w, h, Fraction(30), kind=kind, threads=threads)
    for picture in pictures:
        writer.write(picture)
    assert writer.close() == tmp_path / name
    with av.open(str(tmp_path / name)) as c:
        got = [f.to_ndarray(format="gray" if kind == "gray" else "bgra") for f in c.decode(video=0)]
        assert c.streams.video[0].codec_context.name == "ffv1"
    assert len(got) == 4 and all(np.array_equal(a, b) for a, b in zip(pictures, got))


def test_bad_outputs(tmp_path):
    with pytest.raises(ConfigError, match="unknown container .xyz"):
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
    out = tmp_path / "talk.mp4"
    w = VideoWriter(out, 64, 48, Fraction(30))
    for f in _frames(10, 64, 48):
        w.write(f)
    partial = tmp_path / "talk.partial.mp4"
    assert w.close(complete=False) == partial
    assert w.close() == partial  # closing twice changes nothing
    assert not out.exists() and probe_video(partial)["frames"] == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["talk.partial.mp4"]  # no temporary file left


def test_a_partial_never_replaces_a_file(tmp_path):
    """A longer partial of an earlier run, or an input called NAME.partial.mp4, stays as it was."""
    out = tmp_path / "talk.mp4"
    (tmp_path / "talk.partial.mp4").write_bytes(b"earlier partial")
    (tmp_path / "talk.partial-2.mp4").write_bytes(b"the input")
    w = VideoWriter(out, 64, 48, Fraction(30))
    for f in _frames(4, 64, 48):
        w.write(f)
    assert w.close(complete=False) == tmp_path / "talk.partial-3.mp4"
    assert (tmp_path / "talk.partial.mp4").read_bytes() == b"earlier partial"
    assert (tmp_path / "talk.partial-2.mp4").read_bytes() == b"the input"
    assert probe_video(tmp_path / "talk.partial-3.mp4")["frames"] == 4


class _FullDisk:
    """A container whose ``mux`` raises ENOSPC once ``room`` packets are in (the rest delegates)."""

    def __init__(self, container, room):
        self._c, self.room, self.muxed = container, room, 0

    def mux(self, packet):
        import errno

        if self.muxed >= self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        self._c.mux(packet)
        self.muxed += 1

    def __getattr__(self, name):
        return getattr(self._c, name)


@pytest.mark.parametrize("room", [5, 0])
def test_a_full_disk_keeps_a_playable_partial(tmp_path, room):
    """The disk fills at a packet: a one-line error naming the cause, the frames before kept in
    a playable partial (none: nothing), no temporary file left, the final name never created."""
    out = tmp_path / "talk.mp4"
    w = VideoWriter(out, 64, 48, Fraction(30), preset="ultrafast")
    w._container = disk = _FullDisk(w._container, room)
    with pytest.raises(SinkError, match=r"writing .*talk.mp4 failed: No space left on device; free some space") as err:
        for f in _frames(60, 64, 48):
            w.write(f)
    assert "\n" not in str(err.value)
    kept = w.close()
    assert not out.exists()
    if room:
        assert kept == tmp_path / "talk.partial.mp4"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["talk.partial.mp4"]
        assert probe_video(kept)["frames"] == disk.muxed == room
    else:
        assert kept is None and list(tmp_path.iterdir()) == []


def test_stale_temporary_files_of_a_killed_run_are_kept_as_partials(tmp_path):
    from livebokeh.sinks.files import Output, recover_stale

    out = tmp_path / "talk.mp4"
    (tmp_path / ".talk.livebokeh-tmp-999999999.mp4").write_bytes(b"killed run")  # no such process
    (tmp_path / ".talk.livebokeh-tmp.mp4").write_bytes(b"older version's name")
    (tmp_path / ".x.livebokeh-tmp-999999998.mp4").write_bytes(b"another output's")
    import os

    from livebokeh.sinks.files import create_locked

    live = VideoWriter(out, 64, 48, Fraction(30))  # a run writing this output now: its file is left alone
    pid_reused = tmp_path / ".talk.livebokeh-tmp-1.mp4"  # pid 1 runs, but no writer holds the file
    pid_reused.write_bytes(b"killed long ago")
    kept = recover_stale(Output.of("--output", out))
    assert sorted(p.name for p in kept) == ["talk.partial-2.mp4", "talk.partial-3.mp4", "talk.partial.mp4"]
    assert sorted(p.read_bytes() for p in kept) == [b"killed long ago", b"killed run", b"older version's name"]
    assert live._tmp.exists() and (tmp_path / ".x.livebokeh-tmp-999999998.mp4").exists()
    live.write(_frames(1, 64, 48)[0])
    assert live.close() == out
    # a name with glob characters takes only its own temporary file
    odd = tmp_path / "[x].mp4"
    fd = create_locked(tmp_path / f".[x].livebokeh-tmp-{os.getpid()}.mp4")
    os.close(fd)
    assert [p.name for p in recover_stale(Output.of("--output", odd))] == ["[x].partial.mp4"]
    assert (tmp_path / ".x.livebokeh-tmp-999999998.mp4").exists()


def test_long_names_get_temporary_and_partial_names_that_fit(tmp_path):
    out = tmp_path / ("a" * 248 + ".mp4")  # a legal name; with a tag it would not be
    w = VideoWriter(out, 64, 48, Fraction(30))
    assert len(w._tmp.name.encode()) <= 255
    for f in _frames(3, 64, 48):
        w.write(f)
    kept = w.close(complete=False)
    assert len(kept.name.encode()) <= 255 and kept.name.endswith(".partial.mp4")
    assert probe_video(kept)["frames"] == 3


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


def test_a_disk_that_fills_while_finalising_is_an_error(tmp_path):
    """Muxers buffer (Matroska a cluster, MP4 its index): when the disk fills only at close, the
    run must not end as a success. The writer raises one line and keeps what reached the disk."""
    import errno

    class FullAtClose(_FullDisk):
        def close(self):
            raise OSError(errno.ENOSPC, "No space left on device")

    out = tmp_path / "talk.mkv"
    w = VideoWriter(out, 64, 48, Fraction(30), preset="ultrafast")
    real = w._container
    w._container = FullAtClose(real, 10**6)
    for f in _frames(10, 64, 48):
        w.write(f)
    with pytest.raises(SinkError, match=r"finalising .*talk.mkv failed: No space left on device; free some space; "
                                         r"what reached the disk is in .*talk.partial.mkv \(it may not play to the end\)"):
        w.close()
    real.close()
    assert not out.exists() and (tmp_path / "talk.partial.mkv").exists()
    assert w.close() == tmp_path / "talk.partial.mkv"  # a second close says where, raises nothing


def test_an_output_that_appears_during_the_run_is_kept(tmp_path):
    """Another program wrote the same name meanwhile: nothing is replaced, and the run says
    where its result went (it is not a success with the final name missing)."""
    out = tmp_path / "c.mp4"
    w = VideoWriter(out, 64, 48, Fraction(30), overwrite=False)
    for f in _frames(3, 64, 48):
        w.write(f)
    out.write_bytes(b"the other program's")
    with pytest.raises(SinkError, match=r"c.mp4 appeared during the run .* this run's result is in .*c.partial.mp4"):
        w.close()
    assert out.read_bytes() == b"the other program's" and probe_video(tmp_path / "c.partial.mp4")["frames"] == 3


@pytest.mark.parametrize("name", ["live.mp4", "live.mkv"])
def test_a_live_recording_keeps_real_time_across_dropped_frames(tmp_path, name):
    from livebokeh.sinks.video import VideoFileSink
    from livebokeh.types import Composite, Frame, Mask, StreamInfo

    info = StreamInfo("camera", 64, 48, Fraction(30), live=True)
    sink = VideoFileSink(tmp_path / name, info, overwrite=False)
    period_ns = 1_000_000_000 // 30
    shown = [0, 1, 2, 5, 6, 9]  # frames 3, 4, 7 and 8 were dropped on the way
    for i, img in zip(shown, _frames(len(shown), 64, 48)):
        frame = Frame(img, i, 7_000_000_000 + i * period_ns)
        sink.write(Composite(frame, img, Mask(np.zeros((48, 64), np.float32))))
    sink.mark_complete()
    sink.close()
    import av

    with av.open(str(tmp_path / name)) as c:
        times = [float(f.time) for f in c.decode(video=0)]
    # each picture at its capture time since the first: the gaps stay, the clip keeps real time
    assert np.allclose(times, [i / 30 for i in shown], atol=0.002)


def _packets(path):
    """(pts, dts, duration) of each video packet, in the stream's ticks, and that time base."""
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return [(p.pts, p.dts, p.duration) for p in c.demux(s) if p.size], s.time_base


def _gapped(out, gap, fps=25, n=50, **kw):
    """``n`` frames at ``fps``, then ``n`` more ``gap`` seconds later (a clip joined to one
    recorded later, or a still held), slowly changing so that H.264 reorders them."""
    w = VideoWriter(out, 64, 48, Fraction(fps), **kw)
    times = [i / fps for i in range(n)] + [gap + i / fps for i in range(n)]
    for i, t in enumerate(times):
        w.write(np.full((48, 64, 3), 2 * i, np.uint8), t)
    assert w.close() == out
    return times


@pytest.mark.parametrize("name", ["o.mp4", "o.mov"])
def test_a_long_pause_keeps_every_frame_in_order(tmp_path, name):
    """A pause of 3000 s: reordered H.264 frames around it got composition offsets beyond the
    2^28 ticks FFmpeg's MP4 reader takes ('CTTS invalid'); it dropped every offset, and showed
    98 of 100 frames, 46 out of order. The encoder now starts afresh after a long pause."""
    import av

    from tests.media import video_times

    times = _gapped(tmp_path / name, 3000.0)
    packets, base = _packets(tmp_path / name)
    assert any(pts != dts for pts, dts, _ in packets)  # B-frames, reordered, as before
    assert max(pts - dts for pts, dts, _ in packets) < 2**27
    assert base == Fraction(1, 90000)
    got = video_times(tmp_path / name)
    assert np.allclose(got, times, atol=1e-4)
    with av.open(str(tmp_path / name)) as c:
        assert len([f for f in c.decode(video=0)]) == 100


@pytest.mark.parametrize(("name", "fps", "gap"), [("o.mp4", 25, 30000.0), ("o.avi", 2, 40000.0)])
def test_a_pause_of_hours_holds_the_picture(tmp_path, name, fps, gap):
    """A still held for hours: MP4 cannot make one sample last more than 2^31 ticks (FFmpeg
    failed 'Not yet implemented', or wrote a duration read back as negative), nor FFmpeg's AVI
    muxer fill more than 60000 frames ('Invalid argument'). The picture before the pause is
    given again at steps it takes; every frame keeps its time, in order."""
    from tests.media import video_times

    times = _gapped(tmp_path / name, gap, fps=fps)
    got = video_times(tmp_path / name)
    assert got == sorted(got) and len(got) > len(times)
    assert all(any(abs(g - t) < 1e-3 for g in got) for t in times)
    packets, _ = _packets(tmp_path / name)
    assert max(b[1] - a[1] for a, b in itertools.pairwise(packets)) <= (2**31 - 1 if name.endswith(".mp4") else 60000)


def test_the_last_frame_lasts_one_frame_after_a_long_jump(tmp_path):
    """A clip with a 1000 s jump: its average rate is 0.1 fps, which made the MP4's last frame
    last 10 s (the stream 1011.98 s long, its last frame at 1001.98 s). The stream's rate is the
    clip's steady one, and the last frame lasts one frame of it."""
    import av

    from livebokeh.sources import VideoFileSource

    src = tmp_path / "jump.mp4"
    with av.open(str(src), "w") as c:
        v = c.add_stream("libx264", rate=25, options={"bf": "0"})
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        v.codec_context.time_base = Fraction(1, 25)
        for i in list(range(50)) + list(range(25000, 25050)):
            f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i % 200, np.uint8), format="bgr24")
            f.pts, f.time_base = i, Fraction(1, 25)
            for p in v.encode(f):
                c.mux(p)
        for p in v.encode(None):
            c.mux(p)
    out = tmp_path / "out.mp4"
    with VideoFileSource(src) as s:
        assert s.info.fps < 1 and s.info.steady_fps == 25
        w = VideoWriter(out, 64, 48, s.info.fps, steady_fps=s.info.steady_fps)
        while (f := s.read()) is not None:
            w.write(f.image, f.time_s)
    w.close()
    with av.open(str(out)) as c:
        s = c.streams.video[0]
        length = float(s.duration * s.time_base)
        last = max(float(f.time) for f in c.decode(s))
    assert last == pytest.approx(1001.96, abs=1e-3)
    assert length - last == pytest.approx(0.04, abs=1e-3)


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_a_recording_whose_folder_is_moved_during_the_run_is_kept_and_named(tmp_path, suffix):
    """The output folder renamed during the run: the frames stayed in a hidden temporary file, and the
    line said 'nothing was written' (MKV) or named no file. The result is kept beside where it went,
    under a partial name the one line gives."""
    import pytest as _pytest

    from livebokeh.errors import SinkError

    folder = tmp_path / "rec"
    folder.mkdir()
    w = VideoWriter(folder / f"r{suffix}", 32, 24, Fraction(25))
    for i in range(120):  # (past the encoder's look-ahead: packets reach the disk)
        w.write(np.full((24, 32, 3), i * 2, np.uint8))
    assert w._muxed > 0
    folder.rename(tmp_path / "moved")
    for i in range(30):
        w.write(np.full((24, 32, 3), i * 2, np.uint8))
    kept = tmp_path / "moved" / f"r.partial{suffix}"
    with _pytest.raises(SinkError, match=rf"moved or renamed during the run; this run's whole result \(150 frames\) is in .*{kept.name}"):
        w.close()
    assert [p.name for p in (tmp_path / "moved").iterdir()] == [kept.name]
    import av

    with av.open(str(kept)) as c:  # (an MP4's index pass opened it by its old name: no index, unplayable)
        assert sum(1 for _ in c.decode(video=0)) == 150
