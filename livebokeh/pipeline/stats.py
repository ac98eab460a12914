"""Per-stage timings, output rate, dropped frames and capture-to-sink latency."""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class StageTimer:
    """Time spent on items by one stage; written by one thread at a time (the stage's own, or the
    file pool's workers under the scheduler's lock).

    ``busy_ns`` is wall time (it grows when the stages share too few cores); ``cpu_ns`` is the
    CPU time of the threads doing the stage's work (not of the helper threads a library may start).
    """

    name: str
    items: int = 0
    busy_ns: int = 0
    cpu_ns: int = 0

    def add(self, ns: int, cpu_ns: int = 0, items: int = 1) -> None:
        """Work that took ``ns`` of wall time and ``cpu_ns`` of CPU, on ``items`` items (0: work
        that counts under this stage without being one of its items, such as smoothing)."""
        self.items += items
        self.busy_ns += ns
        self.cpu_ns += cpu_ns

    def report(self, dropped: int = 0) -> StageReport:
        """Milliseconds an item, wall and CPU, and the items ``dropped`` before the stage."""
        per = 1e6 * self.items if self.items else None
        return StageReport(self.name, self.items, self.busy_ns / per if per else 0.0, dropped,
                           self.cpu_ns / per if per else 0.0)


@dataclass
class LatencyLog:
    """Capture-to-sink latencies of output frames (the newest ``maxlen``)."""

    maxlen: int = 100_000
    values_ns: deque[int] = field(default_factory=deque)
    first_out_ns: int | None = None
    last_out_ns: int | None = None
    frames_out: int = 0
    recent_out_ns: deque[int] = field(default_factory=lambda: deque(maxlen=31))

    def add(self, capture_ns: int, now_ns: int) -> None:
        if len(self.values_ns) >= self.maxlen:
            self.values_ns.popleft()
        self.values_ns.append(now_ns - capture_ns)
        self.recent_out_ns.append(now_ns)
        if self.first_out_ns is None:
            self.first_out_ns = now_ns
        self.last_out_ns = now_ns
        self.frames_out += 1


    def recent_fps(self) -> float:
        """Output rate over the last 30 frames."""
        r = list(self.recent_out_ns)
        if len(r) < 2 or r[-1] == r[0]:
            return 0.0
        return (len(r) - 1) * 1e9 / (r[-1] - r[0])


@dataclass(frozen=True)
class StageReport:
    name: str
    frames: int
    mean_ms: float
    dropped_before: int
    cpu_ms: float = 0.0


@dataclass(frozen=True)
class Report:
    """What a run did, for ``--stats`` and ``--stats-json``."""

    source: str
    live: bool
    frames_in: int
    frames_out: int
    dropped: int
    output_fps: float
    wall_s: float
    latency_ms_p50: float
    latency_ms_p95: float
    stages: tuple[StageReport, ...]
    inference_fps: float = 0.0
    propagated: int = 0
    #: CPU time of the whole process during the run (every thread, the libraries' own included).
    cpu_s: float = 0.0
    #: Live: model runs (every frame's mask for files).
    model_runs: int = 0
    #: Live: seconds spent at each level of the controller (:mod:`livebokeh.pipeline.controller`).
    levels: dict = field(default_factory=dict)
    #: Live: the controller's level at the end, and how often it changed.
    level: str = ""
    level_changes: int = 0
    #: Live: why the controller is at that level.
    level_why: str = ""
    #: Live: what called the model's runs (the person's edge moved, the picture changed, its floor rate).
    model_asked_by: dict = field(default_factory=dict)
    #: Live: frames that went out but an output on its own thread (the virtual camera) replaced by
    #: a newer one before it could take them (its reader, the call app, was slow), by output.
    sink_dropped: dict = field(default_factory=dict)

    @property
    def model_rate(self) -> float:
        """Model runs a second."""
        return self.model_runs / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def cores(self) -> float:
        """Cores kept busy on average: CPU time over wall time."""
        return self.cpu_s / self.wall_s if self.wall_s > 0 else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "cores": self.cores, "model_rate": self.model_rate}

    def write_json(self, path: str | Path, overwrite: bool = False) -> Path:
        """The report as JSON, written whole or not at all (see :func:`livebokeh.sinks.files.write_json`)."""
        from livebokeh.sinks.files import write_json

        return write_json(Path(path), self.to_dict(), overwrite)

    def table(self) -> str:
        lines = [
            f"source {self.source} ({'live' if self.live else 'file'}): {self.frames_in} frames in, "
            f"{self.frames_out} out, {self.dropped} dropped, {self.output_fps:.1f} fps out, {self.wall_s:.2f} s",
            f"latency capture->sink: p50 {self.latency_ms_p50:.1f} ms, p95 {self.latency_ms_p95:.1f} ms; "
            f"inference {self.inference_fps:.1f} fps, {self.propagated} masks moved by optical flow; "
            f"CPU {1e3 * self.cpu_s / max(1, self.frames_out):.1f} ms a frame, {self.cores:.2f} cores busy",
            f"{'stage':<10} {'frames':>7} {'ms/frame':>9} {'CPU ms':>7} {'dropped':>8}",
        ]
        if self.live and any(self.sink_dropped.values()):
            lines.insert(2, "not taken by a slow output: " + ", ".join(f"{n} by {name}" for name, n in
                                                                        self.sink_dropped.items()))
        if self.live and self.levels:
            spent = ", ".join(f"{name} {sec:.1f} s" for name, sec in self.levels.items() if sec >= 0.05)
            asked = ", ".join(f"{n} by {why}" for why, n in sorted(self.model_asked_by.items()))
            why = f", {self.level_why}" if self.level_changes else ""
            lines.insert(2, f"model {self.model_rate:.1f} runs a second ({asked or 'none after the first'}); live level "
                            f"at the end: {self.level}{why} ({self.level_changes} changes; {spent})")
        for s in self.stages:
            # live, the frames the model did not see are not dropped: they got the live matte
            skipped = f"{s.dropped_before} unseen" if self.live and s.name == "inference" else s.dropped_before
            lines.append(f"{s.name:<10} {s.frames:>7} {s.mean_ms:>9.2f} {s.cpu_ms:>7.2f} {skipped:>8}")
        return "\n".join(lines)


def percentile_ms(values_ns: deque[int] | list[int], q: float) -> float:
    if not values_ns:
        return 0.0
    return float(np.percentile(np.fromiter(values_ns, dtype=np.int64), q)) / 1e6
