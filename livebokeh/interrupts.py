"""Signals that stop a command as Ctrl-C does: standard library only, for every subcommand.

SIGTERM (a CI timeout, ``systemctl stop``), SIGHUP (a closed terminal) and SIGQUIT (``Ctrl-\\``)
would end the process on the spot, leaving a download's part file or a bench's folder and saying
nothing (exit 143, 129, 131); raised as KeyboardInterrupt instead, they unwind the command's
clean-up and end in its one ``interrupted`` line, exit 130. (A run has its own handlers:
``livebokeh.cli._StopSignals``.)
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: The signals that stop a command besides SIGINT (those this system has: not SIGHUP, SIGQUIT on Windows).
STOPPING = tuple(getattr(signal, n) for n in ("SIGTERM", "SIGHUP", "SIGQUIT") if hasattr(signal, n))

_received: list[int] = []
_hup_pending: list[int] = []  # a SIGHUP that came while the command loaded (see termination_unwinds)


_deferring: list[bool] = []  # a SIGHUP is kept for the command to decide (see termination_unwinds)


def take_hup() -> bool:
    """Whether a SIGHUP came while the command loaded (``hup_later``); forgets it, and from now on
    a SIGHUP stops as the other signals do (until the command's own handlers take over). The
    command decides what the one that came means: a live run's settings are read anyway as it
    starts, a file's run or another command stops."""
    _deferring.clear()
    came = bool(_hup_pending)
    _hup_pending.clear()
    return came


def note_stop(signum: int) -> None:
    """Note that a stop signal came (its KeyboardInterrupt may be lost: see :func:`import_interruptible`)."""
    _received.append(signum)


def import_interruptible(name: str) -> Any:
    """``import name``; a stop signal that came while it imported is a KeyboardInterrupt, even where
    the module's C extension turned it into an ImportError (ONNX Runtime: "import numpy failed"),
    which would else be told as a missing package. Other ImportErrors are raised as they are."""
    import importlib

    before = len(_received)
    try:
        return importlib.import_module(name)
    except ImportError as err:
        if len(_received) > before:
            raise KeyboardInterrupt(f"interrupted while importing {name} ({err})") from None
        raise


@contextmanager
def termination_unwinds(hup_later: bool = False) -> Iterator[None]:
    """While open, :data:`STOPPING` raise KeyboardInterrupt in the main thread instead of ending the
    process on the spot, as Ctrl-C does (only where nobody else handles them: a SIGHUP that
    ``nohup`` ignores stays ignored); each is noted (:func:`import_interruptible`), Ctrl-C's too.
    With ``hup_later``, a SIGHUP is kept for the command to decide (:func:`take_hup`)."""
    if hup_later:
        _deferring[:] = [True]

    def interrupt(signum: int, _frame: object) -> None:
        if _deferring and signum == getattr(signal, "SIGHUP", None):
            _hup_pending.append(signum)  # (a live run reloads on it: the command, once it knows, decides)
            return
        note_stop(signum)
        raise KeyboardInterrupt(f"signal {signum}")

    previous = []
    for sig in (signal.SIGINT, *STOPPING):
        if signal.getsignal(sig) is not (signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL):
            continue
        try:
            previous.append((sig, signal.signal(sig, interrupt)))
        except ValueError:  # not the main thread: signals reach the main one only
            continue
    try:
        yield
    finally:
        if hup_later:
            _deferring.clear()
        for sig, handler in previous:
            if signal.getsignal(sig) is interrupt:  # (one the command set since, SIG_IGN to its exit, stays)
                signal.signal(sig, handler)


@contextmanager
def signals_held() -> Iterator[None]:
    """While open, Ctrl-C and :data:`STOPPING` wait (they are delivered on leaving); where signals
    cannot be held (Windows, not the main thread), nothing changes."""
    held = {signal.SIGINT, *STOPPING}
    try:
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    except (AttributeError, ValueError, OSError):
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
