"""The ``deeplab`` backend: DeepLab-v3+ MobileNetV2, or DeepLab-v3 as Google released it.

Networks:

- ``v3+`` (when the decoder's weights are there, as they are in the package): Google's released
  MobileNetV2 backbone and ASPP with livebokeh's own v3+ decoder, trained for two classes,
  background and person (:mod:`livebokeh.segment.deeplab.decoder`, ``models/deeplabv3plus.md``).
- ``v3`` (``decoder = "off"``, or no decoder weights): the release as it is, 21 PASCAL VOC classes,
  person = class 15.

Runtimes:

- ``tflite``: Google's file in the LiteRT interpreter (XNNPACK). Fixed 257x257 input. The fastest
  on a CPU (measured: see the README's backend table). Always installed.
- ``keras``: the Keras model of :mod:`livebokeh.segment.deeplab.model` with the same weights, as a
  ``tf.function`` — on the GPU when TensorFlow sees one, at any input size (513x513 by default on a
  GPU; a 16:9 input with ``aspect = "frame"``). float32 by default: on an H200 at batch 1 mixed
  float16 was no faster (the model is small and launch-bound); ``precision = "mixed"`` turns it on.
  Needs TensorFlow, the ``tensorflow`` extra (``pip install 'livebokeh[tensorflow]'``); without it
  asking for this runtime stops with one line naming the extra.
- ``auto``: ``keras`` when TensorFlow sees a GPU; otherwise ``tflite`` for a 257x257 input and
  ``keras`` for other sizes. Without TensorFlow it is ``tflite`` at 257x257, and a warning names the
  extra when another size was asked for. TensorFlow is imported only when it is used (it takes
  seconds); with no NVIDIA driver on the machine, or no TensorFlow, it is not imported at all.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import os
import platform
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from livebokeh.errors import ModelError, SetupError
from livebokeh.models import Manifest, locate, manifest
from livebokeh.segment.base import SEGMENTERS, Segmenter, SegmenterOptions
from livebokeh.segment.options import DeepLabOptions
from livebokeh.segment.tflite import Interpreters, native_stderr_silenced
from livebokeh.types import SegmenterTraits

if TYPE_CHECKING:
    from livebokeh.segment.deeplab.decoder import Decoder

log = logging.getLogger(__name__)

CPU_SIZE = 257
GPU_SIZE = 513

#: How to get the ``keras`` runtime's TensorFlow (the extra of pyproject.toml).
TENSORFLOW_EXTRA = "pip install 'livebokeh[tensorflow]'"
NO_TENSORFLOW = ("DeepLab's keras runtime (a TensorFlow graph: GPUs, sizes other than 257x257) needs TensorFlow, "
                 f"which is not installed: {TENSORFLOW_EXTRA}")


def tensorflow_installed() -> bool:
    """Whether TensorFlow can be imported (looked up, not imported)."""
    return importlib.util.find_spec("tensorflow") is not None


def nvidia_driver_present() -> bool:
    """Cheap check (no TensorFlow import) for an NVIDIA driver, a precondition of a TF GPU."""
    if platform.system() == "Darwin":
        return False
    return Path("/proc/driver/nvidia/version").exists() or shutil.which("nvidia-smi") is not None


def tf_gpus() -> list[Any]:
    """GPUs TensorFlow sees (imports TensorFlow only where a driver exists; none without TensorFlow)."""
    if not nvidia_driver_present() or not tensorflow_installed():
        return []
    tf = import_tensorflow()
    return tf.config.list_physical_devices("GPU")


def import_tensorflow():
    """``import tensorflow`` without the C++ start-up chatter on stderr (CUDA factories, CPU flags).

    Raises:
        ModelError: TensorFlow is not installed (one line with the command that installs it).
    """
    if not tensorflow_installed():
        raise ModelError(NO_TENSORFLOW)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with native_stderr_silenced():
        import tensorflow as tf
    return tf


def input_size(size: int, aspect: str, frame_size: tuple[int, int] | None) -> tuple[int, int]:
    """Model input ``(width, height)``: ``size`` high, square or of the frame's aspect ratio.

    Sides are of the form 8k+1 (257, 449, 513), which keeps align-corners upsampling exact.
    """
    height = 8 * round((size - 1) / 8) + 1
    if aspect == "square" or frame_size is None:
        return height, height
    fw, fh = frame_size
    width = 8 * max(4, round((height - 1) * fw / fh / 8)) + 1
    return width, height


def person_probability(logits: np.ndarray, person: int) -> np.ndarray:
    """Softmax over classes, taken at ``person``: ``(H, W, C)`` float -> ``(H, W)`` float32."""
    z = logits.astype(np.float32, copy=False)
    d = z - z[:, :, person : person + 1]
    np.minimum(d, 80.0, out=d)  # exp overflow guard; such pixels are ~0 anyway
    return (1.0 / np.exp(d).sum(axis=2)).astype(np.float32)


def preprocess(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``(H, W, 3)`` uint8 BGR -> ``(h, w, 3)`` float32 RGB in ``[-1, 1]`` at ``size = (w, h)``.

    One area resize, not :func:`~livebokeh.segment.base.shrink_for_model`: with it DeepLab's Boundary
    IoU fell by 0.003 (stills) and 0.006 (portraits), and its 1.5 ms saving is small beside 20 ms of
    inference.
    """
    interp = cv2.INTER_AREA if image.shape[1] > size[0] else cv2.INTER_LINEAR
    rgb = cv2.cvtColor(cv2.resize(image, size, interpolation=interp), cv2.COLOR_BGR2RGB)
    x = rgb.astype(np.float32)
    x *= np.float32(1 / 127.5)
    x -= np.float32(1.0)
    return x


