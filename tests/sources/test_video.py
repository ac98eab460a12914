from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from livebokeh.errors import SourceError
from livebokeh.sources import ImageSource, VideoFileSource, source_for_input
from tests.conftest import probe_video


def test_reads_every_frame_of_a_real_clip(clip):
    expected = probe_video(clip)
    with VideoFileSource(clip) as src:
        info = src.info
        frames = []
        while (f := src.read()) is not None:
            frames.append(f)
    assert (info.width, info.height) == (expected["width"], expected["height"])
    assert info.fps == expected["fps"] and not info.live
    assert len(frames) == expected["frames"]
    assert [f.index for f in frames] == list(range(len(frames)))
    assert frames[0].image.shape == (info.height, info.width, 3)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", r"is empty \(0 bytes\)"),
        (b"hello, this is just text\n" * 50, "cannot read"),
    ],
)
def test_bad_files_are_source_errors(tmp_path, content, message):
    p = tmp_path / "bad.mp4"
    p.write_bytes(content)
    with pytest.raises(SourceError, match=message):
        VideoFileSource(p).open()


@pytest.mark.parametrize("name", ["cut.mp4", "cut.mkv"])
def test_truncated_files_are_a_clear_error(clip, tmp_path, name):
    import numpy as np

    from livebokeh.sinks import VideoWriter

    full = tmp_path / f"full{Path(name).suffix}"
    if full.suffix == ".mp4":
        full.write_bytes(clip.read_bytes())  # its index sits at the end: a cut file cannot open
    else:
        w = VideoWriter(full, 64, 48, Fraction(30))
        for i in range(60):
            w.write(np.full((48, 64, 3), i * 4, np.uint8))
        w.close()
    data = full.read_bytes()
    p = tmp_path / name
    p.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(SourceError) as info, VideoFileSource(p) as src:
        while src.read() is not None:
            pass
    assert "\n" not in str(info.value)
    assert any(w in str(info.value) for w in ("truncated", "corrupt", "cannot read"))


