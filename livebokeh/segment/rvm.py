"""The ``rvm`` backend: Robust Video Matting (MobileNetV3), a recurrent matting network, in ONNX Runtime.

RVM (Lin, Yang, Saleemi, Sengupta, WACV 2022) predicts an alpha matte, hair strands included,
and carries four hidden states from frame to frame: its memory of the stream. So this segmenter
is *stateful* (:class:`~livebokeh.types.SegmenterTraits`): one stream's frames reach it in order,
from one thread at a time, and its memory is forgotten on :meth:`RVMSegmenter.reset` and, by
itself, on a scene cut (the picture changing beyond anything measured within a shot).

- Input: the frame shrunk to as many pixels as a 16:9 picture ``RVMOptions.size`` wide (0:
  :data:`INPUT_LONG_SIDE` for files, a 1280x720 frame becomes 640x360 and a square one 480x480;
  :data:`LIVE_INPUT` live), RGB float32
  in ``[0, 1]``, NCHW. The network's backbone sees it at ``downsample_ratio``, the scale that
  leaves as many pixels as a 16:9 picture ``RVMOptions.backbone`` wide (0: :data:`BACKBONE_LONG_SIDE`,
  384x216, for files; :data:`LIVE_BACKBONE`, 320x180, live), and its refiner brings the alpha back
  to the input size.
- A fresh memory is warmed up: the first frame after a reset runs :data:`WARM_PASSES` times (once
  live, where the frames wait for the first mask and the runs after it refine it) (the
  recurrent states settle on it), so a photo, or the first frame of a clip, gets a finished matte.
- The mirrored view (``tta``) and :meth:`~livebokeh.segment.base.Segmenter.model_output` keep
  memories of their own, so neither disturbs the main one.
- The model also predicts the foreground colour; livebokeh does not use it: measured on the
  portraits composited over green and over a texture, the colour error at the edge of its 640 px
  prediction was larger than the frame's own colours, and livebokeh's background-removal estimate
  (:func:`livebokeh.render.unmix_foreground`) smaller still, for every backend.

Licence: RVM's code and weights are GPL-3.0. livebokeh is GPL-2.0-or-later, so livebokeh with
this backend is distributed under GPL-3.0.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from typing import Any

import cv2
import numpy as np

from livebokeh.errors import ModelError
from livebokeh.models import locate, runtime_source
from livebokeh.segment.base import SEGMENTERS, Segmenter, SegmenterOptions, shrink_for_model
from livebokeh.segment.options import RVMOptions
from livebokeh.types import SegmenterTraits


log = logging.getLogger(__name__)

#: Long side of the model input when ``RVMOptions.size`` is 0, for files: the refiner's resolution,
#: the same as the mask refinement's working size (measured on the stills: IoU as at 512 px).
INPUT_LONG_SIDE = 640
#: The same, live: as for files (the refiner is cheap: 3 ms more a call than at 512 px; the live
#: matte carries the model's detail between its runs, see :mod:`livebokeh.mask.tracker`).
LIVE_INPUT = INPUT_LONG_SIDE
#: Long side of the backbone's picture when ``RVMOptions.backbone`` is 0, for files (every frame goes
#: through the model) and live (:data:`LIVE_BACKBONE`); ``--quality best`` asks for 512. Measured
#: here (one thread, 1280x720 frames; IoU / Boundary IoU on the stills, on the portraits put over a
#: real scene): 256 px 43 ms a call, 0.889 / 0.599, 0.965 / 0.823; 320 px 64 ms, 0.906 / 0.622,
#: 0.978 / 0.866; 384 px 89 ms, 0.907 / 0.626, 0.979 / 0.876; 512 px 159 ms, 0.911 / 0.626, 0.984 / 0.902.
BACKBONE_LONG_SIDE = 384
#: Live, the model runs on some frames only (when the picture changes, at most 60% of the time)
#: and its result comes a few frames later, carried to the frame shown by the live matte: a
#: larger backbone sees more, a smaller one answers sooner. Simulated on the clips, the moving
#: portraits and a moving camera over stills (every photo a 1.5 s pan and zoom, the photo's mask
#: moved with it), against the file mode (640 px input, backbone 384, every frame: flicker 0.91 per
#: mille, moving portraits IoU 0.983, moving camera IoU / Boundary IoU 0.942 / 0.598): backbone
#: 256 at 512 px, the model on one frame in 3: 0.66, 0.959, 0.883 / 0.494; 320 at 640 px,
#: run when the picture asks: 0.73, 0.965, 0.934 / 0.562; 384 at 640 px, asked: 0.63, 0.952,
#: 0.933 / 0.550 (its runs take 3 frames, 320's 2).
LIVE_BACKBONE = 320
#: Runs of the first frame after a reset: the recurrent states settle on it (portraits' Boundary
#: IoU 0.796 with one run, 0.816 with three, at a 256 px backbone).
WARM_PASSES = 3
#: Side of the gray thumbnail the scene-cut test compares (the long side; the other follows).
CUT_THUMB = 32
#: Mean absolute change of the thumbnail (gray levels) above which a frame starts a new scene.
#: Within the 11 clips of ../shared/data no change passed 34 even three frames apart (fast motion
#: and duplicated frames in a webcam clip); half of the cuts between two clips exceed 53, and a
#: camera's "unavailable" placeholder (the last frame dimmed) 43 to 91.
CUT_LEVEL = 40.0
#: Share of the time the model may run in a live pipeline on a CPU (one runtime thread: 0.4 of
#: a core at most), the rest left to the renderer: at the live backbone (63-70 ms a call here)
#: at most about 6 runs a second, fewer while the picture is still
#: (:class:`livebokeh.pipeline.live.Pacing`); the frames between get the live matte. Measured
#: against 0.6 (about 8 runs a second on a talking head, 1.08 cores in all): the live matte
#: between runs is steadier with fewer of them (flicker on the data's clips 0.72 against 0.80 per
#: mille, on a schedule of the same shares), for 0.003 of IoU on fast-moving portraits and 0.009 of
#: Boundary IoU under a moving camera, and about 0.15 of a core less.
CPU_LIVE_DUTY = 0.4
#: The network's inputs, and the outputs livebokeh reads (the alpha and the four next states;
#: ``fgr``, the foreground colour, is not used: see the module text).
INPUTS = ("src", "r1i", "r2i", "r3i", "r4i", "downsample_ratio")
OUTPUTS = ("pha", "r1o", "r2o", "r3o", "r4o")
#: The picture ``(width, height)`` the weights are tried on when they load (a run of about a
#: millisecond): weights that give no usable alpha fail there.
PROBE_SIZE = (64, 36)
#: Fewest pixels on the short side of the backbone's picture. The network fails outright below 1
#: (a 16:9 picture at ``backbone`` 1 is 1x0: "Invalid input shape" in ONNX Runtime), and the
#: settings take 64 and up, where a 16:9 picture has 36; only a frame far from 16:9 (a 16x2048
#: strip) needs this floor.
MIN_BACKBONE_SIDE = 16


def providers() -> list[str]:
    """ONNX Runtime's execution providers to use: CUDA when ``onnxruntime-gpu`` sees a GPU, else the CPU."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available] or available


