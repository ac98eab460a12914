"""The live controller: down under pressure (with hysteresis), up after calm with idle CPU."""

from __future__ import annotations

import pytest

from livebokeh.pipeline.controller import UP_AFTER_S, Level, LiveController, ladder

PERIOD_NS = 33_333_333


class Clock:
    """Seconds counted in thirtieths (exact, so a second of frames closes a window exactly)."""

    def __init__(self) -> None:
        self.ticks = 3000

    def __call__(self) -> float:
        return self.ticks / 30


class Feed:
    """Frames through a controller on a virtual clock: a window is a second of 30 frames."""

    def __init__(self, levels=None, idle=0.5, enabled=True) -> None:
        self.clock = Clock()
        self.applied: list[Level] = []
        self.idle = idle
        self.ctl = LiveController(levels or ladder(("backbone 384", "backbone 256"), "mediapipe"), 30.0,
                                  self.applied.append, clock=self.clock, idle=lambda: self.idle, enabled=enabled)
        self.dropped = self.runs = self.wall = self.cpu = 0

        self.ctl.frame_out(PERIOD_NS // 2, 0, 0, 0, 0)  # the first frame opens the first window

    def second(self, dropped: int = 0, late: int = 0, run_wall_ms: float = 50, run_cpu_ms: float = 45, runs: int = 8):
        """30 frames; the window they close (at the last one) saw ``dropped`` frames dropped, ``late``
        frames late and ``runs`` model runs of the given wall and CPU time."""
        self.dropped += dropped
        self.runs += runs
        self.wall += int(runs * run_wall_ms * 1e6)
        self.cpu += int(runs * run_cpu_ms * 1e6)
        for i in range(30):
            self.clock.ticks += 1
            latency = 3 * PERIOD_NS if i < late else PERIOD_NS // 2
            self.ctl.frame_out(latency, self.dropped, self.runs, self.wall, self.cpu)

    @property
    def level(self) -> int:
        return self.ctl.state().level


def test_the_ladder_goes_from_the_best_to_the_cheapest():
    names = [lv.name for lv in ladder(("backbone 384", "backbone 256"), "mediapipe")]
    assert names == ["full quality", "fewer model runs", "backbone 256", "backbone 256, fewer model runs",
                     "mediapipe instead", "lighter rendering"]
    assert [lv.name for lv in ladder()] == ["full quality", "fewer model runs", "lighter rendering"]
    cheapest = ladder(("a", "b"), "mediapipe")[-1]
    assert cheapest.fallback and cheapest.light and cheapest.cost == 1


def test_a_few_dropped_frames_twice_in_a_row_step_down_once():
    f = Feed()
    f.second(dropped=1)
    assert f.level == 0 and not f.applied  # one window under pressure: not yet
    f.second(dropped=1)
    assert f.level == 1 and f.applied[-1].name == "fewer model runs"
    assert "1 of 31 frames dropped" in f.ctl.state().why  # 30 out, 1 dropped


def test_many_dropped_frames_step_down_at_once_and_calm_steps_up_later():
    f = Feed()
    f.second(dropped=10)
    assert f.level == 1
    for _ in range(int(UP_AFTER_S) - 1):
        f.second()
    assert f.level == 1  # calm, but not for long enough
    for _ in range(3):
        f.second()
    assert f.level == 0 and "every frame on time" in f.ctl.state().why


def test_late_frames_and_a_starved_model_are_pressure():
    f = Feed()
    f.second(late=10)
    f.second(late=10)
    assert f.level == 1
    g = Feed()
    g.second(run_wall_ms=300, run_cpu_ms=40, runs=3)  # waiting for cores, but its masks are fresh enough
    g.second(run_wall_ms=300, run_cpu_ms=40, runs=3)
    assert g.level == 0
    g.second(run_wall_ms=800, run_cpu_ms=40, runs=1)  # the model's runs wait for cores too long
    g.second(run_wall_ms=800, run_cpu_ms=40, runs=1)
    # a cheaper model answers sooner; capping its rate would not: "fewer model runs" is skipped
    assert g.ctl.level.name == "backbone 256" and "waits for the CPU" in g.ctl.state().why


def test_no_step_up_without_idle_cpu_and_a_step_up_taken_back_waits_longer():
    f = Feed(idle=0.05)
    f.second(dropped=10)
    for _ in range(3 * int(UP_AFTER_S)):
        f.second()
    assert f.level == 1  # every frame on time, but the machine has no CPU to spare
    f.idle = 0.5
    for _ in range(3):
        f.second()
    assert f.level == 0
    f.second(dropped=10)  # that step up was too much
    assert f.level == 1
    for _ in range(int(UP_AFTER_S) + 3):
        f.second()
    assert f.level == 1  # it waits twice as long now
    for _ in range(int(UP_AFTER_S) + 3):
        f.second()
    assert f.level == 0


def test_the_cheapest_level_is_the_floor_and_the_time_at_each_level_is_kept():
    f = Feed(levels=[Level("a"), Level("b")])
    for _ in range(6):
        f.second(dropped=10)
    state = f.ctl.state()
    assert state.level == 1 and state.changes == 1
    assert state.seconds["a"] == pytest.approx(1.0, abs=0.05) and state.seconds["b"] == pytest.approx(5.0, abs=0.05)


def test_switched_off_it_stays_at_the_best_level():
    f = Feed(enabled=False)
    for _ in range(5):
        f.second(dropped=10)
    assert f.level == 0 and not f.applied