@pytest.mark.parametrize("suffix", [".mkv", ".webm", ".y4m"])
def test_a_file_cut_before_its_first_picture_is_an_error_not_an_empty_run(tmp_path, suffix):
    """Cut inside its first cluster (or a Y4M inside its first frame): the file opens, no picture
    decodes; that ended 'no frame was written' with exit 0, which a script took for success."""
    import av

    full = tmp_path / f"full{suffix}"
    codec = {".mkv": "libx264", ".webm": "libvpx-vp9", ".y4m": "rawvideo"}[suffix]
    with av.open(str(full), "w") as c:
        s = c.add_stream(codec, rate=25)
        s.width, s.height, s.pix_fmt = 160, 120, "yuv420p"
        noise = np.random.default_rng(1).integers(0, 256, (20, 120, 160, 3), np.uint8)  # big first pictures
        for i in range(20):
            for p in s.encode(av.VideoFrame.from_ndarray(noise[i], format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    data = full.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    first = data.index(b"FRAME") + 5000 if suffix == ".y4m" else 700  # inside the first 28800-byte picture
    cut.write_bytes(data[:first])
    with pytest.raises(SourceError) as info, VideoFileSource(cut) as src:
        while src.read() is not None:
            pass
    assert str(info.value) == f"{cut} holds no picture that can be decoded: the file is truncated or empty; pass a whole file"


def test_a_picture_size_over_the_limit_is_refused_by_its_header(tmp_path):
    """A Y4M header claiming 60000x60000 was 'Device or resource busy' from FFmpeg."""
    p = tmp_path / "huge.y4m"
    p.write_bytes(b"YUV4MPEG2 W60000 H60000 F25:1 Ip A1:1 C420jpeg\nFRAME\n" + bytes(100_000))
    with pytest.raises(SourceError, match=r"is 60000x60000 \(3600 MP\); livebokeh takes pictures up to 268 MP"):
        VideoFileSource(p).open()


def test_a_cut_gif_says_so_and_a_whole_one_with_bytes_after_its_end_does_not(tmp_path):
    """A GIF's header counts no frames: a cut one was taken as whole (its last frame half drawn,
    exit 0, nothing said). Its blocks tell: it ends before its trailer."""
    import av

    whole = tmp_path / "w.gif"
    noise = np.random.default_rng(2).integers(0, 256, (12, 60, 80, 3), np.uint8)
    with av.open(str(whole), "w") as c:
        s = c.add_stream("gif", rate=10)
        s.width, s.height, s.pix_fmt = 80, 60, "rgb8"
        for img in noise:
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)

    def frames(path: Path) -> int:
        n = 0
        with VideoFileSource(path) as src:
            while src.read() is not None:
                n += 1
        return n

    assert frames(whole) == 12
    padded = tmp_path / "padded.gif"  # bytes after the trailer: still whole
    padded.write_bytes(whole.read_bytes() + b"\0" * 64)
    assert frames(padded) == 12
    data = whole.read_bytes()
    cut = tmp_path / "cut.gif"
    cut.write_bytes(data[: len(data) * 6 // 10])
    kept = []
    with pytest.raises(SourceError) as info, VideoFileSource(cut) as src:
        while (f := src.read()) is not None:
            kept.append(f)
    assert 5 <= len(kept) < 12
    assert str(info.value) == (f"{cut} ends after {len(kept)} frames, before its closing block (the last picture is "
                               "cut): the file is truncated; the frames before were kept")


@pytest.mark.parametrize("name", ["10:30.mp4", "2026-12-07T10:30:00.mp4", "pipe:0", "file:x.mp4", "http:y.mp4"])
def test_a_file_name_that_looks_like_an_address_is_the_file(tmp_path, monkeypatch, name):
    """FFmpeg reads a bare name that starts like an address as one: `10:30.mp4` was 'Protocol not
    found', `pipe:0` read standard input, `file:x.mp4` read x.mp4. Every name is the file itself,
    read and written (its sound too)."""
    from livebokeh.sinks import VideoWriter
    from tests.media import av_clip, video_times

    monkeypatch.chdir(tmp_path)
    av_clip(tmp_path / "clip.mp4", seconds=1.0)
    (tmp_path / name).write_bytes((tmp_path / "clip.mp4").read_bytes())
    av_clip(tmp_path / "x.mp4", seconds=0.5)  # what `file:x.mp4` named before
    out = Path(name.replace(".mp4", "_out.mp4") if name.endswith(".mp4") else name + "_out.mp4")  # (a colon too)
    with VideoFileSource(Path(name)) as src:
        w = VideoWriter(out, src.info.width, src.info.height, src.info.fps, audio_from=Path(name), overwrite=False)
        n = 0
        while (f := src.read()) is not None:
            w.write(f.image, f.time_s)
            n += 1
    assert w.close() == out and n == 30
    assert len(video_times(tmp_path / out)) == 30


def test_a_name_through_a_linked_folder_and_dotdot_is_the_file_the_system_gives(tmp_path, monkeypatch):
    """`lnk/../x.mp4`, lnk a link to another folder: the system takes the link first (the target's
    parent); FFmpeg was given the name with `..` taken away as text, and read or wrote another file
    (a result left hidden elsewhere, 'wrote' said of an empty name)."""
    from livebokeh.sinks import VideoWriter
    from tests.media import av_clip, video_times

    (tmp_path / "real" / "sub").mkdir(parents=True)
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "lnk").symlink_to(tmp_path / "real" / "sub")
    monkeypatch.chdir(tmp_path / "w")
    av_clip(tmp_path / "real" / "in.mp4", seconds=1.0)  # what lnk/../in.mp4 names
    av_clip(tmp_path / "w" / "in.mp4", seconds=0.5)  # what the text without `..` would name
    with VideoFileSource(Path("lnk/../in.mp4")) as src:
        w = VideoWriter(Path("lnk/../out.mp4"), src.info.width, src.info.height, src.info.fps, overwrite=False)
        n = 0
        while (f := src.read()) is not None:
            w.write(f.image, f.time_s)
            n += 1
    w.close()
    assert n == 30 and len(video_times(tmp_path / "real" / "out.mp4")) == 30
    assert not (tmp_path / "w" / "out.mp4").exists() and not list((tmp_path / "real").glob(".*"))


def test_missing_file(tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        VideoFileSource(tmp_path / "nope.mp4").open()


def test_source_for_input_picks_by_file_ending(tmp_path):
    assert isinstance(source_for_input(tmp_path / "a.JPG"), ImageSource)
    assert isinstance(source_for_input(tmp_path / "a.mkv"), VideoFileSource)


def test_close_twice_is_safe(clip):
    src = VideoFileSource(clip)
    src.open()
    src.close()
    src.close()
    assert src.read() is None


def test_phone_rotation_is_applied(tmp_path):
    """A clip whose track matrix says 'turn 90 degrees clockwise' (as phones record portrait)."""
    import struct

    import av
    import numpy as np

    path = tmp_path / "rot.mp4"
    c = av.open(str(path), "w")
    s = c.add_stream("libx264", rate=30)
    s.width, s.height, s.pix_fmt = 64, 32, "yuv420p"
    for i in range(5):
        img = np.zeros((32, 64, 3), np.uint8)
        img[:, :16] = 255  # a white stripe on the left of the stored picture
        f = av.VideoFrame.from_ndarray(img, format="bgr24")
        f.pts = i
        for p in s.encode(f):
            c.mux(p)
    for p in s.encode(None):
        c.mux(p)
    c.close()
    data = bytearray(path.read_bytes())
    matrix = data.find(b"tkhd") - 4 + 48
    data[matrix : matrix + 36] = struct.pack(">9i", 0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000)
    path.write_bytes(bytes(data))
    with VideoFileSource(path) as src:
        assert (src.info.width, src.info.height) == (32, 64)  # upright: portrait
        frame = src.read()
    assert frame.image.shape == (64, 32, 3)
    assert frame.image[:8].mean() > 200 and frame.image[-8:].mean() < 20  # left edge turned to the top


def _yuv_frame(colorspace: int, color_range: int):
    import av
    import cv2

    rng = np.random.default_rng(7)
    image = cv2.GaussianBlur(rng.integers(0, 256, (48, 64, 3), np.uint8), (5, 5), 0)
    image[:8, :8] = (0, 0, 255)  # a saturated patch, where the colour matrices differ most
    frame = av.VideoFrame.from_ndarray(image, format="bgr24").reformat(format="yuv420p")
    frame.colorspace, frame.color_range = colorspace, color_range
    return frame


@pytest.mark.parametrize("colorspace", [2, 5, 6])
def test_bt601_frames_take_opencvs_conversion_within_rounding_of_swscale(colorspace):
    from livebokeh.sources.video import to_bgr

    frame = _yuv_frame(colorspace, 1)
    ours, swscale = to_bgr(frame).astype(int), frame.to_ndarray(format="bgr24").astype(int)
    assert ours.shape == (48, 64, 3)
    assert np.abs(ours - swscale).max() <= 3 and np.abs(ours - swscale).mean() < 1.5


@pytest.mark.parametrize(("colorspace", "color_range"), [(1, 1), (6, 2)])  # BT.709; full-range levels
def test_other_colour_tags_go_through_swscale(colorspace, color_range):
    from livebokeh.sources.video import to_bgr

    frame = _yuv_frame(colorspace, color_range)
    assert np.array_equal(to_bgr(frame), frame.to_ndarray(format="bgr24"))
    # the tags matter: read as BT.601 video range, the same bytes give other colours
    assert np.abs(to_bgr(_yuv_frame(6, 1)).astype(int) - to_bgr(frame).astype(int)).max() > 8


def test_real_clip_frames_match_swscale(clip):
    import av

    from livebokeh.sources.video import to_bgr

    with av.open(str(clip)) as container:
        frame = next(container.decode(video=0))
        assert np.abs(to_bgr(frame).astype(int) - frame.to_ndarray(format="bgr24").astype(int)).max() <= 3


def _h264_clip(path, frames=60, fps=30, options=None):
    """An H.264 MP4 with B-frames whose frame ``i`` is grey level ``4 * i``."""
    import av

    with av.open(str(path), "w", options=options or {}) as c:
        s = c.add_stream("libx264", rate=fps, options={"g": "30", "bf": "2"})
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for i in range(frames):
            f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 4 * i, np.uint8), format="bgr24")
            f.pts = i
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return path


def _edit_list_cut(tmp_path, hide=12, faststart=False):
    """What ``ffmpeg -ss T -c copy`` makes of a 60-frame clip: every packet from the keyframe before
    the cut, shifted so the first ``hide`` frames lie before 0, which the MP4 muxer hides behind
    an edit list (``elst`` media time > 0; the demuxer flags their packets 'discard')."""
    import av

    full = _h264_clip(tmp_path / "full.mp4")
    cut = tmp_path / "cut.mp4"
    with av.open(str(full)) as i, av.open(str(cut), "w", options={"movflags": "+faststart"} if faststart else {}) as o:
        ins = i.streams.video[0]
        out = o.add_stream_from_template(ins)
        shift = round(hide / ins.average_rate / ins.time_base)
        for p in i.demux(ins):
            if p.dts is None:
                continue
            p.pts, p.dts = p.pts - shift, p.dts - shift
            p.stream = out
            o.mux(p)
    return cut


def _header_and_hidden(path):
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return s.frames, sum(1 for p in c.demux(s) if p.size and p.is_discard)


def test_an_edit_list_cut_mp4_is_read_whole_and_not_truncated(tmp_path):
    cut = _edit_list_cut(tmp_path, hide=12)
    assert _header_and_hidden(cut) == (60, 12)  # the header counts the 12 hidden frames
    with VideoFileSource(cut) as src:
        count = src.info.frame_count
        frames = []
        while (f := src.read()) is not None:
            frames.append(f)
    assert count == len(frames) == 48
    assert abs(float(frames[0].image.mean()) - 4 * 12) <= 3  # the first frame shown is the cut's
    assert frames[0].time_s == 0


def test_an_edit_list_cut_loops_as_a_background(tmp_path):
    from livebokeh.render.background import open_background

    background = open_background(str(_edit_list_cut(tmp_path, hide=12)))
    try:
        plates = [background.plate((32, 24)) for _ in range(48 * 2 + 5)]  # past the end twice
    finally:
        background.close()
    assert all(p.shape == (24, 32, 3) for p in plates)
    assert abs(float(plates[48].mean()) - float(plates[0].mean())) <= 2  # from the cut's start again


def test_a_truncated_edit_list_cut_is_still_caught(tmp_path):
    cut = _edit_list_cut(tmp_path, hide=12, faststart=True)  # index first: a cut-off copy still opens
    data = cut.read_bytes()
    short = tmp_path / "short.mp4"
    short.write_bytes(data[: len(data) * 4 // 5])
    with pytest.raises(SourceError, match="truncated") as info, VideoFileSource(short) as src:
        while src.read() is not None:
            pass
    assert "\n" not in str(info.value)


def test_a_matroska_file_starting_late_is_not_truncated(tmp_path):
    """Matroska's duration is its end time: a clip whose first frame is at 0.5 s is complete."""
    from livebokeh.sinks import VideoWriter

    path = tmp_path / "late.mkv"
    w = VideoWriter(path, 64, 48, Fraction(30))
    for i in range(30):
        w.write(np.full((48, 64, 3), 4 * i, np.uint8), 0.5 + i / 30)
    w.close()
    with VideoFileSource(path) as src:
        n = 0
        while src.read() is not None:
            n += 1
    assert n == 30


def _with_cover(path, video_frames=0):
    """A file with AAC sound and cover art (a PNG stream marked 'attached picture'), and
    ``video_frames`` frames of real H.264 video when > 0."""
    import av

    with av.open(str(path), "w", format="mp4") as c:
        cover = c.add_stream("png")
        cover.width, cover.height, cover.pix_fmt = 32, 32, "rgb24"
        cover.disposition = av.stream.Disposition.attached_pic
        video = None
        if video_frames:
            video = c.add_stream("libx264", rate=30)
            video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = c.add_stream("aac", rate=48000)
        audio.layout = "stereo"
        for p in cover.encode(av.VideoFrame.from_ndarray(np.full((32, 32, 3), 200, np.uint8), format="rgb24")):
            c.mux(p)
        for p in cover.encode(None):
            c.mux(p)
        for i in range(video_frames):
            f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 4 * i, np.uint8), format="bgr24")
            f.pts = i
            for p in video.encode(f):
                c.mux(p)
        if video is not None:
            for p in video.encode(None):
                c.mux(p)
        _mux_silence(c, audio, 47, 1024, 48000)  # 1 s of sound
    return path


def _mux_silence(container, stream, count, samples, rate):
    """``count`` frames of stereo silence of ``samples`` each into ``stream``, then its last packets."""
    import av

    for n in range(count):
        f = av.AudioFrame.from_ndarray(np.zeros((2, samples), np.float32), format="fltp", layout="stereo")
        f.sample_rate, f.pts = rate, n * samples
        for p in stream.encode(f):
            container.mux(p)
    for p in stream.encode(None):
        container.mux(p)


@pytest.mark.parametrize("name", ["song.m4a", "song.mp3"])
def test_a_song_with_cover_art_has_no_video(tmp_path, name):
    import av

    if name.endswith(".mp3"):  # MP3 keeps its cover in the ID3 tag
        path = tmp_path / name
        with av.open(str(path), "w") as c:
            audio = c.add_stream("libmp3lame", rate=44100)
            audio.layout = "stereo"
            cover = c.add_stream("png")
            cover.width, cover.height, cover.pix_fmt = 32, 32, "rgb24"
            cover.disposition = av.stream.Disposition.attached_pic
            for p in cover.encode(av.VideoFrame.from_ndarray(np.full((32, 32, 3), 200, np.uint8), format="rgb24")):
                c.mux(p)
            for p in cover.encode(None):
                c.mux(p)
            _mux_silence(c, audio, 40, 1152, 44100)
    else:
        path = _with_cover(tmp_path / name)
    with av.open(str(path)) as c:  # the cover reads as a video stream
        assert [bool(s.disposition & av.stream.Disposition.attached_pic) for s in c.streams.video] == [True]
    with pytest.raises(SourceError, match=r"has no video stream; pass a video or image file$"):
        VideoFileSource(path).open()


def test_cover_art_beside_a_video_is_ignored(tmp_path):
    path = _with_cover(tmp_path / "clip.mp4", video_frames=30)
    with VideoFileSource(path) as src:
        info = src.info
        n = 0
        while src.read() is not None:
            n += 1
    assert (info.width, info.height, info.frame_count, n) == (64, 48, 30, 30)


def test_the_first_real_video_stream_is_picked():
    from types import SimpleNamespace

    import av

    from livebokeh.sources.video import video_stream

    cover = SimpleNamespace(disposition=av.stream.Disposition.attached_pic)
    first, second = SimpleNamespace(disposition=av.stream.Disposition.default), SimpleNamespace(disposition=0)
    container = SimpleNamespace(streams=SimpleNamespace(video=[cover, first, second]))
    assert video_stream(container) is first
    assert video_stream(SimpleNamespace(streams=SimpleNamespace(video=[cover]))) is None


def _open_in_thread(path):
    """VideoFileSource(path).open() in a thread, so that a blocking open fails the test instead of hanging it."""
    import threading

    outcome: list = []

    def run():
        try:
            VideoFileSource(path).open()
            outcome.append(None)
        except Exception as err:  # noqa: BLE001 - handed to the test
            outcome.append(err)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(60)  # a hang guard, not a speed check: a FIFO open blocks for ever
    assert outcome, f"opening {path} blocked"
    return outcome[0]


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_not_a_regular_file_and_does_not_block(tmp_path):
    import os

    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    err = _open_in_thread(fifo)
    assert isinstance(err, SourceError)
    assert "is not a regular file" in str(err) and "does not exist" not in str(err) and "\n" not in str(err)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero here")
def test_a_device_is_not_a_regular_file():
    err = _open_in_thread(Path("/dev/zero"))
    assert isinstance(err, SourceError)
    assert "/dev/zero is not a regular file" in str(err) and "does not exist" not in str(err)


def test_a_folder_is_not_a_video(tmp_path):
    with pytest.raises(SourceError, match="is a folder"):
        VideoFileSource(tmp_path).open()


@pytest.mark.parametrize(("codec", "fmt"), [("libx264", "h264"), ("libx265", "hevc")])
@pytest.mark.parametrize("fps", [30, 24])
def test_a_raw_annex_b_stream_keeps_its_own_frame_rate(tmp_path, codec, fmt, fps):
    """A raw H.264/HEVC stream has no timestamps and its demuxer says 25 fps: a 30 fps stream
    was written at 25 (7.2 s instead of 6). Its own rate (the SPS timing, as FFmpeg guesses it)."""
    import av

    from livebokeh.sinks import VideoWriter

    raw = tmp_path / f"cat.{fmt}"
    with av.open(str(raw), "w", format=fmt) as c:
        s = c.add_stream(codec, rate=fps, options={"x265-params": "log-level=none"} if codec == "libx265" else {})
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for i in range(2 * fps):
            f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 2, np.uint8), format="bgr24")
            f.pts = i
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    with VideoFileSource(raw) as src:
        assert src.info.fps == fps
        out = tmp_path / "o.mp4"
        w = VideoWriter(out, 64, 48, src.info.fps)
        while (f := src.read()) is not None:
            w.write(f.image, f.time_s)
    assert w.close() == out
    with av.open(str(out)) as c:
        times = [float(f.time) for f in c.decode(video=0)]
    assert len(times) == 2 * fps and times[-1] - times[0] == pytest.approx((2 * fps - 1) / fps, abs=1e-3)


