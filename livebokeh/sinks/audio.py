"""The source's audio in a written video: copied when the container can hold it, else re-encoded.

The sound keeps the timing it had against the pictures: its packets are placed on the file's
one timeline (:class:`livebokeh.sources.decoding.Timeline`, the same the pictures' source
runs over the same packets), so a video that starts after its sound, or a file whose
timestamps jump (joined MPEG-TS), comes out in sync.

Audio is never a reason to lose the video: a stream that cannot be copied or re-encoded is left
out with one warning (naming the file and ``--no-audio``), and the video is written without it.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path
from typing import Any

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


class _Stream:
    """One source audio stream and where it goes: copied (``resampler`` None) or re-encoded."""

    def __init__(self, ins: Any, out: Any, resampler: Any = None) -> None:
        self.ins, self.out, self.resampler = ins, out, resampler
        self.failed = False
        self.next_pts: int | None = None  # re-encoded: the next sample's place, in samples of the output
        self.end = float("-inf")  # copied: where the sound written so far ends, in seconds


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
            self._src: Any = av.open(str(source))
        except (av.FFmpegError, OSError, ValueError) as err:
            self._src = None
            self._warn(f"its audio cannot be read ({_reason(err)})")
            return
        for ins in self._src.streams.audio:
            name = ins.codec_context.name
            try:
                if name in AUDIO_COPY.get(suffix, frozenset()):
                    self._streams.append(_Stream(ins, container.add_stream_from_template(ins)))
                else:
                    self._streams.append(self._reencoder(ins))
            except Exception as err:  # the video is written whatever the audio does
                log.debug("audio stream %d of %s", ins.index, source, exc_info=True)
                self._warn(f"its {name} audio (stream {ins.index}) cannot be written to {suffix} ({_reason(err)})")

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
                _try_chain(codec, rate, layout, ins)
            except Exception as err:  # noqa: BLE001 - the next layout may do
                errors.append(f"{layout}: {_reason(err)}")
                continue
            out = self._container.add_stream(codec, rate=rate)
            out.layout = layout
            return _Stream(ins, out, av.AudioResampler(format=out.format.name, layout=layout, rate=rate))
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
        parts = [f"{s.ins.codec_context.name} {'copied' if s.resampler is None else 're-encoded to ' + s.out.codec_context.name}"
                 for s in self._streams]
        return "audio: " + ", ".join(parts)

    def copy_until(self, end_s: float, final: bool = True) -> None:
        """Audio up to ``end_s`` seconds on the file's timeline (where the video's frames are).

        Called after each video frame (``final=False``) it muxes the sound that belongs before
        that frame and holds the first packet beyond it, so that sound and pictures reach the
        file side by side (a muxer waiting for audio buffers up to 10 s of video, which a killed
        run would lose). The last call (``final=True``) muxes what remains before ``end_s`` and
        flushes the encoders; later calls do nothing.

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
            if stream.resampler is None:
                length = float(packet.duration * stream.ins.time_base) if packet.duration else 0.0
                if start < stream.end - length / 2:
                    continue  # sound that overlaps what was written (after a discontinuity): left out
                stream.end = start + length
                origin = self._timeline.ticks(stream.ins.time_base)
                packet.pts -= origin
                if packet.dts is not None:
                    packet.dts -= origin
                packet.stream = stream.out
                self._container.mux(packet)
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
            if stream.resampler is not None:
                for p in self._encode(stream, [None]):
                    self._container.mux(p)

    def _encode(self, stream: _Stream, frames: list[Any]) -> list[Any]:
        """Encoded packets of decoded ``frames`` (``[None]`` flushes); none once the stream failed."""
        if stream.failed:
            return []
        try:
            packets = []
            rate = stream.out.rate
            for frame in frames:
                if frame is not None and frame.pts is not None:  # where this sound belongs
                    at = round(self._timeline.seconds(frame.pts, frame.time_base) * rate)
                    if stream.next_pts is None or at > stream.next_pts + rate // 10:
                        stream.next_pts = at  # the start, or after a gap (a discontinuity)
                    elif at + frame.samples * rate / (frame.sample_rate or rate) <= stream.next_pts:
                        continue  # wholly before what was written (overlap after a discontinuity)
                for rf in stream.resampler.resample(frame):
                    rf.pts, rf.time_base = stream.next_pts or 0, Fraction(1, stream.out.rate)
                    stream.next_pts = (stream.next_pts or 0) + rf.samples
                    packets.extend(stream.out.encode(rf))
            if frames == [None]:
                packets.extend(stream.out.encode(None))
            return packets
        except Exception as err:  # noqa: BLE001 - the video is written whatever the audio does
            self._drop(stream, err)
            return []

    def close(self) -> None:
        if self._src is not None:
            self._src.close()
            self._src = None


def _try_chain(codec: str, rate: int, layout: str, ins: Any) -> None:
    """Resample a silent frame shaped like ``ins``'s and encode it as the output stream would."""
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
    for frame in resampler.resample(probe):
        frame.pts = None
        encoder.encode(frame)


def _reason(err: BaseException) -> str:
    text = getattr(err, "strerror", None) or str(err)
    return text.splitlines()[0] if text else type(err).__name__
