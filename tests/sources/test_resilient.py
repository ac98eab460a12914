"""Camera loss and recovery with fake cameras that fail, stall and come back on a schedule."""

import itertools
import threading
import time
from fractions import Fraction

import numpy as np
import pytest

from tests.conftest import until

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
        self.stall_ended_by_close = None  # whether a stalled read ended because the camera was closed
        self.before_reopen = lambda: None  # runs before each reopen attempt


class FakeCam(Source):
    def __init__(self, plan: Plan):
        self.plan = plan
        self.n = 0
        self.level = 0

    def _open(self):
        p = self.plan
        p.opens += 1
        if p.opens > 1:
            p.before_reopen()
        if p.opens > 1 and p.failing_opens > 0:
            p.failing_opens -= 1
            raise SourceError("no such device")
        self.life = p.frames_per_life.pop(0) if p.frames_per_life else 10**9
        self.level = 40 * p.opens
        return StreamInfo("fake camera", 32, 24, Fraction(100), live=True)

    def read(self):
        if self.n >= self.life:
            if self.plan.stall:
                # hangs like a dead USB device, until closed (or, were nothing to close it, 60 s)
                self.plan.stall_ended_by_close = self.plan.unstuck.wait(60)
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
    # the camera fails loudly here; a watchdog far longer than any pause of a busy machine
    # keeps a slow read from counting as a second loss
    src = Reconnecting(lambda: FakeCam(plan), watchdog_s=30, backoff_s=(0.02, 0.04))
    # the camera stays gone until a placeholder went out for it, however the threads are scheduled
    plan.before_reopen = lambda: until(lambda: src.placeholders > 0, "a placeholder while the camera is gone")
    with src:
        frames = _collect(src, lambda out: sum(1 for f in out if f.image[0, 0, 0] == 160) >= 5)
    levels = [int(f.image[0, 0, 0]) for f in frames]
    # the first camera (its newest frames: one the reader replaced before it was taken is not
    # sent), then placeholders while it was gone (its last frame dimmed), then the fourth open,
    # which worked (two reopen attempts failed)
    assert [v for v, _ in itertools.groupby(levels)] == [40, 40 * 2 // 5, 160]
    assert [f.index for f in frames] == list(range(len(frames)))  # one continuous stream
    assert all(f.image.shape == (24, 32, 3) for f in frames)
    assert src.losses == 1 and src.placeholders > 0 and plan.opens == 4
    assert threading.active_count() <= threads_before


def test_a_stalled_camera_is_detected_by_the_watchdog():
    plan = Plan([3], stall=True)
    src = Reconnecting(lambda: FakeCam(plan), watchdog_s=1.0, backoff_s=(0.02,))
    with src:
        frames = _collect(src, lambda out: len(out) > 3 and out[-1].image[0, 0, 0] == 80)
    # the watchdog, not the read giving up, ended the stall: it closed the hung camera
    assert plan.stall_ended_by_close is True
    # (a busy machine may pause the new camera past the watchdog too: that is a loss as well)
    assert src.losses >= 1 and src.placeholders >= 1
    assert int(frames[-1].image[0, 0, 0]) == 80  # reopened after the stall


def test_the_first_open_must_work():
    class Broken(FakeCam):
        def _open(self):
            raise SourceError("camera 7 could not be opened")

    with pytest.raises(SourceError, match="camera 7"):
        Reconnecting(lambda: Broken(Plan([]))).open()
