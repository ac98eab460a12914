"""The threaded pipeline: capture -> inference -> render -> sinks."""

from livebokeh.pipeline.pipeline import Pipeline, Segmented
from livebokeh.pipeline.queues import END, FifoQueue, LatestQueue
from livebokeh.pipeline.stats import Report

__all__ = ["END", "FifoQueue", "LatestQueue", "Pipeline", "Report", "Segmented"]
