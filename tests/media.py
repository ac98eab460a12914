"""Media the tests make with PyAV (never ffmpeg's command): clips whose pictures and sound carry
a known event, and readers that find it again in what livebokeh wrote."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

RATE = 48000
FLASH = 255  # the flash frame's grey level; the others are dark


def av_clip(path: Path, *, seconds: float = 3.0, fps: int = 30, size: tuple[int, int] = (64, 48),
            video_start: float = 0.0, audio_start: float | None = 0.0, flash_at: float = 2.0,
            audio_codec: str = "aac", sizes: list[tuple[int, int]] | None = None, pattern: bool = False,
            options: dict[str, str] | None = None, audio_seconds: float | None = None) -> Path:
    """A clip: ``seconds`` of video from ``video_start`` (dark frames, one white frame at
    ``flash_at`` s of the file's time) and ``seconds`` (or ``audio_seconds``) of sound from
    ``audio_start`` (silence, a loud burst at ``flash_at``; None: no sound). ``sizes`` gives the picture size per frame (a
    stream that changes size); ``pattern`` gives each frame a texture (for the decoder's sake);
    ``options`` go to the muxer (``{"movflags": "+faststart"}``: an MP4's index first).

    The container follows the ending (``.mp4``, ``.mkv``, ``.ts``, ``.mov``, ``.webm``); H.264
    with B-frames (VP9 in WebM)."""
    import av

    suffix = path.suffix.lower()
    vcodec = "libvpx-vp9" if suffix == ".webm" else "libx264"
    acodec = "libopus" if suffix == ".webm" else audio_codec
    n = round(seconds * fps)
    sizes = sizes or [size] * n
    with av.open(str(path), "w", options=options or {}) as c:
        v = c.add_stream(vcodec, rate=fps, options={"bf": "2", "g": str(fps)} if vcodec == "libx264" else {})
        v.width, v.height, v.pix_fmt = *sizes[0], "yuv420p"
        v.codec_context.time_base = Fraction(1, fps)
        a = None
        if audio_start is not None:
            a = c.add_stream(acodec, rate=RATE)
            a.layout = "mono"
        events = []
        for i in range(n):
            t = video_start + i / fps
            events.append((t, "v", i))
        if a is not None:
            for k in range(0, round((seconds if audio_seconds is None else audio_seconds) * RATE), 960):
                events.append((audio_start + k / RATE, "a", k))
        rng = np.random.default_rng(0)
        for t, kind, k in sorted(events, key=lambda e: e[0]):
            if kind == "v":
                w, h = sizes[k]
                level = FLASH if abs(t - flash_at) < 0.5 / fps else 30
                img = np.full((h, w, 3), level, np.uint8)
                if pattern:
                    img = np.clip(img.astype(int) + rng.integers(-20, 20, img.shape), 0, 255).astype(np.uint8)
                f = av.VideoFrame.from_ndarray(img, format="bgr24")
                f.pts, f.time_base = round(t * fps), Fraction(1, fps)
                for p in v.encode(f):
                    c.mux(p)
            else:
                ts = (audio_start + (k + np.arange(960)) / RATE)
                burst = np.abs(ts - (flash_at + 0.05)) <= 0.05
                samples = np.where(burst, np.sin(2 * np.pi * 1000 * ts) * 0.8, 0.0)
                fmt = a.format.name  # mono: packed and planar hold the same (1, n) samples
                data = (samples * 32767).astype(np.int16) if fmt.startswith("s16") else samples.astype(np.float32)
                fr = av.AudioFrame.from_ndarray(data.reshape(1, -1), format=fmt, layout="mono")
                fr.sample_rate, fr.pts, fr.time_base = RATE, round(t * RATE), Fraction(1, RATE)
                for p in a.encode(fr):
                    c.mux(p)
        for p in v.encode(None):
            c.mux(p)
        if a is not None:
            for p in a.encode(None):
                c.mux(p)
    return path


def flash_and_burst(path: Path) -> tuple[float | None, float | None]:
    """(time of the brightest frame, time the sound's burst starts), as a player would show them."""
    import av

    with av.open(str(path)) as c:
        best, when = -1.0, None
        for f in c.decode(c.streams.video[0]):
            level = float(f.to_ndarray(format="gray").mean())
            if level > best:
                best, when = level, f.time
        burst = None
        if c.streams.audio:
            c.seek(0)
        if c.streams.audio:
            with av.open(str(path)) as c2:
                for f in c2.decode(c2.streams.audio[0]):
                    x = np.abs(f.to_ndarray().astype(np.float32)).max(axis=0)
                    loud = np.nonzero(x > 0.2 * (np.iinfo(x.dtype).max if np.issubdtype(x.dtype, np.integer) else 1))[0]
                    if loud.size and f.time is not None:
                        burst = f.time + loud[0] / f.sample_rate
                        break
    return when, burst


def sound_seconds(path: Path) -> float:
    """Seconds of decoded sound in the first audio stream (0 without one)."""
    import av

    with av.open(str(path)) as c:
        if not c.streams.audio:
            return 0.0
        s = c.streams.audio[0]
        return sum(f.samples for f in c.decode(s)) / s.codec_context.sample_rate


def video_times(path: Path) -> list[float]:
    """Every decoded picture's time, in order."""
    import av

    with av.open(str(path)) as c:
        return [float(f.time) for f in c.decode(c.streams.video[0])]


def _boxes(buf: bytes, start: int, end: int):
    """The ISO BMFF boxes in ``buf[start:end]``: (offset, size, type)."""
    import struct

    at = start
    while at < end:
        size, kind = struct.unpack(">I4s", buf[at : at + 8])
        yield at, size, kind.decode("latin-1")
        at += size


def _box(buf: bytes, start: int, end: int, kind: str) -> tuple[int, int]:
    return next((at, size) for at, size, k in _boxes(buf, start, end) if k == kind)


def middle_cut(src: Path, out: Path, keep_s: float = 1.0, skip_s: float = 1.0, empty_s: float = 0.0) -> Path:
    """``src`` (an MP4/MOV, its index last, each track with an edit list) with a cut in the
    middle, as trimming tools write one: each track's edit list shows its first ``keep_s``
    seconds, then from ``keep_s + skip_s`` to the end (two entries; ``skip_s`` 0: one, the
    whole track). ``empty_s``: an empty edit first (the track starts that much later)."""
    import struct

    data = src.read_bytes()
    moov, moov_size = _box(data, 0, len(data), "moov")
    mvhd, _ = _box(data, moov + 8, moov + moov_size, "mvhd")
    movie_scale = struct.unpack(">I", data[mvhd + 20 : mvhd + 24])[0]
    body = bytearray()
    for at, size, kind in _boxes(data, moov + 8, moov + moov_size):
        box = bytearray(data[at : at + size])
        if kind == "trak":
            mdia, mdia_size = _box(box, 8, len(box), "mdia")
            mdhd, _ = _box(box, mdia + 8, mdia + mdia_size, "mdhd")
            scale, duration = struct.unpack(">II", box[mdhd + 20 : mdhd + 28])
            edts, edts_size = _box(box, 8, len(box), "edts")
            elst, _ = _box(box, edts + 8, edts + edts_size, "elst")
            start = struct.unpack(">i", box[elst + 20 : elst + 24])[0]  # the media time the first entry shows from
            shown = (duration - start) / scale
            entries = struct.pack(">Iii", round(empty_s * movie_scale), -1, 0x10000) if empty_s else b""
            if skip_s:
                entries += (struct.pack(">Iii", round(keep_s * movie_scale), start, 0x10000)
                            + struct.pack(">Iii", round((shown - keep_s - skip_s) * movie_scale),
                                          start + round((keep_s + skip_s) * scale), 0x10000))
            else:
                entries += struct.pack(">Iii", round(shown * movie_scale), start, 0x10000)
            new = struct.pack(">I4sII", 16 + len(entries), b"elst", 0, len(entries) // 12) + entries
            new = struct.pack(">I4s", 8 + len(new), b"edts") + new
            box = box[:edts] + new + box[edts + edts_size :]
            struct.pack_into(">I", box, 0, len(box))
        body += box
    out.write_bytes(data[:moov] + struct.pack(">I4s", 8 + len(body), b"moov") + body + data[moov + moov_size :])
    return out
