"""Tiny ONNX files written by hand (the protobuf wire format), for models that are wrong on purpose.

Only what small graphs need: float tensors (of any shape, or a declared one), nodes with integer
list attributes (``ReduceMax``'s ``axes``), opset 13. The ``onnx`` package is not a dependency;
ONNX Runtime reads these files as it reads any model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, value: int | bytes | str) -> bytes:
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    data = value.encode() if isinstance(value, str) else value
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _value_info(name: str, shape: Sequence[int] | None = None) -> bytes:
    tensor = _field(1, 1)  # elem_type FLOAT; no shape: any rank and size
    if shape is not None:
        tensor += _field(2, b"".join(_field(1, _field(1, d)) for d in shape))
    return _field(1, name) + _field(2, _field(1, tensor))


def _attribute(name: str, ints: Sequence[int]) -> bytes:
    return _field(1, name) + b"".join(_field(8, i) for i in ints) + _field(20, 7)  # type INTS


def graph_model(inputs: Mapping[str, Sequence[int] | None], nodes: Sequence[tuple], outputs: Sequence[str]) -> bytes:
    """An ONNX model: float ``inputs`` (name -> declared shape, or None for any), ``nodes`` as
    ``(op_type, [inputs], [outputs])`` or ``(op_type, [inputs], [outputs], {attribute: [ints]})``,
    and the graph's ``outputs`` (names of node outputs)."""
    body = b""
    for n, (op, ins, outs, *rest) in enumerate(nodes):
        attrs = rest[0] if rest else {}
        body += _field(1, b"".join(_field(1, i) for i in ins) + b"".join(_field(2, o) for o in outs)
                       + _field(3, f"n{n}") + _field(4, op) + b"".join(_field(5, _attribute(k, v)) for k, v in attrs.items()))
    graph = (body + _field(2, "g") + b"".join(_field(11, _value_info(k, v)) for k, v in inputs.items())
             + b"".join(_field(12, _value_info(o)) for o in outputs))
    return _field(1, 8) + _field(2, "livebokeh-tests") + _field(7, graph) + _field(8, _field(1, "") + _field(2, 13))


def identity_model(inputs: Sequence[str], outputs: Mapping[str, str]) -> bytes:
    """An ONNX model with float ``inputs`` whose every output is ``Identity`` of an input
    (``outputs``: output name -> input name)."""
    nodes = b"".join(_field(1, _field(1, src) + _field(2, out) + _field(3, f"n_{out}") + _field(4, "Identity"))
                     for out, src in outputs.items())
    graph = (nodes + _field(2, "g") + b"".join(_field(11, _value_info(n)) for n in inputs)
             + b"".join(_field(12, _value_info(n)) for n in outputs))
    return _field(1, 8) + _field(2, "livebokeh-tests") + _field(7, graph) + _field(8, _field(1, "") + _field(2, 13))
