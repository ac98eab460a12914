"""The source's audio in a written video: copied when the container can hold it, else re-encoded.

The sound keeps the timing it had against the pictures: its packets are placed on the file's
one timeline (:class:`livebokeh.sources.decoding.Timeline`, the same the pictures' source
runs over the same packets), so a video that starts after its sound, or a file whose
timestamps jump (joined MPEG-TS), comes out in sync.

Sound whose format changes midway (joined MPEG-TS: 44.1 kHz mono, then 48 kHz stereo) is
re-encoded, as FFmpeg's default conversion does: every part is converted to the first part's
rate and channels (copied, the later parts would play at the wrong pitch or not at all). AVI
keeps no start time for its sound: a re-encoded stream there begins with the silence before the
sound (and fills its gaps with silence), so picture and sound keep their timing; a copied
stream that starts late is re-encoded for that. Nor can AVI say that an encoder's first samples
are its priming (AAC: 1024 samples, 21 ms at 48 kHz), which players elsewhere skip: there the
first samples of the sound are left out for them, so that the sound plays at its time (and
no packet starts before 0, which would make the muxer move the pictures later too).

Audio is never a reason to lose the video: a stream that cannot be copied or re-encoded is left
out with one warning (naming the file and ``--no-audio``), and the video is written without it.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from livebokeh.sources.decoding import ffmpeg_name

log = logging.getLogger(__name__)

#: Audio codecs each container can hold as they are; others are re-encoded.
AUDIO_COPY: dict[str, frozenset[str]] = {
    ".mp4": frozenset({"aac", "mp3", "alac"}),
    ".m4v": frozenset({"aac", "mp3", "alac"}),
    ".mov": frozenset({"aac", "mp3", "alac", "pcm_s16le", "pcm_s24le"}),
    ".mkv": frozenset({"aac", "mp3", "opus", "vorbis", "flac", "ac3", "eac3", "alac", "pcm_s16le", "pcm_s24le"}),
    ".webm": frozenset({"opus", "vorbis"}),
    ".avi": frozenset({"mp3", "pcm_s16le"}),
}

#: The layout FFmpeg gives a bare channel count (``av_channel_layout_default``): PCM in MKV, AVI
#: or WAV often has a count but no layout, which the AAC and Opus encoders refuse.
DEFAULT_LAYOUTS: dict[int, str] = {1: "mono", 2: "stereo", 3: "2.1", 4: "4.0", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


#: Containers whose sound has no start time of its own: a late start or a gap is silence in the file.
_SILENCE_PADDED = frozenset({".avi"})
#: Codecs whose first shown packet decodes without the one before it (no overlapped transform).
_NO_PREROLL = frozenset({"flac", "alac", "wavpack", "tta", "truehd", "mlp", "pcm_s16le", "pcm_s16be", "pcm_s24le",
                         "pcm_s24be", "pcm_s32le", "pcm_s32be", "pcm_f32le", "pcm_f32be", "pcm_f64le", "pcm_f64be",
                         "pcm_u8", "pcm_s8", "pcm_alaw", "pcm_mulaw"})


class _Stream:
    """One source audio stream and where it goes: copied, or re-encoded to ``layout``."""

    def __init__(self, ins: Any, out: Any, reencode: bool = False, layout: str | None = None) -> None:
        self.ins, self.out, self.reencode, self.layout = ins, out, reencode, layout
        self.resampler: Any = None  # re-encoded: to the encoder's format, from the input's current one
        self.source_format: tuple[str, str, int] | None = None  # the format ``resampler`` converts from
        self.failed = False
        self.next_pts: int | None = None  # re-encoded: the next sample's place, in samples of the output
        self.priming = 0  # re-encoded into AVI: the encoder's priming, whose place the first samples give up
        self.end = float("-inf")  # copied: where the sound written so far ends, in seconds
        self.hidden: Any = None  # copied: the last packet an edit list hides, held until the first shown one


class AudioCopy:
    """The audio streams of a source file, copied or re-encoded into an output container."""

    def __init__(self, container: Any, source: str | Path, suffix: str) -> None:
        import av

        self._container = container
        self._source = Path(source)
        self._suffix = suffix
        self._streams: list[_Stream] = []
        self._packets: Any = None  # the demuxer, from the first copy on
        self._timeline: Any = None
        self._held: Any = None  # the first packet beyond the last copy's end
        self._exhausted = False
        self._finished = False
        try:
            self._src: Any = av.open(ffmpeg_name(source))
        except (av.FFmpegError, OSError, ValueError) as err:
            self._src = None
            self._warn(f"its audio cannot be read ({_reason(err)})")
            return
        for ins in self._src.streams.audio:
            name = ins.codec_context.name
            try:
                if name in AUDIO_COPY.get(suffix, frozenset()) and not self._must_reencode(ins):
                    self._streams.append(_Stream(ins, container.add_stream_from_template(ins)))
                else:
                    self._streams.append(self._reencoder(ins))
            except Exception as err:  # the video is written whatever the audio does
                log.debug("audio stream %d of %s", ins.index, source, exc_info=True)
                self._warn(f"its {name} audio (stream {ins.index}) cannot be written to {suffix} ({_reason(err)})")

    def _must_reencode(self, ins: Any) -> bool:
        """Whether a stream the container could hold as it is must be re-encoded all the same:
        its format changes midway, or (AVI) it starts after the picture and needs leading silence."""
        if self._suffix in _SILENCE_PADDED and ins.start_time is not None:
            from livebokeh.sources.decoding import Timeline, timeline_streams
            from livebokeh.sources.video import video_stream

            origin = Timeline(self._src, timeline_streams(self._src, video_stream(self._src))).origin
            if Fraction(ins.start_time) * ins.time_base - origin > Fraction(1, 1000):
                log.info("%s: its audio (stream %d) starts after the picture; re-encoded, with silence before it, "
                         "as %s keeps no start time", self._source, ins.index, self._suffix)
                return True
        if self._suffix in _SILENCE_PADDED and _starts_hidden(self._src, ins):
            log.info("%s: its audio (stream %d) begins with sound an edit list hides; re-encoded from where it "
                     "plays, as %s keeps no start time", self._source, ins.index, self._suffix)
            return True
        changed = format_change(self._src, ins)
        if changed:
            log.info("%s: its audio (stream %d) changes format midway (%s); re-encoded to one format, as FFmpeg "
                     "converts it", self._source, ins.index, changed)
        return bool(changed)

    def _reencoder(self, ins: Any) -> _Stream:
        """An encoder for ``ins`` whose whole chain (resampler, encoder) was tried on a silent frame
        before its stream is added: a stream in the file cannot be taken out again."""
        import av

        codec = "libopus" if self._suffix == ".webm" else "aac"
        rates = av.Codec(codec, "w").audio_rates
        rate = ins.rate if ins.rate and (not rates or ins.rate in rates) else 48000
        channels = ins.codec_context.channels or ins.layout.nb_channels
        if not channels:
            raise ValueError("the stream has no channels")
        own = ins.layout.name if ins.layout and not ins.layout.name.endswith("channels") else None
        candidates = [n for n in dict.fromkeys((own, DEFAULT_LAYOUTS.get(channels), "stereo")) if n]
        errors = []
        for layout in candidates:
            try:
                priming = _try_chain(codec, rate, layout, ins)
            except Exception as err:  # noqa: BLE001 - the next layout may do
                errors.append(f"{layout}: {_reason(err)}")
                continue
            out = self._container.add_stream(codec, rate=rate)
            out.layout = layout
            stream = _Stream(ins, out, reencode=True, layout=layout)
            if self._suffix in _SILENCE_PADDED:
                stream.priming = priming
            return stream
        raise ValueError(f"no {codec} encoder for its {channels} channels; " + "; ".join(errors))

    def _warn(self, what: str, result: str = "the video is written without it") -> None:
        log.warning("%s: %s; %s (pass --no-audio to leave the audio out)", self._source, what, result)

    def _drop(self, stream: _Stream, err: BaseException) -> None:
        """Stop writing a stream whose re-encoding failed (once; the video goes on)."""
        if not stream.failed:
            stream.failed = True
            log.debug("audio stream %d of %s", stream.ins.index, self._source, exc_info=err)
            self._warn(f"re-encoding its {stream.ins.codec_context.name} audio (stream {stream.ins.index}) to "
                       f"{stream.out.codec_context.name} failed ({_reason(err)})",
                       "the video is written without the rest of that audio")

    def describe(self) -> str:
        if not self._streams:
            return "no audio in the source" if self._src is not None and not self._src.streams.audio else "no audio"
        parts = [f"{s.ins.codec_context.name} {'re-encoded to ' + s.out.codec_context.name if s.reencode else 'copied'}"
                 for s in self._streams]
        return "audio: " + ", ".join(parts)

    def copy_until(self, end_s: float, final: bool = True) -> None:
        """Audio up to ``end_s`` seconds on the file's timeline (where the video's frames are).

        Called after each video frame (``final=False``) it muxes the sound that belongs before
        that frame and holds the first packet beyond it, so that sound and pictures reach the
        file side by side (a muxer waiting for audio buffers up to 10 s of video, which a killed
        run would lose). The last call (``final=True``) muxes what remains before ``end_s``
        (``math.inf``: all of it, the sound that goes on after the last picture included, as
        FFmpeg keeps it) and flushes the encoders; later calls do nothing.

        Errors of the output file (a full disk) propagate; errors of the source's audio or its
        re-encoding only leave (the rest of) that audio out, with a warning.
        """
        import av

        if not self._streams or self._finished:
            return
        if self._packets is None:
            from livebokeh.sources.decoding import Timeline, timeline_streams
            from livebokeh.sources.video import video_stream

            # the pictures' streams too: their packets move the timeline as they do in the source
            self._timeline = Timeline(self._src, timeline_streams(self._src, video_stream(self._src)))
            self._packets = self._src.demux(self._timeline.streams)
        by_index = {s.ins.index: s for s in self._streams}
        while True:
            if self._held is not None:
                packet, self._held = self._held, None
            elif self._exhausted:
                break
            else:
                try:
                    packet = next(self._packets)
                except StopIteration:
                    self._exhausted = True
                    break
                except av.FFmpegError as err:
                    self._exhausted = True
                    self._warn(f"reading its audio stopped ({_reason(err)})", "the video is written without the rest of it")
                    break
                self._timeline.place(packet)
            stream = by_index.get(packet.stream.index)
            if stream is None or packet.pts is None or stream.failed:
                continue  # a picture's packet, or one that cannot be placed
            start = self._timeline.seconds(packet.pts, stream.ins.time_base)
            if start >= end_s:
                if final:
                    continue  # past the video's end: left out
                self._held = packet  # belongs after a later frame
                return
            if not stream.reencode:
                if packet.is_discard:  # sound an edit list hides (`ffmpeg -ss T -c copy`, AAC's priming)
                    if stream.ins.codec_context.name not in _NO_PREROLL:  # the last one is kept: a decoder of
                        stream.hidden = packet  # overlapped transforms needs it before the first shown packet
                    continue  # the others (and PCM's) are left out: MKV would play them again
                if stream.hidden is not None:
                    hidden, stream.hidden = stream.hidden, None
                    self._copy(stream, hidden, self._timeline.seconds(hidden.pts, stream.ins.time_base))
                self._copy(stream, packet, start)
                continue
            try:
                frames = packet.decode()
            except av.FFmpegError as err:  # a damaged packet: only its own sound is lost
                log.debug("skipping an audio packet of %s: %s", self._source, err)
                continue
            for p in self._encode(stream, frames):
                self._container.mux(p)
        if not final:
            return
        self._finished = True
        for stream in self._streams:
            if stream.reencode:
                for p in self._encode(stream, [None]):
                    self._container.mux(p)

    def _copy(self, stream: _Stream, packet: Any, start: float) -> None:
        """``packet`` of a copied stream into the file, at its place on the timeline (``start`` s)."""
        length = float(packet.duration * stream.ins.time_base) if packet.duration else 0.0
        if start < stream.end - length / 2:
            return  # sound that overlaps what was written (after a discontinuity): left out
        stream.end = start + length
        origin = self._timeline.ticks(stream.ins.time_base)
        packet.pts -= origin
        if packet.dts is not None:
            packet.dts -= origin
        packet.stream = stream.out
        self._container.mux(packet)

    def _encode(self, stream: _Stream, frames: list[Any]) -> list[Any]:
        """Encoded packets of decoded ``frames`` (``[None]`` flushes); none once the stream failed.

        Each frame goes through a resampler from its own format (one per format met: the sound's
        format may change midway) to the encoder's."""
        if stream.failed:
            return []
        try:
            packets = []
            rate = stream.out.rate
            pad = self._suffix in _SILENCE_PADDED
            for frame in frames:
                if frame is not None and frame.pts is not None:  # where this sound belongs
                    at = round(self._timeline.seconds(frame.pts, frame.time_base) * rate)
                    if stream.next_pts is None and pad:
                        packets.extend(self._silence(stream, 0, max(0, at)))  # the start of the file
                    elif stream.next_pts is None or at > stream.next_pts + rate // 10:
                        if pad:
                            packets.extend(self._silence(stream, stream.next_pts, at))
                        else:
                            stream.next_pts = at  # the start, or after a gap (a discontinuity)
                    elif at + frame.samples * rate / (frame.sample_rate or rate) <= stream.next_pts:
                        continue  # wholly before what was written (overlap after a discontinuity)
                for rf in self._resample(stream, frame, packets):
                    packets.extend(_feed(stream, rf))
            if frames == [None]:
                packets.extend(stream.out.encode(None))
            return packets
        except Exception as err:  # noqa: BLE001 - the video is written whatever the audio does
            self._drop(stream, err)
            return []

    def _resample(self, stream: _Stream, frame: Any, packets: list[Any]) -> list[Any]:
        """``frame`` (None: the end) in the encoder's format. A frame of another format than the
        one before first flushes the old resampler (its last samples encoded into ``packets``)."""
        import av

        if frame is not None:
            fmt = (frame.format.name, frame.layout.name, frame.sample_rate)
            if fmt != stream.source_format:
                if stream.resampler is not None:
                    for rf in stream.resampler.resample(None):
                        packets.extend(_feed(stream, rf))
                stream.source_format = fmt
                stream.resampler = av.AudioResampler(format=stream.out.format.name, layout=stream.layout,
                                                     rate=stream.out.rate)
        if stream.resampler is None:
            return []
        return stream.resampler.resample(frame)

    def _silence(self, stream: _Stream, start: int | None, end: int) -> list[Any]:
        """Packets of silence from sample ``start`` (None: 0) to ``end`` of the output stream, which
        then goes on from ``end``."""
        import av

        start = start or 0
        packets: list[Any] = []
        rate = stream.out.rate
        if start < end:
            stream.next_pts = start
        while start < end:
            n = min(end - start, rate)
            frame = av.AudioFrame(format=stream.out.format.name, layout=stream.layout, samples=n)
            for plane in frame.planes:
                plane.update(bytes(plane.buffer_size))
            frame.sample_rate = rate
            packets.extend(_feed(stream, frame))
            start += n
        stream.next_pts = max(start, stream.next_pts or 0)
        return packets

    def close(self) -> None:
        if self._src is not None:
            self._src.close()
            self._src = None


