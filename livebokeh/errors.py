"""Errors a user can act on.

Every :class:`LivebokehError` carries a one-line message that says what went wrong and what to
do about it; the CLI prints it without a traceback (``--debug`` shows one).
"""


def one_line(err: BaseException) -> str:
    """``err``'s message on one line (its class name when it has none)."""
    return " ".join(str(err).split()) or type(err).__name__


class LivebokehError(Exception):
    """Base class: ``str(err)`` is a one-line, actionable message."""


class ConfigError(LivebokehError):
    """A configuration file, preset or command-line value is wrong."""


class SourceError(LivebokehError):
    """A camera, video or image cannot be opened or stopped delivering frames."""


class SinkError(LivebokehError):
    """An output (virtual camera, window, file) cannot be opened or written."""


class ModelError(LivebokehError):
    """A segmentation model is missing, unreadable or failed to run."""
