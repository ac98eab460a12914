"""Errors a user can act on.

Every :class:`LivebokehError` carries a one-line message that says what went wrong and what to
do about it; the CLI prints it without a traceback (``--debug`` shows one).
"""

import sys


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


class SetupError(LivebokehError):
    """This machine lacks something the run needs, and trying again will not bring it: the
    v4l2loopback module or device, a weights file a setting names. Exit status 3, which the
    service's unit does not restart on."""


def exit_code(err: LivebokehError) -> int:
    """The exit status for ``err``: 2 when the command line or a settings file asks for what cannot
    be done (nothing was started), 3 when this machine lacks what the run needs (install it, then
    run again), 1 when a file, device or model failed."""
    if isinstance(err, ConfigError):
        return 2
    return 3 if isinstance(err, SetupError) else 1


def stdout_gone() -> bool:
    """Whether standard output is a pipe whose reader has gone (``livebokeh models list | head``):
    a ``BrokenPipeError`` then came from it, not from another pipe or socket, and the command
    ends quietly, as other commands do."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        return True
    except (OSError, ValueError):
        return False
    try:
        import select

        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll here, or stdout is no file
        return False
