"""Subcommands of the ``livebokeh`` command (``livebokeh models ...``)."""
