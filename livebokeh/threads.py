"""How many threads the libraries inside the stages may use.

The pipeline already runs its stages in parallel (capture, inference, render, sinks). On a
machine with few cores, OpenCV's and the inference runtime's own worker threads only make the
stages fight over the same cores: ``livebokeh bench pipeline`` measured, on 2 cores at 720p,
about 8% more frames per second and 3 ms less CPU per frame with one thread each than with two.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

#: Up to this many cores, the stages themselves keep every core busy.
FEW_CORES = 4
#: On 2 cores, frames larger than this get a second render worker. The model's cost does not
#: grow with the frame, the renderer's does: at 1280x720 capture + inference and render each
#: fill about one core, and a second worker only adds cache traffic (``livebokeh bench
#: pipeline``, MediaPipe: one worker 2-7% more fps and 1-2 ms less CPU a frame); at 1920x1080
#: the render stage sets the pace and a second worker gives 15% more fps (42.5 -> 49 fps).
SPLIT_RENDER_PIXELS = 1_500_000


def cpu_cores() -> int:
    """Cores this process may run on (its affinity where the OS tells, else the machine's)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class ThreadPlan:
    """Threads for the inference runtime, for OpenCV (``0`` = leave OpenCV's default), and the
    workers sharing a file pipeline's render stage (rendering is pure, so frames can be rendered
    side by side)."""

    inference: int
    opencv: int
    render_workers: int = 1


def plan_threads(requested: int = 0, cores: int | None = None,
                 frame_size: tuple[int, int] | None = None) -> ThreadPlan:
    """The thread counts for a run.

    Args:
        requested: ``[segmenter] threads``; 0 = automatic.
        cores: cores available (default: :func:`cpu_cores`).
        frame_size: ``(width, height)`` of the frames, when known: on 2 cores only frames above
            :data:`SPLIT_RENDER_PIXELS` get two render workers (unknown: two).
    """
    cores = cpu_cores() if cores is None else max(1, cores)
    few = cores <= FEW_CORES
    inference = requested if requested > 0 else (1 if few else 2)
    if cores == 1:
        workers = 1
    elif cores == 2 and frame_size is not None:
        workers = 2 if frame_size[0] * frame_size[1] > SPLIT_RENDER_PIXELS else 1
    else:
        workers = 2
    return ThreadPlan(inference=inference, opencv=1 if few else 0, render_workers=workers)


@contextlib.contextmanager
def opencv_threads(plan: ThreadPlan) -> Iterator[None]:
    """OpenCV's worker threads (a process-wide setting) per ``plan`` while inside; restored after."""
    import cv2

    previous = cv2.getNumThreads()
    if plan.opencv > 0:
        cv2.setNumThreads(plan.opencv)
    try:
        yield
    finally:
        cv2.setNumThreads(previous)
