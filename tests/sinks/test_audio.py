"""The source's audio in written videos: PCM without a channel layout, and audio that cannot be written."""

import logging
from fractions import Fraction

import numpy as np
import pytest

from livebokeh.sinks import VideoWriter
from tests.conftest import probe_video

FPS = 30
SECONDS = 1.5  # of video written; the sources hold 2 s of sound


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
        for i in range(int(seconds * FPS)):
            f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 4, np.uint8), format="bgr24")
            f.pts = i
            for p in v.encode(f):
                c.mux(p)
        for p in v.encode(None):
            c.mux(p)
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
