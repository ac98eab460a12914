"""The source's audio in written videos: PCM without a channel layout, and audio that cannot be written."""

import logging
from fractions import Fraction

import numpy as np
import pytest

from livebokeh.sinks import VideoWriter
from tests.conftest import probe_video

FPS = 30
SECONDS = 1.5  # of video written; the sources hold 2 s of sound


def _mux_frames(container, stream, count):
    """``count`` flat 64x48 frames, each brighter than the last, encoded into ``stream``."""
    import av

    for i in range(count):
        f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 4, np.uint8), format="bgr24")
        f.pts = i
        for p in stream.encode(f):
            container.mux(p)
    for p in stream.encode(None):
        container.mux(p)


def _pcm_source(path, channels, seconds=2.0, rate=48000):
    """A short H.264 clip with PCM s16le sound, as OBS and screen recorders write to MKV: MKV keeps
    the channel count but no channel layout."""
    import av

    layout = {1: "mono", 2: "stereo", 6: "5.1"}[channels]
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=FPS)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = c.add_stream("pcm_s16le", rate=rate)
        a.layout = layout
        _mux_frames(c, v, int(seconds * FPS))
        t = np.arange(int(seconds * rate)) / rate
        tone = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)
        for s in range(0, tone.size, 1024):
            chunk = tone[s : s + 1024]
            packed = np.repeat(chunk, channels).reshape(1, -1)  # s16 is interleaved: one plane
            fr = av.AudioFrame.from_ndarray(packed, format="s16", layout=layout)
            fr.sample_rate, fr.pts = rate, s
            for p in a.encode(fr):
                c.mux(p)
        for p in a.encode(None):
            c.mux(p)
    return path


def _audio(path):
    """(codec, channels, seconds of decoded sound) per audio stream."""
    import av

    out = []
    with av.open(str(path)) as c:
        for s in c.streams.audio:
            samples = sum(f.samples for f in c.decode(s))
            out.append((s.codec_context.name, s.codec_context.channels, samples / s.codec_context.sample_rate))
    return out


def _write(out, source):
    w = VideoWriter(out, 64, 48, Fraction(FPS), audio_from=source)
    for i in range(int(SECONDS * FPS)):
        w.write(np.full((48, 64, 3), i, np.uint8))
    return w.close()


def _source_layout(path):
    import av

    with av.open(str(path)) as c:
        return c.streams.audio[0].layout.name


@pytest.mark.parametrize("channels", [1, 2, 6])
@pytest.mark.parametrize("suffix", [".mp4", ".m4v"])
def test_pcm_without_a_channel_layout_is_reencoded_to_aac(tmp_path, channels, suffix):
    src = _pcm_source(tmp_path / "obs.mkv", channels)
    assert _source_layout(src) == f"{channels} channels"  # a count, no layout: what AAC refused
    out = tmp_path / f"out{suffix}"
    assert _write(out, src) == out  # complete, not a .partial file
    (codec, got_channels, seconds), = _audio(out)
    assert codec == "aac" and got_channels == channels
    assert abs(seconds - SECONDS) <= 2 / FPS
    assert probe_video(out)["frames"] == SECONDS * FPS


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("suffix", [".mkv", ".mov"])
def test_pcm_is_kept_where_the_container_holds_it(tmp_path, channels, suffix):
    src = _pcm_source(tmp_path / "obs.mkv", channels)
    out = tmp_path / f"out{suffix}"
    assert _write(out, src) == out
    (codec, got_channels, seconds), = _audio(out)
    assert codec == "pcm_s16le" and got_channels == channels
    assert abs(seconds - SECONDS) <= 2 / FPS


def _one_warning(caplog, src):
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and "audio" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert str(src) in warnings[0] and "--no-audio" in warnings[0] and "\n" not in warnings[0]


def test_audio_that_cannot_be_encoded_is_left_out_and_the_video_written(tmp_path, monkeypatch, caplog):
    from livebokeh.sinks import audio

    def no_encoder(*args):
        raise ValueError("avcodec_open2 returned 22")

    monkeypatch.setattr(audio, "_try_chain", no_encoder)
    src = _pcm_source(tmp_path / "obs.mkv", 2)
    out = tmp_path / "out.mp4"
    with caplog.at_level(logging.WARNING):
        assert _write(out, src) == out
    assert _audio(out) == []  # no empty or broken audio stream
    assert probe_video(out)["frames"] == SECONDS * FPS
    _one_warning(caplog, src)


