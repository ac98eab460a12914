"""livebokeh: real-time portrait mode for any webcam.

Importing the package is cheap: heavy libraries (OpenCV's GUI, PyAV, TensorFlow, the TFLite
runtime) are imported by the component that needs them.
"""

__version__ = "0.1.0"

import os as _os

# OpenCV decodes no picture over livebokeh's limit (sources.imageinfo.MAX_PIXELS, 268 MP; its
# own is 1 GP): read when OpenCV loads, so set before anything imports it. Formats whose header
# livebokeh does not read are held to the limit by OpenCV itself.
_os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(1 << 28))

_ERRORS = ("ConfigError", "LivebokehError", "ModelError", "SinkError", "SourceError")


def __getattr__(name: str):  # the errors on first use: the command's entry point loads before them
    if name in _ERRORS:
        from livebokeh import errors

        return getattr(errors, name)
    raise AttributeError(f"module 'livebokeh' has no attribute {name!r}")


__all__ = [
    "ConfigError",
    "LivebokehError",
    "ModelError",
    "SinkError",
    "SourceError",
    "__version__",
]
