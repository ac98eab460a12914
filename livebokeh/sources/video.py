"""Video files, decoded with PyAV (FFmpeg)."""

from __future__ import annotations

import logging
import os
import re
import stat
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

from livebokeh.errors import SourceError, file_kind
from livebokeh.sources.base import SOURCES, Source
from livebokeh.sources.decoding import (
    DecodeFailed,
    Timeline,
    decode_pictures,
    ffmpeg_name,
    fit_picture,
    timeline_streams,
)
from livebokeh.sources.imageinfo import check_pixels
from livebokeh.types import Frame, StreamInfo

log = logging.getLogger(__name__)


@SOURCES.register("video")
class VideoFileSource(Source):
    """Every frame of a video file, in order.

    Args:
        path: the file.
        clock_ns: monotonic clock, injectable for tests.

    Frames come as fast as they are asked for and none is ever dropped; to play a file in real
    time as a camera, see :class:`livebokeh.sources.clip.ClipCamera`.
    """

    def __init__(self, path: str | Path, clock_ns: Any = time.monotonic_ns) -> None:
        self.path = Path(path)
        self._clock_ns = clock_ns
        self._container: Any = None
        self._frames: Iterator[Any] | None = None
        self._peeked: tuple[Any, float | None] | None = None
        self._index = 0
        self._decoded = 0
        self._last_end: float | None = None  # where the last frame shown ends, in the file's time
        self._fps = 30.0
        self._expected: int | None = None  # frames the header promises (for the truncation check)
        self._end: float | None = None  # where the video track should end, in the file's time
        self._end_is_own = True  # False: the end is the whole file's (its longest stream's)
        self._whole: bool | None = None  # what the file's structure says (see file_whole); None: it cannot tell
        self._timeline: Timeline | None = None
        self._size: tuple[int, int] | None = None  # (w, h) of every picture given: the first one's
        self._resized = False  # a picture of another size was met (and logged)
        self._damaged = 0  # packets that could not be decoded (passed over)
        self._damage: BaseException | None = None  # the first one's error
        self._damage_at = 0  # the frame it came after
        self._told_damage = False  # said (once for this source: a background loops, opening it again)

    def _open(self) -> StreamInfo:
        import av

        _check_readable(self.path)
        try:
            container = av.open(ffmpeg_name(self.path), mode="r")
        except (av.FFmpegError, OSError, ValueError) as err:
            claimed = _y4m_size(self.path)  # FFmpeg refuses a huge raw picture with a reason of its own
            if claimed is not None:
                check_pixels("input", self.path, *claimed)
            if _starts_ebml(self.path) and _ebml_whole(self.path) is False:  # cut before its first Cluster
                raise SourceError(f"{self.path} holds no picture that can be decoded: the file is truncated (cut "
                                  "before its first picture); pass a whole file") from None
            if _boxes_without_index(self.path):
                raise SourceError(f"{self.path} has no index (its moov box): the recording was cut off, or the file cut "
                                  "short, before the index written at its end; no frame can be read without it "
                                  "(record to .mkv where a recording may be cut off)") from None
            raise SourceError(f"cannot read {self.path} as a video ({_reason(err)}); is it a video file?") from None
        stream = video_stream(container)
        if stream is None:
            container.close()
            if _boxes_without_index(self.path):  # its index cut inside: no stream left to read
                raise SourceError(f"{self.path} has no index (its moov box is cut short): the file was cut before "
                                  "its end; no frame can be read without it")
            raise SourceError(f"{self.path} has no video stream; pass a video or image file")
        fps = frame_rate(container, stream)
        width, height = stream.codec_context.width, stream.codec_context.height
        if not width or not height:
            container.close()
            raise SourceError(f"{self.path}: the video stream has no picture size; the file may be corrupt")
        try:
            check_pixels("input", self.path, width, height)
        except SourceError:
            container.close()
            raise
        self._container = container
        self._timeline = Timeline(container, timeline_streams(container, stream), self.path.name)
        self._frames = decode_pictures(container, stream, self._timeline, self._passed_over)
        self._index = 0
        self._decoded = 0
        self._damaged, self._damage = 0, None
        self._last_end = None
        self._fps = float(fps)
        self._whole = file_whole(self.path, container)
        count = self._expected = frame_count(self.path, container, stream, cut=self._whole is False)
        self._end, self._end_is_own = expected_end(container, stream)
        if count is not None and count != int(stream.frames or 0):  # (frame_count counted what a whole file shows)
            self._end = None  # an edit list of several entries (an empty one, a cut): its end is not the track's;
            # the count of what it shows says whether every frame came
        # Peek at the first frame: phone clips carry a rotation that changes the picture's shape.
        self._size, self._resized = None, False
        self._peeked = self._decode_next()
        if self._peeked is not None:
            height, width = self._peeked[0].shape[:2]
        return StreamInfo(
            name=self.path.name,
            width=int(width),
            height=int(height),
            fps=Fraction(fps),
            live=False,
            frame_count=count,
            steady_fps=Fraction(stream.guessed_rate) if stream.guessed_rate else None,
        )

    def _decode_next(self) -> tuple[Any, float | None] | None:
        """Next decoded picture, upright and at the stream's size, with its time in seconds on the
        file's timeline (:mod:`livebokeh.sources.decoding`); None at the end."""
        try:
            vf = next(self._frames)
        except StopIteration:
            if self._decoded == 0 and self._damage is not None:
                raise SourceError(f"cannot decode {self.path} ({_reason(self._damage)}); the file may be corrupt") from None
            self._check_complete()
            return None
        except DecodeFailed as failed:
            self._check_complete()  # a file cut short says so; else it is corrupt here
            if self._decoded == 0:
                raise SourceError(f"cannot decode {self.path} ({_reason(failed.error)}); the file may be corrupt") from None
            raise SourceError(
                f"{self.path} is corrupt after frame {self._decoded} ({_reason(failed.error)}); the frames before "
                "were kept") from None
        image = self._conform(upright(to_bgr(vf), getattr(vf, "rotation", 0) or 0))
        t = self._timeline.seconds(vf.pts, vf.time_base)
        if t is not None:
            t = max(0.0, t)
        self._decoded += 1
        if vf.time is not None:
            shown = float(vf.duration * vf.time_base) if vf.duration and vf.time_base else 0.0
            self._last_end = float(vf.time) + (shown or 1 / (self._fps or 30.0))
        return image, t

    def _passed_over(self, err: BaseException) -> None:
        """A damaged packet was passed over (decoding goes on, as FFmpeg's does): said once."""
        self._damaged += 1
        if self._damage is None:
            self._damage, self._damage_at = err, self._decoded
        if not self._told_damage and self._whole is not False:  # (a cut file: its truncation is said at the end)
            self._told_damage = True
            log.warning("%s is corrupt after frame %d: a damaged packet cannot be decoded (%s); decoding goes on "
                        "and every frame the decoder gives past it is kept (they may show damage until the next "
                        "keyframe)", self.path, self._decoded, _reason(err))

    def _conform(self, image: Any) -> Any:
        """The stream's size is its first picture's; a picture of another size (the stream changes
        size midway) is scaled to fit it (logged once)."""
        h, w = image.shape[:2]
        if self._size is None:
            self._size = (w, h)
        elif (w, h) != self._size:
            if not self._resized:
                self._resized = True
                log.warning("%s: the picture changes size at frame %d (%dx%d, the video is %dx%d); such frames are "
                            "scaled to fit %dx%d, their aspect kept, with black bars", self.path.name, self._decoded,
                            w, h, *self._size, *self._size)
            image = fit_picture(image, self._size)
        return image

    def _check_complete(self) -> None:
        """At the end: did the file hold every frame it should?

        Where the file's structure tells (:func:`file_whole`: MP4/MOV boxes, a Matroska Segment,
        AVI's RIFF chunks), a cut one is truncated, and a whole one gave every packet unless a
        packet was damaged (a damaged index may hide the rest: then the count below decides).
        Elsewhere the count is the header's less the samples an MP4/MOV edit list hides (see
        :func:`frame_count`) and the damaged packets passed over (said when met); the time is
        where the video track ends, as its edit list shows it (see :func:`expected_end`), unless
        the timestamps jumped (joined files: the header's end is no longer where the timeline ends).
        """
        if self._decoded == 0:  # cut before (or inside) its first picture: nothing to keep, nothing done
            what = ("is corrupt: none of its pictures can be decoded" if self._damage is not None
                    else "holds no picture that can be decoded: the file is truncated or empty")
            raise SourceError(f"{self.path} {what}; pass a whole file")
        slack = 3 / (self._fps or 30.0)
        if not self._end_is_own:
            slack = max(slack, _OTHER_STREAMS_SLACK_S)  # another stream may rightly run on longer
        timed = self._timeline is None or self._timeline.jumps == 0
        counted_short = self._expected is not None and self._decoded + self._damaged < self._expected - 1
        if self._whole is False:
            short = True
        elif self._whole:  # (a header's count or end that says more is wrong: a long last frame, a count written wrong)
            short = self._damage is not None and counted_short
        else:
            short = counted_short or (
                timed and self._end is not None and self._last_end is not None and self._last_end + slack < self._end
            )
        gif_cut = not short and _gif_cut(self.path)
        short = short or gif_cut
        # in a cut file, the packet cut in two is damaged too: damage well before the end is said beside the cut
        damage = self._damage is not None and (self._whole is not False or self._damage_at < self._decoded - 4)
        if short and damage:  # its index may be damaged too: no more packets to read
            if self._whole is False:
                raise SourceError(
                    f"{self.path} is corrupt (a packet after frame {self._damage_at} could not be decoded) and cut "
                    f"short: it ends after {self._decoded} frames, inside the data its structure declares; the frames "
                    "before were kept")
            raise SourceError(
                f"{self.path} is corrupt: a packet after frame {self._damage_at} could not be decoded, and the "
                f"file ends after {self._decoded} frames, before its header says it should; the frames before were kept"
            )
        if short:
            where = ("before its closing block (the last picture is cut)" if gif_cut
                     else "inside the data its structure declares" if self._whole is False
                     else "before its header says it should")
            raise SourceError(
                f"{self.path} ends after {self._decoded} frames, {where}: the file is truncated; the frames before "
                "were kept"
            )

    def read(self) -> Frame | None:
        if self._frames is None:
            return None
        if self._peeked is not None:
            decoded, self._peeked = self._peeked, None
        else:
            decoded = self._decode_next()
        if decoded is None:
            return None
        image, time_s = decoded
        frame = Frame(image, self._index, self._clock_ns(), time_s)
        self._index += 1
        return frame

    def _release(self) -> None:
        if self._container is not None:
            self._container.close()
        self._container = None
        self._frames = None
        self._peeked = None