def _with_cover_track(path, video_frames=30, cover_size=(64, 64)):
    """A Matroska file as ``ffmpeg -i clip -i cover.jpg -map 1 -map 0`` writes it: first a
    one-picture MJPEG track (Matroska keeps no 'attached picture' mark on it), then
    ``video_frames`` frames of H.264 at 30 fps (64x48), then a second of sound."""
    import av

    with av.open(str(path), "w", format="matroska") as c:
        cover = c.add_stream("mjpeg", rate=25)
        cover.width, cover.height, cover.pix_fmt = *cover_size, "yuvj420p"
        video = c.add_stream("libx264", rate=30)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = c.add_stream("aac", rate=48000)
        audio.layout = "stereo"
        still = av.VideoFrame.from_ndarray(np.full((cover_size[1], cover_size[0], 3), 200, np.uint8), format="bgr24")
        still.pts = 0
        for p in cover.encode(still):
            c.mux(p)
        for p in cover.encode(None):
            c.mux(p)
        for i in range(video_frames):
            f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 4 * i, np.uint8), format="bgr24")
            f.pts = i
            for p in video.encode(f):
                c.mux(p)
        for p in video.encode(None):
            c.mux(p)
        _mux_silence(c, audio, 47, 1024, 48000)
    return path


@pytest.mark.parametrize("cover_size", [(64, 64), (32, 32)])
def test_a_one_picture_track_before_the_video_is_passed_over(tmp_path, cover_size):
    path = _with_cover_track(tmp_path / "cov.mkv", cover_size=cover_size)
    import av

    with av.open(str(path)) as c:  # the cover is an ordinary first video stream
        assert [s.codec_context.name for s in c.streams.video] == ["mjpeg", "h264"]
        assert not any(s.disposition & av.stream.Disposition.attached_pic for s in c.streams.video)
    with VideoFileSource(path) as src:
        info = src.info
        n = 0
        while src.read() is not None:
            n += 1
    assert (info.width, info.height, n) == (64, 48, 30)
