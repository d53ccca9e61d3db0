"""Scenario time: wall seconds since the run started, compressed by `speed`.

Pure arithmetic; callers pass the wall clock in, so the core never reads it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ScenarioClock:
    started_at: float  # wall clock (epoch seconds) at scenario time zero
    speed: float = 1.0  # scenario seconds per wall second

    def __post_init__(self) -> None:
        if self.speed <= 0:
            raise ValueError(f"speed must be positive, got {self.speed}")

    def scenario_time(self, wall: float) -> float:
        return max(0.0, (wall - self.started_at) * self.speed)

    def wall_time(self, scenario_seconds: float) -> float:
        return self.started_at + scenario_seconds / self.speed
