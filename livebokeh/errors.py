"""Errors a user can act on.

Every :class:`LivebokehError` carries a one-line message that says what went wrong and what to
do about it; the CLI prints it without a traceback (``--debug`` shows one).
"""

import argparse
import logging
import re
import stat
import sys
from typing import Any

#: Control characters (C0 but tab and newline, DEL, C1): a file name holding ESC sequences would
#: otherwise rewrite the terminal it is printed to (its title, the screen, colours).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


_CONTROL_AND_NEWLINE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def printable(text: str, newlines: bool = True) -> str:
    """``text`` with its control characters written as ``\\xNN`` (tab kept; newline kept unless
    ``newlines`` is False: in a line of a log, a name holding one could fake the next line)."""
    return (_CONTROL if newlines else _CONTROL_AND_NEWLINE).sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def file_kind(mode: int) -> str:
    """What an ``os.stat`` mode names, for a message: ``"a file"``, ``"a folder"``, ``"a pipe"``,
    ``"a socket"`` or ``"a device"`` (character or block)."""
    if stat.S_ISREG(mode):
        return "a file"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "a pipe" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"


def kind_at(path: Any) -> str | None:
    """What is at ``path`` (links followed), as :func:`file_kind` names it; None when nothing is
    (or it cannot be looked at). Never opens it: a pipe would wait for a writer."""
    import os

    try:
        return file_kind(os.stat(path).st_mode)
    except (OSError, ValueError):
        return None


def weights_not_there(path: Any) -> str:
    """Why a weights file named by a setting is not one, as the end of a sentence about "the ...
    weights PATH": ``"do not exist"``, or what is there (``"are a pipe, not a file"``)."""
    kind = kind_at(path)
    return "do not exist" if kind is None else f"are {kind}, not a file"


class PrintableFormatter(logging.Formatter):
    """Log lines with control characters escaped (:func:`printable`): names of files someone else
    made reach the terminal as text, never as its commands."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # (logging's name)
        return printable(super().formatMessage(record), newlines=False)  # (a traceback after it: --debug)


def log_to_stderr(level: int = logging.INFO) -> None:
    """The commands' logging: ``livebokeh: MESSAGE`` lines on standard error, escaped."""
    handler = logging.StreamHandler()
    handler.setFormatter(PrintableFormatter("livebokeh: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])


class OneLineParser(argparse.ArgumentParser):
    """argparse, with its errors in the one-line form of every other error (exit status 2), and
    control characters escaped (a globbed name shaped like an option is text, not the terminal's)."""

    def error(self, message: str) -> Any:
        said = printable(" ".join(message.split()), newlines=False)
        self.exit(2, f"{self.prog}: error: {said}; see {self.prog} --help\n")


def one_line(err: BaseException) -> str:
    """``err``'s message on one line, control characters escaped (its class name when it has none)."""
    return " ".join(printable(str(err)).split()) or type(err).__name__


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


class StdoutError(OSError):
    """Writing standard output failed (a full disk, an I/O error, or it was closed: ``>&-``): what the
    command prints has nowhere to go. (A reader gone, ``| head``, stays a ``BrokenPipeError``.)"""


class TaggedStdout:
    """``sys.stdout`` as the command's: its write errors are :class:`StdoutError`, so that a
    handler can tell them from an output file's (``livebokeh.cli.main`` says them in one line)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.failed: StdoutError | None = None  # the first write that failed (argparse's --help swallows it)

    def write(self, text: str) -> int:
        self._tagged(self._stream.write, printable(text))  # no name someone else chose drives the terminal
        return len(text)

    def flush(self) -> None:
        self._tagged(self._stream.flush)

    def _tagged(self, call: Any, *args: Any) -> Any:
        try:
            return call(*args)
        except (BrokenPipeError, StdoutError):
            raise
        except OSError as err:
            tagged = StdoutError(err.errno, err.strerror or str(err))
            self.failed = self.failed or tagged
            raise tagged from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def stdout_error(err: BaseException) -> str | None:
    """Why ``err`` came from writing standard output (None when it came from elsewhere)."""
    return (err.strerror or str(err)) if isinstance(err, StdoutError) else None


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
