"""Benchmarks users can run too: ``livebokeh bench models``.

Speeds are measured side by side in one run on the same frames, so ratios between rows are
meaningful on any machine; absolute figures belong to the machine that printed them.
"""