def import_onnxruntime() -> Any:
    from livebokeh.interrupts import import_interruptible

    try:  # (a stop signal while it imports is an interrupt, not a missing runtime)
        ort = import_interruptible("onnxruntime")
    except ImportError:
        raise ModelError("the rvm backend needs ONNX Runtime: run `pip install onnxruntime` "
                         "(or onnxruntime-gpu)") from None
    return ort


def pixel_scale(frame_w: int, frame_h: int, long_side: int) -> float:
    """The scale that gives a ``frame_w`` x ``frame_h`` picture as many pixels as a 16:9 one
    ``long_side`` wide (a 1280x720 frame and 640: 0.5), never above 1. The model's cost follows
    its pixels, so a square or upright frame costs what a 16:9 one does."""
    return min(1.0, long_side * (9 / 16) ** 0.5 / (frame_w * frame_h) ** 0.5)


def input_size(frame_w: int, frame_h: int, long_side: int) -> tuple[int, int]:
    """Model input ``(width, height)`` for a ``frame_w`` x ``frame_h`` frame: as many pixels as a
    16:9 picture ``long_side`` wide (:func:`pixel_scale`), the aspect ratio kept, each side at
    least 16 and even."""
    scale = pixel_scale(frame_w, frame_h, long_side)
    return max(16, 2 * round(frame_w * scale / 2)), max(16, 2 * round(frame_h * scale / 2))


