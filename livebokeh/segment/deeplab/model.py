"""DeepLab-v3+ with a MobileNetV2 backbone, as a Keras 3 model (any Keras backend).

The layout follows the TF-Slim DeepLab code that produced Google's released weights, and layer
names are the TF-Slim scopes with ``/`` written as ``__`` (so ``MobilenetV2/expanded_conv_3/expand``
is the Keras layer ``MobilenetV2__expanded_conv_3__expand``), which is how the importer in
:mod:`livebokeh.segment.deeplab.weights` finds each tensor.

- Backbone: MobileNetV2 with a width multiplier, and atrous convolution once the wanted output
  stride is reached: a block that would reduce the resolution further keeps stride 1 and the
  following blocks dilate their depthwise convolutions instead (8 or 16).
- ASPP: the 1x1 branch (``aspp0``), optional atrous separable branches (``aspp1..``) and image
  pooling (a global mean, so the model runs at any input size), concatenated and projected.
- Logits, then bilinear upsampling to the input size with ``align_corners`` semantics, as in the
  TF-Slim graph.
- The optional v3+ decoder: a 48-channel projection of the stride-4 features, concatenated with
  the ASPP output upsampled to stride 4 and refined by two separable 3x3 convolutions
  (``decoder_channels`` wide: 256 in the paper), then the logits; optionally (``decoder_prior``)
  plus a linear map of the ASPP output to the logits, upsampled (a skip around the decoder).
  Google's released MobileNetV2
  PASCAL weights (``deeplabv3_257_mv_gpu.tflite``) have no decoder; livebokeh trains one for two
  classes, background and person (:mod:`livebokeh.segment.deeplab.train`).

Inputs are RGB scaled to ``[-1, 1]``, NHWC, of the size given when the model is built.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass

import numpy as np

#: MobileNetV2 inverted-residual blocks: (expansion t, output channels c, repeats n, stride s).
MOBILENET_V2_BLOCKS: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


@dataclass(frozen=True)
class DeepLabSpec:
    """What a DeepLab model is built from.

    Attributes:
        height, width: input size in pixels (sizes of the form 8k+1, such as 257, 449 or 513,
            keep the align-corners upsampling exact).
        num_classes: logits channels (21 for PASCAL VOC).
        output_stride: 8 or 16; the released MobileNetV2 PASCAL weights use 8.
        width_multiplier: MobileNetV2 channel multiplier (0.5 in the released weights).
        aspp_rates: dilation rates of extra atrous ASPP branches (none in the released weights).
        decoder: add the DeepLab-v3+ decoder (needs weights that contain it).
        decoder_channels: width of the decoder's two separable 3x3 convolutions.
        skip_channels: channels of the projected stride-4 features.
        decoder_prior: also a 1x1 convolution of the ASPP output to the logits (``decoder/prior``),
            upsampled to stride 4 and added to the decoder's: livebokeh's decoder starts from the
            released classifier's background and person logits there and learns a correction.
    """

    height: int = 257
    width: int = 257
    num_classes: int = 21
    output_stride: int = 8
    width_multiplier: float = 0.5
    aspp_rates: tuple[int, ...] = ()
    decoder: bool = False
    decoder_channels: int = 256
    skip_channels: int = 48
    decoder_prior: bool = False

    def __post_init__(self) -> None:
        if self.output_stride not in (8, 16, 32):
            raise ValueError(f"output_stride must be 8, 16 or 32, got {self.output_stride}")
        if self.height < 33 or self.width < 33:
            raise ValueError(f"input must be at least 33x33, got {self.width}x{self.height}")


def choose_keras_backend() -> str | None:
    """Point Keras 3 at JAX where TensorFlow, its default backend, is not installed.

    TensorFlow is the ``tensorflow`` extra; JAX (the ``test`` extra, or installed by hand) runs the
    Keras model and its weight import as TensorFlow does. The default install brings neither: the
    CPU path of DeepLab is TFLite. Nothing changes when
    ``KERAS_BACKEND`` is set, when Keras is already imported (its backend is fixed then) or when
    TensorFlow is installed. Cheap: it looks the packages up without importing them.

    Returns:
        The backend set (``"jax"``), or None when nothing was set.
    """
    if "keras" in sys.modules or os.environ.get("KERAS_BACKEND"):
        return None
    if importlib.util.find_spec("tensorflow") is not None or importlib.util.find_spec("jax") is None:
        return None
    os.environ["KERAS_BACKEND"] = "jax"
    return "jax"


def keras_name(slim_scope: str) -> str:
    """TF-Slim scope -> Keras layer name (Keras names cannot hold ``/``)."""
    return slim_scope.replace("/", "__")


def slim_scope(keras_layer_name: str) -> str:
    return keras_layer_name.replace("__", "/")


def same_size(n: int, stride: int) -> int:
    """Output length of a 'same'-padded convolution."""
    return -(-n // stride)


def resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)`` linear interpolation matrix with ``align_corners=True`` semantics."""
    m = np.zeros((n_out, n_in), np.float32)
    if n_in == 1 or n_out == 1:
        m[:, 0] = 1.0
        return m
    pos = np.arange(n_out, dtype=np.float64) * (n_in - 1) / (n_out - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = (pos - lo).astype(np.float32)
    m[np.arange(n_out), lo] += 1.0 - frac
    m[np.arange(n_out), hi] += frac
    return m


#: The stride-4 features the decoder takes: the expansion of the first block that halves them
#: again (TF-Slim scope; a 65x65x72 tensor at 257x257 in the release), and the ASPP output.
LOW_LEVEL_SCOPE = "MobilenetV2/expanded_conv_3/expand"
ASPP_SCOPE = "concat_projection"
#: The backbone's last output (before the ASPP), where training starts when the ASPP is trained too
#: (:mod:`livebokeh.segment.deeplab.train` trains on these features, cached).
BACKBONE_SCOPE = "MobilenetV2/expanded_conv_16/project"


class _Layers:
    """The layer helpers of :func:`build_deeplab` (Keras imported lazily)."""

    def __init__(self, dtype: str | None) -> None:
        import keras
        from keras import layers, ops

        self.keras, self.layers, self.dtype = keras, layers, dtype

        class ImagePooling(layers.Layer):
            """Global mean over height and width, kept as a 1x1 map (works at any size)."""

            def call(self, x):
                return ops.mean(x, axis=(1, 2), keepdims=True)

        class AlignCornersResize(layers.Layer):
            """Bilinear resize to a fixed size with ``align_corners=True`` (exact, any backend)."""

            def __init__(self, in_hw, out_hw, **kw):
                super().__init__(**kw)
                self.in_hw, self.out_hw = tuple(in_hw), tuple(out_hw)
                self._ry = resize_matrix(self.in_hw[0], self.out_hw[0])
                self._rx = resize_matrix(self.in_hw[1], self.out_hw[1])

            def call(self, x):
                if self.in_hw == (1, 1):  # a broadcast
                    return ops.repeat(ops.repeat(x, self.out_hw[0], axis=1), self.out_hw[1], axis=2)
                if self.in_hw == self.out_hw:
                    return x
                ry = ops.convert_to_tensor(self._ry, dtype=x.dtype)
                rx = ops.convert_to_tensor(self._rx, dtype=x.dtype)
                y = ops.einsum("yh,bhwc->bywc", ry, x)
                return ops.einsum("xw,bywc->byxc", rx, y)

            def get_config(self):
                return {**super().get_config(), "in_hw": self.in_hw, "out_hw": self.out_hw}

        self.ImagePooling, self.AlignCornersResize = ImagePooling, AlignCornersResize

    def conv(self, x, filters, kernel, scope, stride=1, rate=1, act="relu6"):
        x = self.layers.Conv2D(filters, kernel, strides=stride, dilation_rate=rate, padding="same",
                               name=keras_name(scope), dtype=self.dtype)(x)
        return self.activation(x, act, scope)

    def depthwise(self, x, scope, stride=1, rate=1, act="relu6"):
        x = self.layers.DepthwiseConv2D(3, strides=stride, dilation_rate=rate, padding="same",
                                        name=keras_name(scope), dtype=self.dtype)(x)
        return self.activation(x, act, scope)

    def activation(self, x, act, scope):
        if act == "relu6":
            return self.layers.ReLU(6.0, name=keras_name(scope) + "__Relu6", dtype=self.dtype)(x)
        if act == "relu":
            return self.layers.ReLU(name=keras_name(scope) + "__Relu", dtype=self.dtype)(x)
        return x

    def separable(self, x, filters, scope, rate=1):
        x = self.depthwise(x, scope + "_depthwise", rate=rate, act="relu")
        return self.conv(x, filters, 1, scope + "_pointwise", act="relu")

    def resize(self, x, out_hw, name, dtype=None):
        return self.AlignCornersResize((x.shape[1], x.shape[2]), out_hw, name=name, dtype=dtype or self.dtype)(x)

    def aspp(self, x, spec: DeepLabSpec):
        """Image pooling and the 1x1 branch (and atrous branches), concatenated and projected."""
        fh, fw = x.shape[1], x.shape[2]
        pooled = self.ImagePooling(name="AvgPool2D", dtype=self.dtype)(x)
        pooled = self.conv(pooled, 256, 1, "image_pooling", act="relu")
        branches = [self.AlignCornersResize((1, 1), (fh, fw), name="image_pooling__resize", dtype=self.dtype)(pooled),
                    self.conv(x, 256, 1, "aspp0", act="relu")]
        for i, r in enumerate(spec.aspp_rates, start=1):
            branches.append(self.separable(x, 256, f"aspp{i}", rate=r))
        x = self.layers.Concatenate(name="concat", dtype=self.dtype)(branches)
        return self.conv(x, 256, 1, ASPP_SCOPE, act="relu")

    def decoder(self, x, low_level, spec: DeepLabSpec):
        """The v3+ decoder: ASPP output ``x`` upsampled to the stride-4 ``low_level`` features'
        size, concatenated with their projection, refined."""
        lh, lw = low_level.shape[1], low_level.shape[2]
        skip = self.conv(low_level, spec.skip_channels, 1, "decoder/feature_projection0", act="relu")
        x = self.resize(x, (lh, lw), "decoder__resize")
        x = self.layers.Concatenate(name="decoder__concat", dtype=self.dtype)([x, skip])
        x = self.separable(x, spec.decoder_channels, "decoder/decoder_conv0")
        return self.separable(x, spec.decoder_channels, "decoder/decoder_conv1")

    def logits(self, x, spec: DeepLabSpec, aspp=None):
        logits = self.layers.Conv2D(spec.num_classes, 1, padding="same", name=keras_name("logits/semantic"),
                                    dtype=self.dtype)(x)
        if aspp is not None:  # the decoder's prior: the ASPP output's own logits, upsampled, added
            prior = self.layers.Conv2D(spec.num_classes, 1, padding="same", name=keras_name("decoder/prior"),
                                       dtype=self.dtype)(aspp)
            prior = self.resize(prior, (logits.shape[1], logits.shape[2]), "decoder__prior_resize")
            logits = self.layers.Add(name="decoder__prior_add", dtype=self.dtype)([logits, prior])
        return self.resize(logits, (spec.height, spec.width), "logits__resize", dtype="float32")


def build_deeplab(spec: DeepLabSpec = DeepLabSpec(), dtype: str | None = None):
    """Build the Keras model.

    Args:
        spec: architecture and input size.
        dtype: Keras dtype policy for the layers (e.g. ``"mixed_float16"`` on a GPU); None keeps
            the global policy. The upsampled logits are always float32.

    Returns:
        ``keras.Model`` mapping ``(N, H, W, 3)`` float32 in ``[-1, 1]`` to ``(N, H, W, classes)`` logits.
    """
    L = _Layers(dtype)
    h, w = spec.height, spec.width
    inputs = L.keras.Input((h, w, 3), name="image")
    mult = spec.width_multiplier

    x = L.conv(inputs, int(32 * mult), 3, "MobilenetV2/Conv", stride=2)
    current_stride, rate, channels = 2, 1, int(32 * mult)
    block = 0
    low_level = None
    for t, c, n, s in MOBILENET_V2_BLOCKS:
        out_channels = int(c * mult)
        for i in range(n):
            stride = s if i == 0 else 1
            if current_stride == spec.output_stride:
                layer_stride, layer_rate = 1, rate
                rate *= stride
            else:
                layer_stride, layer_rate = stride, 1
                current_stride *= stride
            scope = "MobilenetV2/expanded_conv" + (f"_{block}" if block else "")
            y = x
            if t != 1:
                y = L.conv(y, channels * t, 1, scope + "/expand")
                if layer_stride == 2 and current_stride == 8 and low_level is None:
                    low_level = y  # stride-4 features, before the block that halves them
            y = L.depthwise(y, scope + "/depthwise", stride=layer_stride, rate=layer_rate)
            y = L.conv(y, out_channels, 1, scope + "/project", act=None)
            if layer_stride == 1 and channels == out_channels:
                y = L.layers.Add(name=keras_name(scope + "/add"), dtype=dtype)([x, y])
            x, channels = y, out_channels
            block += 1

    x = aspp = L.aspp(x, spec)
    if spec.decoder:
        if low_level is None:
            raise ValueError("the decoder needs stride-4 features; use output_stride 8 or 16")
        x = L.decoder(x, low_level, spec)
    logits = L.logits(x, spec, aspp if spec.decoder and spec.decoder_prior else None)
    return L.keras.Model(inputs, logits, name="deeplabv3_mobilenetv2")