def build_keras_model(m: Manifest, weights: Path, size: tuple[int, int], dtype: str | None = None,
                      decoder: Decoder | None = None):
    """The Keras DeepLab for manifest ``m`` at ``size = (w, h)``, with the weights loaded (v3+ with
    ``decoder``)."""
    from livebokeh.segment.deeplab.decoder import keras_tensors
    from livebokeh.segment.deeplab.model import DeepLabSpec, build_deeplab
    from livebokeh.segment.deeplab.weights import (
        load_tflite_weights,
        read_tflite_tensors,
    )

    tensors = read_tflite_tensors(weights)
    if decoder is not None:
        spec = decoder.spec(size[0], size[1], m.output_stride, m.width_multiplier)
        tensors = keras_tensors(tensors, decoder)
    else:
        spec = DeepLabSpec(height=size[1], width=size[0], num_classes=m.classes, output_stride=m.output_stride,
                           width_multiplier=m.width_multiplier, decoder=m.decoder)
    model = build_deeplab(spec, dtype=dtype)
    load_tflite_weights(model, tensors)
    return model


def decoder_path(own: DeepLabOptions) -> Path | None:
    """The v3+ decoder file ``own`` asks for: None for ``decoder = "off"``, or with ``auto`` when no
    decoder weights are found. Cheap: the file is not read.

    Raises:
        ModelError: an unknown ``decoder`` setting, or a file the settings or
            ``$LIVEBOKEH_DEEPLAB_DECODER`` name is not there (exit 1, as a missing weights file;
            a live run finds it first: :meth:`DeepLabSegmenter.missing_files`, exit 3).
        SetupError: ``on`` where this install has no decoder (exit 3: this machine lacks it).
    """
    from livebokeh.segment.deeplab import decoder as dec

    if own.decoder not in ("auto", "on", "off"):
        raise ModelError(f"unknown DeepLab decoder setting {own.decoder!r}; choose auto, on or off")
    if own.decoder == "off":
        return None
    path = dec.find(own.decoder_weights or None)
    if path is None and own.decoder == "on":
        raise SetupError(f"no DeepLab-v3+ decoder weights: this install lacks {dec.DECODER_FILE}; "
                         f"set {dec.ENV_VAR}=FILE, or use decoder off (DeepLab-v3)")
    return path


