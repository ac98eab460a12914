"""Each segmentation backend's own options: the schema of its settings section.

``[mediapipe]``, ``[deeplab]`` and ``[rvm]`` in a settings file are these dataclasses, checked
like every other section (:mod:`livebokeh.schema`): a key of one backend's in another's section
is an error that lists the keys that apply. Each backend declares its class as
:attr:`livebokeh.segment.base.Segmenter.Options`. The standard library only (the command
line's ``--help`` describes these keys without importing a model runtime).
"""

from __future__ import annotations

from dataclasses import dataclass

from livebokeh.schema import choice, number, path


@dataclass(frozen=True)
class MediaPipeOptions:
    """MediaPipe's own option: ``model``, ``general`` (256x256) or ``landscape`` (256x144)."""

    model: str = choice("general", ("general", "landscape"),
                        "MediaPipe model: general (256x256) or landscape (144x256, faster)")


@dataclass(frozen=True)
class DeepLabOptions:
    """DeepLab's own options.

    Attributes:
        size: input height; 0 = 257 on the CPU, 513 on a GPU.
        aspect: ``square`` input, or ``frame`` (the input keeps the frame's aspect ratio).
        runtime: ``auto``, ``tflite`` or ``keras`` (a TensorFlow graph: the tensorflow extra).
        precision: ``auto`` (float32), ``float32`` or ``mixed`` (float16 compute, keras).
        weights: the released weights file; empty = the cache, the environment variable or a download.
        decoder: ``auto`` (DeepLab-v3+ when the decoder's weights are found, as in the package),
            ``on`` (v3+, an error without them) or ``off`` (DeepLab-v3 as released).
        decoder_weights: the decoder's file; empty = ``$LIVEBOKEH_DEEPLAB_DECODER``, else the
            package's.
    """

    size: int = number(0, 0, 2049, "model input height in pixels (0 = 257 on the CPU, 513 on a GPU)")
    aspect: str = choice("square", ("square", "frame"), "input shape: square, or the frame's aspect ratio")
    runtime: str = choice(
        "auto", ("auto", "tflite", "keras"),
        "runtime: tflite (CPU, 257x257 only), keras (TensorFlow graph, GPU when present), auto",
    )
    precision: str = choice(
        "auto", ("auto", "float32", "mixed"), "keras precision; auto = float32 (mixed float16 measured no faster at batch 1)"
    )
    weights: str = path("", "weights file; empty = LIVEBOKEH_DEEPLAB_WEIGHTS, the cache or a download")
    decoder: str = choice(
        "auto", ("auto", "on", "off"),
        "DeepLab-v3+ decoder (livebokeh's, trained for people): auto = on when its weights are there (they ship "
        "with livebokeh), off = DeepLab-v3 as Google released it",
    )
    decoder_weights: str = path("", "the decoder's weights file; empty = LIVEBOKEH_DEEPLAB_DECODER, else the package's")


@dataclass(frozen=True)
class RVMOptions:
    """RVM's own options.

    Attributes:
        weights: the ``.onnx`` file; empty = the cache, the environment variable or a download.
        backbone: long side in pixels of the picture its backbone sees; 0 = automatic.
        size: long side of the model's input; 0 = automatic (live or file sizes).
    """

    weights: str = path("", "weights file (.onnx); empty = LIVEBOKEH_RVM_WEIGHTS, the cache or a download")
    backbone: int = number(
        0, 64, 2048, "long side in pixels of the picture its backbone sees (0 = automatic: 384 for files, "
        "512 with --quality best, 320 live); larger is finer and slower; below 64 its mattes are empty",
        auto=True,
    )
    size: int = number(0, 0, 2049, "model input's long side in pixels, where its refiner works (0 = 640, files and live)")


#: Backend name -> its options (the names :data:`livebokeh.segment.SEGMENTERS` registers, in the
#: order every list of backends shows; a test keeps them equal).
BACKEND_OPTIONS: dict[str, type] = {"mediapipe": MediaPipeOptions, "deeplab": DeepLabOptions, "rvm": RVMOptions}
#: The backends whose output is an alpha matte (their segmenter's ``traits.matte``), not a person
#: probability: known before a model loads, for the automatic mask range
#: (:func:`livebokeh.config.check_mask_range`; a test keeps it equal to the traits).
MATTE_BACKENDS = frozenset({"rvm"})
