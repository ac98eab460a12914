"""Decoding: one timeline, every decodable frame, one picture size (livebokeh.sources.decoding)."""

from __future__ import annotations

import logging
import re
from fractions import Fraction

import numpy as np
import pytest

from livebokeh.errors import SourceError
from livebokeh.sources import VideoFileSource
from livebokeh.sources.decoding import Timeline, fit_picture
from tests.media import av_clip


def _read_all(path):
    """(frames, the error that ended the read or None)."""
    frames, error = [], None
    try:
        with VideoFileSource(path) as src:
            while (f := src.read()) is not None:
                frames.append(f)
    except SourceError as err:
        error = err
    return frames, error


# -- the timeline ------------------------------------------------------------------------------


class _Stream:
    def __init__(self, index, kind="video", start=0, time_base=Fraction(1, 1000), rate=30):
        self.index, self.type, self.start_time, self.time_base = index, kind, start, time_base
        self.average_rate = self.guessed_rate = Fraction(rate) if kind == "video" else None
        self.codec_context = type("cc", (), {"frame_size": 1024, "sample_rate": 48000})()


class _Packet:
    def __init__(self, stream, pts, dts="same", duration=0):
        self.stream, self.time_base = stream, stream.time_base
        self.pts, self.dts, self.duration = pts, pts if dts == "same" else dts, duration


class _Container:
    def __init__(self, flags=0):
        self.format = type("fmt", (), {"flags": flags})()


def test_the_origin_is_the_earliest_start_of_picture_and_sound():
    video, audio = _Stream(0, start=1000), _Stream(1, "audio", start=0)
    line = Timeline(_Container(), [video, audio])
    assert line.origin == 0 and line.seconds(1000, Fraction(1, 1000)) == 1.0  # the picture starts 1 s in
    assert Timeline(_Container(), [_Stream(0, start=500), _Stream(1, "audio", start=700)]).origin == Fraction(1, 2)


