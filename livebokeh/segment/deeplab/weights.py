"""Import Google's released DeepLab TFLite weights into the Keras model.

The TFLite file is read with the pure-Python flatbuffer schema (``tflite`` package): no
TensorFlow or interpreter is needed, so the same code loads the weights on a machine that has only
Keras on JAX or PyTorch. BatchNorm is already folded into the convolution biases in the release.

Tensor layouts: TFLite ``CONV_2D`` weights are ``[out, kh, kw, in]`` and Keras ``Conv2D`` kernels
``[kh, kw, in, out]``; TFLite ``DEPTHWISE_CONV_2D`` weights are ``[1, kh, kw, channels]`` and Keras
``DepthwiseConv2D`` kernels ``[kh, kw, channels, 1]``: both are a transpose ``(1, 2, 3, 0)``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from livebokeh.errors import ModelError
from livebokeh.segment.deeplab.model import slim_scope


def read_tflite_tensors(path: str | Path) -> dict[str, np.ndarray]:
    """Every constant float32 tensor of a ``.tflite`` file, by name."""
    import tflite

    from livebokeh.segment.deeplab.tflite_graph import first_subgraph

    data = Path(path).read_bytes()
    try:
        model, graph = first_subgraph(data)
    except ModelError as err:
        raise ModelError(f"{path} is {err}; download it again") from None
    out: dict[str, np.ndarray] = {}
    try:
        for i in range(graph.TensorsLength()):
            t = graph.Tensors(i)
            buf = model.Buffers(t.Buffer())
            if buf is None or buf.DataLength() == 0 or t.Type() != tflite.TensorType.FLOAT32:
                continue
            shape = tuple(int(v) for v in t.ShapeAsNumpy())
            out[t.Name().decode()] = np.frombuffer(buf.DataAsNumpy().tobytes(), dtype="<f4").reshape(shape).copy()
    except Exception as err:  # noqa: BLE001 - a file cut short fails deep in flatbuffers (struct.error)
        raise ModelError(f"{path} is not a whole TFLite model, cut short or damaged ({err}); download it again") from None
    if not out:
        raise ModelError(f"{path} holds no float weights; is it the DeepLab release?")
    return out


def _find(tensors: dict[str, np.ndarray], scope: str, kind: str) -> np.ndarray:
    """The ``weights`` or ``bias`` tensor of a TF-Slim scope."""
    if kind == "weights":
        names = [f"{scope}/weights", f"{scope}/depthwise_weights"]
    else:
        names = [f"{scope}/Conv2D_bias", f"{scope}/depthwise_bias", f"{scope}/biases", f"{scope}/BiasAdd/bias"]
    for name in names:
        if name in tensors:
            return tensors[name]
    raise ModelError(f"the weights file has no {kind} for {scope}; it does not match this model")


def load_tflite_weights(model, tensors: dict[str, np.ndarray]) -> int:
    """Copy the released weights into ``model``; returns how many layers were set.

    Raises :class:`ModelError` when a layer has no tensor or a shape differs (for example the
    decoder was enabled but the file has none).
    """
    from keras import layers

    n = 0
    for layer in model.layers:
        if not isinstance(layer, (layers.Conv2D, layers.DepthwiseConv2D)):
            continue
        scope = slim_scope(layer.name)
        w = _find(tensors, scope, "weights").transpose(1, 2, 3, 0)
        b = _find(tensors, scope, "bias")
        kernel, bias = layer.get_weights()
        if w.shape != kernel.shape or b.shape != bias.shape:
            raise ModelError(
                f"{scope}: weights {w.shape}/{b.shape} do not fit the model's {kernel.shape}/{bias.shape}; "
                "check output_stride, width multiplier and decoder"
            )
        layer.set_weights([w, b])
        n += 1
    return n
