"""The renderer's targets, pinned on real portraits (skipped without ../shared/data)."""

from livebokeh.bench import render as bench
from livebokeh.config import RenderConfig


def test_halo_is_under_a_third_of_the_naive_method(data_dir):
    h = bench.halo(data_dir, RenderConfig(), limit=5)
    assert h["portraits"] == 5
    assert h["ratio"] <= 1 / 3, h


def test_bokeh_disc_energy():
    b = bench.bokeh(RenderConfig())
    assert b["energy_inside"] >= 0.8 and b["core_variation"] < 0.1, b