def test_audio_failing_while_reencoding_leaves_the_video_complete(tmp_path, monkeypatch, caplog):
    import av

    from livebokeh.sinks import audio

    class BrokenResampler:
        def __init__(self, **kw):
            pass

        def resample(self, frame):
            raise av.ArgumentError(22, "Invalid argument")

    monkeypatch.setattr(audio, "_try_chain", lambda *a: None)
    monkeypatch.setattr(av, "AudioResampler", BrokenResampler)
    src = _pcm_source(tmp_path / "obs.mkv", 2)
    out = tmp_path / "out.mp4"
    with caplog.at_level(logging.WARNING):
        assert _write(out, src) == out  # not kept as a .partial file
    assert probe_video(out)["frames"] == SECONDS * FPS
    _one_warning(caplog, src)


# -- picture and sound keep the timing they had --------------------------------------------------


def _through(src, out, **kw):
    """``src`` read by the video source and written with its sound, frame by frame at each
    frame's time (the pipeline's path without a model)."""
    from livebokeh.sources import VideoFileSource

    kw.setdefault("audio_tail", True)  # the whole input goes through
    with VideoFileSource(src) as s:
        w = VideoWriter(out, s.info.width, s.info.height, s.info.fps, audio_from=src, preset="ultrafast",
                        steady_fps=s.info.steady_fps, **kw)
        while (f := s.read()) is not None:
            w.write(f.image, f.time_s)
    return w.close()


@pytest.mark.parametrize("container", [".mkv", ".mp4", ".ts", ".mov"])
@pytest.mark.parametrize(("video_start", "audio_start"), [(1.0, 0.0), (0.0, 1.0), (0.0, 0.0), (0.4, 0.0)])
@pytest.mark.parametrize("out_suffix", [".mp4", ".mkv", ".webm"])  # AAC copied; copied; re-encoded to Opus
def test_picture_and_sound_keep_their_timing(tmp_path, container, video_start, audio_start, out_suffix):
    """A video that starts after its sound (or the reverse) comes out with the white frame
    and the sound's burst together, as in the input, every frame, and the sound not cut."""
    from tests.media import av_clip, flash_and_burst, sound_seconds, video_times

    src = av_clip(tmp_path / f"in{container}", video_start=video_start, audio_start=audio_start, flash_at=2.2)
    flash, burst = flash_and_burst(src)
    out = _through(src, tmp_path / f"out{out_suffix}")
    got_flash, got_burst = flash_and_burst(out)
    assert abs((got_burst - got_flash) - (burst - flash)) < 1 / 30 + 0.002  # within a frame, as in the input
    assert len(video_times(out)) == len(video_times(src)) == 90
    # all of the sound: before the video starts and after it ends (a late sound was cut at the last picture)
    assert abs(sound_seconds(out) - sound_seconds(src)) < 0.05


def _samples(path, n):
    import av

    with av.open(str(path)) as c:
        got = np.concatenate([f.to_ndarray()[0] for f in c.decode(audio=0)])
    return got[:n]


@pytest.mark.parametrize("out_suffix", [".mp4", ".mov"])
def test_copied_aac_keeps_its_first_samples(tmp_path, out_suffix):
    """An AAC track's first packet is the encoder's priming, marked to be discarded; the decoder
    needs it to overlap-add the first packet it shows. Left out, every copied AAC track began
    with 21 ms of wrong sound. Copied, the output decodes as the input does, sample for sample."""
    import av

    src = tmp_path / "tone.mp4"
    with av.open(str(src), "w") as c:
        v = c.add_stream("libx264", rate=FPS)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = c.add_stream("aac", rate=48000)
        a.layout = "mono"
        _mux_frames(c, v, 30)
        tone = (np.sin(2 * np.pi * 440 * np.arange(48000) / 48000) * 0.3).astype(np.float32)
        for k in range(0, tone.size, 1024):
            fr = av.AudioFrame.from_ndarray(tone[None, k : k + 1024], format="fltp", layout="mono")
            fr.sample_rate, fr.pts = 48000, k
            for p in a.encode(fr):
                c.mux(p)
        for p in a.encode(None):
            c.mux(p)
    with av.open(str(src)) as c:
        assert any(p.is_discard for p in c.demux(audio=0))  # the priming packet
    out = _through(src, tmp_path / f"out{out_suffix}")
    want, got = _samples(src, 4096), _samples(out, 4096)
    assert np.abs(want).max() > 0.2 and float(np.abs(got - want).max()) < 1e-4