#: Truncation slack where the expected end is the whole file's, not the video track's own: the
#: sound of a clip may rightly run on a little after its last picture.
_OTHER_STREAMS_SLACK_S = 1.0


def _gif_cut(path: Path) -> bool:
    """Whether ``path`` is a GIF that ends before its trailer (``;``): cut short. A GIF's header
    counts no frames, so only its blocks tell (FFmpeg gives the cut frame half drawn, and says
    nothing). Bytes after the trailer, or a block this walk does not know, are no cut."""
    try:
        with open(path, "rb") as fh:
            if fh.read(6) not in (b"GIF87a", b"GIF89a"):  # (a video: nothing more is read)
                return False
            fh.seek(0)
            data = fh.read()
    except OSError:
        return False
    if len(data) < 13:
        return False
    pos = 13 + (3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0)  # the global colour table

    def sub_blocks(at: int) -> int:
        while at < len(data) and data[at]:
            at += data[at] + 1
        return at + 1  # past the 0-length block that ends them (beyond the end when cut)

    while pos < len(data):
        kind = data[pos]
        if kind == 0x3B:
            return False
        if kind == 0x21:  # an extension: its label, then sub-blocks
            pos = sub_blocks(pos + 2)
        elif kind == 0x2C:  # an image: its descriptor, a local colour table, the LZW code size, sub-blocks
            if pos + 10 > len(data):
                return True
            flags = data[pos + 9]
            pos = sub_blocks(pos + 10 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0) + 1)
        else:
            return False
    return True


