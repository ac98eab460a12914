"""MediaPipe's selfie segmenter: the two ``.tflite`` models run with the LiteRT interpreter.

The files are Google's (Apache-2.0), the ones ``mediapipe==0.10.21`` shipped; current mediapipe
releases ship none. They come like every other model (:mod:`livebokeh.models`): from
``LIVEBOKEH_MODEL_DIR``, the per-user cache, or a checked download on first use (0.25 MB each;
``livebokeh models download mediapipe``). They run on LiteRT (``ai-edge-litert``, or TensorFlow's
``tf.lite`` when LiteRT is missing), not through mediapipe's Tasks API, which measured slower to
start and adds a larger install (README, Backends).

- ``general``: input 1x256x256x3, output 1x256x256x1.
- ``landscape``: input 1x144x256x3, output 1x144x256x1 (fewer pixels, made for 16:9).

Input is RGB scaled to ``[0, 1]`` (the whole frame resized to the model size, as MediaPipe's
graph does); the output is already a probability.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from livebokeh import models
from livebokeh.errors import ModelError
from livebokeh.segment.base import SEGMENTERS, Segmenter, SegmenterOptions, shrink_for_model
from livebokeh.segment.options import MediaPipeOptions
from livebokeh.segment.tflite import Interpreters


log = logging.getLogger(__name__)

#: ``--model`` -> the model's manifest (``models/mediapipe_selfie_*.toml``).
MODELS = {
    "general": "selfie_general",
    "landscape": "selfie_landscape",
}


def selfie_model_path(model: str, download_missing: bool = True) -> Path:
    """The ``.tflite`` file of selfie model ``model`` (``general`` or ``landscape``): found in
    ``LIVEBOKEH_MODEL_DIR`` or the cache, else downloaded (when ``download_missing``).

    Raises:
        ModelError: an unknown model, or the file cannot be had (one line saying what to do).
    """
    if model not in MODELS:
        raise ModelError(f"unknown MediaPipe model {model!r}; choose one of: {', '.join(MODELS)}")
    return models.locate(MODELS[model], download_missing=download_missing)


@SEGMENTERS.register("mediapipe")
class SelfieSegmenter(Segmenter):
    """MediaPipe selfie segmentation (general or landscape model)."""

    Options = MediaPipeOptions

    def __init__(self, options: SegmenterOptions) -> None:
        super().__init__(options)
        self.model_path = selfie_model_path(self.own.model)
        m = models.manifest(MODELS[self.own.model])
        fix = (f"it is not MediaPipe's {self.own.model} selfie model ({m.file}); download it again with "
               f"`livebokeh models download mediapipe`, or fix {m.env_var}")
        self._interps = Interpreters(self.model_path, options.threads, fix=fix)
        # the model's own size (the manifest's width x height): DeepLab's file (257x257x3 in, 21
        # classes out) or the other selfie model would run, and give a wrong mask, without a word
        w, h = m.input_size if all(m.input_size) else (-1, -1)
        self._interps.check_shapes([[1, h, w, 3]], [[1, h, w, 1]], fix)
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