@pytest.mark.parametrize(("source", "codec"), [(".mp4", "aac"), (".mov", "pcm_s16le")])
@pytest.mark.parametrize("out_suffix", [".mkv", ".mp4", ".mov", ".webm", ".avi"])
def test_sound_an_edit_list_hides_stays_hidden(tmp_path, out_suffix, source, codec):
    """An MP4 cut with `ffmpeg -ss T -c copy` keeps the sound before T, marked to be discarded
    (an edit list). Copied into MKV it came back: a second more of sound, the picture 1 s late;
    a camera's PCM cut so, into AVI, put the sound and the pictures out of step."""
    import av

    from tests.media import av_clip, flash_and_burst, sound_seconds, video_times

    src = av_clip(tmp_path / f"in{source}", audio_start=-1.0, audio_seconds=4.0, flash_at=2.0, audio_codec=codec)
    with av.open(str(src)) as c:
        assert sum(p.is_discard for p in c.demux(audio=0)) > 40  # the hidden second
    out = _through(src, tmp_path / f"out{out_suffix}")
    flash, burst = flash_and_burst(out)
    # in step, and where it was: MKV holds no count of samples to skip, so the packet the decoder
    # needs before the first shown one (and the one across the cut) move both by up to two packets
    late = 0.05 if out_suffix == ".mkv" else 0.035 if out_suffix == ".avi" else 0.003  # (AVI: a frame's time)
    assert abs(burst - flash) < 1 / 30 and flash < 2.0 + late
    assert abs(sound_seconds(out) - sound_seconds(src)) < 0.05
    assert video_times(out)[0] < late and len(video_times(out)) == 90


@pytest.mark.parametrize("empty_s", [0.0, 0.5])  # (an empty edit first: three entries)
@pytest.mark.parametrize(("source", "codec"), [(".mp4", "aac"), (".mov", "pcm_s16le")])
@pytest.mark.parametrize("out_suffix", [".mp4", ".mov", ".avi", ".mkv"])
def test_a_cut_in_the_middle_plays_as_the_input_does(tmp_path, source, codec, out_suffix, empty_s):
    """An edit list of two entries (a trimming tool's cut in the middle): the pre-roll the demuxer
    reads before the second part went back in time, was taken for a join, and moved everything
    after the cut (a 2 s hole; a PCM MOV called truncated, its picture 1.2 s behind its sound)."""
    from tests.media import av_clip, flash_and_burst, middle_cut, video_times

    whole = av_clip(tmp_path / f"whole{source}", seconds=4.0, flash_at=2.5, audio_codec=codec)
    cut = middle_cut(whole, tmp_path / f"cut{source}", empty_s=empty_s)
    flash, burst = flash_and_burst(cut)
    assert abs(flash - 1.5 - empty_s) < 0.02  # as players show it: 1 s gone before it (and the empty edit)
    out = _through(cut, tmp_path / f"out{out_suffix}")
    times = video_times(out)
    assert len(times) == len(video_times(cut)) and times[-1] - times[0] < 3.05  # every frame, 3 s, no hole
    got_flash, got_burst = flash_and_burst(out)
    assert abs((got_flash - times[0]) - (flash - video_times(cut)[0])) < 0.05  # where it was in the picture
    assert abs((got_burst - got_flash) - (burst - flash)) < 1 / 30  # and the sound with it


