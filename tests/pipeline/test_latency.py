"""Capture-to-output latency measured the way pyvirtualcam tests its own: a timestamp written
into the pixels of a synthetic source and read back at the sink, independent of the pipeline's
own bookkeeping.

How long it is depends on the machine and its load: ``livebokeh bench pipeline`` measures it
(p50, p95, p99 of the paced 30 fps case). Here: that the pipeline's figure for each frame is
the time from that very frame's capture to its output.
"""

import threading
import time
from fractions import Fraction

import numpy as np

from livebokeh.config import MaskConfig, RenderConfig
from livebokeh.pipeline import Pipeline
from livebokeh.sources.base import Source
from livebokeh.types import Frame, Mask, SegmenterTraits, StreamInfo

BITS = 48
CELL = 8


def encode(ns: int, img: np.ndarray) -> None:
    for b in range(BITS):
        img[0:CELL, b * CELL : (b + 1) * CELL] = 255 if (ns >> b) & 1 else 0


def decode(img: np.ndarray) -> int:
    centre = img[CELL // 2, CELL // 2 :: CELL, 1][:BITS].astype(int)
    return sum(1 << b for b, v in enumerate(centre) if v > 127)


class StampedCamera(Source):
    """Writes its clock into each frame; ends once ``enough()`` (or after ``count`` frames)."""

    def __init__(self, count, fps, enough=lambda: False):
        self.count, self.fps, self.i, self.enough = count, fps, 0, enough

    def _open(self):
        return StreamInfo("stamped", 640, 360, Fraction(self.fps), live=True)

    def read(self):
        if self.i >= self.count or self.enough():
            return None
        time.sleep(1 / self.fps)
        img = np.full((360, 640, 3), 90, np.uint8)
        now = time.monotonic_ns()
        encode(now & ((1 << BITS) - 1), img)
        f = Frame(img, self.i, now)
        self.i += 1
        return f


class TopRowsArePerson:
    traits = SegmenterTraits()

    def segment_frame(self, frame):
        return self.segment(frame.image)

    def segment(self, image):
        m = np.zeros(image.shape[:2], np.float32)
        m[: 3 * CELL, :] = 1.0  # the timestamp strip stays sharp
        return Mask(m)


class StampReader:
    """Reads the stamp back (None for a frame rendered before the first mask) and keeps the time
    it did so for the pipeline's clock."""

    name = "stamps"

    def __init__(self):
        self.latencies = []
        self.now = threading.local()

    def write(self, item):
        now = time.monotonic_ns()
        self.now.ns = now
        if item.mask.data.max() == 0:
            self.latencies.append(None)
            return
        sent = decode(np.asarray(item.image))
        self.latencies.append(((now - sent) & ((1 << BITS) - 1)) / 1e6)

    def clock_ns(self):
        """The pipeline's clock: the time the sink read the frame just written."""
        return self.now.ns

    def poll(self):
        return True

    def close(self):
        pass


def test_latency_read_from_the_pixels():
    """The pipeline's clock is read when the sink reads the stamp, so for every frame its
    latency is exactly what the pixels say: the time since that frame was captured."""
    sink = StampReader()
    src = StampedCamera(100_000, 60, enough=lambda: sum(v is not None for v in sink.latencies) >= 40)
    # the picture passes through unchanged (effect none), so the stamp is read whatever the mask
    with src, Pipeline(src, TopRowsArePerson(), [sink], MaskConfig(smoothing=0.0), RenderConfig(effect="none"),
                       clock_ns=sink.clock_ns) as p:
        report = p.run()
    assert len(sink.latencies) == report.frames_out and report.frames_out + report.dropped == report.frames_in
    first = next(i for i, v in enumerate(sink.latencies) if v is not None)
    assert all(v is None for v in sink.latencies[:first])  # only frames before the first mask
    read = sink.latencies[first:]
    assert len(read) >= 40 and all(v is not None and v > 0 for v in read)
    # the pipeline's own bookkeeping agrees with the pixels, frame by frame
    np.testing.assert_allclose(np.array(p.latency.values_ns, dtype=float)[first:] / 1e6, read, rtol=0, atol=1e-6)


def test_stamp_round_trip():
    img = np.zeros((16, 640, 3), np.uint8)
    encode(123456789012, img)
    assert decode(img) == 123456789012
