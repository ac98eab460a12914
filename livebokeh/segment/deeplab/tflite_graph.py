"""TFLite graphs read, cut, extended and written again in pure Python (no TensorFlow).

Google's DeepLab release is a plain float32 graph of six operator kinds. :class:`Graph` reads it
into lists (tensors with their constant data, operators with their options), lets a caller name
other outputs (the stride-4 and ASPP features, for training on cached features) or append
operators (the trained v3+ decoder), drops what no output needs, and writes a new flatbuffer that
the LiteRT interpreter runs with its XNNPACK delegate like the original: the whole v3+ network
becomes one ``.tflite`` in memory, built from the released file and the decoder's small weights,
with no converter.

Only what the DeepLab graphs use is supported: float32 and int32 tensors, and the operators
``CONV_2D``, ``DEPTHWISE_CONV_2D``, ``ADD``, ``AVERAGE_POOL_2D``, ``CONCATENATION`` and
``RESIZE_BILINEAR``. Anything else raises :class:`~livebokeh.errors.ModelError`.

Weight layouts are TFLite's: ``CONV_2D`` ``[out, kh, kw, in]``, ``DEPTHWISE_CONV_2D``
``[1, kh, kw, channels]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from livebokeh.errors import ModelError

#: TFLite builtin operator codes (schema.fbs) of the operators supported here.
OPS = {"ADD": 0, "AVERAGE_POOL_2D": 1, "CONCATENATION": 2, "CONV_2D": 3, "DEPTHWISE_CONV_2D": 4,
       "RESIZE_BILINEAR": 23}
#: Tensor types (schema.fbs ``TensorType``) supported here.
TYPES = {0: np.dtype("<f4"), 2: np.dtype("<i4")}
#: Padding (schema.fbs ``Padding``).
SAME, VALID = 0, 1
#: Fused activations (schema.fbs ``ActivationFunctionType``).
ACTIVATIONS = {"none": 0, "relu": 1, "relu6": 3}

# operator -> (BuiltinOptions union type, [(field name, flatbuffers slot, kind)])
_OPTIONS: dict[str, tuple[int, list[tuple[str, int, str]]]] = {
    "CONV_2D": (1, [("padding", 0, "i8"), ("stride_w", 1, "i32"), ("stride_h", 2, "i32"),
                    ("activation", 3, "i8"), ("dilation_w", 4, "i32"), ("dilation_h", 5, "i32")]),
    "DEPTHWISE_CONV_2D": (2, [("padding", 0, "i8"), ("stride_w", 1, "i32"), ("stride_h", 2, "i32"),
                              ("depth_multiplier", 3, "i32"), ("activation", 4, "i8"),
                              ("dilation_w", 5, "i32"), ("dilation_h", 6, "i32")]),
    "CONCATENATION": (10, [("axis", 0, "i32"), ("activation", 1, "i8")]),
    "ADD": (11, [("activation", 0, "i8")]),
    "AVERAGE_POOL_2D": (5, [("padding", 0, "i8"), ("stride_w", 1, "i32"), ("stride_h", 2, "i32"),
                            ("filter_w", 3, "i32"), ("filter_h", 4, "i32"), ("activation", 5, "i8")]),
    "RESIZE_BILINEAR": (15, [("align_corners", 2, "bool"), ("half_pixel_centers", 3, "bool")]),
}
_READERS = {  # the tflite package's option classes, by union type
    1: "Conv2DOptions", 2: "DepthwiseConv2DOptions", 5: "Pool2DOptions", 10: "ConcatenationOptions",
    11: "AddOptions", 15: "ResizeBilinearOptions",
}
_GETTERS = {  # our field name -> the reader's method
    "padding": "Padding", "stride_w": "StrideW", "stride_h": "StrideH", "activation": "FusedActivationFunction",
    "dilation_w": "DilationWFactor", "dilation_h": "DilationHFactor", "depth_multiplier": "DepthMultiplier",
    "axis": "Axis", "filter_w": "FilterWidth", "filter_h": "FilterHeight", "align_corners": "AlignCorners",
    "half_pixel_centers": "HalfPixelCenters",
}


def first_subgraph(data: bytes) -> tuple[Any, Any]:
    """The flatbuffers model of a ``.tflite`` file's bytes and its first subgraph; ModelError
    ("not a TFLite model ...") when they are none."""
    import tflite

    try:
        model = tflite.Model.GetRootAsModel(data, 0)
        sub = model.Subgraphs(0)
        if sub is None:
            raise ValueError("no subgraph")
    except Exception as err:  # noqa: BLE001 - any parse failure means: not a TFLite model
        raise ModelError(f"not a TFLite model ({err})") from None
    return model, sub


@dataclass
class Tensor:
    """A tensor: name, shape, dtype, and its constant data (None for an activation)."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype = field(default_factory=lambda: np.dtype("<f4"))
    data: np.ndarray | None = None


