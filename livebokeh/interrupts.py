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

#: The signals that stop a command besides SIGINT (those this system has: not SIGHUP, SIGQUIT on Windows).
STOPPING = tuple(getattr(signal, n) for n in ("SIGTERM", "SIGHUP", "SIGQUIT") if hasattr(signal, n))


@contextmanager
def termination_unwinds() -> Iterator[None]:
    """While open, :data:`STOPPING` raise KeyboardInterrupt in the main thread instead of ending the
    process on the spot (only where nobody else handles them: a SIGHUP that ``nohup`` ignores stays
    ignored)."""
    def interrupt(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = []
    for sig in STOPPING:
        if signal.getsignal(sig) is not signal.SIG_DFL:
            continue
        try:
            previous.append((sig, signal.signal(sig, interrupt)))
        except ValueError:  # not the main thread: signals reach the main one only
            continue
    try:
        yield
    finally:
        for sig, handler in previous:
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