@pytest.mark.parametrize("flags", [0, 0x0200])  # any format; MPEG-TS (ts_discont)
def test_a_jump_back_continues_the_timeline_for_every_stream(flags):
    video, audio = _Stream(0), _Stream(1, "audio")
    line = Timeline(_Container(flags), [video, audio])
    placed = []
    for part in range(2):  # the same 2 s twice, as when two recordings are joined
        for k in range(60):
            for p in (_Packet(video, k * 1000 // 30, duration=33), _Packet(audio, k * 1000 // 30, duration=33)):
                line.place(p)
                placed.append((p.stream.type, p.pts))
    assert line.jumps == 1
    for kind in ("video", "audio"):
        pts = [t for k, t in placed if k == kind]
        assert all(b > a for a, b in zip(pts, pts[1:]))  # never back
        assert abs(pts[60] - pts[59] - 33) <= 1  # the second part goes on a frame after the first


def test_b_frames_presentation_order_is_no_jump():
    """Matroska gives B-frames' presentation times (going back within the reorder) and decoding
    times only later: no discontinuity there."""
    video = _Stream(0)
    line = Timeline(_Container(), [video])
    for pts, dts in [(0, None), (133, None), (67, 0), (33, 33), (100, 67), (267, 100), (200, 133), (167, 167)]:
        p = _Packet(video, pts, dts, duration=33)
        line.place(p)
        assert p.pts == pts
    assert line.jumps == 0


def test_forward_jumps_count_only_in_formats_whose_timestamps_jump():
    """A 20 s gap is a recording paused in MP4/MKV (kept), a discontinuity in MPEG-TS (closed)."""
    for flags, jumps in ((0, 0), (0x0200, 1)):
        video = _Stream(0)
        line = Timeline(_Container(flags), [video])
        for t in (0, 33, 66, 20066, 20099):
            line.place(_Packet(video, t, duration=33))
        assert line.jumps == jumps


# -- every decodable frame ---------------------------------------------------------------------


def _complete_packets(path) -> int:
    """Video packets of ``path`` whose data is whole (each one frame): what a decoder that is
    flushed at the end can give, as FFmpeg's own command does."""
    import av

    n = 0
    with av.open(str(path)) as c:
        try:
            for p in c.demux(c.streams.video[0]):
                n += bool(p.size and not p.is_corrupt and not p.is_discard)
        except av.FFmpegError:
            pass
    return n


@pytest.mark.parametrize("container", [".mp4", ".mkv", ".ts"])
def test_a_truncated_file_keeps_every_decodable_frame(tmp_path, container):
    """Cut at many places: every frame whose data is whole is read (with B-frames the decoder
    holds two when the file ends; they were lost), then the truncation is said."""
    options = {"movflags": "+faststart"} if container == ".mp4" else {}  # an MP4's index first: a cut one opens
    full = av_clip(tmp_path / f"full{container}", seconds=4, size=(96, 64), pattern=True, audio_start=0.0,
                   options=options)
    data = full.read_bytes()
    checked = 0
    for share in np.linspace(0.3, 0.97, 12):
        cut = tmp_path / f"cut{container}"
        cut.write_bytes(data[: int(len(data) * share)])
        whole = _complete_packets(cut)
        if whole == 0:
            continue
        frames, error = _read_all(cut)
        assert len(frames) == whole, share
        if container == ".mp4":  # the header says how long it should be
            assert error is not None and "truncated" in str(error) and "\n" not in str(error)
        checked += 1
    assert checked >= 8


def test_a_corrupt_packet_midway_keeps_every_frame_before_it(tmp_path):
    """Bytes overwritten in the middle of the file: the frames before the damage are read,
    the decoder's held ones too, then one line names the damage."""
    path = av_clip(tmp_path / "in.mkv", seconds=4, size=(96, 64), pattern=True, audio_start=None)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 400] = bytes(400)
    path.write_bytes(bytes(data))
    frames, error = _read_all(path)
    assert 40 <= len(frames) <= 120
    assert [f.index for f in frames] == list(range(len(frames)))
    if error is not None:
        assert "\n" not in str(error) and "the frames before were kept" in str(error)


def damage_packets(path, indexes):
    """Overwrite the 4-byte NAL length at the start of video packets ``indexes`` (in file
    order) of an MP4 with nonsense: the H.264 decoder refuses those packets ('Invalid data'),
    as it refused a packet of a clip with 200 random bytes changed. The file's size, index and
    every other packet stay as they were."""
    import av

    with av.open(str(path)) as c:
        where = [p.pos for p in c.demux(c.streams.video[0]) if p.size]
    data = bytearray(path.read_bytes())
    for i in indexes:
        data[where[i]:where[i] + 4] = b"\xff\xff\xff\xf0"
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("damaged", [[40], [30, 31, 60]])
def test_a_damaged_packet_midway_is_passed_over_and_every_frame_after_it_kept(tmp_path, caplog, damaged):
    """A packet the decoder refuses ended the read there, called 'truncated' (25 of 90 frames);
    FFmpeg decodes on. Every other frame is read, in order, with one warning naming the damage."""
    path = damage_packets(av_clip(tmp_path / "in.mp4", seconds=3, size=(96, 64), pattern=True, audio_start=None),
                          damaged)
    with caplog.at_level(logging.WARNING):
        frames, error = _read_all(path)
    assert error is None
    assert 90 - 2 * len(damaged) <= len(frames) <= 90 - len(damaged)  # a lost packet may take its B-frame's place
    assert [f.index for f in frames] == list(range(len(frames)))
    times = [f.time_s for f in frames]
    assert times == sorted(times) and times[-1] == pytest.approx(89 / 30, abs=1e-3)  # on to the end
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "corrupt" in warnings[0] and "truncated" not in warnings[0], warnings
    assert str(path) in warnings[0] and "\n" not in warnings[0]


def test_a_looped_damaged_file_is_said_once(tmp_path, caplog):
    """A background or a --loop camera opens its file again at each loop: one warning in all."""
    path = damage_packets(av_clip(tmp_path / "in.mp4", seconds=1, size=(96, 64), pattern=True, audio_start=None),
                          [10])
    source = VideoFileSource(path)
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            source.open()
            counted = 0
            while source.read() is not None:
                counted += 1
            source.close()
            assert counted >= 28
    assert sum("corrupt" in r.getMessage() for r in caplog.records) == 1


def test_a_damaged_file_that_ends_early_is_called_corrupt_not_truncated(tmp_path):
    """A clip with 200 random bytes changed: a packet refused, and its damaged index gives 65 of
    120 packets; FFmpeg decodes the same 64 frames. It was called 'truncated'."""
    import av

    full = av_clip(tmp_path / "in.mp4", seconds=3, size=(96, 64), pattern=True, audio_start=None,
                   options={"movflags": "+faststart"})  # the index first: a shortened file still opens
    with av.open(str(full)) as c:
        ends = [p.pos + p.size for p in c.demux(c.streams.video[0]) if p.size]
    path = damage_packets(full, [20])
    path.write_bytes(path.read_bytes()[: ends[59]])  # the packets after the 60th gone, as a damaged index loses them
    frames, error = _read_all(path)
    assert 57 <= len(frames) <= 59 and error is not None
    text = str(error)
    assert "corrupt" in text and "truncated" not in text and "\n" not in text
    assert re.search(r"a packet after frame 1[5-9] could not be decoded", text)  # in decoding order, B-frames held
    assert f"ends after {len(frames)} frames" in text


def test_a_file_whose_every_packet_is_damaged_is_one_line(tmp_path):
    path = damage_packets(av_clip(tmp_path / "in.mp4", seconds=0.5, size=(96, 64), audio_start=None), range(15))
    frames, error = _read_all(path)
    assert frames == [] and error is not None
    assert "cannot decode" in str(error) and "corrupt" in str(error) and "\n" not in str(error)


# -- one picture size --------------------------------------------------------------------------


def _raw_h264(path, size, frames, level):
    import av

    with av.open(str(path), "w", format="h264") as c:
        s = c.add_stream("libx264", rate=30, options={"bf": "2"})
        s.width, s.height, s.pix_fmt = *size, "yuv420p"
        for i in range(frames):
            f = av.VideoFrame.from_ndarray(np.full((size[1], size[0], 3), level, np.uint8), format="bgr24")
            f.pts = i
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return path


@pytest.mark.parametrize(("first", "second"), [((240, 240), (320, 180)), ((320, 180), (240, 240)),
                                                ((64, 48), (128, 96)), ((128, 96), (34, 18))])
def test_a_stream_that_changes_size_keeps_every_frame_at_the_first_size(tmp_path, caplog, first, second):
    """Joined H.264 of two sizes stopped at the join ('frame 320x180 differs from the video's
    240x240'); now every frame comes, the later ones fitted into the first size (aspect kept,
    black bars), and it is said once."""
    a = _raw_h264(tmp_path / "a.h264", first, 20, 200)
    b = _raw_h264(tmp_path / "b.h264", second, 25, 200)
    joined = tmp_path / "joined.h264"
    joined.write_bytes(a.read_bytes() + b.read_bytes())
    with caplog.at_level(logging.WARNING):
        frames, error = _read_all(joined)
    assert error is None
    assert len(frames) == 45
    assert all(f.image.shape == (first[1], first[0], 3) for f in frames)
    said = [r.getMessage() for r in caplog.records if "changes size" in r.getMessage()]
    assert len(said) == 1 and f"{second[0]}x{second[1]}" in said[0]
    last = frames[-1].image.astype(int)
    s = min(first[0] / second[0], first[1] / second[1])
    inner_w, inner_h = round(second[0] * s), round(second[1] * s)
    x0, y0 = (first[0] - inner_w) // 2, (first[1] - inner_h) // 2
    assert abs(last[y0 + inner_h // 2, x0 + inner_w // 2].mean() - 200) < 12  # the picture, whole
    if x0 > 1:
        assert last[:, : x0 - 1].max() < 20  # black bars at the sides
    if y0 > 1:
        assert last[: y0 - 1].max() < 20  # or above and below


def test_joined_mpeg_ts_of_two_sizes_keeps_every_frame(tmp_path):
    parts = [av_clip(tmp_path / "a.ts", seconds=2, size=(240, 240), audio_start=0.0),
             av_clip(tmp_path / "b.ts", seconds=3, size=(320, 180), audio_start=0.0)]
    joined = tmp_path / "joined.ts"
    joined.write_bytes(b"".join(p.read_bytes() for p in parts))
    frames, error = _read_all(joined)
    assert error is None and len(frames) == 150
    assert {f.image.shape for f in frames} == {(240, 240, 3)}
    times = [f.time_s for f in frames]
    assert all(b > a for a, b in zip(times, times[1:]))


@pytest.mark.parametrize(("image", "size"), [((180, 320), (240, 240)), ((240, 240), (320, 180)),
                                             ((17, 33), (128, 96)), ((1, 1), (4, 2)), ((1000, 16), (16, 16))])
def test_fit_picture_keeps_the_aspect_inside_the_size(image, size):
    img = np.full((*image, 3), 150, np.uint8)
    out = fit_picture(img, size)
    assert out.shape == (size[1], size[0], 3) and out.dtype == np.uint8
    filled = out.max(axis=2) > 0
    rows, cols = np.nonzero(filled.any(axis=1))[0], np.nonzero(filled.any(axis=0))[0]
    h, w = np.ptp(rows) + 1, np.ptp(cols) + 1
    assert (w == size[0] or h == size[1])  # touches two sides
    assert abs(w / h - image[1] / image[0]) <= max(1 / h, 1 / w) * (image[1] / image[0]) + 1 / min(h, w) + 0.05


def test_fit_picture_of_the_right_size_is_the_picture():
    img = np.zeros((4, 6, 3), np.uint8)
    assert fit_picture(img, (6, 4)) is img


def test_an_ordinary_clip_reads_as_before(tmp_path):
    """Nothing changes for a clip without any of this: every frame, times from 0 a frame apart."""
    frames, error = _read_all(av_clip(tmp_path / "in.mp4", seconds=2, audio_start=0.0))
    assert error is None and len(frames) == 60
    assert frames[0].time_s == 0 and abs(frames[-1].time_s - 59 / 30) < 1e-3


def test_a_video_that_starts_after_its_sound_keeps_its_start(tmp_path):
    frames, error = _read_all(av_clip(tmp_path / "in.mkv", video_start=1.0, audio_start=0.0))
    assert error is None and len(frames) == 90
    assert abs(frames[0].time_s - 1.0) < 1e-3  # on the file's timeline, whose 0 is the sound's start


def test_a_vp9_webm_that_changes_size_at_a_keyframe_keeps_every_frame(tmp_path):
    """WebRTC recordings change size midway: VP9 keyframes carry the new size."""
    import av

    def packets(size, n, start):
        enc = av.CodecContext.create("libvpx-vp9", "w")
        enc.width, enc.height, enc.pix_fmt = *size, "yuv420p"
        enc.time_base, enc.framerate = Fraction(1, 30), 30
        out = []
        for i in range(n):
            f = av.VideoFrame.from_ndarray(np.full((size[1], size[0], 3), 120, np.uint8), format="bgr24")
            f.pts, f.time_base = start + i, Fraction(1, 30)
            out += enc.encode(f)
        return out + enc.encode(None)

    path = tmp_path / "resized.webm"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libvpx-vp9", rate=30)
        s.width, s.height, s.pix_fmt = 96, 96, "yuv420p"
        for p in packets((96, 96), 20, 0) + packets((128, 72), 25, 20):
            p.stream, p.time_base = s, Fraction(1, 30)
            c.mux(p)
    frames, error = _read_all(path)
    assert error is None and len(frames) == 45 and {f.image.shape for f in frames} == {(96, 96, 3)}
    assert frames[-1].image[48, 48].mean() > 100 and frames[-1].image[5, 48].max() < 20  # fitted, bars above


def test_a_forward_jump_in_mpeg_ts_is_closed_and_not_called_truncated(tmp_path):
    """A second part that starts 30 s later (a TS discontinuity): one timeline, every frame, and
    the header's 32 s end is not taken for a cut-short file."""
    parts = [av_clip(tmp_path / "a.ts", seconds=2, audio_start=0.0),
             av_clip(tmp_path / "b.ts", seconds=2, video_start=30.0, audio_start=30.0)]
    joined = tmp_path / "jump.ts"
    joined.write_bytes(b"".join(p.read_bytes() for p in parts))
    frames, error = _read_all(joined)
    assert error is None and len(frames) == 120
    steps = np.diff([f.time_s for f in frames])
    assert (steps > 0).all() and steps.max() < 2.5 / 30


# -- what a file's structure says of its end (round 13) -----------------------------------------


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".avi"])
def test_a_whole_file_is_never_called_truncated_by_its_header_and_a_cut_one_always_is(tmp_path, monkeypatch, caplog,
                                                                                      suffix):
    """A valid MKV whose last frame lasts 3 s (its DURATION tag past the last frame's end) and an AVI
    whose header counts 10 frames too many were called truncated; a faststart MP4 missing its last
    100 bytes went through as whole (rc 0, a 'corrupt' warning). The structure (MP4 boxes, the
    Matroska Segment, AVI's RIFF chunks) now decides: a whole one gave every packet, whatever its
    header's count or end says; a cut one is truncated, in one line without the damage warning."""
    from livebokeh.sources import video

    path = av_clip(tmp_path / f"in{suffix}", seconds=2, audio_start=None, pattern=True,
                   options={"movflags": "+faststart"} if suffix == ".mp4" else None)
    whole, error = _read_all(path)
    assert error is None
    monkeypatch.setattr(video, "expected_end", lambda container, stream: (100.0, True))  # a header that says more
    monkeypatch.setattr(video, "frame_count", lambda p, container, stream, **kw: len(whole) + 10)
    frames, error = _read_all(path)
    assert error is None and len(frames) == len(whole)
    monkeypatch.undo()
    path.write_bytes(path.read_bytes()[:-100])
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        frames, error = _read_all(path)
    assert error is not None and "inside the data its structure declares: the file is truncated" in str(error)
    assert len(frames) >= len(whole) - 3 and not [r for r in caplog.records if "corrupt" in r.getMessage()]


def test_an_mp4_cut_before_its_index_is_said_to_lack_it(tmp_path):
    """An MP4 with its index (moov) at the end, cut: 'cannot read ... as a video; is it a video file?'."""
    path = av_clip(tmp_path / "rec.mp4", seconds=2, audio_start=None, pattern=True)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 4 // 10])
    frames, error = _read_all(path)
    assert frames == [] and error is not None
    assert "has no index (its moov box): the recording was cut off" in str(error) and "\n" not in str(error)


def _y4m(path, frames: int = 12, size: tuple[int, int] = (33, 17)):
    import av

    with av.open(str(path), "w", format="yuv4mpegpipe") as c:
        s = c.add_stream("rawvideo", rate=25)
        s.width, s.height, s.pix_fmt = *size, "yuv420p"
        for i in range(frames):
            f = av.VideoFrame.from_ndarray(np.full((size[1], size[0], 3), 10 * i, np.uint8), format="rgb24")
            for p in s.encode(f.reformat(format="yuv420p")):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return path


@pytest.mark.parametrize("kind", ["y4m", "ts"])
def test_a_y4m_or_ts_cut_inside_a_picture_or_packet_is_truncated(tmp_path, kind):
    """A Y4M cut inside its last picture and an MPEG-TS cut inside a 188-byte packet went through as
    whole (rc 0, no line), though their size proves the cut; whole ones still do."""
    path = _y4m(tmp_path / "a.y4m") if kind == "y4m" else av_clip(tmp_path / "a.ts", seconds=2, audio_start=None)
    whole, error = _read_all(path)
    assert error is None
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])
    frames, error = _read_all(path)
    assert error is not None and "the file is truncated" in str(error) and len(frames) >= len(whole) - 3