@dataclass
class Op:
    """An operator: its kind (a key of :data:`OPS`), tensor indices and builtin options."""

    kind: str
    inputs: list[int]
    outputs: list[int]
    options: dict[str, Any]
    version: int = 1


class Graph:
    """One TFLite subgraph held in Python lists; see the module text."""

    def __init__(self) -> None:
        self.tensors: list[Tensor] = []
        self.ops: list[Op] = []
        self.inputs: list[int] = []
        self.outputs: list[int] = []
        self.description = "livebokeh"

    # -- reading ------------------------------------------------------------------------------

    @classmethod
    def from_tflite(cls, data: bytes) -> Graph:
        """Read a ``.tflite`` file's bytes (its first subgraph)."""
        model, sub = first_subgraph(data)
        try:
            return cls._read(model, sub)
        except ModelError:
            raise
        except Exception as err:  # noqa: BLE001 - a file cut short fails deep in flatbuffers (struct.error)
            raise ModelError(f"not a whole TFLite model, cut short or damaged ({err})") from None

    @classmethod
    def _read(cls, model: Any, sub: Any) -> Graph:
        """The tensors and operators of ``model``'s subgraph ``sub`` (read lazily by flatbuffers:
        a file cut short fails here)."""
        g = cls()
        g.description = (model.Description() or b"").decode(errors="replace") or "livebokeh"
        for i in range(sub.TensorsLength()):
            t = sub.Tensors(i)
            if t.Type() not in TYPES:
                raise ModelError(f"tensor {t.Name().decode()} has type {t.Type()}, which this reader does not support")
            dtype = TYPES[t.Type()]
            shape = tuple(int(v) for v in t.ShapeAsNumpy()) if t.ShapeLength() else ()
            buf = model.Buffers(t.Buffer())
            arr = None
            if buf is not None and buf.DataLength():
                arr = np.frombuffer(buf.DataAsNumpy().tobytes(), dtype=dtype).reshape(shape).copy()
            g.tensors.append(Tensor(t.Name().decode(), shape, dtype, arr))
        names = {v: k for k, v in OPS.items()}
        for i in range(sub.OperatorsLength()):
            op = sub.Operators(i)
            code = model.OperatorCodes(op.OpcodeIndex())
            builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            if builtin not in names:
                raise ModelError(f"operator {builtin} is not supported by this TFLite reader")
            kind = names[builtin]
            g.ops.append(Op(kind, [int(v) for v in op.InputsAsNumpy()], [int(v) for v in op.OutputsAsNumpy()],
                            _read_options(kind, op), code.Version()))
        g.inputs = [int(v) for v in sub.InputsAsNumpy()]
        g.outputs = [int(v) for v in sub.OutputsAsNumpy()]
        return g

    # -- editing ------------------------------------------------------------------------------

    def index(self, name: str) -> int:
        """Index of the tensor called ``name``."""
        for i, t in enumerate(self.tensors):
            if t.name == name:
                return i
        raise ModelError(f"the graph has no tensor {name!r}; is it the DeepLab release?")

    def constant(self, name: str, data: np.ndarray) -> int:
        """Add a constant tensor (float32 or int32); returns its index."""
        data = np.ascontiguousarray(data)
        dtype = np.dtype("<i4") if np.issubdtype(data.dtype, np.integer) else np.dtype("<f4")
        self.tensors.append(Tensor(name, tuple(data.shape), dtype, data.astype(dtype)))
        return len(self.tensors) - 1

    def activation(self, name: str, shape: tuple[int, ...]) -> int:
        self.tensors.append(Tensor(name, tuple(int(v) for v in shape)))
        return len(self.tensors) - 1

    def add(self, kind: str, inputs: list[int], output_name: str, output_shape: tuple[int, ...], **options) -> int:
        """Append an operator with one new float32 output; returns the output's index."""
        if kind not in OPS:
            raise ModelError(f"operator {kind} is not supported here")
        out = self.activation(output_name, output_shape)
        self.ops.append(Op(kind, list(inputs), [out], dict(options)))
        return out

    def conv(self, x: int, weights: np.ndarray, bias: np.ndarray, name: str, activation: str = "relu") -> int:
        """1x1 or kxk ``CONV_2D``, stride 1, SAME; ``weights`` ``[out, kh, kw, in]``."""
        n, h, w, _c = self.tensors[x].shape
        wi = self.constant(name + "/weights", weights)
        bi = self.constant(name + "/biases", bias)
        return self.add("CONV_2D", [x, wi, bi], name, (n, h, w, weights.shape[0]), padding=SAME, stride_w=1,
                        stride_h=1, activation=ACTIVATIONS[activation], dilation_w=1, dilation_h=1)

    def depthwise(self, x: int, weights: np.ndarray, bias: np.ndarray, name: str, activation: str = "relu") -> int:
        """3x3 ``DEPTHWISE_CONV_2D``, stride 1, SAME; ``weights`` ``[1, kh, kw, channels]``."""
        wi = self.constant(name + "/depthwise_weights", weights)
        bi = self.constant(name + "/depthwise_bias", bias)
        return self.add("DEPTHWISE_CONV_2D", [x, wi, bi], name, self.tensors[x].shape, padding=SAME, stride_w=1,
                        stride_h=1, depth_multiplier=1, activation=ACTIVATIONS[activation], dilation_w=1,
                        dilation_h=1)

    def resize(self, x: int, size: tuple[int, int], name: str) -> int:
        """Bilinear resize to ``size = (h, w)`` with ``align_corners`` (as the release's own resizes)."""
        n, _h, _w, c = self.tensors[x].shape
        si = self.constant(name + "/size", np.array(size, np.int32))
        return self.add("RESIZE_BILINEAR", [x, si], name, (n, size[0], size[1], c), align_corners=True,
                        half_pixel_centers=False)

    def concat(self, xs: list[int], name: str) -> int:
        shapes = [self.tensors[x].shape for x in xs]
        out = (*shapes[0][:3], sum(s[3] for s in shapes))
        return self.add("CONCATENATION", xs, name, out, axis=3, activation=0)

    def prune(self) -> None:
        """Drop the operators no output needs, and the tensors no kept operator or output uses."""
        needed = set(self.outputs)
        keep = []
        for op in reversed(self.ops):
            if needed & set(op.outputs):
                keep.append(op)
                needed |= set(op.inputs)
        self.ops = keep[::-1]
        used = sorted(set(self.inputs) | set(self.outputs) | {i for op in self.ops for i in op.inputs + op.outputs})
        new = {old: i for i, old in enumerate(used)}
        self.tensors = [self.tensors[i] for i in used]
        for op in self.ops:
            op.inputs = [new[i] for i in op.inputs]
            op.outputs = [new[i] for i in op.outputs]
        self.inputs = [new[i] for i in self.inputs]
        self.outputs = [new[i] for i in self.outputs]

    # -- writing ------------------------------------------------------------------------------

    def to_tflite(self) -> bytes:
        """The graph as ``.tflite`` bytes (schema version 3, one subgraph)."""
        import flatbuffers
        import tflite

        b = flatbuffers.Builder(1 << 20)

        # buffers: 0 is the empty one by convention; constants get one each
        buffer_of: dict[int, int] = {}
        datas = []
        for i, t in enumerate(self.tensors):
            if t.data is not None:
                buffer_of[i] = len(datas) + 1
                datas.append(np.ascontiguousarray(t.data, dtype=t.dtype).tobytes())
        data_offsets = [_bytes_vector(b, d) for d in datas]
        buffers = []
        for off in [None, *data_offsets]:
            tflite.BufferStart(b)
            if off is not None:
                tflite.BufferAddData(b, off)
            buffers.append(tflite.BufferEnd(b))

        tensors = []
        for i, t in enumerate(self.tensors):
            name = b.CreateString(t.name)
            shape = _int_vector(b, t.shape)
            tflite.TensorStart(b)
            tflite.TensorAddShape(b, shape)
            tflite.TensorAddType(b, {v: k for k, v in TYPES.items()}[np.dtype(t.dtype)])
            tflite.TensorAddBuffer(b, buffer_of.get(i, 0))
            tflite.TensorAddName(b, name)
            tensors.append(tflite.TensorEnd(b))

        codes = sorted({(op.kind, op.version) for op in self.ops})
        code_index = {c: i for i, c in enumerate(codes)}
        operators = []
        for op in self.ops:
            union, fields = _OPTIONS[op.kind]
            opts = _write_options(b, fields, op.options)
            ins, outs = _int_vector(b, op.inputs), _int_vector(b, op.outputs)
            tflite.OperatorStart(b)
            tflite.OperatorAddOpcodeIndex(b, code_index[(op.kind, op.version)])
            tflite.OperatorAddInputs(b, ins)
            tflite.OperatorAddOutputs(b, outs)
            tflite.OperatorAddBuiltinOptionsType(b, union)
            tflite.OperatorAddBuiltinOptions(b, opts)
            operators.append(tflite.OperatorEnd(b))

        sub_name = b.CreateString("main")
        t_vec = _offset_vector(b, tensors)
        o_vec = _offset_vector(b, operators)
        in_vec, out_vec = _int_vector(b, self.inputs), _int_vector(b, self.outputs)
        tflite.SubGraphStart(b)
        tflite.SubGraphAddTensors(b, t_vec)
        tflite.SubGraphAddInputs(b, in_vec)
        tflite.SubGraphAddOutputs(b, out_vec)
        tflite.SubGraphAddOperators(b, o_vec)
        tflite.SubGraphAddName(b, sub_name)
        subgraph = tflite.SubGraphEnd(b)

        code_tables = []
        for kind, version in codes:
            tflite.OperatorCodeStart(b)
            tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(OPS[kind], 127))
            tflite.OperatorCodeAddBuiltinCode(b, OPS[kind])
            tflite.OperatorCodeAddVersion(b, version)
            code_tables.append(tflite.OperatorCodeEnd(b))

        desc = b.CreateString(self.description)
        codes_vec = _offset_vector(b, code_tables)
        subs_vec = _offset_vector(b, [subgraph])
        bufs_vec = _offset_vector(b, buffers)
        tflite.ModelStart(b)
        tflite.ModelAddVersion(b, 3)
        tflite.ModelAddOperatorCodes(b, codes_vec)
        tflite.ModelAddSubgraphs(b, subs_vec)
        tflite.ModelAddDescription(b, desc)
        tflite.ModelAddBuffers(b, bufs_vec)
        b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
        return bytes(b.Output())


