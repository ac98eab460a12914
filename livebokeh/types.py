"""The values that flow through the pipeline.

All are frozen dataclasses. Their arrays are marked read-only when created so that no stage can
change what another stage still reads; functions that transform images return new arrays.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from fractions import Fraction

import numpy as np


def _readonly(array: np.ndarray) -> np.ndarray:
    if array.flags.writeable:
        array.flags.writeable = False
    return array


@dataclass(frozen=True)
class Frame:
    """One captured picture.

    Attributes:
        image: ``(H, W, 3)`` uint8, BGR (OpenCV order), read-only.
        index: 0-based position in the stream (counts every frame the source delivered).
        capture_ns: ``time.monotonic_ns()`` when the frame was captured or decoded.
        time_s: presentation time in the source, in seconds from its start (files; None for
            cameras). Outputs keep it, so variable-frame-rate clips stay in sync with their audio.
        cut: the stream starts again here (on demand: a new session after an idle spell): no
            earlier frame's mask, smoothing or model memory describes this one.
    """

    image: np.ndarray
    index: int
    capture_ns: int
    time_s: float | None = None
    cut: bool = False

    def __post_init__(self) -> None:
        img = self.image
        if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(
                f"Frame.image must be an (H, W, 3) uint8 array, got "
                f"{getattr(img, 'shape', None)} {getattr(img, 'dtype', type(img).__name__)}"
            )
        _readonly(img)

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])


@dataclass(frozen=True)
class Mask:
    """A person probability or alpha map.

    Attributes:
        data: ``(H, W)`` float32 in ``[0, 1]`` (1 = person), read-only. Its size is the model's
            resolution before upsampling and the frame's after.
    """

    data: np.ndarray

    def __post_init__(self) -> None:
        d = self.data
        if not isinstance(d, np.ndarray) or d.dtype != np.float32 or d.ndim != 2:
            raise ValueError(
                f"Mask.data must be an (H, W) float32 array, got "
                f"{getattr(d, 'shape', None)} {getattr(d, 'dtype', type(d).__name__)}"
            )
        _readonly(d)

    @classmethod
    def from_array(cls, array: np.ndarray) -> Mask:
        """Build a mask from any real array, clipping to ``[0, 1]`` (uint8 is scaled by 1/255)."""
        a = np.asarray(array)
        if a.ndim == 3 and a.shape[2] == 1:
            a = a[:, :, 0]
        if a.dtype == np.uint8:
            data = a.astype(np.float32) * np.float32(1 / 255)
        else:
            data = np.clip(a, 0.0, 1.0).astype(np.float32, copy=False)  # clip made a new array already
        return cls(np.ascontiguousarray(data))

    def to_uint8(self) -> np.ndarray:
        """``(H, W)`` uint8, 0..255, rounded."""
        return (self.data * 255.0 + 0.5).astype(np.uint8)

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.data.shape[0]), int(self.data.shape[1]))


@dataclass(frozen=True)
class Composite:
    """A rendered frame, what every sink receives.

    Attributes:
        frame: the captured frame it was made from.
        image: ``(H, W, 3)`` uint8 BGR output, read-only.
        mask: the person alpha used for compositing, at the frame's size or at the refinement's
            smaller working size (same aspect ratio); :attr:`alpha` gives it at frame size.
        shown: the part of the frame the output shows, ``(left, top, width, height)`` in pixels
            (fractional: placed sub-pixel), when auto-framing cropped it (scaled to the frame's
            size); None: all of it. The mask covers exactly this part.
    """

    frame: Frame
    image: np.ndarray
    mask: Mask
    shown: tuple[float, float, float, float] | None = None

    def __post_init__(self) -> None:
        _readonly(self.image)

    @functools.cached_property
    def picture(self) -> np.ndarray:
        """The captured picture as the output shows it: the frame's, cropped and scaled to its
        size when framed (made on first use, only by sinks that want it: ``--alpha-output``)."""
        if self.shown is None:
            return self.frame.image
        import cv2

        from livebokeh.framing.crop import covering_box, cut, place

        size = (self.frame.width, self.frame.height)
        box = covering_box(self.shown, size)
        return place(cut(self.frame.image, box), box, self.shown, size, cv2.INTER_LINEAR)

    @functools.cached_property
    def alpha(self) -> Mask:
        """The person alpha at the frame's size (upsampled on first use, only by sinks that want it)."""
        h, w = self.image.shape[:2]
        if self.mask.shape == (h, w):
            return self.mask
        import cv2

        return Mask(cv2.resize(self.mask.data, (w, h), interpolation=cv2.INTER_LINEAR))


@dataclass(frozen=True)
class StreamInfo:
    """What a source delivers, known once it is open.

    Attributes:
        name: human-readable name (camera index, file name).
        width, height: frame size in pixels.
        fps: nominal frame rate (exact for files, e.g. ``Fraction(30000, 1001)``).
        live: True for sources that produce frames in real time (cameras, paced playback):
            the pipeline then drops stale frames to keep latency low.
        frame_count: frames in the source when known (files), else None.
        still: True for a single image.
        steady_fps: the finest steady rate the frames' times keep (FFmpeg's guessed frame rate:
            the rate of the dense parts of a variable-frame-rate file), when it differs from
            ``fps`` or is known; containers with one fixed rate (AVI) are written at it.
    """

    name: str
    width: int
    height: int
    fps: Fraction
    live: bool
    frame_count: int | None = None
    still: bool = False
    steady_fps: Fraction | None = None


@dataclass(frozen=True)
class SegmenterTraits:
    """What a segmenter declares about itself. The pipeline, the thread plan and the mask settings
    read these; nothing probes a segmenter for attributes.

    Attributes:
        stateful: the model keeps a memory from frame to frame (a recurrent network): the frames
            of one stream must reach it in order, from one thread, and :meth:`reset` forgets.
        heavy: one inference outweighs the rendering of a frame; a file pipeline may run a
            stateless heavy model on several threads at once (it must then be thread-safe).
        coarse_edges: the output is a coarse map upsampled (DeepLab's 33x33 logits): a guided
            filter against the frame helps its edges.
        matte: the output is an alpha matte (hair strands partly transparent), not a person
            probability: it is used as it is, not stretched between ``mask.low`` and ``mask.high``.
        roi_helps: a second pass on the region around a small person sharpens its edges.
        live_duty: in a live pipeline, the share of the time the model may run (1: as often
            as it can); it rests between runs for the rest, and masks are moved to the frames
            between by optical flow. A model too heavy for every frame on this device declares
            less, so that the renderer keeps the camera's rate with cores to spare.
    """

    stateful: bool = False
    heavy: bool = False
    coarse_edges: bool = False
    matte: bool = False
    roi_helps: bool = True
    live_duty: float = 1.0