def _feed(stream: _Stream, frame: Any) -> list[Any]:
    """Encode ``frame`` (in the encoder's format) at the stream's next place; the samples before
    ``stream.priming`` are left out (the encoder's priming stands in their place)."""
    import av

    place = stream.next_pts or 0
    stream.next_pts = place + frame.samples
    if place < stream.priming:
        cut = min(frame.samples, stream.priming - place)
        if cut == frame.samples:
            return []
        data = frame.to_ndarray()
        planar = frame.format.is_planar
        rest = data[:, cut:] if planar else data[:, cut * len(frame.layout.channels):]
        rate = frame.sample_rate
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(rest), format=frame.format.name,
                                           layout=frame.layout.name)
        frame.sample_rate = rate
        place += cut
    frame.pts, frame.time_base = place, Fraction(1, stream.out.rate)
    return list(stream.out.encode(frame))


def _try_chain(codec: str, rate: int, layout: str, ins: Any) -> int:
    """Resample a silent frame shaped like ``ins``'s and encode it as the output stream would;
    returns the encoder's priming in samples (how far before the first sample its output starts)."""
    from fractions import Fraction

    import av

    encoder = av.CodecContext.create(codec, "w")
    encoder.rate, encoder.layout = rate, layout
    encoder.format = av.Codec(codec, "w").audio_formats[0].name
    encoder.time_base = Fraction(1, rate)
    encoder.open()
    probe = av.AudioFrame(format=ins.format.name, layout=ins.layout.name, samples=1024)
    for plane in probe.planes:
        plane.update(bytes(plane.buffer_size))
    probe.sample_rate = ins.rate or rate
    resampler = av.AudioResampler(format=encoder.format.name, layout=layout, rate=rate)
    packets, at = [], 0
    for frame in resampler.resample(probe):
        frame.pts, at = at, at + frame.samples
        packets += encoder.encode(frame)
    packets += encoder.encode(None)
    first = next((p.pts for p in packets if p.pts is not None), 0)
    return max(0, -first)


