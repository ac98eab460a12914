"""The monocular depth model: TCMonoDepth "small" in ONNX Runtime, one picture in, relative
inverse depth out.

TCMonoDepth (Li et al., "Enforcing Temporal Consistency in Video Depth Estimation", 2021; MIT)
was trained for depth that holds steady along a video. Its "small" network takes a 320x192 RGB
picture with values 0..255 as they are (no scaling, no mean) and gives a 320x192 map of relative
inverse depth: larger is nearer, with no metric scale and no fixed offset
(:mod:`livebokeh.depth.normalise` gives it one). The weights are 790 KB; a call costs about
12.5 ms of one CPU core here.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from typing import Any

import cv2
import numpy as np

from livebokeh.closing import Closeable
from livebokeh.errors import ModelError
from livebokeh.models import locate, runtime_source

log = logging.getLogger(__name__)

#: The model's name in ``models/`` (its manifest), the cache and ``livebokeh models``.
MODEL = "depth"
#: The network's fixed input ``(width, height)``.
INPUT_SIZE = (320, 192)
#: Long side of the depth maps given out (the frame's aspect ratio kept): the model's own width.
MAP_LONG_SIDE = 160


@dataclasses.dataclass(frozen=True)
class DepthOptions:
    """How the depth model runs.

    Attributes:
        weights: the ``.onnx`` file; empty = ``LIVEBOKEH_DEPTH_WEIGHTS``, the cache or a download.
        threads: ONNX Runtime's threads for one call (1: the pipeline's stages fill the cores;
            one thread also gives the same output on every run).
        download: fetch the weights when they are neither given nor cached (False: a one-line
            error saying how to get them).
    """

    weights: str = ""
    threads: int = 1
    download: bool = True

    def __post_init__(self) -> None:
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")


def map_size(frame_w: int, frame_h: int, long_side: int | None = None) -> tuple[int, int]:
    """``(width, height)`` of the depth map of a ``frame_w`` x ``frame_h`` frame: the frame's
    aspect ratio, ``long_side`` (default :data:`MAP_LONG_SIDE`) on its long side."""
    long_side = long_side or MAP_LONG_SIDE
    if frame_w >= frame_h:
        return long_side, max(2, round(long_side * frame_h / frame_w))
    return max(2, round(long_side * frame_w / frame_h)), long_side


def model_input(image: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` uint8 BGR -> the network's ``(1, 3, 192, 320)`` float32 RGB input, 0..255
    (the picture stretched to the input's shape, as the model was trained)."""
    from livebokeh.segment.base import shrink_for_model

    small = shrink_for_model(image, INPUT_SIZE)
    rgb = cv2.cvtColor(small, cv2.COLOR_BGR2RGB).astype(np.float32)
    return np.ascontiguousarray(rgb.transpose(2, 0, 1)[None])


class DepthEstimator(Closeable):
    """Runs the depth network on pictures (see the module text); a context manager, and
    :meth:`close` is safe twice. :meth:`estimate` may be called from several threads at once
    (ONNX Runtime's sessions allow it).

    Raises:
        ModelError: the weights are missing (offline without them), not an ONNX model, or not
            this network (one line saying what to do).
    """

    def __init__(self, options: DepthOptions | None = None) -> None:
        self.options = opts = options or DepthOptions()
        from livebokeh.interrupts import import_interruptible

        try:  # (a stop signal while it imports is an interrupt, not a missing runtime)
            ort = import_interruptible("onnxruntime")
        except ImportError:
            raise ModelError("--depth needs ONNX Runtime: run `pip install onnxruntime`") from None
        self.weights = locate(MODEL, opts.weights or None, download_missing=opts.download)
        so = ort.SessionOptions()
        so.intra_op_num_threads = opts.threads
        so.inter_op_num_threads = 1
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.log_severity_level = 3
        try:
            self._session: Any = ort.InferenceSession(runtime_source(self.weights), so,
                                                      providers=["CPUExecutionProvider"])
        except Exception as err:  # noqa: BLE001 - ONNX Runtime raises its own types for bad files
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise ModelError(f"{self.weights} is not a usable depth model ({first}); "
                             f"download it again with `livebokeh models download {MODEL}`") from None
        inputs = self._session.get_inputs()
        if len(inputs) != 1 or list(inputs[0].shape) != [1, 3, INPUT_SIZE[1], INPUT_SIZE[0]]:
            shapes = [list(i.shape) for i in inputs]
            raise ModelError(f"{self.weights} is not the TCMonoDepth model (inputs {shapes}, expected "
                             f"[1, 3, {INPUT_SIZE[1]}, {INPUT_SIZE[0]}]); "
                             f"download it again with `livebokeh models download {MODEL}`")
        self._input = inputs[0].name
        self._lock = threading.Lock()  # guards closing, not the calls
        # one run on a grey picture: weights that take the input but give no usable map fail here
        self._run(np.full((1, 3, INPUT_SIZE[1], INPUT_SIZE[0]), 128.0, np.float32))
        self.calls = 0
        log.info("depth: TCMonoDepth small, %s", self.weights)

    def estimate(self, image: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
        """Relative inverse depth of ``image`` (larger = nearer).

        Args:
            image: ``(H, W, 3)`` uint8 BGR.
            size: ``(w, h)`` of the map to return; default :func:`map_size` of the image.

        Returns:
            New ``(h, w)`` float32, no fixed scale or offset (normalise it with
            :mod:`livebokeh.depth.normalise`).
        """
        out = self._run(model_input(image))
        with self._lock:
            self.calls += 1
        h, w = image.shape[:2]
        size = size or map_size(w, h)
        interp = cv2.INTER_AREA if size[0] < INPUT_SIZE[0] and size[1] < INPUT_SIZE[1] else cv2.INTER_LINEAR
        return cv2.resize(out.astype(np.float32, copy=False), size, interpolation=interp)

    def _run(self, x: np.ndarray) -> np.ndarray:
        """The network on its input ``x``: the ``(192, 320)`` map, or :class:`ModelError` when the
        output is not one (another shape, values that are not numbers)."""
        session = self._session
        if session is None:
            raise RuntimeError("DepthEstimator is closed")
        try:
            out = session.run(None, {self._input: x})[0]
        except Exception as err:  # noqa: BLE001 - ONNX Runtime raises its own types
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise ModelError(f"{self.weights} failed on a picture ({first}); "
                             f"download it again with `livebokeh models download {MODEL}`") from None
        want = (1, 1, INPUT_SIZE[1], INPUT_SIZE[0])
        if getattr(out, "shape", None) != want:
            shape = "x".join(map(str, getattr(out, "shape", ()))) or "none"
            raise ModelError(f"{self.weights} gives a map of shape {shape}, not the TCMonoDepth model's "
                             f"{'x'.join(map(str, want))}; download it again with "
                             f"`livebokeh models download {MODEL}`, or pass another --depth-weights")
        if not np.isfinite(out).all():
            raise ModelError(f"{self.weights} gave a depth map with values that are not numbers (NaN or "
                             f"infinite): the weights are damaged or not the TCMonoDepth model; download them "
                             f"again with `livebokeh models download {MODEL}`, or run with --no-depth")
        return out[0, 0]

    def _release(self) -> None:
        with self._lock:
            self._session = None