def test_an_empty_edit_before_the_whole_track_is_no_truncation(tmp_path):
    """An edit list that starts with an empty edit, then the whole media: called truncated (exit 1)."""
    from livebokeh.sources import VideoFileSource
    from tests.media import av_clip, middle_cut

    whole = av_clip(tmp_path / "whole.mp4", seconds=3.0)
    late = middle_cut(whole, tmp_path / "late.mp4", skip_s=0.0, empty_s=0.5)
    with VideoFileSource(late) as src:
        n = sum(1 for _ in iter(src.read, None))
    assert n >= 88  # every frame the demuxer shows (FFmpeg's own count), and no "truncated"


@pytest.mark.parametrize("out_suffix", [".mp4", ".mkv", ".webm"])  # copied; copied; re-encoded
def test_sound_longer_than_the_picture_is_kept_whole(tmp_path, out_suffix):
    """2 s of picture, 3 s of sound: the last second of sound was lost. Kept, as FFmpeg keeps it;
    a part of the input (``audio_tail`` off: --max-frames) or a partial ends with its picture."""
    from tests.media import av_clip, sound_seconds

    src = av_clip(tmp_path / "long.mp4", seconds=2.0, audio_seconds=3.0)
    assert abs(sound_seconds(src) - 3.0) < 0.05
    out = _through(src, tmp_path / f"out{out_suffix}")
    assert abs(sound_seconds(out) - 3.0) < 0.05
    cut = _through(src, tmp_path / f"cut{out_suffix}", audio_tail=False)
    assert abs(sound_seconds(cut) - 2.0) < 0.05
    from livebokeh.sources import VideoFileSource

    with VideoFileSource(src) as s:
        w = VideoWriter(tmp_path / f"stop{out_suffix}", 64, 48, s.info.fps, audio_from=src, audio_tail=True)
        for _ in range(30):  # stopped after 1 s
            f = s.read()
            w.write(f.image, f.time_s)
    partial = w.close(complete=False)
    assert partial.name.startswith("stop.partial") and abs(sound_seconds(partial) - 1.0) < 0.05


def _joined_ts(tmp_path, sizes=((64, 48), (64, 48)), seconds=(2.0, 3.0)):
    """Two MPEG-TS clips, each starting at 0, written one after the other (``cat a.ts b.ts``):
    the timestamps jump back at the join. Each has a flash and a burst 1.5 s in."""
    from tests.media import av_clip

    parts = [av_clip(tmp_path / f"part{i}.ts", seconds=s, size=size, flash_at=1.5, pattern=True)
             for i, (s, size) in enumerate(zip(seconds, sizes))]
    joined = tmp_path / "joined.ts"
    joined.write_bytes(b"".join(p.read_bytes() for p in parts))
    return joined


@pytest.mark.parametrize("out_suffix", [".mp4", ".mkv", ".webm", ".mov"])
def test_joined_mpeg_ts_is_finalised_with_every_frame_and_its_sound(tmp_path, out_suffix):
    """Timestamps that jump back (joined MPEG-TS) were 'finishing o.mp4 failed: Invalid argument'."""
    from tests.media import sound_seconds, video_times

    out = _through(_joined_ts(tmp_path), tmp_path / f"out{out_suffix}")
    assert out == tmp_path / f"out{out_suffix}"  # complete, not a partial
    times = video_times(out)
    assert len(times) == 150
    steps = np.diff(times)
    assert (steps > 0).all() and steps.max() < 2.5 / 30  # one timeline: no jump back, no gap
    assert abs(times[-1] + 1 / 30 - times[0] - 5.0) < 0.1
    assert abs(sound_seconds(out) - 5.0) < 0.1  # both parts' sound


def test_joined_mpeg_ts_keeps_each_parts_sound_with_its_pictures(tmp_path):
    """The second part's flash and burst stay together after the join."""
    import av

    out = _through(_joined_ts(tmp_path, seconds=(2.0, 3.0)), tmp_path / "out.mkv")
    with av.open(str(out)) as c:
        levels = [(float(f.time), float(f.to_ndarray(format="gray").mean())) for f in c.decode(video=0)]
    with av.open(str(out)) as c:
        loud = []
        for f in c.decode(audio=0):
            x = np.abs(f.to_ndarray()).max(axis=0)
            loud += [f.time + i / f.sample_rate for i in np.nonzero(x > 0.2 * (32767 if x.dtype.kind == "i" else 1))[0]]
    flashes = [t for t, v in levels if v > 200]
    assert len(flashes) == 2
    bursts = [min(t for t in loud if abs(t - f) < 0.5) for f in flashes]
    assert all(abs(b - f) < 1 / 30 + 0.005 for f, b in zip(flashes, bursts)), (flashes, bursts)


