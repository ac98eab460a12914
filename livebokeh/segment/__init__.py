"""Person segmentation backends, behind one registry (:data:`SEGMENTERS`).

Every backend is built from :class:`SegmenterOptions` (how it shares the machine, which passes
run) with its own options inside (``own``): :class:`MediaPipeOptions`, :class:`DeepLabOptions`,
:class:`RVMOptions` (:mod:`livebokeh.segment.options`, also the schema of the ``[mediapipe]``,
``[deeplab]`` and ``[rvm]`` settings sections); :meth:`SegmenterOptions.from_config` picks the
chosen backend's.

The options are light (the settings schema reads them); the registry, the interface and the
backends (OpenCV, NumPy, the model runtimes) are imported on first use of those names.
"""

from __future__ import annotations

from typing import Any

from livebokeh.segment.options import BACKEND_OPTIONS, DeepLabOptions, MediaPipeOptions, RVMOptions

_FROM_BASE = frozenset({"SEGMENTERS", "Segmenter", "SegmenterOptions", "create_segmenter"})


def load_backends() -> None:
    """Import (and so register) every backend; this order is the order every list of backends shows."""
    import livebokeh.segment.selfie  # noqa: F401
    import livebokeh.segment.deeplab  # noqa: F401, I001
    import livebokeh.segment.rvm  # noqa: F401


def __getattr__(name: str) -> Any:
    if name in _FROM_BASE:
        from livebokeh.segment import base

        load_backends()
        return getattr(base, name)
    raise AttributeError(f"module 'livebokeh.segment' has no attribute {name!r}")


__all__ = ["BACKEND_OPTIONS", "SEGMENTERS", "DeepLabOptions", "MediaPipeOptions", "RVMOptions", "Segmenter",
           "SegmenterOptions", "create_segmenter", "load_backends"]