@pytest.mark.parametrize("tail", [b"TAG" + b"x" * 125, b"ID3\x03\x00\x00\x00\x00\x01\x0a" + b"\x00" * 138,
                                  b"\xff" * 512, bytes(range(7, 207))])
@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".mkv", ".ts", ".avi"])
def test_bytes_after_a_whole_files_last_part_are_no_cut(tmp_path, suffix, tail):
    """An ID3 tag, padding or junk after a whole file's last box (chunk, element, packet) was read
    as a box running past the end: 'truncated', rc 1, every frame there. Only a part of the
    file's own kind that runs past the end is a cut."""
    path = av_clip(tmp_path / f"in{suffix}", seconds=1, audio_start=None)
    whole, error = _read_all(path)
    assert error is None
    path.write_bytes(path.read_bytes() + tail)
    frames, error = _read_all(path)
    assert error is None and len(frames) == len(whole)


class _Pipe:
    """A file object that cannot seek: a muxer writes to it as to a pipe."""

    def __init__(self):
        import io

        self.buf = io.BytesIO()

    def write(self, data):
        return self.buf.write(data)


def _piped(fmt: str, codec: str, options: dict | None = None) -> bytes:
    """60 noisy 64x48 frames muxed as ``fmt`` to a pipe (a Segment of unknown size)."""
    import av

    pipe = _Pipe()
    with av.open(pipe, "w", format=fmt, options=options or {}) as c:
        s = c.add_stream(codec, rate=30)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for i in range(60):
            frame = av.VideoFrame.from_ndarray(np.random.default_rng(i).integers(0, 255, (48, 64, 3), np.uint8),
                                               format="rgb24")
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return pipe.buf.getvalue()


