"""Video files through PyAV: H.264 in MP4 by default, the source's audio kept, nothing ever lost.

- The container follows the file ending (MP4/MOV/M4V/MKV: H.264 yuv420p; WebM: VP9; AVI: MJPEG;
  ``+faststart`` for MP4 and MOV so players start at once).
- Frames keep their source timestamps (variable-frame-rate phone clips stay in sync with their
  sound), on a 90 kHz clock. AVI holds one fixed rate (one tick per frame): there the stream runs
  at the input's steady rate (:attr:`~livebokeh.types.StreamInfo.steady_fps`), each frame on the
  tick nearest its time, a pause held by the muxer's empty (repeat) frames, and, as FFmpeg's
  ``-fps_mode cfr``, a frame that would land more than 0.6 of a tick late is left out rather than
  pushing the rest later.
- A long pause (a clip joined to one recorded an hour later, a still held for an hour) in MP4 or
  MOV: H.264's reordered (B-) frames around it would have composition offsets beyond what
  FFmpeg's MP4 reader takes (2^28 ticks, 50 minutes at 90 kHz), and it drops them all, showing
  frames out of order. At a pause of more than :data:`_GAP_TICKS` the encoder finishes its frames
  and a fresh one (the same settings, so the same parameter sets) goes on from a keyframe. A
  pause of more than :data:`_MAX_STEP_TICKS` (3.3 hours), longer than one MP4 sample can last,
  holds the picture with a repeat of it at each such step; so does AVI past 60000 frames (the
  most repeat frames FFmpeg's AVI muxer puts in one pause).
- The source's audio streams are copied unchanged when the container can hold them, and
  re-encoded otherwise (AAC; Opus for WebM); all of it, also what goes on after the last picture,
  when the whole input was written (see :mod:`livebokeh.sinks.audio`).
- Pictures with an odd width or height are padded to even sides (the last column or row
  repeated): chroma-subsampled video (yuv420p) is what browsers, QuickTime and hardware decoders
  play, and it needs even sides.
- The file is written under a temporary name and moved into place when complete (see
  :mod:`livebokeh.sinks.files`). If the run is interrupted or fails (a failing input, a full
  disk), the frames written so far are finalised into the first free ``NAME.partial.EXT``: a
  playable file, never in place of a complete result or any other file.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from livebokeh.errors import ConfigError, SinkError
from livebokeh.sinks.audio import AudioCopy
from livebokeh.sinks.base import SINKS, Sink, check_output_path
from livebokeh.sinks.files import (
    check_pattern,
    create_locked,
    keep_partial,
    publish,
    reason,
    temp_path,
)
from livebokeh.sources.base import IMAGE_WRITE_SUFFIXES
from livebokeh.sources.decoding import ffmpeg_name
from livebokeh.types import Composite, StreamInfo

log = logging.getLogger(__name__)

#: Presentation-time clock of written streams (exact for 24, 25, 30, 29.97, 60 fps ...).
TIME_BASE = Fraction(1, 90000)


@dataclass(frozen=True)
class Codec:
    """An encoder and its pixel format."""

    name: str
    pix_fmt: str
    options: tuple[tuple[str, str], ...] = ()

    @property
    def even_sides(self) -> bool:
        """The pixel format halves the chroma planes (4:2:0), so the picture's sides must be even."""
        return "420" in self.pix_fmt


_H264 = Codec("libx264", "yuv420p", (("crf", "18"), ("preset", "veryfast")))
_VP9 = Codec("libvpx-vp9", "yuv420p", (("crf", "30"), ("b", "0"), ("deadline", "realtime"), ("cpu-used", "8")))
_MJPEG = Codec("mjpeg", "yuvj420p", (("q", "3"),))
_FFV1_GRAY = Codec("ffv1", "gray")
#: A frame placed this many ticks or more after its own time is left out (AVI; FFmpeg's
#: ``-fps_mode cfr`` drops at the same point).
_LATE_TICKS = Fraction(3, 5)
#: A pause longer than this (ticks of :data:`TIME_BASE`: 12.4 minutes) restarts an H.264 encoder
#: in MP4/MOV: a few reordered frames around it stay far inside the 2^28 ticks of MP4's
#: composition offsets that FFmpeg reads.
_GAP_TICKS = 2**26
#: The longest time one MP4/MOV sample may last (ticks: 3.3 hours; FFmpeg reads its duration as a
#: signed 32-bit number): a longer pause holds the picture with a repeat of it at each such step.
_MAX_STEP_TICKS = 2**30
#: The most ticks (frames) FFmpeg's AVI muxer fills with repeat frames before one picture.
_AVI_MAX_SKIP = 60000

