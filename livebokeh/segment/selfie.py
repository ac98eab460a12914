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

import importlib.util
import logging
from pathlib import Path

import cv2
import numpy as np

from livebokeh.errors import ModelError
from livebokeh.segment.base import SEGMENTERS, Segmenter, SegmenterOptions, shrink_for_model
from livebokeh.segment.options import MediaPipeOptions
from livebokeh.segment.tflite import Interpreters


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


@SEGMENTERS.register("mediapipe")
class SelfieSegmenter(Segmenter):
    """MediaPipe selfie segmentation (general or landscape model)."""

    Options = MediaPipeOptions

    def __init__(self, options: SegmenterOptions) -> None:
        super().__init__(options)
        self.model_path = bundled_model_path(self.own.model)
        self._interps = Interpreters(self.model_path, options.threads)
        inp = self._interps.first.get_input_details()[0]
        out = self._interps.first.get_output_details()[0]
        self._in_index = inp["index"]
        self._out_index = out["index"]
        _, h, w, _ = (int(v) for v in inp["shape"])
        self._size = (w, h)
        log.info("mediapipe: %s model, input %dx%d, runtime threads: %d", self.own.model, w, h, options.threads)

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
