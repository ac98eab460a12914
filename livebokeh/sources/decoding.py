"""Decoding a media file the way FFmpeg's own command does: one timeline for its pictures and
its sound, every picture the decoder can give, and one picture size for the whole stream.

- **One timeline.** Every stream's time is counted from one origin, the earliest start of the
  video and audio streams (FFmpeg's ``start_time`` of the input): a video that starts 1 s after
  its sound starts 1 s after it in the output too, and the sound is not cut.
- **Discontinuities.** A timestamp that jumps back (concatenated MPEG-TS: ``cat a.ts b.ts``), or
  in MPEG-TS and other formats FFmpeg marks ``ts_discont`` jumps more than 10 s either way, is
  a discontinuity: from there on every stream is shifted by one offset so that the timeline goes
  on where it was (FFmpeg's ``-dts_delta_threshold``). The source of the pictures and the copier
  of the sound each run a :class:`Timeline` over the same packets in the same order, so they
  shift them alike.
- **Every picture.** Slice threading (errors come with the packet that caused them; frame
  threading loses the frames it holds when a packet of a truncated file fails). A damaged packet
  that cannot be decoded is passed over and decoding goes on, as FFmpeg's own command does (the
  pictures after it come as the decoder can make them); at the end of the file, or where the
  file cannot be read further, the decoder is flushed: the frames it holds (two, for H.264 with
  B-frames) are given too, as FFmpeg gives them.
- **One size.** A stream whose picture size changes midway (concatenated H.264 of two sizes)
  keeps every frame: the others are scaled to fit the first size, their aspect kept, with black
  bars (:func:`fit_picture`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


def ffmpeg_name(path: str | os.PathLike[str]) -> str:
    """``path`` as FFmpeg must be given a file: ``file:`` and the path with its links resolved. A
    bare name is read as an address when it starts like one (``10:30.mp4``, ``pipe:0``,
    ``file:a.mp4``): it was refused, read from standard input, or read from another file. Resolved
    as the system resolves it (``link/..`` is the link's target's parent, not the link's folder):
    FFmpeg writes and reads the very file the name gives."""
    return "file:" + os.path.realpath(os.fspath(path))

#: A jump of more than this many seconds is a discontinuity in formats FFmpeg marks ``ts_discont``
#: (MPEG-TS, MPEG-PS, FLV, ...), as FFmpeg's ``-dts_delta_threshold`` (10) has it.
DELTA_THRESHOLD_S = 10.0
#: A decoding time that goes back more than this is a discontinuity in any format (FFmpeg: 0.1 s).
BACKWARDS_S = 0.1
#: FFmpeg's flag of formats whose timestamps may jump (``AVFMT_TS_DISCONT``).
AVFMT_TS_DISCONT = 0x0200


def timeline_streams(container: Any, video: Any) -> list[Any]:
    """The streams on the timeline: the video stream read (None: none) and every audio stream."""
    return ([video] if video is not None else []) + list(container.streams.audio)


class Timeline:
    """Places a file's packets on one timeline (see the module text); call :meth:`place` on each
    packet of :attr:`streams`, in the order the demuxer gives them.

    Attributes:
        origin: seconds of the file's time that are 0 on the timeline.
        jumps: discontinuities found so far.
    """

    def __init__(self, container: Any, streams: list[Any], name: str = "") -> None:
        self.streams = streams
        self.name = name
        starts = [Fraction(s.start_time) * s.time_base for s in streams if s.start_time is not None]
        self.origin: Fraction = min(starts) if starts else Fraction(0)
        flags = int(getattr(container.format, "flags", 0) or 0)
        self.discontinuous = bool(flags & AVFMT_TS_DISCONT)
        self.jumps = 0
        self._offset = Fraction(0)  # seconds added to every timestamp from here on
        self._next: dict[int, Fraction] = {}  # stream -> where its next packet should start
        self._last: dict[int, Fraction] = {}  # stream -> its last packet's decoding time
        self._last_any: Fraction | None = None
        self._frame_s = {s.index: _frame_seconds(s) for s in streams}

    def place(self, packet: Any) -> None:
        """Shift ``packet``'s timestamps (in place) onto the timeline, first noting a
        discontinuity if it starts one."""
        tb = packet.time_base
        if tb is None:
            return
        # decoding times only (a B-frame's presentation time goes back); a packet an edit list hides
        # (the pre-roll before a cut in the middle, whose times go back) is no discontinuity
        if packet.dts is not None and not getattr(packet, "is_discard", False):
            self._detect(packet, packet.dts * tb + self._offset)
        shift = round(self._offset / tb)
        if shift:
            if packet.pts is not None:
                packet.pts += shift
            if packet.dts is not None:
                packet.dts += shift

    def _detect(self, packet: Any, t: Fraction) -> None:
        """Note a discontinuity at ``packet`` (decoding time ``t`` with the offset so far) and
        where the stream's next packet should start."""
        index = packet.stream.index
        expected = self._next.get(index)
        jump = None
        if expected is not None:
            delta = t - expected
            if (self.discontinuous and abs(delta) > DELTA_THRESHOLD_S) or t + Fraction(BACKWARDS_S) < self._last[index]:
                jump = delta
        elif self.discontinuous and self._last_any is not None and abs(t - self._last_any) > DELTA_THRESHOLD_S:
            jump = t - self._last_any  # a stream's first packet, far from the others'
        if jump is not None:
            self._offset -= jump
            t -= jump
            self.jumps += 1
            log.info("%s: the timestamps jump by %+.3f s at %.3f s (a discontinuity, as in joined files); the "
                     "timeline goes on from there", self.name or "input", float(jump), float(t - self.origin))
        length = packet.duration * packet.time_base if packet.duration else self._frame_s.get(index, Fraction(0))
        self._last[index] = t
        self._next[index] = t + length
        self._last_any = t

    def seconds(self, pts: int | None, time_base: Fraction | None) -> float | None:
        """A placed timestamp as seconds on the timeline (None when it has none)."""
        if pts is None or time_base is None:
            return None
        return float(pts * time_base - self.origin)

    def ticks(self, time_base: Fraction) -> int:
        """The origin in ticks of ``time_base``: subtract from a placed timestamp to put it on the timeline."""
        return round(self.origin / time_base)


def _frame_seconds(stream: Any) -> Fraction:
    """How long one packet of ``stream`` lasts when the packet does not say (one frame; one
    audio frame), 0 when unknown."""
    if stream.type == "video":
        rate = stream.average_rate or stream.guessed_rate
        return 1 / Fraction(rate) if rate else Fraction(0)
    cc = stream.codec_context
    if getattr(cc, "frame_size", 0) and getattr(cc, "sample_rate", 0):
        return Fraction(cc.frame_size, cc.sample_rate)
    return Fraction(0)


class DecodeFailed(Exception):
    """The file could not be read or decoded past a point; every frame before it was given.
    ``error`` is FFmpeg's."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def decode_pictures(container: Any, stream: Any, timeline: Timeline,
                    damaged: Callable[[BaseException], None] | None = None) -> Iterator[Any]:
    """Every picture of ``stream`` (PyAV video frames, timestamps on ``timeline``), in order.

    The other streams of the timeline are demuxed beside it (their packets only move the
    timeline). A packet that cannot be decoded is passed over (``damaged`` is told FFmpeg's
    error) and decoding goes on. At the end, or where the file cannot be read further, the
    decoder is flushed and the pictures it held are given; then a read failure raises
    :class:`DecodeFailed`.
    """
    import av

    stream.thread_type = "SLICE"  # errors come with their packet (frame threads lose the held frames)
    failure: BaseException | None = None
    packets = container.demux(timeline.streams)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            break
        except av.FFmpegError as err:
            failure = err
            break
        timeline.place(packet)
        if packet.stream.index != stream.index or packet.size == 0:
            continue  # another stream's, or the demuxer's own flush (done below)
        try:
            frames = stream.decode(packet)
        except av.FFmpegError as err:  # a damaged packet: its picture is lost, the next ones are not
            log.debug("a packet of stream %d cannot be decoded: %s", stream.index, err)
            if damaged is not None:
                damaged(err)
            continue
        yield from frames
    try:
        frames = stream.decode(None)
    except av.FFmpegError as err:  # already at its end
        log.debug("flushing the decoder: %s", err)
        frames = []
    for frame in frames:
        if frame.time_base is None:  # a flushed frame has no packet to take it from
            frame.time_base = stream.time_base
        yield frame
    if failure is not None:
        raise DecodeFailed(failure)


def fit_picture(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` scaled to fit inside ``size = (w, h)`` with its aspect kept, centred on black
    (a new ``(h, w, 3)`` array; ``image`` itself when it already has that size)."""
    import cv2

    w, h = size
    ih, iw = image.shape[:2]
    if (iw, ih) == (w, h):
        return image
    s = min(w / iw, h / ih)
    nw, nh = min(w, max(1, round(iw * s))), min(h, max(1, round(ih * s)))
    scaled = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    out = np.zeros((h, w, 3), np.uint8)
    x, y = (w - nw) // 2, (h - nh) // 2
    out[y:y + nh, x:x + nw] = scaled.reshape(nh, nw, -1)[:, :, :3]
    return out