def find_decoder(own: DeepLabOptions) -> Decoder | None:
    """The v3+ decoder ``own`` asks for (:func:`decoder_path`), read: None for ``decoder = "off"``,
    or with ``auto`` when no decoder weights are found.

    Raises:
        ModelError: an unknown ``decoder`` setting, or a missing or bad file.
        SetupError: ``on`` where this install has no decoder (:func:`decoder_path`).
    """
    from livebokeh.segment.deeplab import decoder as dec

    path = decoder_path(own)
    if path is None:
        if own.decoder != "off":
            log.warning("deeplab: no decoder weights (%s); running DeepLab-v3", dec.DECODER_FILE)
        return None
    return dec.load(path)


@SEGMENTERS.register("deeplab")
class DeepLabSegmenter(Segmenter):
    """DeepLab-v3+ MobileNetV2 with livebokeh's person decoder (person probability = softmax at
    its person class), or DeepLab-v3 (PASCAL VOC, softmax at class 15)."""

    # Measured: on a crop around the person DeepLab loses the context it needs (IoU on the
    # stills fell from 0.74 to 0.47), so the ROI pass stays off for it. Its logits are 33x33
    # upsampled: the guided filter helps (``mask.guided = "auto"``).
    traits = SegmenterTraits(roi_helps=False, coarse_edges=True)
    Options = DeepLabOptions
    #: Names the v3+ decoder's file (:mod:`livebokeh.segment.deeplab.decoder`).
    file_variables = ("LIVEBOKEH_DEEPLAB_DECODER",)

    @classmethod
    def missing_files(cls, own: Any) -> str | None:
        """The v3+ decoder file its settings or ``$LIVEBOKEH_DEEPLAB_DECODER`` name, when it is
        not there (:func:`decoder_path`)."""
        try:
            decoder_path(own if own is not None else cls.Options())
        except (SetupError, ModelError) as err:
            return str(err)
        return None

    def __init__(self, options: SegmenterOptions) -> None:
        super().__init__(options)
        own: DeepLabOptions = self.own
        if own.runtime not in ("auto", "tflite", "keras"):
            raise ModelError(f"unknown DeepLab runtime {own.runtime!r}; choose auto, tflite or keras")
        have_tf = tensorflow_installed()
        if own.runtime == "keras" and not have_tf:  # before a download of the weights
            raise SetupError(NO_TENSORFLOW)  # exit 3: this machine lacks it, a retry will not bring it
        self.manifest = manifest("deeplab")
        self.decoder = find_decoder(own)  # before a download of the weights: a bad setting fails first
        self.variant = "v3+" if self.decoder is not None else "v3"
        self.trained_on = self.decoder.trained_on if self.decoder is not None else frozenset()
        self.weights = locate("deeplab", own.weights or None)
        gpus = tf_gpus() if own.runtime in ("auto", "keras") else []
        size = own.size or (GPU_SIZE if gpus else CPU_SIZE)
        self._size = input_size(size, own.aspect, options.frame_size)
        if self._size[1] != size:  # said, not silent: the user asked for another height
            log.warning("deeplab: size %d taken as %d (DeepLab's sides are of the form 8k+1, such as 257 or 513)",
                        size, self._size[1])
        native = tuple(self.manifest.input_size)
        runtime = own.runtime
        if runtime == "auto" and not have_tf:
            if self._size != native:
                log.warning("deeplab: %dx%d needs the keras runtime, which needs TensorFlow (%s); "
                            "running TFLite at %dx%d", *self._size, TENSORFLOW_EXTRA, *native)
                self._size = native
            runtime = "tflite"
        elif runtime == "auto":
            runtime = "keras" if gpus or self._size != native else "tflite"
        if runtime == "tflite" and self._size != native:
            raise ModelError(
                f"the TFLite runtime runs DeepLab at {native[0]}x{native[1]} only; "
                f"use runtime keras for {self._size[0]}x{self._size[1]}"
                + ("" if have_tf else f" (it needs TensorFlow: {TENSORFLOW_EXTRA})")
            )
        self.runtime = runtime
        # 26 ms a 720p frame on one CPU thread; the keras path (a GPU, or another input size)
        # keeps one caller: TensorFlow spreads each call over its own threads
        self.traits = dataclasses.replace(self.traits, heavy=runtime == "tflite")
        self.device = "CPU"
        self._person = self.decoder.person_class if self.decoder is not None else self.manifest.person_class
        if runtime == "tflite":
            content = None
            fix = ("download it again with `livebokeh models download deeplab`, or pass another --deeplab-weights "
                   f"(Google's {self.manifest.file})")
            if self.decoder is not None:
                from livebokeh.segment.deeplab.decoder import v3plus_tflite

                try:
                    content = v3plus_tflite(self.weights.read_bytes(), self.decoder)
                except OSError as err:
                    raise ModelError(f"cannot read {self.weights} ({err.strerror or err}); check the file") from None
                except ModelError as err:  # not the release the decoder was trained on
                    raise ModelError(f"{self.weights} is not the DeepLab release ({err}); {fix}") from None
            self._interps = Interpreters(self.weights, options.threads, content, fix)
            classes = self.decoder.classes if self.decoder is not None else self.manifest.classes
            self._interps.check_shapes([[1, self._size[1], self._size[0], 3]], [[1, -1, -1, classes]],
                                       f"it is not the DeepLab release; {fix}")
            self._in = self._interps.first.get_input_details()[0]["index"]
            self._out = self._interps.first.get_output_details()[0]["index"]
            self.precision = "float32"
        else:
            self._setup_keras(options, gpus)
        log.info("deeplab: DeepLab-%s, %s on the %s, input %dx%d, %s", self.variant, self.runtime, self.device,
                 *self._size, self.precision)

    def _setup_keras(self, options: SegmenterOptions, gpus: list[Any]) -> None:
        tf = import_tensorflow()
        import keras

        if keras.backend.backend() != "tensorflow":
            raise ModelError("the keras runtime needs KERAS_BACKEND=tensorflow (unset KERAS_BACKEND)")
        if not gpus:
            try:
                tf.config.threading.set_intra_op_parallelism_threads(options.threads)
                tf.config.threading.set_inter_op_parallelism_threads(1)
            except RuntimeError:  # TensorFlow already initialised: keep its settings
                pass
        mixed = self.own.precision == "mixed"
        self.precision = "mixed_float16" if mixed else "float32"
        self.device = gpus[0].name.replace("/physical_device:", "/") if gpus else "CPU"
        with native_stderr_silenced(), tf.device(self.device if gpus else "/CPU:0"):
            model = build_keras_model(self.manifest, self.weights, self._size,
                                      dtype="mixed_float16" if mixed else None, decoder=self.decoder)
        person = self._person

        @tf.function(reduce_retracing=True)
        def run(x):
            logits = model(x, training=False)
            return tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)[0, :, :, person]

        self._model, self._run = model, run

    @property
    def input_size(self) -> tuple[int, int]:
        return self._size

    def _segment(self, image: np.ndarray) -> np.ndarray:
        x = preprocess(image, self._size)[None]
        if self.runtime == "tflite":
            interp = self._interps.get()
            interp.set_tensor(self._in, x)
            interp.invoke()
            return person_probability(interp.get_tensor(self._out)[0], self._person)
        return np.asarray(self._run(x), dtype=np.float32)

    def _release(self) -> None:
        self._interps = None
        self._model = None
        self._run = None
