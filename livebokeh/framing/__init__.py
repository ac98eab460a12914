"""Auto-framing: a virtual camera operator that follows the person with pan and zoom.

``observe`` finds the people in a mask, ``operator`` decides where the crop goes and how it
moves there (live: causal, critically damped; files: smoothed both ways), ``crop`` cuts and
scales it. The frame processor (:mod:`livebokeh.pipeline.processor`) runs them.
"""

from livebokeh.framing.observe import Observation, observe
from livebokeh.framing.operator import (
    WHOLE,
    Crop,
    LookaheadFraming,
    Operator,
    ideal_crop,
)

__all__ = ["WHOLE", "Crop", "LookaheadFraming", "Observation", "Operator", "ideal_crop", "observe"]