def _y4m_size(path: Path) -> tuple[int, int] | None:
    """The picture size a YUV4MPEG2 file's header states (``YUV4MPEG2 W640 H480 ...``), or None."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(256).split(b"\n", 1)[0].split()
    except OSError:
        return None
    if not head or head[0] != b"YUV4MPEG2":
        return None
    sizes = {t[:1]: t[1:] for t in head[1:] if t[:1] in (b"W", b"H")}
    try:
        return int(sizes[b"W"]), int(sizes[b"H"])
    except (KeyError, ValueError):
        return None


def _check_readable(path: Path) -> None:
    """A one-line error unless ``path`` is a regular, non-empty file (never opens it: a FIFO
    would block until something writes to it)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise SourceError(f"input {path} does not exist; check the path") from None
    except OSError as err:
        raise SourceError(f"cannot read {path} ({_reason(err)}); check the path and its permissions") from None
    mode = info.st_mode
    if stat.S_ISDIR(mode):
        raise SourceError(f"input {path} is a folder, not a video file; pass a video or image file")
    if not stat.S_ISREG(mode):
        raise SourceError(
            f"input {path} is not a regular file ({file_kind(mode)}); save the video to a file and pass that "
            "(for a camera use --camera)"
        )
    if info.st_size == 0:
        raise SourceError(f"input {path} is empty (0 bytes); pass a video file")


