"""MediaPipe's selfie segmenter, run from the ``.tflite`` files that ship in mediapipe 0.10.21.

The models are plain TFLite files inside the mediapipe wheel. They are located with
``importlib.util.find_spec`` (``import mediapipe`` would take seconds) and run with the LiteRT
interpreter (``ai-edge-litert``), or TensorFlow's ``tf.lite`` when LiteRT is missing.

- ``general``: input 1x256x256x3, output 1x256x256x1.
- ``landscape``: input 1x144x256x3, output 1x144x256x1 (fewer pixels, made for 16:9).

Input is RGB scaled to ``[0, 1]`` (the whole frame resized to the model size, as MediaPipe's
graph does); the output is already a probability.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from livebokeh.errors import ModelError
from livebokeh.segment.base import SEGMENTERS, Segmenter, SegmenterOptions, shrink_for_model

log = logging.getLogger(__name__)

MODEL_FILES = {
    "general": "selfie_segmentation.tflite",
    "landscape": "selfie_segmentation_landscape.tflite",
}


def bundled_model_path(model: str) -> Path:
    """Path of a selfie model inside the installed mediapipe package (not imported)."""
    if model not in MODEL_FILES:
        raise ModelError(f"unknown MediaPipe model {model!r}; choose one of: {', '.join(MODEL_FILES)}")
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("mediapipe is not installed; run `pip install mediapipe==0.10.21`")
    for root in spec.submodule_search_locations:
        path = Path(root) / "modules" / "selfie_segmentation" / MODEL_FILES[model]
        if path.is_file():
            return path
    raise ModelError(
        f"{MODEL_FILES[model]} is not inside the installed mediapipe; install mediapipe==0.10.21, "
        "the last release that ships the selfie models"
    )


#: fd 2 is one per process: threads silencing it take turns (re-entrant: the Keras path nests).
_STDERR_LOCK = threading.RLock()


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Hide what the native runtime prints on fd 2 while it loads ("Created TensorFlow Lite
    XNNPACK delegate for CPU."); Python-level errors still propagate as exceptions.

    Safe from several threads at once (two inference workers each make an interpreter): they
    take turns, so fd 2 is always given back as it was found."""
    with _STDERR_LOCK:
        try:
            fd = sys.stderr.fileno()
        except (AttributeError, OSError, ValueError):  # replaced stderr (pytest capture, IDEs)
            yield
            return
        saved = os.dup(fd)
        try:
            with open(os.devnull, "wb") as devnull:
                os.dup2(devnull.fileno(), fd)
            yield
        finally:
            os.dup2(saved, fd)
            os.close(saved)


def make_interpreter(path: Path, threads: int) -> Any:
    """A TFLite interpreter for ``path`` (LiteRT if installed, else tf.lite), tensors allocated."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # pragma: no cover - depends on the environment
        try:
            import tensorflow as tf
        except ImportError:
            raise ModelError("no TFLite runtime: run `pip install ai-edge-litert`") from None
        Interpreter = tf.lite.Interpreter
    try:
        with native_stderr_silenced():
            interp = Interpreter(model_path=str(path), num_threads=threads)
            interp.allocate_tensors()
    except (ValueError, RuntimeError) as err:
        raise ModelError(f"{path} is not a usable TFLite model ({err}); download it again") from None
    return interp


class Interpreters:
    """TFLite interpreters for one model file, one per calling thread: an interpreter must not run
    on two threads at once, so a segmenter built on this may be called from several threads (a
    file pipeline runs a heavy model on two). The first is made at once, so that a bad file fails
    when the segmenter is built, and goes to the first thread that asks (the thread that built it
    is often not the one that runs it); each other thread's is made on its first :meth:`get`.

    Args:
        path: the ``.tflite`` file.
        threads: the runtime's own threads for each interpreter.
    """

    def __init__(self, path: Path, threads: int) -> None:
        self.path, self.threads = path, threads
        self.first = make_interpreter(path, threads)  # also the source of the tensor details
        self._unclaimed = [self.first]
        self._lock = threading.Lock()
        self._local = threading.local()

    def get(self) -> Any:
        """The calling thread's interpreter."""
        interp = getattr(self._local, "interp", None)
        if interp is None:
            with self._lock:
                interp = self._unclaimed.pop() if self._unclaimed else None
            if interp is None:
                interp = make_interpreter(self.path, self.threads)
            self._local.interp = interp
        return interp


@SEGMENTERS.register("mediapipe")
class SelfieSegmenter(Segmenter):
    """MediaPipe selfie segmentation (general or landscape model)."""

    def __init__(self, options: SegmenterOptions) -> None:
        super().__init__(options)
        self.model_path = bundled_model_path(options.model)
        self._interps = Interpreters(self.model_path, options.inference_threads)
        inp = self._interps.first.get_input_details()[0]
        out = self._interps.first.get_output_details()[0]
        self._in_index = inp["index"]
        self._out_index = out["index"]
        _, h, w, _ = (int(v) for v in inp["shape"])
        self._size = (w, h)
        log.info("mediapipe: %s model, input %dx%d, %d threads", options.model, w, h, options.inference_threads)

    @property
    def input_size(self) -> tuple[int, int]:
        return self._size

    def _segment(self, image: np.ndarray) -> np.ndarray:
        small = shrink_for_model(image, self._size)
        rgb = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
        x = rgb.astype(np.float32)
        x *= np.float32(1 / 255)
        interp = self._interps.get()
        interp.set_tensor(self._in_index, x[None])
        interp.invoke()
        prob = interp.get_tensor(self._out_index)[0, :, :, 0]
        return np.clip(prob, 0.0, 1.0).astype(np.float32, copy=True)

    def _release(self) -> None:
        self._interps = None