def test_a_matroska_recording_of_unknown_size_cut_inside_a_cluster_is_truncated(tmp_path):
    """A Matroska/WebM recording written to a pipe has a Segment of unknown size: a cut inside a
    Cluster went through (rc 0, no line). Its Clusters state their sizes: the last one running past
    the end is the cut. Joined files (cat a.mkv b.mkv) are walked Segment by Segment."""
    data = _piped("matroska", "libx264")
    path = tmp_path / "rec.mkv"
    path.write_bytes(data)
    assert _read_all(path)[1] is None
    path.write_bytes(data[: len(data) * 2 // 3])
    frames, error = _read_all(path)
    assert error is not None and "truncated" in str(error) and frames
    joined = av_clip(tmp_path / "a.mkv", seconds=1, audio_start=None).read_bytes() * 2
    path.write_bytes(joined)
    assert _read_all(path)[1] is None
    path.write_bytes(joined[: len(joined) * 3 // 4])  # inside the second Segment
    frames, error = _read_all(path)
    assert error is not None and "truncated" in str(error)


@pytest.mark.parametrize("pix_fmt", ["gray16le", "gray10le", "yuv420p10le"])
def test_a_deep_y4m_cut_inside_a_picture_is_truncated(tmp_path, pix_fmt):
    """`Cmono16` (mono10, mono12) was taken as 8 bits a sample: its cut went through as whole."""
    import av

    path = tmp_path / "deep.y4m"
    with av.open(str(path), "w", format="yuv4mpegpipe", options={"strict": "-1"}) as c:
        s = c.add_stream("rawvideo", rate=25)
        s.width, s.height, s.pix_fmt = 32, 24, pix_fmt
        s.codec_context.options = {"strict": "-1"}
        for i in range(10):
            f = av.VideoFrame.from_ndarray(np.full((24, 32, 3), 20 * i, np.uint8), format="rgb24")
            for p in s.encode(f.reformat(format=pix_fmt)):
                c.mux(p)
    whole, error = _read_all(path)
    assert error is None and len(whole) == 10
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 300])
    frames, error = _read_all(path)
    assert error is not None and "truncated" in str(error) and len(frames) == 9


def test_an_opendml_avi_cut_right_after_a_riff_chunk_is_told_by_its_super_index(tmp_path):
    """An OpenDML AVI (over 1 GB) cut exactly at the end of its first RIFF chunk looked whole (rc 0,
    180 frames missing): its super index (`indx`) points past the end. (Its `dmlh` count counts the
    empty chunks of dropped frames, which no decoder gives: a whole VFR file was called cut by it.)"""
    import struct

    from livebokeh.sources.video import _opendml_cut, _riff_whole

    def avi(entries):  # a RIFF 'AVI ' chunk whose header holds a super index of ``entries`` (offset, size)
        indx = struct.pack("<HBBI4s12x", 4, 0, 0, len(entries), b"00dc")
        indx += b"".join(struct.pack("<QII", off, n, 30) for off, n in entries)
        body = b"AVI " + b"LIST" + struct.pack("<I", 8 + len(indx) + 4) + b"hdrl" + b"indx" + \
            struct.pack("<I", len(indx)) + indx + b"\0" * 200
        return b"RIFF" + struct.pack("<I", len(body)) + body

    whole = avi([(100, 64)])
    path = tmp_path / "a.avi"
    path.write_bytes(whole)
    assert _riff_whole(path) is True and not _opendml_cut(path)
    path.write_bytes(avi([(100, 64), (len(whole) + 5000, 64)]))  # its second index lies in a RIFF chunk cut off
    assert _riff_whole(path) is True and _opendml_cut(path)


def test_only_a_part_that_holds_pictures_running_past_the_end_is_a_cut(tmp_path):
    """A camera's own top-level box (`Xtra`) between `moov` and `mdat` ended the MP4 walk, and a cut
    inside `mdat` after it went through (rc 0); a `uuid` box cut short after a whole file, bytes
    starting like a Matroska Void or CRC after a whole MKV and text starting with "G" after a whole
    TS were taken for cuts (rc 1, every frame there)."""
    from livebokeh.sources.video import _ebml_whole, _top_boxes, _ts_whole

    mp4 = av_clip(tmp_path / "fs.mp4", seconds=3, audio_start=None, pattern=True, options={"movflags": "+faststart"})
    data = mp4.read_bytes()
    assert _top_boxes(mp4)[0] == [b"ftyp", b"moov", b"free", b"mdat"]
    free = data.index(b"free", data.index(b"moov") + int.from_bytes(data[data.index(b"moov") - 4:][:4], "big") - 4)
    data = data[:free] + b"Xtra" + data[free + 4:]  # (the same size: no offset moves)
    mp4.write_bytes(data[: len(data) * 6 // 10])
    assert _top_boxes(mp4)[1] is False
    frames, error = _read_all(mp4)
    assert error is not None and "truncated" in str(error)
    mp4.write_bytes(data + b"\0\0\1\0uuid" + b"\7" * 40)  # a uuid box cut short after the pictures
    assert _read_all(mp4)[1] is None
    mkv = av_clip(tmp_path / "a.mkv", seconds=1, audio_start=None)
    ts = av_clip(tmp_path / "a.ts", seconds=1, audio_start=None)
    for path, tail in ((mkv, b"\xec\x88junk"), (mkv, b"\xbf\x84\0\0"), (ts, b"GIF89a and some text")):
        whole = path.read_bytes()
        path.write_bytes(whole + tail)
        assert (_ebml_whole(path) if path.suffix == ".mkv" else _ts_whole(path)) is not False
        assert _read_all(path)[1] is None, (path, tail)
        path.write_bytes(whole)


def test_a_browser_recording_with_clusters_of_unknown_size_cut_midway_is_truncated(tmp_path):
    """MediaRecorder writes a Segment and Clusters of unknown size: the walk gave up at the first
    such Cluster, and a cut midway went through (rc 0). Their blocks are walked."""
    from livebokeh.sources.video import _ebml_whole

    data = bytearray(_piped("webm", "libvpx", {"live": "1"}))
    at, clusters = 0, 0
    while (at := data.find(bytes.fromhex("1f43b675"), at)) >= 0:  # each Cluster's size made 'unknown', as a browser's
        width = 9 - data[at + 4].bit_length()
        data[at + 4:at + 4 + width] = bytes([(2 << (8 - width)) - 1]) + b"\xff" * (width - 1)
        at, clusters = at + 4, clusters + 1
    assert clusters >= 1
    data = bytes(data)
    path = tmp_path / "rec.webm"
    path.write_bytes(data)
    assert _ebml_whole(path) is True and _read_all(path)[1] is None
    path.write_bytes(data[: len(data) * 2 // 3])
    assert _ebml_whole(path) is False
    frames, error = _read_all(path)
    assert error is not None and "truncated" in str(error) and frames


def test_an_unclear_end_is_left_to_the_index_count_not_called_whole(tmp_path):
    """An MP4 with two `mdat` boxes cut inside a box between them, or in the first bytes of the
    second one's header, was called whole (rc 0, 72 of 150 frames lost): such an end is unclear
    (None), and the index's count decides; a media box running past the end is a cut (False)."""
    from livebokeh.sources.video import _top_boxes

    def box(kind, size):
        return size.to_bytes(4, "big") + kind + b"\0" * (size - 8)

    data = box(b"ftyp", 24) + box(b"moov", 100) + box(b"mdat", 400) + box(b"free", 64) + box(b"mdat", 400)
    path = tmp_path / "two.mp4"
    ends = {len(data): True, 524 + 30: None, 524 + 64 + 4: None, 524 + 64 + 20: False, 524 + 64 + 7: None}
    for end, said in ends.items():
        path.write_bytes(data[:end])
        assert _top_boxes(path)[1] is said, end


def test_a_ts_cut_inside_a_table_or_sound_packet_is_a_cut(tmp_path):
    """The PID check looked at the last 16 packets only: cuts inside audio, PAT, PMT or SDT packets
    went through (rc 0)."""
    from livebokeh.sources.video import _ts_whole

    def packet(pid):
        return bytes([0x47, (pid >> 8) & 0x1F, pid & 0xFF, 0x10]) + b"\xff" * 184

    stream = b"".join(packet(0x100) for _ in range(40)) + packet(0x101) + b"".join(packet(0x100) for _ in range(40))
    path = tmp_path / "a.ts"
    for pid in (0x0000, 0x0011, 0x101):  # PAT, SDT, the sound's stream 41 packets back
        path.write_bytes(stream + packet(pid)[:100])
        assert _ts_whole(path) is False, pid
    path.write_bytes(stream + b"G" + b"enerated by a recorder")  # text after the packets: none of them
    assert _ts_whole(path) is None