def test_two_sound_streams_that_start_apart_each_keep_their_timing(tmp_path):
    """Two audio streams starting at 0 and 0.5 s, the picture at 1 s: each stream's burst stays
    with the white frame, copied or re-encoded."""
    import av

    src = tmp_path / "two.mkv"
    with av.open(str(src), "w") as c:
        v = c.add_stream("libx264", rate=30)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        tracks = [c.add_stream("aac", rate=48000), c.add_stream("aac", rate=48000)]
        for a in tracks:
            a.layout = "mono"
        events = [(1.0 + i / 30, -1, i) for i in range(60)]
        events += [(start + k / 48000, n, k) for n, start in enumerate((0.0, 0.5)) for k in range(0, 96000, 1024)]
        for t, n, k in sorted(events):
            if n < 0:
                f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 255 if k == 30 else 30, np.uint8), format="bgr24")
                f.pts, f.time_base = round(t * 30), Fraction(1, 30)
                for p in v.encode(f):
                    c.mux(p)
                continue
            ts = t + np.arange(1024) / 48000
            x = np.where(np.abs(ts - 2.05) < 0.05, 0.8 * np.sin(2 * np.pi * 1000 * ts), 0).astype(np.float32)
            fr = av.AudioFrame.from_ndarray(x.reshape(1, -1), format="fltp", layout="mono")
            fr.sample_rate, fr.pts, fr.time_base = 48000, round(t * 48000), Fraction(1, 48000)
            for p in tracks[n].encode(fr):
                c.mux(p)
        for s in (v, *tracks):
            for p in s.encode(None):
                c.mux(p)
    for suffix in (".mkv", ".webm"):
        out = _through(src, tmp_path / f"out{suffix}")
        with av.open(str(out)) as c:
            flash = [f.time for f in c.decode(video=0) if f.to_ndarray(format="gray").mean() > 200]
            count = len(c.streams.audio)
        bursts = []
        for i in range(count):
            with av.open(str(out)) as c:
                for f in c.decode(audio=i):
                    x = np.abs(f.to_ndarray()).max(axis=0)
                    on = np.nonzero(x > 0.2)[0]
                    if on.size:
                        bursts.append(f.time + on[0] / f.sample_rate)
                        break
        assert count == 2 and len(flash) == 1 and len(bursts) == 2
        assert all(abs(b - flash[0]) < 1 / 30 + 0.005 for b in bursts), (suffix, flash, bursts)


@pytest.mark.parametrize("container", [".mp4", ".mkv", ".ts"])
@pytest.mark.parametrize(("video_start", "audio_start"), [(0.0, 1.0), (1.0, 0.0)])
def test_avi_keeps_a_late_sound_start_with_silence(tmp_path, container, video_start, audio_start):
    """AVI keeps no start time for its sound: a sound starting 1 s after the picture came out
    1 s early (the flash-to-burst gap -0.04 s instead of -1.0 s in a clip whose burst comes
    before its flash). The re-encoded sound now begins with the silence before it."""
    from tests.media import av_clip, flash_and_burst, sound_seconds, video_times

    src = av_clip(tmp_path / f"in{container}", video_start=video_start, audio_start=audio_start, flash_at=2.2)
    flash, burst = flash_and_burst(src)
    out = _through(src, tmp_path / "out.avi")
    got_flash, got_burst = flash_and_burst(out)
    # each frame on the AVI's tick nearest its time: half a frame at most
    assert abs((got_burst - got_flash) - (burst - flash)) < 1 / 60 + 0.002
    assert len(video_times(out)) == 90
    assert abs(sound_seconds(out) - (sound_seconds(src) + max(0.0, audio_start - video_start))) < 0.05


