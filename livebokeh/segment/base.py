"""The segmenter interface and its registry."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import cv2
import numpy as np

from livebokeh.closing import Closeable
from livebokeh.registry import Registry
from livebokeh.segment.options import BACKEND_OPTIONS
from livebokeh.segment.passes import mirrored, roi_pass
from livebokeh.types import Frame, Mask, SegmenterTraits

if TYPE_CHECKING:
    from livebokeh.config import Config
    from livebokeh.threads import ThreadPlan

log = logging.getLogger(__name__)

def shrink_for_model(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A frame brought down to a model's input ``size = (w, h)`` (new array, same dtype).

    First an area average by the largest integer factor that keeps both sides at or above
    ``size`` (OpenCV's fast path), then bilinear for the rest. One ``INTER_AREA`` resize with a
    fractional factor (1280x720 to 256x256) costs 2.5 ms here, this 1.0 ms, and the selfie
    model's IoU on the 290 reference stills is the same (0.895 against 0.894).
    """
    h, w = image.shape[:2]
    k = min(w // size[0], h // size[1])
    if k >= 2:
        image = cv2.resize(image, (w // k, h // k), interpolation=cv2.INTER_AREA)
    if image.shape[1] == size[0] and image.shape[0] == size[1]:
        return image
    return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)


@dataclass(frozen=True)
class SegmenterOptions:
    """What every backend is built from: how it shares the machine and which passes run. A
    backend's own settings (MediaPipe's model, DeepLab's runtime and size, RVM's backbone, the
    weights files) are in ``own``, an instance of that backend's :attr:`Segmenter.Options`.

    Attributes:
        threads: the runtime's threads for one model run (planned once for the run by
            :func:`livebokeh.threads.plan_threads`; :meth:`from_config` takes the plan).
        serial_threads: the runtime's threads for a stateful model reading a file: it sees every
            frame in order, one run at a time, and the other steps wait on it, so it may use
            every core (:attr:`livebokeh.threads.ThreadPlan.ordered_model`).
        frame_size: ``(width, height)`` of the frames to come, when known.
        roi: a second pass on the region around the person, which sharpens edges when the
            person covers part of the frame (see :meth:`Segmenter.segment`).
        tta: also segment the mirrored picture and average (twice the work, steadier edges).
        live: the frames come from a live source (the model shares the cores with the renderer).
        own: the backend's own options (None: its defaults).
    """

    threads: int = 1
    serial_threads: int = 1
    frame_size: tuple[int, int] | None = None
    roi: bool = True
    tta: bool = False
    live: bool = True
    own: Any = None

    def __post_init__(self) -> None:
        if self.threads < 1 or self.serial_threads < 1:
            raise ValueError(f"threads must be planned numbers >= 1, got {self.threads}, {self.serial_threads}")

    @classmethod
    def from_config(cls, cfg: Config, frame_size: tuple[int, int] | None = None,
                    still: bool = False, live: bool = True, plan: ThreadPlan | None = None) -> SegmenterOptions:
        """The options the settings ``cfg`` describe for their backend (``cfg.segmenter.backend``,
        with its own section, such as ``cfg.rvm``), for frames of ``frame_size`` (``still``: a
        single picture, where ``tta = "auto"`` turns the mirrored pass on; ``live``: from a live
        source), with the runtime threads of ``plan`` (default: planned here from
        ``[segmenter] threads``)."""
        from livebokeh.threads import plan_threads

        sc = cfg.segmenter
        plan = plan or plan_threads(sc.threads)
        return cls(threads=plan.inference, serial_threads=plan.ordered_model, frame_size=frame_size, roi=sc.roi,
                   tta=sc.tta == "on" or (sc.tta == "auto" and still), live=live, own=getattr(cfg, sc.backend))


@dataclass(frozen=True)
class NoOptions:
    """A backend with no options of its own."""


class Segmenter(Closeable, ABC):
    """Turns a picture into a person-probability mask (or an alpha matte) at the model's resolution.

    What a backend is (stateful, heavy, matting ...) it declares in :attr:`traits`. A stateless
    segmenter gives each picture the same mask whatever came before: temporal smoothing lives in
    :class:`livebokeh.mask.MaskSmoother`. A stateful one (``traits.stateful``: a recurrent
    network) carries its memory from call to call, so one stream's frames must reach it in
    order from one thread; :meth:`reset` forgets (a new stream, a scene cut). Use it as a
    context manager or call :meth:`close` (safe to call twice). Heavy libraries are imported when
    the segmenter is built, not when its module is imported.
    """

    #: What this backend is; subclasses declare theirs (per instance where it depends on options).
    traits: SegmenterTraits = SegmenterTraits()
    #: The backend's own options: a frozen dataclass (:mod:`livebokeh.segment.options`, the schema
    #: of its settings section); subclasses declare theirs.
    Options: ClassVar[type[Any]] = NoOptions
    #: Files of the evaluation data (``../shared/data``) this model was trained on, by name: the
    #: benchmarks leave them out (livebokeh's own DeepLab-v3+ decoder declares its training files).
    trained_on: frozenset[str] = frozenset()
    #: Environment variables naming files this backend reads besides its weights (whose
    #: ``LIVEBOKEH_<NAME>_WEIGHTS`` the model manifests name): ``livebokeh service`` carries them.
    file_variables: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def missing_files(cls, own: Any) -> str | None:
        """What this machine lacks of the files ``own`` (this backend's options; None for the
        defaults) or :attr:`file_variables` name besides the model's weights (which
        :func:`livebokeh.models.locate` finds): a sentence with its fix, or None. Read in this
        process's environment and folder; cheap (nothing is loaded). Checked before a camera opens
        (exit 3) and by ``livebokeh service install``."""
        return None

    def __init__(self, options: SegmenterOptions) -> None:
        self.options = options
        own = options.own if options.own is not None else self.Options()
        if not isinstance(own, self.Options):
            raise TypeError(f"{type(self).__name__} takes {self.Options.__name__}, got {type(own).__name__}")
        self.own = own
        self._closed = False

    @property
    @abstractmethod
    def input_size(self) -> tuple[int, int]:
        """Model input as ``(width, height)``."""

    @abstractmethod
    def _segment(self, image: np.ndarray) -> np.ndarray:
        """Backend work: ``(H, W, 3)`` uint8 BGR -> ``(h, w)`` float32 person probability."""

    @property
    def output_size(self) -> tuple[int, int]:
        """Mask size ``(width, height)``: the model's (the ROI pass works at twice that, then shrinks)."""
        return self.input_size

    def segment_frame(self, frame: Frame) -> Mask:
        """:meth:`segment` of ``frame``'s picture (what the pipeline calls)."""
        return self.segment(frame.image)

    def segment(self, image: np.ndarray) -> Mask:
        """Segment one picture.

        With ``options.roi`` the model runs twice when it pays: once on the whole frame, then on
        the region around the person (with a margin) whenever that region is at least
        :data:`~livebokeh.segment.passes.ROI_MIN_ZOOM` times smaller than the frame, so the person's edge is seen at a
        higher resolution. The second result replaces the first inside the region. The output
        keeps the model's resolution (measured: storing it at twice that gained nothing). Both
        passes see only this frame: the result depends on nothing else.

        Args:
            image: ``(H, W, 3)`` uint8 BGR, any size; it is not modified.

        Returns:
            :class:`Mask` of :attr:`output_size` (the whole frame, stretched), float32 in ``[0, 1]``.
        """
        if self._closed:
            raise RuntimeError(f"{type(self).__name__} is closed")
        first = self._infer(image)
        if not (self.options.roi and self.traits.roi_helps):
            return Mask(first)
        return Mask(self._roi_pass(image, first))

    def _infer(self, image: np.ndarray) -> np.ndarray:
        """One model pass, or two (the picture and its mirror image, averaged) with ``tta``."""
        p = self._segment(image)
        if self.options.tta:
            p = (p + self._segment_mirrored(image)) * np.float32(0.5)
        return p

    def _segment_mirrored(self, image: np.ndarray) -> np.ndarray:
        """The mask of the mirrored picture, mirrored back (a stateful model keeps this view's own memory)."""
        return mirrored(self._segment, image)

    def model_output(self, image: np.ndarray) -> np.ndarray:
        """The model's own output for the whole frame, one pass, no ROI: ``(h, w)`` float32.

        For a stateful model this is its plain recurrence on the frames given here (kept apart
        from :meth:`segment`'s memory, so the two may be called on the same stream)."""
        return self._segment(image)

    def reset(self) -> None:
        """Forget what earlier frames taught a stateful model (nothing to do for a stateless one)."""

    def cost_levels(self) -> tuple[str, ...]:
        """Live: the settings this backend can run at, dearest (its configured one) first, each
        cheaper than the one before, named for the log (RVM: its backbone sizes). The live
        controller (:mod:`livebokeh.pipeline.controller`) steps through them under load."""
        return ()

    def set_cost_level(self, level: int) -> None:
        """Run at ``cost_levels()[level]`` from the next call on (call from the thread that
        segments); a backend without levels ignores it."""

    def _roi_pass(self, image: np.ndarray, first: np.ndarray) -> np.ndarray:
        return roi_pass(image, first, self._infer, self.output_size)



#: Listed in the settings' order (:data:`livebokeh.segment.options.BACKEND_OPTIONS`), whichever
#: backend module was imported first.
SEGMENTERS: Registry[type[Segmenter]] = Registry("segmenter backend", tuple(BACKEND_OPTIONS))


def create_segmenter(backend: str, options: SegmenterOptions) -> Segmenter:
    """Build the registered backend ``backend``."""
    from livebokeh.segment import load_backends

    load_backends()
    cls = SEGMENTERS.get(backend)
    seg = cls(options)
    log.debug("segmenter: %s, input %dx%d", backend, *seg.input_size)
    return seg
