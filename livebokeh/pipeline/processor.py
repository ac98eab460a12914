"""The work done on every frame, whichever scheduler runs it: segment -> smooth -> refine -> render.

:class:`FrameProcessor` holds one stream's state (the smoother's, and through the segmenter a
recurrent model's memory) and says which of its steps may run side by side: the live
scheduler (:mod:`livebokeh.pipeline.live`) and the file scheduler
(:mod:`livebokeh.pipeline.files`) only decide when and on which thread each step runs.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import cv2
import numpy as np

from livebokeh.config import FramingConfig, MaskConfig
from livebokeh.controls import LiveControls
from livebokeh.errors import ConfigError
from livebokeh.framing import Crop, LookaheadFraming, Operator, observe
from livebokeh.framing.crop import covering_box, cut, place, resample, shown_rect
from livebokeh.mask import LookaheadSmoother, MaskSmoother, refine_alpha, resolve_auto, small_gray, upsample
from livebokeh.mask.refine import stretch
from livebokeh.mask.smoother import uncertainty
from livebokeh.mask.tracker import LiveMatte, Measurement, track_gray
from livebokeh.render import Background, render_bokeh
from livebokeh.types import Composite, Frame, Mask, SegmenterTraits

if TYPE_CHECKING:
    from livebokeh.depth import DepthTracker

log = logging.getLogger(__name__)


class SupportsSegment(Protocol):
    """What the pipeline needs of a segmenter: its declared traits and ``segment_frame`` (a
    model segments the frame's picture; given masks read the frame's index)."""

    traits: SegmenterTraits

    def segment_frame(self, frame: Frame) -> Mask: ...


@dataclass(frozen=True)
class Segmented:
    """A frame and its person mask at model resolution (the model's own, or smoothed).

    ``gray`` is the frame as uint8 gray, when optical flow needs it: at the mask's size (files),
    or at the live matte's tracking size (live: :func:`~livebokeh.mask.tracker.track_gray`);
    ``crop`` the part of the frame the output shows (auto-framing), None for all of it;
    ``cfg`` the mask settings resolved for the model that made the mask (live: a backend swapped
    in mid-stream brings its own); ``depth`` the background's normalised depth
    (:class:`livebokeh.depth.DepthTracker`) when depth is on; ``depth_raw`` the depth model's own
    map of the frame, from :meth:`FrameProcessor.segment` to :meth:`FrameProcessor.smooth`, when
    the model ran on it.
    """

    frame: Frame
    mask: Mask
    gray: Any = None
    crop: Crop | None = None
    cfg: MaskConfig | None = None
    depth: Any = None
    depth_raw: Any = None


class _CausalFraming:
    """Files without look-ahead: the live operator, one frame at a time (nothing held)."""

    holds = 0

    def __init__(self, cfg: FramingConfig, fps: float) -> None:
        self._operator = Operator(cfg, fps)

    def push(self, item: Segmented, obs: Any) -> list[tuple[Segmented, Crop]]:
        return [(item, self._operator.update(obs))]

    def flush(self) -> list[tuple[Segmented, Crop]]:
        return []


class FrameProcessor:
    """segment -> smooth -> refine -> render for one stream.

    Who may call what:

    - :meth:`segment`: from several threads at once when :attr:`segment_in_parallel` (a
      stateless model that declares itself heavy, and thread-safe with it); otherwise in stream
      order, one call at a time (a recurrent model's memory follows the stream).
    - :meth:`smooth` and :meth:`flush`: in stream order, one call at a time.
    - :meth:`render`: any thread, any order (pure, given the frame and its mask).
    - :meth:`follow` (live): from the rendering thread only.

    Args:
        segmenter: anything with ``traits`` and ``segment_frame(frame) -> Mask``.
        mask_cfg: mask settings; their automatic values are resolved here for the segmenter.
        controls: the live settings; :meth:`render` reads them for every frame.
        background: replacement plates for ``effect = "replace"``.
        live: a live stream (causal smoothing; a gray picture with every mask, for the flow).
        smoother: the temporal smoothing state; by default from ``mask_cfg`` (causal live, with
            ``mask_cfg.lookahead`` frames of look-ahead for files).
        framing: auto-framing settings; it runs while ``controls.framing`` is on (live: the
            operator in :meth:`follow`; files: in :meth:`smooth`, with ``framing.lookahead``).
        fps: the stream's frame rate (the framing's motion is in seconds).
        depth: the stream's depth maps, used while ``controls.rendered.depth`` is on (the blur
            grows with distance): the depth model runs in :meth:`segment` (files: every frame;
            live: when the tracker says it is due); its map is normalised in stream order (files:
            in :meth:`smooth`; live: in :meth:`segment`) and, live, carried to every frame in
            :meth:`follow` as the mask is. Not owned: the caller closes it.
    """

    def __init__(self, segmenter: SupportsSegment, mask_cfg: MaskConfig, controls: LiveControls,
                 background: Background | None = None, *, live: bool = False,
                 smoother: MaskSmoother | LookaheadSmoother | None = None,
                 framing: FramingConfig | None = None, fps: float = 30.0,
                 depth: DepthTracker | None = None) -> None:
        if live and isinstance(smoother, LookaheadSmoother):
            raise ValueError("a live stream cannot wait for frames to come: give it a causal MaskSmoother")
        self.segmenter = segmenter
        self.traits = segmenter.traits
        self.user_mask_cfg = mask_cfg
        self.mask_cfg = mc = resolve_auto(mask_cfg, segmenter.traits)
        self.controls = controls
        if background is not None and controls.background is None:
            controls.background = background  # the controls hold the one in use (it may change live)
        self.live = live
        if smoother is None:
            if not live and mc.lookahead > 0 and mc.smoothing > 0:
                smoother = LookaheadSmoother(mc.smoothing, mc.lookahead, mc.flow)
            else:
                smoother = MaskSmoother(mc.smoothing, mc.flow)
        self.smoother = smoother
        self._needs_gray = (mc.smoothing > 0 and mc.flow) or live
        #: live: the mask shown, carried from frame to frame between the model's results
        self.matte = LiveMatte(mc.smoothing, mc.flow) if live else None
        self._shown_cfg = mc  # live: the mask settings of the model whose masks are shown
        self.depth = depth
        self._depth_fresh = True  # the tracker holds nothing from before depth was last turned off
        self._depths: dict[int, Any] = {}  # files with look-ahead: each held frame's depth
        self._shown_depth = depth.shown() if depth is not None and live else None
        self.framing_cfg = framing or FramingConfig()
        self.fps = fps or 30.0
        self._operator: Operator | None = None  # live, while framing is on
        self._framer: LookaheadFraming[Segmented] | _CausalFraming | None = None  # files
        if controls.framing:
            log.info("auto-framing: up to %.3gx zoom%s", self.framing_cfg.zoom_max,
                     "" if live else f", the path smoothed over {self.framing_cfg.lookahead:g} s each side")
        if not live and controls.framing:
            fc = self.framing_cfg
            self._framer = LookaheadFraming(fc, self.fps) if fc.lookahead > 0 else _CausalFraming(fc, self.fps)

    @property
    def segment_in_parallel(self) -> bool:
        """:meth:`segment` may run on several threads at once (a stateless heavy model)."""
        return self.traits.heavy and not self.traits.stateful

    @property
    def holds(self) -> int:
        """Frames :meth:`smooth` may hold back before giving them out (its look-aheads)."""
        smoothing = self.smoother.lookahead if isinstance(self.smoother, LookaheadSmoother) else 0
        return smoothing + (self._framer.holds if self._framer is not None else 0)

    @property
    def depth_on(self) -> bool:
        """The blur follows depth now (a tracker is there, and the settings in effect ask for it:
        not while the live controller asks for a lighter render)."""
        r = self.controls.rendered
        return self.depth is not None and r.depth and r.effect == "blur"

    def segment(self, frame: Frame) -> Segmented:
        """The model's own mask of ``frame``, with the gray picture the flow needs (and, with
        depth on, the depth model's map when it is due)."""
        mask = self.segmenter.segment_frame(frame)
        gray = None
        if self.live:
            gray = track_gray(frame.image, mask.shape)
        elif self._needs_gray:
            h, w = mask.shape
            gray = small_gray(frame.image, (w, h))
        depth = depth_raw = None
        if self.depth is not None:
            depth_raw = self.depth.estimate(frame) if self.depth_on else None
            if self.live:  # live, segment is called in stream order (and smooth is not): track here
                depth, depth_raw = self._track_depth(frame, depth_raw, mask.data), None
        return Segmented(frame, mask, gray, cfg=self.mask_cfg, depth=depth, depth_raw=depth_raw)

    def use_segmenter(self, segmenter: SupportsSegment) -> SupportsSegment:
        """Live: another model from the next :meth:`segment` on (a backend or its size changed
        mid-stream); returns the one it replaces. Call from the thread that calls
        :meth:`segment`. Its results carry its own mask settings, and :meth:`follow` blends
        them into what is shown (nothing jumps)."""
        if not self.live:
            raise RuntimeError("a file is segmented by one model from its first frame to its last")
        try:
            mask_cfg = resolve_auto(self.user_mask_cfg, segmenter.traits)
        except ConfigError as err:  # a low or high given alone leaves the new model no room (MediaPipe's 0.4)
            log.warning("%s; the swapped-in model uses its automatic mask low and high", err)
            mask_cfg = resolve_auto(dataclasses.replace(self.user_mask_cfg, low=-1.0, high=-1.0), segmenter.traits)
        old, self.segmenter = self.segmenter, segmenter
        self.traits = segmenter.traits
        self.mask_cfg = mask_cfg
        return old

    def smooth(self, raw: Segmented) -> list[Segmented]:
        """``raw`` through the smoother (and, for files, the framing): the frames now final, in
        order (none or several with look-ahead, which holds a frame until it has seen the ones
        after it)."""
        depth = raw.depth if self.live else self._track_depth(raw.frame, raw.depth_raw, raw.mask.data)
        if isinstance(self.smoother, LookaheadSmoother):
            if depth is not None:
                self._depths[raw.frame.index] = depth
            smoothed = [Segmented(f, m, depth=self._depths.pop(f.index, None))
                        for f, m in self.smoother.push(raw.frame, raw.mask, raw.gray)]
        else:
            smoothed = [Segmented(raw.frame, self.smoother.update(raw.mask, raw.gray), raw.gray, depth=depth)]
        return self._framed(smoothed)

    def _track_depth(self, frame: Frame, raw: np.ndarray | None, mask: np.ndarray) -> Any:
        """In stream order: the normalised depth of ``frame``, from the depth model's ``raw`` map
        when it ran on it, else moved from the last (None with depth off)."""
        tracker = self.depth
        if tracker is None:
            return None
        if not self.depth_on:
            self._depth_fresh = False
            return None
        if not self._depth_fresh:  # turned on again: nothing from before may be moved here
            tracker.reset()
            self._depth_fresh = True
        return tracker.update(frame, raw, mask)

    def flush(self) -> list[Segmented]:
        """At the end of the stream: the frames :meth:`smooth` still holds, in order."""
        rest = []
        if isinstance(self.smoother, LookaheadSmoother):
            rest = self._framed([Segmented(f, m, depth=self._depths.pop(f.index, None))
                                 for f, m in self.smoother.flush()])
        if self._framer is not None:
            rest += [dataclasses.replace(s, crop=c) for s, c in self._framer.flush()]
        return rest

    def _framed(self, items: list[Segmented]) -> list[Segmented]:
        if self._framer is None:
            return items
        out = []
        for item in items:
            out += [dataclasses.replace(s, crop=c) for s, c in self._framer.push(item, observe(item.mask.data))]
        return out

    def restart_model(self) -> None:
        """The stream starts again (a frame with ``cut``): forget the smoothing and a recurrent
        model's memory. Call from the thread that calls :meth:`segment` and :meth:`smooth`."""
        self.smoother.reset()
        if self.depth is not None:
            self.depth.reset()
        if self.traits.stateful:
            self.segmenter.reset()  # a stateful segmenter declares reset (SegmenterTraits.stateful)

    @property
    def propagated(self) -> int:
        """Live frames whose mask was moved to them from an earlier frame's by optical flow."""
        return self.matte.moved if self.matte is not None else 0

    def restart_shown(self, index: int = 0) -> None:
        """The stream starts again at frame ``index``: forget what :meth:`follow` carried and
        framed. Call from the thread that calls :meth:`follow`."""
        if self.matte is not None:
            self.matte.reset(index)
        if self._shown_depth is not None:
            self._shown_depth.reset()
        self._operator = None

    def follow(self, result: Segmented | None, frame: Frame) -> Segmented:
        """Live: the mask of ``frame``: the live matte (:class:`~livebokeh.mask.tracker.LiveMatte`)
        carried to it by optical flow, with the newest model result blended in when it is new;
        before the first result, an empty mask (the whole picture is background, so the room
        never shows unblurred). Call from one thread, in frame order."""
        matte = self.matte
        if matte is None:
            raise RuntimeError("follow is for a live stream")
        if result is not None and result.cfg is not None and result.cfg != self._shown_cfg:
            self._shown_cfg = result.cfg  # another model (a swap, the controller's fallback)
            if matte.shape is not None and matte.shape != result.mask.shape:
                matte.convert((0.0, 1.0), (0.0, 1.0), result.mask.shape)  # what is shown goes on, at its size
        shape = matte.shape or (result.mask.shape if result is not None else None)
        # the live matte holds alphas (each model's output stretched as its mask settings say), so
        # that another model's masks blend into what is shown as alphas, not in its own terms
        cfg = dataclasses.replace(self._shown_cfg, low=0.0, high=1.0)
        data = gray = None
        if shape is not None:
            measured = None
            if result is not None:
                low, high = _levels(result.cfg or self._shown_cfg)
                own = result.mask.data
                if (low, high) == (0.0, 1.0):
                    measured = Measurement(own, result.gray, result.frame.index)
                else:  # the history weighed by how unsure the model itself was, not its stretched alpha
                    measured = Measurement(stretch(own, low, high), result.gray, result.frame.index, uncertainty(own))
            gray = track_gray(frame.image, shape)
            data = matte.update(gray, frame.index, measured)
        if data is None:
            h, w = max(1, frame.height // 8), max(1, frame.width // 8)
            return Segmented(frame, Mask(np.zeros((h, w), np.float32)), cfg=cfg)
        mask = Mask.from_array(data)  # the matte's terms clipped to an alpha
        depth = None
        if self._shown_depth is not None and self.depth_on:  # the depth carried as the mask is
            depth = self._shown_depth.update(gray, frame.index, result.depth, result.gray,
                                             result.frame.index) if result is not None else None
        elif self._shown_depth is not None:
            self._shown_depth.reset()  # turned on again, it waits for a map made after
        return Segmented(frame, mask, crop=self._operate(mask), cfg=cfg, depth=depth)

    def _operate(self, mask: Mask) -> Crop | None:
        """Live framing: the operator's crop for this mask while ``controls.framing`` is on."""
        if not self.controls.framing:
            self._operator = None  # turned on again, it starts from the whole picture
            self.controls.framing_state = "off"
            return None
        cfg = self.controls.framing_cfg  # changed live: the operator carries on from where it is
        if self._operator is None:
            self._operator = Operator(cfg, self.fps)
        elif self._operator.cfg is not cfg:
            self._operator.retune(cfg)
        obs = observe(mask.data)
        crop = self._operator.update(obs)
        self.controls.framing_state = (f"{crop.zoom:.2f}x at ({crop.cx:.2f}, {crop.cy:.2f})"
                                       + ("" if obs else ", nobody in sight"))
        return crop

    def render(self, item: Segmented) -> Composite:
        """The composite of ``item``'s frame: its mask refined against the picture at full size,
        then the effect the controls ask for (or the matte itself when ``show_mask``). With a
        crop, the same is done on the pixels around the crop only, at their own resolution, and
        the result resampled once to the frame's size (the output's size never changes).

        Live, settings changed while it was drawn are drawn at once (the frame again), so that a
        change never waits behind a frame drawn the old way."""
        seen = self.controls.changes
        composite = self._render_once(item)
        if self.live and self.controls.changes != seen:
            composite = self._render_once(item)
        return self.controls.present(composite)

    def _render_once(self, item: Segmented) -> Composite:
        crop = item.crop
        if crop is not None and crop.h < 0.999:
            return self._render_cropped(item, crop)
        frame = item.frame
        image, alpha = self._composite(frame.image, item.mask.data, frame.index, item.cfg, item.depth)
        return Composite(frame, image, Mask(alpha))

    def _composite(self, image: np.ndarray, mask: np.ndarray, index: int, cfg: MaskConfig | None = None,
                   depth: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(picture, alpha at the working size) for ``image`` and its ``mask`` (made by a model
        whose resolved mask settings are ``cfg``; default: the current model's), with its
        background's normalised ``depth`` (None: one blur for the whole background)."""
        h, w = image.shape[:2]
        alpha = refine_alpha(mask, image, cfg or self.mask_cfg, full_size=False)
        controls = self.controls
        if controls.show_mask:
            return cv2.cvtColor(Mask(upsample(alpha, (w, h))).to_uint8(), cv2.COLOR_GRAY2BGR), alpha
        render_cfg = controls.rendered
        plate = None
        background = controls.background
        if render_cfg.effect == "replace" and background is not None:
            plate = background.plate((w, h), index)
        return render_bokeh(image, alpha, render_cfg, plate, depth=depth if render_cfg.depth else None), alpha

    def _render_cropped(self, item: Segmented, crop: Crop) -> Composite:
        """The crop rendered on the whole pixels around it and placed sub-pixel exact at the
        frame's size (:func:`~livebokeh.framing.crop.place`): a slow pan glides instead of
        stepping a zoomed pixel at a time; the alpha is placed the same way, at its own density."""
        frame = item.frame
        size = (frame.width, frame.height)
        rect = shown_rect(crop, size)
        box = covering_box(rect, size)
        x, y, bw, bh = box
        mh, mw = item.mask.shape
        # the mask over the box, at the model's density (a small warp, sub-pixel exact)
        mask = resample(item.mask.data, (0.0, 0.0, float(frame.width), float(frame.height)),
                        (float(x), float(y), float(bw), float(bh)),
                        (max(2, round(bw * mw / frame.width)), max(2, round(bh * mh / frame.height))))
        depth = item.depth
        if depth is not None:  # the depth over the box, at its own density
            dh, dw = depth.shape
            depth = resample(depth, (0.0, 0.0, float(frame.width), float(frame.height)),
                             (float(x), float(y), float(bw), float(bh)),
                             (max(2, round(bw * dw / frame.width)), max(2, round(bh * dh / frame.height))))
        image, alpha = self._composite(cut(frame.image, box), mask, frame.index, item.cfg, depth)
        ah, aw = alpha.shape[:2]
        shown_alpha = place(alpha, box, rect, (max(2, round(rect[2] * aw / bw)), max(2, round(rect[3] * ah / bh))),
                            cv2.INTER_LINEAR)
        return Composite(frame, place(image, box, rect, size), Mask.from_array(shown_alpha), shown=rect)


def _levels(cfg: MaskConfig) -> tuple[float, float]:
    """The model outputs that map to alpha 0 and 1 under resolved mask settings ``cfg``."""
    return cfg.low, cfg.high