@pytest.mark.parametrize("container", [".mkv", ".mp4"])
def test_avi_puts_picture_and_sound_at_their_times(tmp_path, container):
    """The re-encoded AAC's priming made its first packet start before 0, and the AVI muxer then
    moved every stream later: the picture by a whole frame (33 ms), the sound by 21 ms. Now
    both are where they were in the input."""
    from tests.media import av_clip, flash_and_burst

    src = av_clip(tmp_path / f"in{container}", flash_at=2.0)
    flash, burst = flash_and_burst(src)
    got_flash, got_burst = flash_and_burst(_through(src, tmp_path / "out.avi"))
    assert abs(got_flash - flash) < 0.002 and abs(got_burst - burst) < 0.003, (flash, burst, got_flash, got_burst)


def _vfr_clip(path, hole=(20, 50), frames=100, fps=30, flash_at=3.0):
    """An MP4 whose frames ``hole[0]``..``hole[1]`` are left out (a variable-frame-rate phone
    clip: 30 fps, then a second with no frame), with AAC sound; a white frame and a burst at
    ``flash_at``."""
    import av

    from tests.media import RATE

    keep = [i for i in range(frames) if not hole[0] <= i <= hole[1]]
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=fps, options={"bf": "0"})
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        v.codec_context.time_base = Fraction(1, fps)
        a = c.add_stream("aac", rate=RATE)
        a.layout = "mono"
        for i in keep:
            level = 255 if i == round(flash_at * fps) else 30
            f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), level, np.uint8), format="bgr24")
            f.pts, f.time_base = i, Fraction(1, fps)
            for p in v.encode(f):
                c.mux(p)
        for p in v.encode(None):
            c.mux(p)
        for k in range(0, round(frames / fps * RATE), 1024):
            t = (k + np.arange(1024)) / RATE
            x = np.where(np.abs(t - flash_at - 0.05) <= 0.05, np.sin(2 * np.pi * 1000 * t) * 0.8, 0.0)
            fr = av.AudioFrame.from_ndarray(x.astype(np.float32).reshape(1, -1), format="fltp", layout="mono")
            fr.sample_rate, fr.pts, fr.time_base = RATE, k, Fraction(1, RATE)
            for p in a.encode(fr):
                c.mux(p)
        for p in a.encode(None):
            c.mux(p)
    return path


def test_avi_of_a_variable_rate_clip_keeps_its_timing(tmp_path):
    """AVI has one tick per frame. It ran at the clip's average rate (69 frames in 100/30 s:
    21 fps), each frame pushed to the next free tick: the flash 0.5 s after its sound and the
    picture 0.9 s longer than the sound. Now it runs at the clip's steady rate (30), each frame
    at its own time, the hole held by the muxer's repeat frames, and no frame is lost."""
    from tests.media import flash_and_burst, video_times

    src = _vfr_clip(tmp_path / "vfr.mp4")
    flash, burst = flash_and_burst(src)
    times = video_times(src)
    out = _through(src, tmp_path / "out.avi")
    got_flash, got_burst = flash_and_burst(out)
    got = video_times(out)
    assert abs(got_flash - flash) < 0.002 and abs(got_burst - burst) < 0.003, (flash, burst, got_flash, got_burst)
    assert len(got) == len(times) == 69
    assert max(abs(a - b) for a, b in zip(got, times, strict=True)) < 0.002


def test_avi_leaves_out_a_frame_that_would_fall_late(tmp_path, caplog):
    """Frames denser than the AVI's rate: one on a tick already taken is left out (told once)
    rather than pushing every later frame after its sound."""
    out = tmp_path / "out.avi"
    w = VideoWriter(out, 64, 48, Fraction(30))
    times = [0, 1 / 30, 1.2 / 30, 2 / 30, 3 / 30]  # the third lands on the second's tick
    for i, t in enumerate(times):
        w.write(np.full((48, 64, 3), 40 * i, np.uint8), t)
    with caplog.at_level(logging.WARNING):
        w.close()
    from tests.media import video_times

    assert [round(t * 30) for t in video_times(out)] == [0, 1, 2, 3]
    assert "1 frames left out" in caplog.text


