"""Capture-to-output latency measured the way pyvirtualcam tests its own: a timestamp written
into the pixels of a synthetic source and read back at the sink, independent of the pipeline's
own bookkeeping."""

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
    def __init__(self, count, fps):
        self.count, self.fps, self.i = count, fps, 0

    def _open(self):
        return StreamInfo("stamped", 640, 360, Fraction(self.fps), live=True)

    def read(self):
        if self.i >= self.count:
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

    def segment(self, image):
        m = np.zeros(image.shape[:2], np.float32)
        m[: 3 * CELL, :] = 1.0  # the timestamp strip stays sharp
        return Mask(m)


class StampReader:
    name = "stamps"

    def __init__(self):
        self.latencies = []

    def write(self, item):
        sent = decode(np.asarray(item.image))
        now = time.monotonic_ns() & ((1 << BITS) - 1)
        self.latencies.append((now - sent) / 1e6)

    def poll(self):
        return True

    def close(self):
        pass


def test_latency_read_from_the_pixels():
    src = StampedCamera(60, 60)
    sink = StampReader()
    with src, Pipeline(src, TopRowsArePerson(), [sink], MaskConfig(smoothing=0.0), RenderConfig(light_wrap=0.0)) as p:
        report = p.run()
    lat = np.array(sink.latencies)
    assert len(lat) == report.frames_out > 40
    assert (lat > 0).all() and np.median(lat) < 100  # ms, on 2 cores
    # the pipeline's own bookkeeping agrees with the pixels
    assert abs(np.median(lat) - report.latency_ms_p50) < 5


def test_stamp_round_trip():
    img = np.zeros((16, 640, 3), np.uint8)
    encode(123456789012, img)
    assert decode(img) == 123456789012
