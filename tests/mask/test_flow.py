"""Optical flow at every picture size (DIS crashes the process under about 32 px a side)."""

from __future__ import annotations

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from livebokeh.mask import FlowEstimator, warp
from tests.conftest import REPO

#: Sizes (w, h) that crashed (SIGSEGV) or failed inside OpenCV's DIS before the fix, and edges.
TINY = [(128, 16), (40, 8), (128, 28), (64, 12), (16, 16), (1000, 16), (16, 1000), (8, 8), (1, 1), (2, 64),
        (64, 2), (31, 31), (32, 32), (33, 17)]


def _pair(w, h, shift=1):
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (max(2, h // 2), max(2, w // 2)), np.uint8)
    a = cv2.resize(base, (w, h), interpolation=cv2.INTER_CUBIC)
    return a, np.roll(a, shift, axis=1)


@pytest.mark.parametrize(("w", "h"), TINY)
def test_every_size_gives_a_flow_of_its_size_in_a_child_process(w, h):
    """In a child: a crash there fails the test instead of killing the test run."""
    code = (
        "import numpy as np, sys; from livebokeh.mask import FlowEstimator, warp;"
        f"from tests.mask.test_flow import _pair; a, b = _pair({w}, {h}); e = FlowEstimator();"
        "f = [e.backward(a, b) for _ in range(3)][-1];"
        f"assert f.shape == ({h}, {w}, 2) and f.dtype == np.float32 and np.isfinite(f).all(), f.shape;"
        f"assert warp(b.astype(np.float32), f).shape == ({h}, {w}); print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, PYTHONPATH=str(REPO)), cwd=REPO)
    assert out.returncode == 0 and out.stdout.strip() == "ok", (out.returncode, out.stderr[-500:])


@pytest.mark.parametrize(("w", "h"), [(128, 16), (16, 16), (1000, 16), (64, 64)])
@pytest.mark.parametrize("shift", [2, -2])
def test_a_small_picture_still_gets_its_motion(w, h, shift):
    """The flow of a textured pair moved ``shift`` px across is found at every size (backward
    flow: ``current(x) = previous(x + shift)``), and warping the previous picture with it comes
    closer to the current one."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (max(2, h // 4), max(2, w // 4)), np.uint8)
    a = cv2.resize(base, (w, h), interpolation=cv2.INTER_CUBIC)
    b = np.roll(a, shift, axis=1)
    flow = FlowEstimator().backward(a, b)
    inner = (slice(2, -2), slice(4, -4))
    assert abs(float(np.median(flow[inner][..., 0])) - shift) < 0.5
    assert abs(float(np.median(flow[inner][..., 1]))) < 0.5
    moved = warp(b.astype(np.float32), flow)
    assert np.abs(moved - a)[inner].mean() < 0.5 * np.abs(b.astype(np.float32) - a)[inner].mean()