def _tone_ts(path, rate, layout, seconds=2.0, freq=440.0):
    """An MPEG-TS part: 64x48 H.264 at 30 fps and an AAC ``freq`` Hz tone at ``rate`` in ``layout``."""
    import av

    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=30)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = c.add_stream("aac", rate=rate)
        a.layout = layout
        channels = 1 if layout == "mono" else 2
        events = [(i / 30, "v", i) for i in range(round(seconds * 30))]
        events += [(k / rate, "a", k) for k in range(0, round(seconds * rate), 1024)]
        for t, kind, k in sorted(events, key=lambda e: e[0]):
            if kind == "v":
                f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 60, np.uint8), format="bgr24")
                f.pts, f.time_base = k, Fraction(1, 30)
                for p in v.encode(f):
                    c.mux(p)
                continue
            x = (0.5 * np.sin(2 * np.pi * freq * (k + np.arange(1024)) / rate)).astype(np.float32)
            fr = av.AudioFrame.from_ndarray(np.tile(x, (channels, 1)), format="fltp", layout=layout)
            fr.sample_rate, fr.pts, fr.time_base = rate, k, Fraction(1, rate)
            for p in a.encode(fr):
                c.mux(p)
        for s in (v, a):
            for p in s.encode(None):
                c.mux(p)
    return path


def _pitches(path):
    """The tone's frequency in each half second of the first audio stream's decoded sound (every
    channel), and the sound's length; a decoding error fails."""
    import av

    with av.open(str(path)) as c:
        rate = c.streams.audio[0].codec_context.sample_rate
        chunks = [f.to_ndarray().reshape(len(f.layout.channels), -1) if f.format.is_planar
                  else f.to_ndarray().reshape(-1, len(f.layout.channels)).T for f in c.decode(audio=0)]
    sound = np.concatenate(chunks, axis=1).astype(np.float64)
    found = []
    for start in range(rate // 4, sound.shape[1] - rate // 2, rate // 2):
        for channel in sound:
            spectrum = np.abs(np.fft.rfft(channel[start:start + rate // 4]))
            found.append(np.argmax(spectrum) * 4.0)  # a quarter second: 4 Hz a bin
    return found, sound.shape[1] / rate


@pytest.mark.parametrize("out_suffix", [".mp4", ".mkv", ".webm"])  # copied before; copied; re-encoded
def test_sound_that_changes_format_midway_keeps_its_pitch_and_length(tmp_path, out_suffix, caplog):
    """`cat A.ts G48.ts A.ts` (44.1 kHz mono, 48 kHz stereo, 44.1 kHz mono): copied, the middle
    played at 406 Hz and mono after stereo did not decode; re-encoded, 'Frame does not match
    AudioResampler setup' kept 2 of 6 s. Now all 6 s at 440 Hz, as FFmpeg converts it."""
    parts = [_tone_ts(tmp_path / "a.ts", 44100, "mono"), _tone_ts(tmp_path / "g.ts", 48000, "stereo")]
    joined = tmp_path / "joined.ts"
    joined.write_bytes(parts[0].read_bytes() + parts[1].read_bytes() + parts[0].read_bytes())
    with caplog.at_level(logging.WARNING):
        out = _through(joined, tmp_path / f"out{out_suffix}")
    assert out == tmp_path / f"out{out_suffix}"
    assert not [r for r in caplog.records if "audio" in r.getMessage()], caplog.text
    pitches, seconds = _pitches(out)
    assert abs(seconds - 6.0) < 0.15
    assert all(abs(p - 440) <= 8 for p in pitches), pitches


def test_sound_of_one_format_in_mpeg_ts_is_still_copied(tmp_path):
    from livebokeh.sinks.audio import AudioCopy

    src = _tone_ts(tmp_path / "a.ts", 44100, "mono")
    out = _through(src, tmp_path / "out.mp4")
    import av

    with av.open(str(out)) as c:
        assert c.streams.audio[0].codec_context.name == "aac" and c.streams.audio[0].rate == 44100
    with av.open(str(tmp_path / "x.mp4"), "w") as c:
        copy = AudioCopy(c, src, ".mp4")
        assert copy.describe() == "audio: aac copied"
        copy.close()
