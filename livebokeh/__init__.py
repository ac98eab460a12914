"""livebokeh: real-time portrait mode for any webcam.

Importing the package is cheap: heavy libraries (OpenCV's GUI, PyAV, TensorFlow, the TFLite
runtime) are imported by the component that needs them.
"""

__version__ = "0.1.0"

from livebokeh.errors import (  # noqa: E402
    ConfigError,
    LivebokehError,
    ModelError,
    SinkError,
    SourceError,
)

__all__ = [
    "ConfigError",
    "LivebokehError",
    "ModelError",
    "SinkError",
    "SourceError",
    "__version__",
]
