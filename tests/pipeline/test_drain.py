"""A failing input ends the stream where it failed: every frame read before is written, in order,
in every file layout, and the error is raised after."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from livebokeh.errors import SourceError
from livebokeh.pipeline import Pipeline
from livebokeh.types import Mask, SegmenterTraits
from tests.conftest import FakeSegmenter, FakeSource, ListSink

LAYOUTS = [
    pytest.param({"workers": 1}, id="one-worker"),
    pytest.param({"workers": 3}, id="three-workers"),
    pytest.param({"workers": 3, "segment_workers": 2, "heavy": True}, id="model-side-by-side"),
]


class _Heavy(FakeSegmenter):
    traits = SegmenterTraits(heavy=True)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("lookahead", [0, 2])
def test_a_source_failing_midway_writes_every_frame_read(layout, lookahead):
    from livebokeh.config import MaskConfig

    src = FakeSource(count=40, fail_at=23)
    sink = ListSink()
    with src:
        seg = _Heavy() if layout.pop("heavy", False) else FakeSegmenter()
        pipe = Pipeline(src, seg, [sink], MaskConfig(lookahead=lookahead), queue_size=2, **layout)
        with pytest.raises(SourceError, match="unplugged") as err:
            pipe.run()
    assert [c.frame.index for c in sink.items] == list(range(23))  # 23 read, 23 written, in order
    assert "in the capture stage" in err.value.__notes__


class _MasksRunOut:
    """Given masks that end before the input (``--mask`` with too few files)."""

    def __init__(self, count: int, heavy: bool = False) -> None:
        self.traits = SegmenterTraits(matte=True, heavy=heavy)
        self.count = count
        self.lock = threading.Lock()

    def segment_frame(self, frame):
        if frame.index >= self.count:
            raise SourceError(f"no mask for frame {frame.index}")
        return Mask(np.full((frame.height, frame.width), 0.5, np.float32))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_masks_running_out_write_every_frame_before(layout):
    src = FakeSource(count=40)
    sink = ListSink()
    with src:
        pipe = Pipeline(src, _MasksRunOut(17, layout.pop("heavy", False)), [sink], queue_size=2, **layout)
        with pytest.raises(SourceError, match="no mask for frame 17"):
            pipe.run()
    assert [c.frame.index for c in sink.items] == list(range(17))


def test_a_bug_still_stops_everything_at_once():
    """Only the input's own errors drain; a programming error is not taken for the end of a stream."""
    src = FakeSource(count=40)
    sink = ListSink()
    with src:
        pipe = Pipeline(src, FakeSegmenter(fail_at=5), [sink], queue_size=2)
        with pytest.raises(RuntimeError, match="exploded"):
            pipe.run()
    assert len(sink.items) <= 5
