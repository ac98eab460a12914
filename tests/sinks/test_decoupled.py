import threading

import numpy as np
import pytest

from livebokeh.errors import SinkError
from livebokeh.sinks.base import Sink
from livebokeh.sinks.decoupled import Decoupled
from livebokeh.types import Composite, Frame, Mask


def _item(i):
    img = np.full((8, 8, 3), i, np.uint8)
    return Composite(Frame(img, i, 0), img.copy(), Mask(np.ones((8, 8), np.float32)))


class Gate(Sink):
    """Blocks in write until released, like a virtual camera whose reader stalls."""

    name = "gate"

    def __init__(self, fail_at=None):
        self.entered = threading.Event()
        self.release = threading.Event()
        self.got = []
        self.fail_at = fail_at
        self.closed_count = 0

    def write(self, item):
        if item.frame.index == self.fail_at:
            raise RuntimeError("device went away")
        self.entered.set()
        assert self.release.wait(5)
        self.got.append(item.frame.index)

    def _release(self):
        self.closed_count += 1


def test_a_blocked_output_does_not_hold_up_the_writer_and_gets_the_newest_frame():
    gate = Gate()
    sink = Decoupled(gate)
    sink.write(_item(0))
    assert gate.entered.wait(5)  # the inner sink is stuck on frame 0
    for i in range(1, 6):
        sink.write(_item(i))  # returns at once although the inner sink is blocked
    assert gate.got == []
    gate.release.set()
    sink.close()
    sink.close()
    assert gate.got == [0, 5]  # the frame in progress, then the newest; the rest dropped
    assert sink.dropped == 4 and gate.closed_count == 1
    assert not [t for t in threading.enumerate() if t.name == "livebokeh-gate"]


def test_an_error_in_the_output_reaches_the_writer():
    gate = Gate(fail_at=0)
    sink = Decoupled(gate)
    sink.write(_item(0))
    with pytest.raises(SinkError, match="gate: device went away"):
        sink._thread.join(5)
        sink.write(_item(1))
    sink.close()  # reported once, not again at close
    assert gate.closed_count == 1


def test_an_error_after_the_last_write_is_raised_by_close():
    gate = Gate(fail_at=3)
    sink = Decoupled(gate)
    sink.write(_item(3))
    with pytest.raises(SinkError, match="device went away"):
        sink.close()
    assert gate.closed_count == 1
