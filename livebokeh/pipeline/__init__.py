"""The threaded pipeline: capture -> inference -> render -> sinks."""

from livebokeh.pipeline.pipeline import Pipeline, Segmented, pacing
from livebokeh.pipeline.stats import Report

__all__ = ["Pipeline", "Report", "Segmented", "pacing"]