def is_attached_picture(stream: Any) -> bool:
    """Cover art (an MP3's or M4A's picture): a 'video' stream of one still, not a video."""
    import av

    return bool(int(getattr(stream, "disposition", 0) or 0) & int(av.stream.Disposition.attached_pic))


def video_stream(container: Any) -> Any:
    """The main video stream of an open container, or None: the one FFmpeg's own command takes.

    Attached pictures (cover art) are skipped; of the others, a stream known to hold more than
    one picture goes before a one-picture stream (a cover or thumbnail that Matroska keeps as an
    ordinary MJPEG or PNG track), then the stream marked default, then the largest picture, then
    the longest; on a tie, the first."""
    candidates = [s for s in container.streams.video if not is_attached_picture(s)]
    if len(candidates) < 2:
        return candidates[0] if candidates else None
    best = max(range(len(candidates)), key=lambda i: (*_main_score(candidates[i]), -i))
    return candidates[best]


def _main_score(stream: Any) -> tuple[bool, bool, int, float]:
    """(more than one picture, marked default, picture area, seconds) of a video stream."""
    import av

    seconds = _stream_seconds(stream)
    frames = int(getattr(stream, "frames", 0) or 0)
    if not frames and seconds is not None:
        rate = getattr(stream, "average_rate", None) or getattr(stream, "guessed_rate", None)
        # a one-picture track lasts one frame period (Matroska: its block's duration)
        frames = int(seconds * float(rate) + 1e-6) if rate else 0
    several = frames != 1  # unknown (0): taken for a video
    default = bool(int(getattr(stream, "disposition", 0) or 0) & int(av.stream.Disposition.default))
    ctx = getattr(stream, "codec_context", None)
    area = int(getattr(ctx, "width", 0) or 0) * int(getattr(ctx, "height", 0) or 0)
    return several, default, area, seconds or 0.0


def _stream_seconds(stream: Any) -> float | None:
    """A stream's own length in seconds, from its header or (Matroska) its DURATION tag."""
    duration, base = getattr(stream, "duration", None), getattr(stream, "time_base", None)
    if duration and base:
        return float(duration * base)
    tag = (getattr(stream, "metadata", None) or {}).get("DURATION")
    if tag:
        try:
            h, m, s = tag.split(":")
            return int(h) * 3600 + int(m) * 60 + float(s)
        except ValueError:
            return None
    return None


#: FFmpeg's flag of formats whose packets carry no timestamps of their own (``AVFMT_NOTIMESTAMPS``):
#: raw H.264, HEVC and other elementary streams.
AVFMT_NOTIMESTAMPS = 0x0080


def frame_rate(container: Any, stream: Any) -> Fraction:
    """The stream's frame rate, as FFmpeg's own command takes it.

    A raw elementary stream (Annex-B H.264 or HEVC: ``.h264``, ``.hevc``) has no timestamps; its
    demuxer says 25 fps whatever the stream is, while the stream's own rate (its SPS timing) is
    what FFmpeg guesses (``av_guess_frame_rate``), and its frames are timed by it. Other files
    give their average rate."""
    raw = bool(int(getattr(container.format, "flags", 0) or 0) & AVFMT_NOTIMESTAMPS)
    rate = (stream.guessed_rate or stream.average_rate) if raw else (stream.average_rate or stream.guessed_rate)
    return Fraction(rate) if rate else Fraction(30)


def frame_count(path: Path, container: Any, stream: Any, cut: bool | None = None) -> int | None:
    """Frames a complete file delivers from ``stream``, when cheaply known, else None.

    An MP4/MOV header counts every sample, also those its edit list hides (an ``ffmpeg -ss T -c
    copy`` cut keeps the frames from the keyframe before the cut; phone trims and editors' exports
    do the same). Where the header's count disagrees with the track's edit-aware duration by more
    than a frame, or it starts late (an empty edit), the shown samples are counted by demuxing the
    packets without decoding them, unless the file is cut short (its header's count then):
    for a 2-minute 1080p H.264 cut (120 MB, 3600 samples) 68 ms from the page cache, 0.26 s
    cold; other files cost nothing. Files whose header has no count (Matroska, WebM) give None.
    """
    header = int(stream.frames or 0)
    if header <= 0:
        return None
    if "mov" not in container.format.name.split(","):
        return header  # only the MP4/MOV family has edit lists that hide samples
    seconds = _track_seconds(stream)
    rate = stream.average_rate
    if seconds is not None and rate and abs(header - seconds * float(rate)) <= 1 and not stream.start_time:
        return header
    if _boxes_cut(path) if cut is None else cut:  # a file cut short: what its index promises (``cut``: known)
        return header
    return _count_shown_packets(path, stream.index)


