"""The live controller: the camera's frame rate first, quality with what the CPU leaves.

A video call shares the machine with the call app, which decodes and encodes video too. The
camera's rate is the promise; the model's work is what the remaining CPU buys. Once a second
:class:`LiveController` looks at the frames that went out (:class:`Window`): how many were dropped,
how late they were against the frame period, and how long the model's runs took. Under pressure it steps down a ladder of :class:`Level` (fewer model runs, then a
cheaper setting of the model, then as a last resort another backend, then a lighter render);
when every frame was on time for a while and the machine has idle CPU, it steps back up.
Hysteresis keeps it from oscillating: a step down needs pressure in two windows in a row (one,
when many frames were dropped), a step up :data:`UP_AFTER_S` of calm, twice as long after each
step up that had to be taken back. A change of the model's size or backend is blended into what
is shown (:meth:`livebokeh.pipeline.processor.FrameProcessor.follow`), so nothing jumps.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

#: Seconds of frames the controller looks at, each time it decides.
WINDOW_S = 1.0
#: Seconds of calm before a step up (doubled after each step up that had to be taken back).
UP_AFTER_S = 8.0
#: The longest wait before trying a step up again.
UP_AFTER_MAX_S = 120.0
#: Model runs a second at most on the "fewer model runs" levels: half what RVM on the CPU runs at
#: full quality on a talking head (4.3 to 5.7 at its 40% share), above the pacing's floor of 2.
FEW_RUNS = 2.5
#: A frame later than this many frame periods (capture to output) counts as late.
LATE_PERIODS = 2.0
#: Share of late frames in a window that is pressure.
LATE_SHARE = 0.1
#: Share of dropped frames in a window that is pressure at once (fewer: two windows in a row).
DROP_SHARE = 0.05
#: Seconds a model run may take, wall time, before its masks count as too old: the machine is
#: so busy that the model (scheduled below the frames) gets too little of it, and a cheaper
#: setting would answer sooner. (Between runs the live matte carries the mask: on the animated
#: talking head of the data, 0.95 IoU with the model's own masks 9 frames after its last run.)
STARVED_S = 0.5
#: Idle share of the machine's CPU (all cores) needed to step up.
IDLE_TO_STEP_UP = 0.15


@dataclass(frozen=True)
class Level:
    """One step of the ladder.

    Attributes:
        name: for the log, ``--stats`` and the overlay.
        max_rate: model runs a second at most (0: only the model's own share of the time).
        cost: the segmenter's cost level (:meth:`livebokeh.segment.Segmenter.cost_levels`).
        fallback: the fallback backend runs instead of the run's own.
        light: a lighter render (no linear light, light wrap or highlight boost).
    """

    name: str
    max_rate: float = 0.0
    cost: int = 0
    fallback: bool = False
    light: bool = False


def ladder(cost_levels: Sequence[str] = (), fallback: str | None = None) -> list[Level]:
    """The levels from the best (first) to the cheapest, for a model with ``cost_levels`` (its
    own settings, dearest first) and an optional ``fallback`` backend."""
    levels = [Level("full quality"), Level("fewer model runs", max_rate=FEW_RUNS)]
    for i, name in enumerate(cost_levels[1:], start=1):
        levels += [Level(name, cost=i), Level(f"{name}, fewer model runs", max_rate=FEW_RUNS, cost=i)]
    cheapest = len(cost_levels) - 1 if cost_levels else 0
    if fallback:
        levels.append(Level(f"{fallback} instead", cost=cheapest, fallback=True))
    levels.append(Level("lighter rendering", max_rate=FEW_RUNS, cost=cheapest, fallback=bool(fallback), light=True))
    return levels


@dataclass
class Window:
    """What the frames of one window showed."""

    frames: int = 0
    late: int = 0
    dropped: int = 0
    model_runs: int = 0
    model_wall_ns: int = 0
    model_cpu_ns: int = 0
    seconds: float = 0.0

    @property
    def starved(self) -> bool:
        """The model's runs took so long (it waited for cores) that its masks come too late."""
        return self.model_runs > 0 and self.model_wall_ns > STARVED_S * 1e9 * self.model_runs


@dataclass
class ControllerState:
    """What the controller did, for the overlay, ``--stats`` and the control API."""

    level: int
    name: str
    why: str
    seconds: dict[str, float] = field(default_factory=dict)
    changes: int = 0


def machine_idle() -> Callable[[], float | None]:
    """A probe of the machine's idle CPU share since its last call (Linux: ``/proc/stat``;
    elsewhere None, unknown)."""
    last: list[tuple[int, int]] = []

    def probe() -> float | None:
        try:
            with open("/proc/stat") as fh:
                fields = [int(v) for v in fh.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        idle, total = fields[3] + (fields[4] if len(fields) > 4 else 0), sum(fields)
        if not last:
            last.append((idle, total))
            return None
        (i0, t0), last[0] = last[0], (idle, total)
        return (idle - i0) / (total - t0) if total > t0 else None

    return probe


class LiveController:
    """Steps a live run's :class:`Level` up and down (see the module text).

    Args:
        levels: the ladder (:func:`ladder`), best first.
        fps: the camera's rate.
        apply: called with the new level whenever it changes (from the thread that called
            :meth:`frame_out`).
        clock: seconds, monotonic; idle: the machine's idle share probe (:func:`machine_idle`).
        enabled: False: the run stays at the first level (the state is still reported).
    """

    def __init__(self, levels: Sequence[Level], fps: float, apply: Callable[[Level], None],
                 clock: Callable[[], float] = time.monotonic,
                 idle: Callable[[], float | None] | None = None, enabled: bool = True) -> None:
        if not levels:
            raise ValueError("a controller needs at least one level")
        self.levels = list(levels)
        self.period_ns = int(1e9 / fps) if fps > 0 else int(1e9 / 30)
        self._apply, self._clock = apply, clock
        self._idle = idle or machine_idle()
        self.enabled = enabled
        self._lock = threading.Lock()
        self._level = 0
        self._why = "start"
        self._window = Window()
        self._window_start: float | None = None
        self._since = clock()
        self._level_since = self._since
        self._calm_since = self._since
        self._pressed = 0  # windows in a row under pressure
        self._up_after = UP_AFTER_S
        self._last_up: float | None = None
        self._seconds: dict[str, float] = {}
        self._changes = 0
        self._seen = (0, 0, 0, 0)  # dropped, model runs, model wall ns, model cpu ns so far

    @property
    def level(self) -> Level:
        return self.levels[self._level]

    def state(self) -> ControllerState:
        with self._lock:
            seconds = dict(self._seconds)
            name = self.levels[self._level].name
            seconds[name] = seconds.get(name, 0.0) + self._clock() - self._level_since
            return ControllerState(self._level, name, self._why, seconds, self._changes)

    def frame_out(self, latency_ns: int, dropped: int, model_runs: int, model_wall_ns: int, model_cpu_ns: int) -> None:
        """One frame went out ``latency_ns`` after its capture; the other figures are the run's
        totals so far (frames dropped, model runs, their wall and CPU time). Call from one thread."""
        now = self._clock()
        w = self._window
        if self._window_start is None:
            self._window_start = now
            self._seen = (dropped, model_runs, model_wall_ns, model_cpu_ns)
        w.frames += 1
        w.late += latency_ns > LATE_PERIODS * self.period_ns
        if now - self._window_start < WINDOW_S:
            return
        d0, r0, wall0, cpu0 = self._seen
        w.dropped, w.model_runs = dropped - d0, model_runs - r0
        w.model_wall_ns, w.model_cpu_ns = model_wall_ns - wall0, model_cpu_ns - cpu0
        w.seconds = now - self._window_start
        self._seen = (dropped, model_runs, model_wall_ns, model_cpu_ns)
        self._window, self._window_start = Window(), now
        if self.enabled:
            self._decide(w, now)

    def _decide(self, w: Window, now: float) -> None:
        captured = w.frames + w.dropped
        severe = captured > 0 and w.dropped >= DROP_SHARE * captured
        why = ""
        if w.dropped:
            why = f"{w.dropped} of {captured} frames dropped in the last {w.seconds:.1f} s"
        elif w.late > LATE_SHARE * w.frames:
            why = f"{w.late} of {w.frames} frames late in the last {w.seconds:.1f} s"
        elif w.starved:
            why = "the model waits for the CPU (the machine is busy)"
        if why:
            self._pressed += 1
            self._calm_since = now
            target = self._level + 1
            if not w.dropped and not w.late:  # only the model is late: fewer runs would not help it
                target = self._cheaper_model()
            if (severe or self._pressed >= 2) and target < len(self.levels):
                if self._last_up is not None and now - self._last_up < 2 * UP_AFTER_S:
                    self._up_after = min(UP_AFTER_MAX_S, 2 * self._up_after)  # that step up was too much
                self._pressed = 0
                self._set(target, why, now)
            return
        self._pressed = 0
        if self._level == 0 or now - max(self._calm_since, self._level_since) < self._up_after:
            return
        idle = self._idle()
        if idle is not None and idle < IDLE_TO_STEP_UP:
            return
        self._last_up = now
        self._set(self._level - 1, "every frame on time" + (f", {idle:.0%} of the CPU idle" if idle is not None else ""),
                  now)

    def _cheaper_model(self) -> int:
        """The first level below this one whose model is cheaper (another cost level or the
        fallback), not only capped in rate; past the end when there is none."""
        here = self.levels[self._level]
        for i in range(self._level + 1, len(self.levels)):
            lv = self.levels[i]
            if lv.cost > here.cost or lv.fallback and not here.fallback:
                return i
        return len(self.levels)

    def _set(self, index: int, why: str, now: float) -> None:
        with self._lock:
            old = self.levels[self._level]
            self._seconds[old.name] = self._seconds.get(old.name, 0.0) + now - self._level_since
            self._level, self._why, self._level_since = index, why, now
            self._changes += 1
        new = self.levels[index]
        log.info("live: %s: %s (level %d of %d)", why, new.name, index + 1, len(self.levels))
        self._apply(new)
