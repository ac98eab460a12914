"""The ``livebokeh`` command's entry point: the stop signals are taken in hand before the command's
modules load, so that Ctrl-C (or SIGTERM, SIGHUP, ``Ctrl-\\``) in its first moments is its one
``interrupted`` line and exit 130, as later, not a traceback or a silent 143."""

from __future__ import annotations

import sys


def main() -> int:
    from livebokeh.interrupts import termination_unwinds

    try:
        # to the end: the command's own handling takes over from these as it starts (a run's
        # handlers, or every other command's); a SIGHUP is kept for it to decide (a live run reloads)
        with termination_unwinds(hup_later=True):
            from livebokeh.cli import main as command

            return command()
    except KeyboardInterrupt:  # (before the command's own handling: while it loads, or parses its flags)
        print("livebokeh: interrupted", file=sys.stderr)
        return 130
