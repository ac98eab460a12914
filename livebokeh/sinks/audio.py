"""The source's audio in a written video: copied when the container can hold it, else re-encoded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: Audio codecs each container can hold as they are; others are re-encoded.
AUDIO_COPY: dict[str, frozenset[str]] = {
    ".mp4": frozenset({"aac", "mp3", "alac"}),
    ".m4v": frozenset({"aac", "mp3", "alac"}),
    ".mov": frozenset({"aac", "mp3", "alac", "pcm_s16le", "pcm_s24le"}),
    ".mkv": frozenset({"aac", "mp3", "opus", "vorbis", "flac", "ac3", "eac3", "alac", "pcm_s16le", "pcm_s24le"}),
    ".webm": frozenset({"opus", "vorbis"}),
    ".avi": frozenset({"mp3", "pcm_s16le"}),
}


class AudioCopy:
    """The audio streams of a source file, copied or re-encoded into an output container."""

    def __init__(self, container: Any, source: str | Path, suffix: str) -> None:
        import av

        self._container = container
        self._src = av.open(str(source))
        self._streams: list[tuple[Any, Any, Any]] = []  # (input, output, encoder-or-None)
        for ins in self._src.streams.audio:
            name = ins.codec_context.name
            if name in AUDIO_COPY.get(suffix, frozenset()):
                out = container.add_stream_from_template(ins)
                self._streams.append((ins, out, None))
            else:
                codec = "libopus" if suffix == ".webm" else "aac"
                rate = 48000 if codec == "libopus" else (ins.rate or 48000)
                out = container.add_stream(codec, rate=rate)
                out.layout = ins.layout.name if ins.layout else "stereo"
                self._streams.append((ins, out, av.AudioResampler(format=out.format.name, layout=out.layout.name, rate=rate)))

    def describe(self) -> str:
        if not self._streams:
            return "no audio in the source"
        parts = [f"{i.codec_context.name} {'copied' if r is None else 're-encoded to ' + o.codec_context.name}"
                 for i, o, r in self._streams]
        return "audio: " + ", ".join(parts)

    def copy_until(self, end_s: float) -> None:
        """Audio up to ``end_s`` seconds of the source's start (all of it after a complete run)."""
        if not self._streams:
            return
        by_index = {i.index: (i, o, r) for i, o, r in self._streams}
        start = {i.index: (i.start_time or 0) * i.time_base for i, _, _ in self._streams}
        for packet in self._src.demux([i for i, _, _ in self._streams]):
            ins, out, resampler = by_index[packet.stream.index]
            if packet.pts is None:
                continue
            if float(packet.pts * ins.time_base - start[ins.index]) >= end_s:
                continue
            if resampler is None:
                packet.stream = out
                self._container.mux(packet)
            else:
                for frame in packet.decode():
                    for rf in resampler.resample(frame):
                        rf.pts = None
                        for p in out.encode(rf):
                            self._container.mux(p)
        for _, out, resampler in self._streams:
            if resampler is not None:
                for p in out.encode(None):
                    self._container.mux(p)

    def close(self) -> None:
        self._src.close()