def _boxes_cut(path: Path) -> bool:
    """Whether an MP4/MOV file ends before one of its top-level boxes says it does (the media data
    box cut short: its index, first in the file, still lists every sample)."""
    return _boxes_whole(path) is False


#: The MP4/MOV top-level boxes that hold pictures or their index: only one of these running past
#: the file's end is a cut that loses frames. Any other box there (a `uuid`, a camera's `Xtra`), and
#: bytes after the last box that are none (an ID3 tag, padding, another program's), lose none.
_MEDIA_BOXES = frozenset({b"mdat", b"moov", b"moof"})


def _top_boxes(path: Path) -> tuple[list[bytes], bool | None]:
    """The kinds of an MP4/MOV file's top-level boxes, and whether they end where the file does
    (True), a box that holds pictures or their index (:data:`_MEDIA_BOXES`) runs past its end
    (False: cut short), or it cannot be told (None: anything else at the end, a tag after the
    boxes, a box 'to the end of the file', another file appended: the index's count decides)."""
    import struct

    kinds: list[bytes] = []
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            at = 0
            while at + 8 <= size:
                fh.seek(at)
                length, kind = struct.unpack(">I4s", fh.read(8))
                if length == 1:  # a 64-bit size follows
                    length = struct.unpack(">Q", fh.read(8))[0]
                elif length == 0:  # to the end of the file (a recording's media box not yet closed)
                    kinds.append(kind)
                    return kinds, None
                if length < 8:  # no box as this walk knows them: what follows the boxes, or no MP4
                    return kinds, None
                if kind == b"ftyp" and kinds:  # another file appended: the first one's boxes are what plays
                    return kinds, None
                if at + length > size and kind not in _MEDIA_BOXES:
                    # a box that holds no picture cut short, or bytes after the last box that are none
                    # (read as a size, they run past the end): whether a media box was to follow, the
                    # index's count decides
                    return kinds, None
                kinds.append(kind)
                at += length
            # past the end: a media box cut; 1-7 bytes left: a box's header cut, or a tail (the count decides)
            return kinds, (False if at > size else True if at == size else None)
    except (OSError, struct.error):
        return kinds, None


def _boxes_whole(path: Path) -> bool | None:
    return _top_boxes(path)[1]


def _boxes_without_index(path: Path) -> bool:
    """Whether ``path`` is an MP4/MOV file (it begins with a ``ftyp`` box) with no whole ``moov``
    box, the index an MP4 recording writes when it ends (none, or one cut short)."""
    kinds, whole = _top_boxes(path)
    return kinds[:1] == [b"ftyp"] and (b"moov" not in kinds or (whole is False and kinds[-1] == b"moov"))


def _vint(data: bytes, at: int, marker: bool) -> tuple[int, int] | None:
    """An EBML variable-length integer at ``data[at:]``: (its value, its width); the value keeps its
    length marker when ``marker`` (an element ID), and is -1 for 'unknown' (a size of all ones).
    None when it does not fit in ``data`` or is no vint."""
    if at >= len(data) or data[at] == 0:
        return None
    width = 9 - data[at].bit_length()
    if at + width > len(data):
        return None
    value = int.from_bytes(data[at:at + width], "big")
    if marker:
        return value, width
    value &= (1 << (7 * width)) - 1
    return (-1 if value == (1 << (7 * width)) - 1 else value), width


_EBML_HEADER, _SEGMENT, _CLUSTER, _VOID = 0x1A45DFA3, 0x18538067, 0x1F43B675, 0xEC
#: The elements a Segment holds (SeekHead, Info, Tracks, Cluster, Cues, Attachments, Chapters, Tags,
#: Void, CRC-32).
_SEGMENT_CHILDREN = frozenset({0x114D9B74, 0x1549A966, 0x1654AE6B, _CLUSTER, 0x1C53BB6B, 0x1941A469, 0x1043A770,
                               0x1254C367, _VOID, 0xBF})
