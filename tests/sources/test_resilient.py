"""Camera loss and recovery with fake cameras that fail, stall and come back on a schedule."""

import threading
import time
from fractions import Fraction

import numpy as np
import pytest

from livebokeh.errors import SourceError
from livebokeh.sources import Reconnecting
from livebokeh.sources.base import Source
from livebokeh.types import Frame, StreamInfo


class Plan:
    """Shared schedule: how many opens fail, and what each opened camera does."""

    def __init__(self, frames_per_life, failing_opens=0, stall=False):
        self.frames_per_life = list(frames_per_life)
        self.failing_opens = failing_opens
        self.stall = stall
        self.opens = 0
        self.unstuck = threading.Event()


class FakeCam(Source):
    def __init__(self, plan: Plan):
        self.plan = plan
        self.n = 0
        self.level = 0

    def _open(self):
        p = self.plan
        p.opens += 1
        if p.opens > 1 and p.failing_opens > 0:
            p.failing_opens -= 1
            raise SourceError("no such device")
        self.life = p.frames_per_life.pop(0) if p.frames_per_life else 10**9
        self.level = 40 * p.opens
        return StreamInfo("fake camera", 32, 24, Fraction(100), live=True)

    def read(self):
        if self.n >= self.life:
            if self.plan.stall:
                self.plan.unstuck.wait(10)  # hangs like a dead USB device, until closed
                raise SourceError("read aborted")
            raise SourceError("unplugged")
        time.sleep(0.01)  # a 100 fps camera
        self.n += 1
        return Frame(np.full((24, 32, 3), self.level, np.uint8), self.n, time.monotonic_ns())

    def _release(self):
        self.plan.unstuck.set()


def _collect(src, until, limit=2000):
    out = []
    for _ in range(limit):
        f = src.read()
        out.append(f)
        if until(out):
            break
    return out


def test_unplugged_camera_sends_placeholders_then_recovers():
    plan = Plan([5], failing_opens=2)
    threads_before = threading.active_count()
    src = Reconnecting(lambda: FakeCam(plan), watchdog_s=0.3, backoff_s=(0.02, 0.04))
    with src:
        frames = _collect(src, lambda out: sum(1 for f in out if f.image[0, 0, 0] == 160) >= 5)
    levels = [int(f.image[0, 0, 0]) for f in frames]
    assert levels[:5] == [40] * 5  # the first camera
    assert any(v not in (40, 160) for v in levels)  # placeholders while it was gone
    assert levels[-1] == 160  # the fourth open worked (two reopen attempts failed)
    assert [f.index for f in frames] == list(range(len(frames)))  # one continuous stream
    assert all(f.image.shape == (24, 32, 3) for f in frames)
    assert src.losses == 1 and src.placeholders > 0 and plan.opens == 4
    assert threading.active_count() <= threads_before


def test_a_stalled_camera_is_detected_by_the_watchdog():
    plan = Plan([3], stall=True)
    src = Reconnecting(lambda: FakeCam(plan), watchdog_s=0.2, backoff_s=(0.02,))
    t0 = time.monotonic()
    with src:
        frames = _collect(src, lambda out: len(out) > 3 and out[-1].image[0, 0, 0] == 80)
    assert time.monotonic() - t0 < 5
    assert src.losses == 1 and src.placeholders >= 1
    assert int(frames[-1].image[0, 0, 0]) == 80  # reopened after the stall


def test_the_first_open_must_work():
    class Broken(FakeCam):
        def _open(self):
            raise SourceError("camera 7 could not be opened")

    with pytest.raises(SourceError, match="camera 7"):
        Reconnecting(lambda: Broken(Plan([]))).open()