def backbone_scale(size: tuple[int, int], backbone: int) -> float:
    """RVM's ``downsample_ratio`` for a model input of ``size`` (width, height): the picture its
    backbone sees has the pixels of a 16:9 one ``backbone`` wide (:func:`pixel_scale`), and at
    least :data:`MIN_BACKBONE_SIDE` pixels on its short side (or the whole input when smaller)."""
    floor = min(1.0, MIN_BACKBONE_SIDE / min(size))
    return max(pixel_scale(*size, backbone), floor)


def _thumbnail(small: np.ndarray) -> np.ndarray:
    h, w = small.shape[:2]
    size = (CUT_THUMB, max(1, round(CUT_THUMB * h / w))) if w >= h else (max(1, round(CUT_THUMB * w / h)), CUT_THUMB)
    gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    return cv2.resize(gray, size, interpolation=cv2.INTER_AREA).astype(np.float32)


#: Live: the backbone RVM falls back to under load (the live controller's cheaper level), when
#: its own is larger.
LIVE_CHEAP_BACKBONE = 256


@dataclasses.dataclass
class _Memory:
    """One view's recurrent states and what they were made from."""

    states: list[np.ndarray]
    size: tuple[int, int]
    thumb: np.ndarray
    ratio: float = 0.0


def state_shapes(size: tuple[int, int], ratio: float) -> list[tuple[int, int]]:
    """``(h, w)`` of RVM's four recurrent states for an input of ``size = (w, h)`` whose backbone
    sees it at ``ratio``: the backbone's picture (rounded down), halved (rounded up) 1 to 4 times."""
    h, w = int(size[1] * ratio + 1e-6), int(size[0] * ratio + 1e-6)
    shapes = []
    for _ in range(4):
        h, w = -(-h // 2), -(-w // 2)
        shapes.append((h, w))
    return shapes


def resized_states(states: list[np.ndarray], shapes: list[tuple[int, int]]) -> list[np.ndarray]:
    """Recurrent states ``(1, C, h, w)`` brought to other ``shapes`` (bilinear, per channel): the
    memory of a stream carried over a change of backbone size instead of being forgotten."""
    out = []
    for state, (h, w) in zip(states, shapes):
        if state.shape[2:] == (h, w) or state.shape[2:] == (1, 1):
            out.append(state)
            continue
        hwc = np.ascontiguousarray(state[0].transpose(1, 2, 0))
        moved = np.stack([cv2.resize(np.ascontiguousarray(hwc[..., c]), (w, h), interpolation=cv2.INTER_LINEAR)
                          for c in range(hwc.shape[2])])
        out.append(moved[None].astype(np.float32, copy=False))
    return out


@SEGMENTERS.register("rvm")
class RVMSegmenter(Segmenter):
    """Robust Video Matting, MobileNetV3 (see the module text)."""

    Options = RVMOptions

    def __init__(self, options: SegmenterOptions) -> None:
        super().__init__(options)
        ort = import_onnxruntime()
        own: RVMOptions = self.own
        self.weights = locate("rvm", own.weights or None)
        # what to do about a file that is no usable model: where it was named, not a download there
        if own.weights:
            self._fix = "point --rvm-weights (rvm.weights) at RVM's rvm_mobilenetv3_fp32.onnx, or leave it out"
        elif os.environ.get("LIVEBOKEH_RVM_WEIGHTS"):
            self._fix = "point LIVEBOKEH_RVM_WEIGHTS at RVM's rvm_mobilenetv3_fp32.onnx, or unset it"
        else:
            self._fix = "download it again with `livebokeh models download rvm`"
        self.providers = providers()
        self.device = "GPU" if self.providers[0] == "CUDAExecutionProvider" else "CPU"
        so = ort.SessionOptions()
        self.threads = options.threads if options.live else options.serial_threads
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        # no busy-waiting between operators: beside the pipeline's own threads it only burns CPU
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        self._run_options = ort.RunOptions()
        self._run_options.log_severity_level = 4  # a failing run is told once, as a ModelError
        try:
            self._session = ort.InferenceSession(runtime_source(self.weights), so, providers=self.providers)
        except Exception as err:  # noqa: BLE001 - ONNX Runtime raises its own types for bad files
            raise ModelError(f"{self.weights} is not a usable RVM model ({_first_line(err)}); "
                             f"{self._fix}") from None
        names = {i.name for i in self._session.get_inputs()}
        if not set(INPUTS) <= names:
            raise ModelError(f"{self.weights} is not an RVM model (inputs {sorted(names)}); {self._fix}")
        outputs = [o.name for o in self._session.get_outputs()]
        if not set(OUTPUTS) <= set(outputs):
            raise ModelError(f"{self.weights} takes RVM's inputs but does not give its outputs ({', '.join(OUTPUTS)}; "
                             f"it gives {', '.join(outputs) or 'none'}): it is no RVM MobileNetV3 export; {self._fix}")
        self.long_side = own.size or (LIVE_INPUT if options.live else INPUT_LONG_SIDE)
        self.backbone = own.backbone or (LIVE_BACKBONE if options.live else BACKBONE_LONG_SIDE)
        cheaper = LIVE_CHEAP_BACKBONE if options.live and self.backbone > LIVE_CHEAP_BACKBONE else None
        self._backbones = (self.backbone,) + ((cheaper,) if cheaper else ())
        # live, the first mask is what counts (every frame before it is all background) and the
        # runs after it refine it: one run instead of WARM_PASSES
        self._warm_passes = 1 if options.live else WARM_PASSES
        self.traits = SegmenterTraits(stateful=True, matte=True, roi_helps=False,
                                      live_duty=CPU_LIVE_DUTY if self.device == "CPU" else 1.0)
        frame = options.frame_size or (1280, 720)
        self._size = input_size(*frame, self.long_side)
        self._memories: dict[str, _Memory] = {}
        self._lock = threading.Lock()  # one call at a time: the memory follows one stream
        self.resets = 0
        self._probe()
        log.info("rvm: %s, input long side %d, backbone %d, runtime threads: %d", self.device, self.long_side,
                 self.backbone, self.threads)

    def _probe(self) -> None:
        """One run on a small grey picture with a fresh memory, so that weights that load but
        give no usable alpha (of another shape, not a number) fail here, in one line, not at the
        first frame or never (a NaN alpha is a white picture)."""
        size = PROBE_SIZE
        src = np.full((1, 3, size[1], size[0]), 0.5, np.float32)
        ratio = np.array([backbone_scale(size, self.backbone)], np.float32)
        self._call(src, [np.zeros((1, 1, 1, 1), np.float32)] * 4, ratio, size)

    @property
    def input_size(self) -> tuple[int, int]:
        """Model input ``(width, height)`` for the frames announced in the options (16:9 if none)."""
        return self._size

    def reset(self) -> None:
        with self._lock:
            self._memories.clear()

    def cost_levels(self) -> tuple[str, ...]:
        return tuple(f"backbone {b}" for b in self._backbones)

    def set_cost_level(self, level: int) -> None:
        backbone = self._backbones[max(0, min(level, len(self._backbones) - 1))]
        if backbone != self.backbone:
            log.info("rvm: backbone %d from the next frame (was %d)", backbone, self.backbone)
            self.backbone = backbone  # the memory is carried over to the new size on the next call

    def _segment(self, image: np.ndarray) -> np.ndarray:
        return self._run(image, "frame", warm=True)

    def _segment_mirrored(self, image: np.ndarray) -> np.ndarray:
        return self._run(np.ascontiguousarray(image[:, ::-1]), "mirror", warm=True)[:, ::-1]

    def model_output(self, image: np.ndarray) -> np.ndarray:
        return self._run(image, "raw", warm=False)

    def _run(self, image: np.ndarray, view: str, warm: bool) -> np.ndarray:
        """One model call on ``image`` with ``view``'s memory: ``(h, w)`` float32 alpha at the input size."""
        h, w = image.shape[:2]
        size = input_size(w, h, self.long_side)
        small = shrink_for_model(image, size)
        thumb = _thumbnail(small)
        x = cv2.cvtColor(small, cv2.COLOR_BGR2RGB).astype(np.float32)
        x *= np.float32(1 / 255)
        src = np.ascontiguousarray(x.transpose(2, 0, 1)[None])
        ratio = np.array([backbone_scale(size, self.backbone)], np.float32)
        with self._lock:
            if self._closed:
                raise RuntimeError("RVMSegmenter is closed")
            memory = self._memories.get(view)
            if memory is not None and (memory.size != size or float(np.abs(thumb - memory.thumb).mean()) > CUT_LEVEL):
                log.debug("rvm: new scene (or size); the %s memory starts again", view)
                memory = None
            passes = 1
            if memory is None:
                memory = _Memory([np.zeros((1, 1, 1, 1), np.float32)] * 4, size, thumb, float(ratio[0]))
                self.resets += view == "frame"
                passes = self._warm_passes if warm else 1
            elif memory.ratio != float(ratio[0]):  # another backbone size: the memory goes along
                memory.states = resized_states(memory.states, state_shapes(size, float(ratio[0])))
                memory.ratio = float(ratio[0])
            for _ in range(passes):
                try:
                    pha, memory.states = self._call(src, memory.states, ratio, size)
                except ModelError:
                    if memory.states[0].shape[2:] == (1, 1):
                        raise
                    log.debug("rvm: the memory could not follow the backbone's new size; it starts again")
                    pha, memory.states = self._call(src, [np.zeros((1, 1, 1, 1), np.float32)] * 4, ratio, size)
            memory.thumb = thumb
            self._memories[view] = memory
        return np.clip(pha[0, 0], 0.0, 1.0).astype(np.float32, copy=False)

    def _call(self, src: np.ndarray, states: list[np.ndarray], ratio: np.ndarray,
              size: tuple[int, int]) -> tuple[np.ndarray, list[np.ndarray]]:
        """One run of the network on an input of ``size = (w, h)``: the alpha and the new
        recurrent states (a failure, or an alpha of another shape, is a :class:`ModelError`)."""
        feeds = {"src": src, "r1i": states[0], "r2i": states[1], "r3i": states[2], "r4i": states[3],
                 "downsample_ratio": ratio}
        try:
            pha, *new = self._session.run(list(OUTPUTS), feeds, self._run_options)
        except Exception as err:  # noqa: BLE001 - ONNX Runtime raises its own types
            raise ModelError(f"{self.weights} failed on a {size[0]}x{size[1]} input ({_first_line(err)}); "
                             f"{self._fix}") from None
        if pha.shape != (1, 1, size[1], size[0]):
            raise ModelError(f"{self.weights} gave an alpha of shape {pha.shape} for a {size[0]}x{size[1]} "
                             f"input (RVM gives 1x1xHxW): it is no RVM MobileNetV3 export; {self._fix}")
        if not np.isfinite(pha).all():
            raise ModelError(f"{self.weights} gave an alpha that is not a number (NaN or infinite) for a "
                             f"{size[0]}x{size[1]} input: the weights are damaged or no RVM MobileNetV3 export; {self._fix}")
        return pha, new

    def _release(self) -> None:
        self._memories.clear()
        self._session = None


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__