#: Container (by file ending) -> codec for colour video.
COLOR_CODECS: dict[str, Codec] = {
    ".mp4": _H264,
    ".m4v": _H264,
    ".mov": _H264,
    ".mkv": _H264,
    ".webm": _VP9,
    ".avi": _MJPEG,
}
#: Container -> codec for 8-bit masks (lossless where the container allows it).
MASK_CODECS: dict[str, Codec] = {**COLOR_CODECS, ".mkv": _FFV1_GRAY, ".avi": _FFV1_GRAY}
#: Container -> codec for video with an alpha channel (for editors and OBS).
ALPHA_CODECS: dict[str, Codec] = {
    ".mov": Codec("prores_ks", "yuva444p10le", (("profile", "4444"),)),
    ".mkv": Codec("ffv1", "bgra"),
    ".webm": Codec("libvpx-vp9", "yuva420p", (("crf", "30"), ("b", "0"), ("deadline", "good"))),
}

#: Image endings that keep an alpha channel (``--alpha-output`` patterns).
ALPHA_IMAGE_SUFFIXES = IMAGE_WRITE_SUFFIXES["--alpha-output"]
_FASTSTART = frozenset({".mp4", ".m4v", ".mov"})


class VideoWriter:
    """Writes ``(H, W, 3)`` BGR, ``(H, W)`` gray or ``(H, W, 4)`` BGRA uint8 frames.

    Args:
        path: the final file name; the container follows its ending.
        width, height, fps: the stream (``fps`` for frames without a timestamp, and as metadata).
        steady_fps: the input's steady rate (see :attr:`~livebokeh.types.StreamInfo.steady_fps`):
            the stream's rate and each frame's length where known (None: ``fps``); an AVI file
            has one tick per frame of it.
        kind: ``color``, ``gray`` (masks) or ``alpha`` (BGRA).
        crf, preset: H.264/VP9 quality (lower CRF = better, bigger) and x264 speed preset.
        audio_from: copy (or re-encode) the audio streams of this file.
        audio_tail: when closed complete, keep the sound that goes on after the last picture (a
            sound that starts late or outlasts the picture: the whole input was written); else
            the sound ends with the last picture (a part of the input: ``--max-frames``, a stop).
        overwrite: replace an existing file; otherwise an existing ``path`` is an error.
        threads: the encoder's own threads (0 = FFmpeg's choice: about one and a half per core);
            planned with the pipeline's (:attr:`livebokeh.threads.ThreadPlan.encoder`).

    :meth:`close` flushes, finalises and moves the file into place (``complete=True``) or keeps
    it under the first free ``NAME.partial.EXT`` (``complete=False``, or a write failed).
    """

    def __init__(self, path: str | Path, width: int, height: int, fps: Fraction, kind: str = "color",
                 crf: int | None = None, preset: str | None = None, audio_from: str | Path | None = None,
                 overwrite: bool = False, threads: int = 0, audio_tail: bool = False,
                 steady_fps: Fraction | None = None) -> None:
        import av

        self.path = check_output_path(path)
        self._audio_tail = audio_tail
        if self.path.exists() and not overwrite:
            raise SinkError(f"{self.path} exists; pass --overwrite to replace it, or choose another name")
        table = {"color": COLOR_CODECS, "gray": MASK_CODECS, "alpha": ALPHA_CODECS}[kind]
        suffix = self.path.suffix.lower()
        if suffix not in table:
            raise ConfigError(
                f"cannot write video {self.path.name}: unknown container {suffix or '(none)'}; "
                f"use one of {', '.join(table)}"
            )
        codec = table[suffix]
        pix_fmt = codec.pix_fmt
        # (bottom, right) rows and columns repeated to make the sides even
        self._pad = (height % 2, width % 2) if codec.even_sides else (0, 0)
        if any(self._pad):
            log.info("%s: %dx%d has an odd side; written as %dx%d (the edge repeated) so that every player plays it",
                     self.path.name, width, height, width + self._pad[1], height + self._pad[0])
        options = dict(codec.options)
        if codec.name == "ffv1" and width + self._pad[1] < 2:
            # FFV1's default level cuts each picture into slices, which a 1-pixel-wide one cannot
            # give ("Function not implemented"); level 1 (one slice, still lossless) can
            options["level"] = "1"
        if crf is not None and "crf" in options:
            options["crf"] = str(crf)
        if preset and codec.name == "libx264":
            options["preset"] = preset
        # each packet reaches the disk as it is muxed: a full disk is told at once, and a killed
        # run leaves what it wrote (Matroska: up to its last cluster, a few seconds)
        container_options = {"flush_packets": "1"}
        if suffix in _FASTSTART:
            container_options["movflags"] = "+faststart"
        self._tmp = temp_path(self.path)
        self._overwrite = overwrite
        try:
            self._lock = create_locked(self._tmp)  # held while this writer lives: the file is not stale
        except OSError as err:
            raise SinkError(f"cannot write {self.path}: {reason(err)}") from None
        # the stream's rate: the one the input's dense parts keep, where known (a variable-rate
        # file's average would stretch AVI's pictures, and make a frame last 10 s after a long pause)
        self._fps = Fraction(steady_fps or fps or 30)
        # AVI stores a fixed frame rate (its time base): there, one tick per frame
        self._one_rate = suffix == ".avi"
        self._time_base = 1 / self._fps if self._one_rate else TIME_BASE
        self._late = 0  # AVI: frames left out, as they fell on a tick already taken
        try:
            self._container = av.open(self._url(), mode="w", format=_format_of(suffix), options=container_options)
            stream = self._container.add_stream(codec.name, rate=self._fps, options=options)
            stream.width, stream.height, stream.pix_fmt = width + self._pad[1], height + self._pad[0], pix_fmt
            stream.codec_context.time_base = self._time_base
            if threads > 0:
                stream.codec_context.thread_count = threads
            stream.time_base = self._time_base
        except (av.FFmpegError, OSError, ValueError) as err:
            self._unlock()
            self._tmp.unlink(missing_ok=True)
            raise SinkError(f"cannot write {self.path}: {reason(err)}") from None
        self._stream: Any = stream
        self._encoder: Any = stream.codec_context  # replaced by a fresh one after a long pause
        self._restart_at_gaps = suffix in _FASTSTART and codec.name == "libx264"
        # the longest step between two pictures the container takes (None: any)
        self._max_step = _MAX_STEP_TICKS if suffix in _FASTSTART else _AVI_MAX_SKIP if self._one_rate else None
        self._held: Any = None  # MP4/MOV/AVI: the last picture, given again inside a long pause
        self._repeats = 0
        self._encoder_settings = (codec.name, options, threads)
        self._format = {"color": "bgr24", "gray": "gray", "alpha": "bgra"}[kind]
        self._size = (width, height)
        try:
            self._audio = AudioCopy(self._container, audio_from, suffix) if audio_from else None
        except BaseException:
            self._container.close()
            self._unlock()
            self._tmp.unlink(missing_ok=True)
            raise
        self.frames = 0
        self.last_time = 0.0
        self._last_pts = -1
        self._first_capture_ns: int | None = None
        self._closed = False
        self._failed = False  # a write failed: what was written is kept as a partial
        self._muxed = 0  # video packets in the file: the frames it holds
        self.result: Path | None = None
        log.info("writing %s: %dx%d @ %.4g fps, %s %s%s", self.path, width + self._pad[1], height + self._pad[0],
                 float(self._fps), codec.name,
                 pix_fmt, f", {self._audio.describe()}" if self._audio else "")

    def write(self, image: np.ndarray, time_s: float | None = None, capture_ns: int | None = None) -> None:
        """Encode one picture at ``time_s`` (seconds in the input), or, for a live source, at its
        ``capture_ns`` since the first one's (a dropped frame leaves its time empty: the
        recording keeps real time), or else at the next frame period."""
        import av

        h, w = image.shape[:2]
        if (w, h) != self._size:
            raise SinkError(f"{self.path.name}: frame {w}x{h} differs from the video's {self._size[0]}x{self._size[1]}")
        if any(self._pad):
            bottom, right = self._pad
            image = np.pad(image, ((0, bottom), (0, right)) + ((0, 0),) * (image.ndim - 2), mode="edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format=self._format)
        if time_s is None and capture_ns is not None:
            if self._first_capture_ns is None:
                self._first_capture_ns = capture_ns
            time_s = (capture_ns - self._first_capture_ns) / 1e9
        t = time_s if time_s is not None else self.frames / self._fps
        ideal = Fraction(t).limit_denominator(10**6) / self._time_base
        pts = max(self._last_pts + 1, round(ideal))
        if self._one_rate and self._last_pts >= 0 and pts - ideal >= _LATE_TICKS:
            self._late += 1  # its tick is taken: placed later, it would push the picture off its sound
            return
        try:
            while self._held is not None and pts - self._last_pts > self._max_step:
                # a pause longer than one step of the container: the picture shown is given again
                self._put(self._held, self._last_pts + self._max_step)
                self._repeats += 1
            self._put(frame, pts)
            if self._max_step is not None:
                self._held = frame
            self.frames += 1
            self.last_time = float(pts * self._time_base) + 1 / float(self._fps)
            if self._audio is not None:  # the sound goes in beside the pictures, not all at the end
                self._audio.copy_until(self.last_time, final=False)
        except (av.FFmpegError, OSError) as err:
            self._failed = True
            raise SinkError(f"writing {self.path} failed: {reason(err)}") from None

    def _put(self, frame: Any, pts: int) -> None:
        """Encode and mux ``frame`` at ``pts``."""
        if self._restart_at_gaps and self._last_pts >= 0 and pts - self._last_pts > _GAP_TICKS:
            self._restart_encoder()
        frame.pts, frame.time_base = pts, self._time_base
        for packet in self._encode(frame):
            self._mux(packet)
        self._last_pts = pts

    def _encode(self, frame: Any) -> list[Any]:
        """Packets of ``frame`` (None: the encoder's last ones), for this writer's stream.

        Each lasts one frame period where the encoder says nothing: the muxer takes the last
        one's length from it (MP4 otherwise gives it the average, 10 s after a 1000 s jump)."""
        own = self._encoder is self._stream.codec_context
        packets = list(self._stream.encode(frame) if own else self._encoder.encode(frame))
        period = max(1, round(1 / (self._fps * self._time_base)))
        for packet in packets:
            if not own:
                packet.stream, packet.time_base = self._stream, self._time_base
            if not packet.duration:
                packet.duration = period
        return packets

    def _restart_encoder(self) -> None:
        """Finish the encoder's frames and go on with a fresh one of the same settings (the first
        frame after the pause a keyframe, no frame reordered across it)."""
        import av

        for packet in self._encode(None):
            self._mux(packet)
        old = self._encoder
        name, options, threads = self._encoder_settings
        fresh = av.CodecContext.create(name, "w")
        fresh.width, fresh.height, fresh.pix_fmt = old.width, old.height, old.pix_fmt
        fresh.time_base, fresh.framerate, fresh.flags = old.time_base, old.framerate, old.flags
        fresh.options = dict(options)
        if threads > 0:
            fresh.thread_count = threads
        fresh.open()
        log.debug("%s: a pause of more than %d s; the encoder goes on afresh", self.path.name,
                  round(_GAP_TICKS * TIME_BASE))
        self._encoder = fresh

    def _mux(self, packet: Any) -> None:
        self._container.mux(packet)
        if packet.stream is self._stream and packet.size:
            self._muxed += 1

    def close(self, complete: bool = True) -> Path | None:
        """Finalise; returns where the file ended up (None if no frame was written).

        Safe twice. Whatever fails while finishing (the encoder's last packets, the audio, the
        container's index), the frames written so far are kept under a partial name; nothing
        but this writer's own temporary file is ever moved or removed.
        """
        if self._closed:
            return self.result
        self._closed = True
        import av

        failure = None  # what went wrong while finishing, when nothing was reported before
        if self._repeats:
            log.info("%s: a pause of more than %.4g hours: the picture before it is given again %d times to hold it",
                     self.path.name, float(self._max_step * self._time_base) / 3600, self._repeats)
        if self._late:
            log.warning("%s: %d frames left out: AVI has one rate (%.4g fps) and their ticks were taken by the "
                        "frames before (the input's rate varies); MP4 or MKV keeps every frame at its time",
                        self.path.name, self._late, float(self._fps))
        try:
            if not self._failed:
                for packet in self._encode(None):
                    self._mux(packet)
                if self._audio is not None and self.frames:
                    whole = complete and self._audio_tail
                    self._audio.copy_until(math.inf if whole else self.last_time)
        except (av.FFmpegError, OSError) as err:
            failure = f"finishing {self.path} failed: {reason(err)}"
        finally:
            try:
                self._container.close()
            except (av.FFmpegError, OSError) as err:
                failure = failure or f"finalising {self.path} failed: {reason(err)}"
            if self._audio is not None:
                self._audio.close()
            try:
                self.result = self._move_into_place(complete and not self._failed and failure is None,
                                                    exact=failure is None)
            finally:
                self._unlock()
        if failure is not None and not self._failed:
            self._failed = True
            kept = f"; what reached the disk is in {self.result} (it may not play to the end)" if self.result else ""
            raise SinkError(failure + kept)
        return self.result

    def _unlock(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def _url(self) -> str:
        """What FFmpeg opens: the temporary file by this process's descriptor of it where the system
        has them (Linux's /proc/self/fd), so that it finds the same file whatever happens to its
        folder (an MP4's index pass opens it again at the end: by its name, after the folder was
        moved, that failed and left a file with no index); else by its name."""
        if self._lock is not None:
            by_fd = f"/proc/self/fd/{self._lock}"
            try:
                if os.path.samefile(by_fd, self._tmp):
                    return "file:" + by_fd
            except OSError:
                pass
        return ffmpeg_name(self._tmp)

    def _moved_to(self) -> Path | None:
        """Where the temporary file is now when its folder was moved during the run (the name the
        system gives its open descriptor; Linux), or None."""
        if self._lock is None or os.path.lexists(self._tmp):
            return None
        try:
            now = Path(os.readlink(f"/proc/self/fd/{self._lock}"))
        except OSError:
            return None
        return now if now.is_file() else None

    def _move_into_place(self, complete: bool, exact: bool) -> Path | None:
        moved = self._moved_to()
        if moved is not None:  # its folder was moved or renamed: what reached the disk is kept where it went, named
            try:
                dest = keep_partial(moved, moved.parent / self.path.name)
            except OSError as err:
                raise SinkError(f"the folder of {self.path} was moved during the run; what this run wrote is in "
                                f"{moved} ({reason(err)})") from None
            what = (f"this run's whole result ({self._muxed} frames) is in {dest}" if complete
                    else f"what this run wrote is in {dest} (it may not play to the end)")
            raise SinkError(f"the folder of {self.path} was moved or renamed during the run; {what}")
        if not self._muxed:
            self._tmp.unlink(missing_ok=True)
            log.warning("no frame was written; %s was not created", self.path)
            return None
        try:
            if complete:
                dest = publish(self._tmp, self.path, self._overwrite)
                log.info("wrote %d frames to %s", self._muxed, dest)
                return dest
            dest = keep_partial(self._tmp, self.path)
        except OSError as err:
            raise SinkError(f"cannot keep {self.path}'s frames: {reason(err)}") from None
        if exact:
            log.warning("kept the %d frames written so far in %s", self._muxed, dest)
        return dest


def _format_of(suffix: str) -> str:
    return {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi"}[suffix]


def live_capture(item: Composite, live: bool) -> int | None:
    """The capture time that places ``item`` in a recording of a live source (None for files,
    whose frames carry their own time)."""
    return item.frame.capture_ns if live else None


@SINKS.register("video")
class VideoFileSink(Sink):
    """The rendered frames as a video file, with the source's audio (see the module text).

    Call :meth:`mark_complete` once the whole input went through; otherwise :meth:`close` keeps
    what was written as ``NAME.partial.EXT``. Complete, the file keeps all of the input's sound
    (also what goes on after the last picture) unless ``audio_tail`` is False (the run wrote
    only a part of the input: ``--max-frames``); a partial's sound ends with its last picture.
    """

    name = "video"

    def __init__(self, path: str | Path, info: StreamInfo, crf: int | None = None, preset: str | None = None,
                 audio_from: str | Path | None = None, overwrite: bool = False, threads: int = 0,
                 audio_tail: bool = True) -> None:
        self._live = info.live
        self._writer = VideoWriter(path, info.width, info.height, info.fps, crf=crf, preset=preset,
                                   audio_from=audio_from, overwrite=overwrite, threads=threads, audio_tail=audio_tail,
                                   steady_fps=info.steady_fps)
        self.result: Path | None = None

    @property
    def frames(self) -> int:
        return self._writer.frames

    def write(self, item: Composite) -> None:
        self._writer.write(item.image, item.frame.time_s, live_capture(item, self._live))

    def _release(self) -> None:
        self.result = self._writer.close(self.complete)


@SINKS.register("alpha")
class AlphaVideoSink(Sink):
    """The captured frames with the person alpha as a transparency channel, for editors and OBS.

    ``.mov``: ProRes 4444; ``.webm``: VP9 with alpha; ``.mkv``: lossless FFV1 BGRA (each with the
    source's sound from ``audio_from``); or a printf pattern of PNGs (``alpha/%05d.png``), one RGBA
    image per frame (named as :func:`~livebokeh.sinks.files.numbered` says). The colour channels hold the
    person's own colours where the alpha is partly transparent (``unmix``, see
    :func:`livebokeh.render.unmix_foreground`), so no rim of the old background shows over a new one.
    """

    name = "alpha"

    def __init__(self, path: str | Path, info: StreamInfo, overwrite: bool = False, unmix: bool = True,
                 audio_from: str | Path | None = None, audio_tail: bool = True) -> None:
        self._live = info.live
        from livebokeh.sinks.files import is_pattern
        from livebokeh.sinks.image import ImageSequence

        self.unmix = unmix
        self.path = Path(path)
        pattern = is_pattern(path)
        if pattern:
            check_pattern("--alpha-output", path)
            suffix = self.path.suffix.lower()
            if suffix not in ALPHA_IMAGE_SUFFIXES:
                raise ConfigError(f"--alpha-output {path}: {suffix or 'that ending'} images hold no transparency; "
                                f"use a PNG pattern such as {self.path.with_suffix('.png')}")
        self.overwrite = overwrite
        self._single = info.still and not pattern  # a photo: one RGBA image
        if self._single and self.path.suffix.lower() not in ALPHA_IMAGE_SUFFIXES:
            raise ConfigError(f"--alpha-output {path}: the input is an image; give an image ending that keeps "
                              f"transparency ({', '.join(sorted(ALPHA_IMAGE_SUFFIXES))})")
        self._sequence = ImageSequence("--alpha-output", path, overwrite) if pattern else None
        self._writer = None if pattern or self._single else VideoWriter(
            path, info.width, info.height, info.fps, kind="alpha", overwrite=overwrite, audio_from=audio_from,
            audio_tail=audio_tail, steady_fps=info.steady_fps)
        self.frames = 0

    def write(self, item: Composite) -> None:
        import cv2

        alpha = item.alpha
        image = item.picture
        if self.unmix:
            from livebokeh.render import unmix_foreground

            image = unmix_foreground(image, alpha.data)
        bgra = cv2.cvtColor(image, cv2.COLOR_BGR2BGRA)
        bgra[:, :, 3] = alpha.to_uint8()
        if self._writer is not None:
            self._writer.write(bgra, item.frame.time_s, live_capture(item, self._live))
        elif self._sequence is not None:
            self._sequence.write(item.frame.index, bgra)
        else:
            from livebokeh.sinks.image import write_image

            write_image(self.path, bgra, self.overwrite)
        self.frames += 1

    def _release(self) -> None:
        try:
            if self._writer is not None:
                self._writer.close(self.complete)
        finally:
            if self._sequence is not None:
                if self.complete:
                    self._sequence.mark_complete()
                self._sequence.close()
