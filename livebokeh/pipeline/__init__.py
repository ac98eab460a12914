"""The threaded pipeline: capture -> inference -> render -> sinks."""

from livebokeh.pipeline.controls import KEYS, LiveControls
from livebokeh.pipeline.pipeline import Pipeline, Segmented, pacing
from livebokeh.pipeline.queues import END, FifoQueue, LatestQueue
from livebokeh.pipeline.stats import Report

__all__ = ["KEYS", "LiveControls", "END", "FifoQueue", "LatestQueue", "Pipeline", "Report", "Segmented", "pacing"]