#: The elements a Cluster holds (Timecode, Position, PrevSize, SimpleBlock, BlockGroup,
#: EncryptedBlock, SilentTracks, Void, CRC-32).
_CLUSTER_CHILDREN = frozenset({0xE7, 0xA7, 0xAB, 0xA3, 0xA0, 0xAF, 0x5854, _VOID, 0xBF})
#: The elements that hold pictures: only one of these running past the file's end loses frames.
_EBML_MEDIA = frozenset({_SEGMENT, _CLUSTER, 0xA3, 0xA0, 0xAF})


def _starts_ebml(path: Path) -> bool:
    """Whether ``path`` begins with an EBML header (Matroska, WebM)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == b"\x1a\x45\xdf\xa3"
    except OSError:
        return False


def _ebml_whole(path: Path) -> bool | None:
    """Whether a Matroska/WebM file's elements that hold pictures (a Segment of known size, a
    Cluster, a block) end inside the file (True), one runs past its end (False: cut short), or it
    cannot be told (None). A Segment of unknown size (a recording written to a pipe) is walked
    through its children, and a Cluster of unknown size (a browser's MediaRecorder) through its
    blocks; joined files Segment by Segment. What follows the elements and is none of them (a tag,
    padding), or an element holding no picture cut short, loses no frame."""
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            at, level = 0, "top"  # top; segment: among an unknown-size Segment's children; cluster: a Cluster's
            while at < size:
                fh.seek(at)
                head = fh.read(12)
                ident = _vint(head, 0, True)
                length = _vint(head, ident[1], False) if ident is not None else None
                if ident is None or length is None:
                    if at == 0:
                        return None
                    if level != "top" and at + len(head) >= size:  # a child's own header cut by the end
                        return False
                    return True if level == "top" else None  # what follows whole elements is no element
                if at == 0 and ident[0] != _EBML_HEADER:
                    return None
                if ident[0] in (_EBML_HEADER, _SEGMENT):
                    level = "top"  # a joined file's own header
                elif level == "cluster" and ident[0] not in _CLUSTER_CHILDREN:
                    level = "segment"  # the next Cluster, or the Cues after the last one
                known = {"top": (_EBML_HEADER, _SEGMENT, _VOID), "segment": _SEGMENT_CHILDREN,
                         "cluster": _CLUSTER_CHILDREN}[level]
                if ident[0] not in known:
                    return True if level == "top" else None
                start = at + ident[1] + length[1]
                if length[0] < 0:  # unknown size: a Segment's or a Cluster's children are walked
                    if ident[0] not in (_SEGMENT, _CLUSTER):
                        return None
                    at, level = start, ("segment" if ident[0] == _SEGMENT else "cluster")
                    continue
                if start + length[0] > size:
                    return False if ident[0] in _EBML_MEDIA else True
                at = start + length[0]
            return True
    except OSError:
        return None


def _riff_whole(path: Path) -> bool | None:
    """Whether an AVI file's RIFF chunks end where the file does (True), past it (False: cut
    short), or cannot be told (None: a size of 0, a recording not closed). (An OpenDML file cut
    exactly after a RIFF chunk looks whole: its super index tells, see :func:`_opendml_cut`.)"""
    import struct

    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            at = 0
            while at + 8 <= size:
                fh.seek(at)
                kind, length = struct.unpack("<4sI", fh.read(8))
                if kind != b"RIFF" or length < 4:  # (after whole chunks: a tag, padding; no RIFF cut short)
                    return None if at == 0 else True
                at += 8 + length + (length & 1)
            return at <= size + 1  # (a last pad byte may be left out)
    except (OSError, struct.error):
        return None


def _y4m_frame_bytes(head: list[bytes]) -> int | None:
    """The bytes of one picture of a YUV4MPEG2 file, from its header's tokens; None if unknown."""
    tags = {t[:1]: t[1:].decode("ascii", "replace") for t in head[1:]}
    try:
        w, h = int(tags[b"W"]), int(tags[b"H"])
    except (KeyError, ValueError):
        return None
    chroma = tags.get(b"C", "420jpeg")
    known = re.fullmatch(r"(420jpeg|420paldv|420mpeg2|420|422|444alpha|444|411|mono)p?(\d*)", chroma)
    if known is None:
        return None
    base = "420" if known[1].startswith("420") else known[1]
    deep = bool(known[2]) and int(known[2]) > 8  # 420p10, 444p16, mono16: two bytes a sample
    cw, ch = -(-w // 2), -(-h // 2)
    samples = {"420": w * h + 2 * cw * ch, "422": w * h + 2 * cw * h, "444": 3 * w * h, "444alpha": 4 * w * h,
               "mono": w * h, "411": w * h + 2 * -(-w // 4) * h}[base]
    return samples * (2 if deep else 1)


def _y4m_whole(path: Path) -> bool | None:
    """Whether a YUV4MPEG2 file ends after a whole picture (True), inside one (False: cut short),
    or cannot be told (None: a header or picture size this walk does not know)."""
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            line = fh.readline(4096)
            frame = _y4m_frame_bytes(line.split())
            if frame is None or not line.endswith(b"\n"):
                return None
            at = len(line)
            while at < size:
                fh.seek(at)
                marker = fh.readline(4096)
                if not marker.startswith(b"FRAME"):
                    return None
                if not marker.endswith(b"\n"):
                    return False  # cut inside a picture's own header
                at += len(marker) + frame
            return at == size
    except OSError:
        return None


def _ts_whole(path: Path) -> bool | None:
    """Whether an MPEG-TS file of 188-byte packets ends after a whole packet (None for other
    packet sizes: M2TS's 192, 204)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(188 * 3 + 1)
            size = os.fstat(fh.fileno()).st_size
    except OSError:
        return None
    if len(head) < 188 * 3 or any(head[i] != 0x47 for i in (0, 188, 376)):
        return None
    if size % 188 == 0:
        return True
    # a packet cut short starts where the last whole one ends, with a sync byte and the id (PID) of
    # a stream the packets before carry; other bytes there (a tag, text that starts with "G") are none
    end = size - size % 188
    start = max(0, end - 188 * 2048)  # the streams the last 2048 packets carry, the tables' own ids too
    try:
        with open(path, "rb") as fh:
            fh.seek(start)
            tail = fh.read(size - start)
    except OSError:
        return None
    cut = tail[-(size % 188):]
    whole = tail[:-(size % 188)]
    pids = {((whole[i + 1] & 0x1F) << 8) | whole[i + 2] for i in range(0, len(whole) - 187, 188) if whole[i] == 0x47}
    pids |= {0x0000, 0x0001, 0x0010, 0x0011, 0x0012, 0x0014, 0x1FFF}  # PAT, CAT, NIT, SDT, EIT, TDT, null
    if cut[:1] == b"\x47" and (len(cut) < 3 or (((cut[1] & 0x1F) << 8) | cut[2]) in pids):
        return False  # (a sync byte and at most one more: too little to be anything but a packet cut)
    return None


def _opendml_cut(path: Path) -> bool:
    """Whether an OpenDML AVI's super index (``indx``, in its header) points past the file's end:
    the file was cut after one of its RIFF chunks, which then all end inside it. (Its ``dmlh``
    frame count would tell too, but counts the empty chunks of dropped frames no decoder gives.)"""
    import struct

    try:
        with open(path, "rb") as fh:
            head = fh.read(1 << 16)
            size = os.fstat(fh.fileno()).st_size
    except OSError:
        return False
    at = 0
    while (at := head.find(b"indx", at)) >= 0:
        body = at + 8
        if body + 24 > len(head):
            return False
        longs, _sub, kind, entries = struct.unpack("<HBBI", head[body:body + 8])
        if kind == 0 and longs == 4:  # AVI_INDEX_OF_INDEXES: entries of (offset, size, duration)
            for n in range(entries):
                entry = body + 24 + 16 * n
                if entry + 12 > len(head):
                    break
                offset, length = struct.unpack("<QI", head[entry:entry + 12])
                if offset + length > size:
                    return True
        at += 4
    return False


def file_whole(path: Path, container: Any) -> bool | None:
    """What the file's structure says of its end: True, every part it declares is there (every
    packet was read: a header count or end time that says more is wrong, not a cut); False, it
    ends inside a part (cut short: a box, a Segment, a chunk, a Y4M picture, a 188-byte TS packet);
    None where its structure tells neither (a live recording's MKV, a whole MPEG-TS), and the
    header's count and end time are compared instead."""
    names = container.format.name.split(",")
    if "mov" in names:
        return _boxes_whole(path)
    if "matroska" in names or "webm" in names:
        return _ebml_whole(path)
    if "avi" in names:
        whole = _riff_whole(path)
        return False if whole and _opendml_cut(path) else whole
    if "yuv4mpegpipe" in names:
        return _y4m_whole(path)
    if "mpegts" in names:
        # (a whole one says nothing: a TS has no count or end, its timestamps decide as before)
        return False if _ts_whole(path) is False else None
    return None


def _count_shown_packets(path: Path, index: int) -> int:
    """Packets of stream ``index`` that the edit list shows (as far as the file can be read): the
    demuxer leaves out samples outside every edit (a cut in the middle) and flags those it reads
    only for the decoder's sake (the pre-roll before a cut). For a whole file only (a cut one
    counts what is left: :func:`frame_count` takes its header's count instead)."""
    import av

    shown = 0
    try:
        with av.open(ffmpeg_name(path), mode="r") as container:
            for packet in container.demux(container.streams[index]):
                shown += bool(packet.size and not packet.is_discard)
    except (av.FFmpegError, OSError, ValueError) as err:
        log.debug("counting the shown frames of %s stopped: %s", path, err)
    return shown


def _track_seconds(stream: Any) -> float | None:
    """The stream's own duration (edit-aware in MP4/MOV) in seconds, when its header has one."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return None


def expected_end(container: Any, stream: Any) -> tuple[float | None, bool]:
    """Where the video should end, in seconds of the file's time, and whether that is the video
    track's own end (else the whole file's, which another stream may set); (None, True) if unknown.

    MP4/MOV/AVI give the track's duration (as its edit list shows it); Matroska/WebM written by
    FFmpeg a per-track ``DURATION`` tag (the track's end time); else the file's duration, taken as
    an end time (Matroska's meaning; for files that start later it errs on the safe side).
    """
    seconds = _track_seconds(stream)
    if seconds is not None:
        start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        return start + seconds, True
    tagged = _parse_clock(stream.metadata.get("DURATION") or stream.metadata.get("duration"))
    if tagged:  # a recording that was cut off has it as 0
        return tagged, True
    if container.duration:
        others = any(
            s is not stream and s.type in ("audio", "video") and not is_attached_picture(s) for s in container.streams
        )
        return container.duration / 1e6, not others
    return None, True


def _parse_clock(text: str | None) -> float | None:
    """``00:01:02.500000000`` -> 62.5; None for anything else."""
    if not text:
        return None
    try:
        h, m, sec = text.strip().split(":")
        return int(h) * 3600 + int(m) * 60 + float(sec)
    except ValueError:
        return None


#: FFmpeg colour spaces that swscale converts with BT.601's matrix, as OpenCV's ``YUV2BGR_I420``
#: does: 2 unspecified (swscale's default), 5 BT470BG, 6 SMPTE170M.
_BT601 = frozenset({2, 5, 6})
#: FFmpeg's ``AVCOL_RANGE_JPEG``: full-range levels, which OpenCV's conversion does not expect.
_FULL_RANGE = 2


def to_bgr(frame: Any) -> Any:
    """A decoded PyAV video frame as a new ``(H, W, 3)`` uint8 BGR array.

    8-bit 4:2:0 BT.601 video-range pictures (H.264 and VP9 files' usual format) go through
    OpenCV's vectorised conversion, within 3 levels of swscale (rounding): reading a 1280x720
    H.264 file took 2.96 ms of CPU a frame this way against 3.85 ms (about the same at 1080p). Everything else (BT.709 or full-range levels, other pixel
    formats, odd sizes) goes through swscale, which honours the frame's colour tags.
    """
    import cv2

    if (
        frame.format.name == "yuv420p"
        and frame.colorspace in _BT601
        and frame.color_range != _FULL_RANGE
        and frame.width % 2 == 0
        and frame.height % 2 == 0
    ):
        return cv2.cvtColor(frame.to_ndarray(), cv2.COLOR_YUV2BGR_I420)
    return frame.to_ndarray(format="bgr24")


def upright(image: Any, rotation: float) -> Any:
    """Apply a display-matrix rotation (degrees counter-clockwise, as FFmpeg reports it) to a picture."""
    import cv2

    turn = round(-rotation / 90) % 4  # FFmpeg's autorotate: theta = -rotation
    if turn == 1:
        return cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE)
    if turn == 2:
        return cv2.rotate(image, cv2.ROTATE_180)
    if turn == 3:
        return cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return image


def _reason(err: BaseException) -> str:
    text = getattr(err, "strerror", None) or str(err)
    return text.splitlines()[0] if text else type(err).__name__