def _read_options(kind: str, op) -> dict[str, Any]:
    import tflite

    union, fields = _OPTIONS[kind]
    if op.BuiltinOptionsType() != union:
        raise ModelError(f"{kind} with options of type {op.BuiltinOptionsType()} is not supported here")
    table = op.BuiltinOptions()
    reader = getattr(tflite, _READERS[union])()
    reader.Init(table.Bytes, table.Pos)
    return {name: int(getattr(reader, _GETTERS[name])()) for name, _slot, _kind in fields}


def _write_options(b, fields: list[tuple[str, int, str]], values: dict[str, Any]) -> int:
    b.StartObject(max(slot for _n, slot, _k in fields) + 1)
    for name, slot, kind in fields:
        v = int(values.get(name, 0))
        if kind == "i8":
            b.PrependInt8Slot(slot, v, 0)
        elif kind == "bool":
            b.PrependBoolSlot(slot, bool(v), False)
        else:
            b.PrependInt32Slot(slot, v, 0)
    return b.EndObject()


def _bytes_vector(b, data: bytes) -> int:
    """A ubyte vector aligned to 16 bytes (constant weights are read in place)."""
    b.StartVector(1, len(data), 16)
    b.head = b.head - len(data)
    b.Bytes[b.head : b.head + len(data)] = data
    return b.EndVector()


def _int_vector(b, values) -> int:
    values = [int(v) for v in values]
    b.StartVector(4, len(values), 4)
    for v in reversed(values):
        b.PrependInt32(v)
    return b.EndVector()


def _offset_vector(b, offsets: list[int]) -> int:
    b.StartVector(4, len(offsets), 4)
    for off in reversed(offsets):
        b.PrependUOffsetTRelative(off)
    return b.EndVector()