def _starts_hidden(container: Any, ins: Any) -> bool:
    """Whether the first packet of ``ins`` is one an edit list hides (a file cut with ``ffmpeg -ss
    T -c copy``): read from a second reader of the file, the first packet only."""
    import av

    try:
        with av.open(container.name) as again:
            for packet in again.demux(again.streams[ins.index]):
                if packet.size:
                    return bool(packet.is_discard)
    except (av.FFmpegError, OSError, ValueError) as err:
        log.debug("looking at the first audio packet of %s: %s", container.name, err)
    return False


def format_change(container: Any, ins: Any) -> str | None:
    """Where the sound of ``ins`` changes format (rate, channels or sample format) midway, said
    as ``44100 Hz mono -> 48000 Hz stereo``; None where it keeps one.

    Only formats whose timestamps may jump (MPEG-TS, MPEG-PS, FLV: FFmpeg's ``ts_discont``) are
    looked at: there files are joined (``cat a.ts b.ts``), and a stream's header gives its first
    part's format only. Their sound is decoded from a second reader of the file, to the first
    change (AAC decodes at hundreds of times real time; the demuxer reads the whole file)."""
    import av

    from livebokeh.sources.decoding import AVFMT_TS_DISCONT

    if not int(getattr(container.format, "flags", 0) or 0) & AVFMT_TS_DISCONT:
        return None
    first = None
    try:
        with av.open(container.name) as again:
            stream = again.streams[ins.index]
            for packet in again.demux(stream):
                try:
                    frames = packet.decode()
                except av.FFmpegError:
                    continue  # a damaged packet: it says nothing of the format
                for frame in frames:
                    fmt = (frame.sample_rate, frame.layout.name, frame.format.name)
                    if first is None:
                        first = fmt
                    elif fmt != first:
                        return f"{first[0]} Hz {first[1]} -> {fmt[0]} Hz {fmt[1]}"
    except (av.FFmpegError, OSError, ValueError) as err:
        log.debug("looking for format changes in %s: %s", container.name, err)
    return None


def _reason(err: BaseException) -> str:
    text = getattr(err, "strerror", None) or str(err)
    return text.splitlines()[0] if text else type(err).__name__
