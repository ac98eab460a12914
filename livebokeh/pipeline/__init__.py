"""The pipeline: one frame processor, a live and a file scheduler around it (see pipeline.py)."""

from livebokeh.pipeline.pipeline import Pipeline, pacing
from livebokeh.pipeline.processor import FrameProcessor, Segmented
from livebokeh.pipeline.stats import Report

__all__ = ["FrameProcessor", "Pipeline", "Report", "Segmented", "pacing"]
