"""How many threads the libraries inside the stages may use.

The pipeline already runs its stages in parallel (capture, inference, render, sinks). On a
machine with few cores, OpenCV's and the inference runtime's own worker threads only make the
stages fight over the same cores: ``livebokeh bench pipeline`` measured, on 2 cores at 720p,
about 8% more frames per second and 3 ms less CPU per frame with one thread each than with two.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from livebokeh.types import SegmenterTraits

log = logging.getLogger(__name__)

#: Up to this many cores, the stages themselves keep every core busy.
FEW_CORES = 4
#: How much lower than the others the live model's thread is scheduled (a nice value added).
MODEL_NICE = 10


def cpu_cores() -> int:
    """Cores this process may run on (its affinity where the OS tells, else the machine's)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class ThreadPlan:
    """How many threads each part of a run may use, planned once for the run: the inference
    runtime's, OpenCV's (``0`` = leave OpenCV's default), the file pipeline's pool of workers
    (:class:`livebokeh.pipeline.files.FileScheduler`) and how many of them may run a heavy
    stateless model at once."""

    inference: int
    opencv: int
    #: The video encoder's own threads (x264's frame threads), beside the pool's: one per core
    #: rather than FFmpeg's one and a half (on 2 cores, clip to H.264 with MediaPipe: the same
    #: 44-45 fps, 40 ms CPU a frame, within noise; the writer never oversubscribes the cores).
    encoder: int = 2
    #: Workers of a file pipeline's pool (any worker does any step: reading, the model,
    #: rendering, writing): one per core. On 2 cores, 2 workers against 3, in turn: MediaPipe
    #: 720p into a null sink 98.2 and 97.2 fps against 95.7 and 93.6, DeepLab 44.6 and 42.7
    #: against 40.2 and 41.2, RVM clip to H.264 12.7 and 12.3 against 11.0 and 11.5 (a third
    #: worker only adds contention); MediaPipe clip to H.264 within noise (43-45 fps either way).
    workers: int = 2
    #: Threads that run a heavy model side by side in a file pipeline (see :meth:`segment_workers`).
    heavy_model_workers: int = 1
    #: Runtime threads of a stateful model in a file pipeline: it sees every frame, in order, one
    #: run at a time, and the other steps wait on it, so it may use every core (RVM at a 384 px
    #: backbone on 1280x720: 89 ms a frame on one thread, 54 ms on two).
    ordered_model: int = 1

    def segment_workers(self, traits: SegmenterTraits) -> int:
        """Threads for a file pipeline's inference stage: :attr:`heavy_model_workers` for a
        stateless model that outweighs the rendering (``traits.heavy``: DeepLab on the CPU, 26 ms
        a frame against 11 for the rest), one otherwise (a stateful model sees its frames in
        order, one run at a time). Each runs the model on its own interpreter with
        :attr:`inference` threads: on 2 cores DeepLab's one inference thread left the second
        core half idle, and two runtime threads gained nothing beside the renderer."""
        return self.heavy_model_workers if traits.heavy and not traits.stateful else 1


def plan_threads(requested: int = 0, cores: int | None = None) -> ThreadPlan:
    """The thread counts for a run.

    Args:
        requested: ``[segmenter] threads``; 0 = automatic.
        cores: cores available (default: :func:`cpu_cores`).
    """
    cores = cpu_cores() if cores is None else max(1, cores)
    few = cores <= FEW_CORES
    inference = requested if requested > 0 else (1 if few else 2)
    return ThreadPlan(inference=inference, opencv=1 if few else 0, workers=cores, encoder=cores,
                      heavy_model_workers=2 if cores >= 2 else 1,
                      ordered_model=requested if requested > 0 else min(cores, FEW_CORES))


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


def lower_priority(nice: int = MODEL_NICE) -> bool:
    """Schedule the calling thread ``nice`` steps below the process's other threads (Linux,
    where a thread has a priority of its own; elsewhere nothing happens). Live, the model's
    thread does this: on a machine short of CPU time the frames keep the camera's rate and the
    model runs less often, rather than the other way round. Returns whether it was done."""
    if not sys.platform.startswith("linux"):
        return False
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
    except OSError as err:  # a sandbox may forbid it: the model then competes as an equal
        log.debug("could not lower the model thread's priority: %s", err)
        return False
    return True
