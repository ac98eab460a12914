"""The ``livebokeh`` command's entry point: the stop signals are taken in hand before the command's
modules load, so that Ctrl-C (or SIGTERM, SIGHUP, ``Ctrl-\\``) in its first moments is its one
``interrupted`` line and exit 130, as later, not a traceback or a silent 143."""

from __future__ import annotations

import sys


def main() -> int:
    from livebokeh.interrupts import termination_unwinds

    try:
        with termination_unwinds(hup_later=True):  # (a SIGHUP: a live run reloads on it; cli decides)
            from livebokeh.cli import main as command
        return command()
    except KeyboardInterrupt:  # (before the command's own handling: while it loads, or parses its flags)
        print("livebokeh: interrupted", file=sys.stderr)
        return 130
