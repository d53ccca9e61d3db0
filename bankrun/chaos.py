"""Chaos plans: what to break during a run, and when (`bankrun run SCENARIO --chaos PLAN`).

A plan is YAML, validated like a scenario (unknown fields refused, errors name the field)
before any process starts. Its actions are concrete (`kill` custody at hour 2) or drawn from
`random`, which expands into concrete actions from its seed alone — the same plan and
scenario always give the same actions. `bankrun.runner.chaos` applies them.
"""

from __future__ import annotations

import random as rng
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from bankrun.topics import BY_NAME
from bankrun.validation import named

Service = Literal["custody", "withdrawal", "matching", "gateway"]
SERVICES: tuple[Service, ...] = ("custody", "withdrawal", "matching", "gateway")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _one_replica(replica: int) -> int:
    if replica != 0:
        raise ValueError("not yet: the embedded stack runs one process per service (replica 0)")
    return replica


Replica = Annotated[int, Field(ge=0), AfterValidator(_one_replica)]


class Kill(_Strict):
    """SIGKILL a service's process; the runner starts it again (same command and
    environment) `down_s` wall seconds later and its state comes back from the log."""

    do: Literal["kill"]
    service: Service
    replica: Replica = 0
    at_hours: float = Field(ge=0)
    down_s: float = Field(2.0, ge=0, le=120)


class Pause(_Strict):
    """SIGSTOP a service for `for_s` wall seconds, then SIGCONT: a slow consumer."""

    do: Literal["pause"]
    service: Service
    replica: Replica = 0
    at_hours: float = Field(ge=0)
    for_s: float = Field(gt=0, le=120)


class Duplicate(_Strict):
    """Send the last `records` records of `topic` again (`reverse`: in reverse order, so
    consumers see old events after newer ones). Consumers must drop them."""

    do: Literal["duplicate"]
    topic: str
    at_hours: float = Field(ge=0)
    records: int = Field(100, gt=0, le=100_000)
    reverse: bool = False

    @model_validator(mode="after")
    def _known_topic(self) -> Duplicate:
        if self.topic not in BY_NAME:
            raise ValueError(f"unknown topic {self.topic!r}; one of {sorted(BY_NAME)}")
        return self


class Forge(_Strict):
    """Publish a forged balance (one customer's available + `amount`): money from nowhere.
    Not a fault a service makes, a check of the checker — the live watcher must stop the run."""

    do: Literal["forge"]
    at_hours: float = Field(ge=0)
    amount: int = Field(1_000, gt=0)


Action = Annotated[Kill | Pause | Duplicate | Forge, Field(discriminator="do")]


class RandomChaos(_Strict):
    """Kills (and pauses) spread at random over `between_hours`, seeded."""

    seed: int = 0
    services: list[Service] = Field(default_factory=lambda: list(SERVICES), min_length=1)
    kills_per_service: int = Field(1, ge=0, le=100)
    pauses_per_service: int = Field(0, ge=0, le=100)
    down_s: tuple[float, float] = (1.0, 4.0)
    pause_s: tuple[float, float] = (1.0, 4.0)
    between_hours: tuple[float, float] | None = None  # default: the whole scenario

    @model_validator(mode="after")
    def _ranges(self) -> RandomChaos:
        for name in ("down_s", "pause_s", "between_hours"):
            low_high = getattr(self, name)
            if low_high is not None and not 0 <= low_high[0] <= low_high[1]:
                raise ValueError(f"{name}: need 0 <= low <= high, got {list(low_high)}")
        return self

    def expand(self, duration_hours: float) -> list[Kill | Pause]:
        low, high = self.between_hours or (0.0, duration_hours)
        draw = rng.Random(self.seed)
        out: list[Kill | Pause] = []
        for service in self.services:
            for _ in range(self.kills_per_service):
                at, down = draw.uniform(low, high), draw.uniform(*self.down_s)
                out.append(
                    Kill(do="kill", service=service, at_hours=round(at, 3), down_s=round(down, 2))
                )
            for _ in range(self.pauses_per_service):
                at, paused = draw.uniform(low, high), draw.uniform(*self.pause_s)
                out.append(
                    Pause(
                        do="pause", service=service, at_hours=round(at, 3), for_s=round(paused, 2)
                    )
                )
        return out


class ChaosPlan(_Strict):
    description: str | None = None
    actions: list[Action] = Field(default_factory=list)
    random: RandomChaos | None = None

    def concrete(self, duration_hours: float) -> list[Kill | Pause | Duplicate | Forge]:
        """Every action, in the order they happen (ties keep the plan's order)."""
        drawn = self.random.expand(duration_hours) if self.random else []
        return sorted([*self.actions, *drawn], key=lambda a: a.at_hours)

    def check_against(self, duration_hours: float) -> list[str]:
        """Problems only the scenario can reveal: actions after its end."""
        return [
            f"actions.{i}.at_hours: {a.at_hours} is after the scenario's end ({duration_hours} h)"
            for i, a in enumerate(self.actions)
            if a.at_hours > duration_hours
        ]


class InvalidPlan(ValueError):
    """A chaos plan that cannot be used; the message names each bad field."""


PLANS = Path(__file__).resolve().parent.parent / "loadtests" / "chaos"


def resolve_plan(plan: str) -> Path:
    """A path as given, else a shipped plan by name (`loadtests/chaos/<name>.yaml`)."""
    path = Path(plan)
    if path.exists() or path.suffix in (".yaml", ".yml"):
        return path
    return PLANS / f"{plan}.yaml"


def load_plan(path: Path) -> ChaosPlan:
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as bad:
        raise InvalidPlan(f"{path}: {bad}") from None
    try:
        return ChaosPlan.model_validate(raw if raw is not None else {})
    except ValidationError as bad:
        raise InvalidPlan(f"{path}: {named(bad, root='plan')}") from None
