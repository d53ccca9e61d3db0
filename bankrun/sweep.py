"""Sweeps and reverse stress tests: a scenario parameter varied, each value over seeds.

`sweep` runs a grid and reports every metric against the parameter. `reverse` finds by
bisection the smallest value on the grid that meets a target over the seeds — it assumes
the outcome improves as the parameter grows (more liquid reserve, more paid) and checks both
ends first — and reports it with the value one step below, which does not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from bankrun import montecarlo, params
from bankrun.montecarlo import Band, Outcome
from bankrun.params import Target
from bankrun.scenario import Scenario

#: hears of each finished sim: its outcome, and the parameter value it ran with
Done = Callable[[Outcome, float], None]

#: metrics where a seed that never reaches them (never dry, never halted) is "later than
#: any hour" when checked against a target
NEVER = {"dry_at_hours": float("inf"), "halted_at_hours": float("inf")}


@dataclass
class Point:
    """One parameter value, over the seeds."""

    value: float
    outcomes: list[Outcome]

    def values(self, venue: str, metric: str) -> list[float | None]:
        return [o.venues[venue][metric] for o in self.outcomes]

    def band(self, venue: str, metric: str) -> Band | None:
        return montecarlo.band(self.values(venue, metric))

    def share_meeting(self, venue: str, target: Target) -> float:
        never = NEVER.get(target.metric)
        values = [never if v is None else v for v in self.values(venue, target.metric)]
        met = sum(1 for v in values if v is not None and target.check(v))
        return met / len(values) if values else 0.0


def sweep(
    scenario: Scenario,
    path: str,
    values: list[float],
    seeds: int,
    workers: int | None = None,
    done: Done = lambda o, v: None,
) -> list[Point]:
    """Every value of the grid over `seeds` seeds, all as one batch of parallel sims."""
    variants = [params.with_value(scenario, path, v) for v in values]
    batch = [s for variant in variants for s in montecarlo.variations(variant, seeds)]
    outcomes = montecarlo.run(batch, workers, lambda i, o: done(o, values[i // seeds]))
    return [Point(v, outcomes[i * seeds : (i + 1) * seeds]) for i, v in enumerate(values)]


@dataclass
class Reverse:
    path: str
    venue: str
    target: Target
    coverage: float
    values: list[float]
    tried: list[Point] = field(default_factory=list)  # in the order they were run
    answer: Point | None = None  # the smallest value that meets the target
    below: Point | None = None  # one grid step below it, which does not
    verdict: str = ""


def param_path(venue: str, param: str) -> str:
    """A policy parameter of `venue` (`liquid_ratio`), or already a full path."""
    return param if "." in param else f"venues.{venue}.params.{param}"


def reverse(
    scenario: Scenario,
    venue: str,
    param: str,
    target: Target,
    values: list[float],
    seeds: int,
    coverage: float = 0.95,
    workers: int | None = None,
    done: Done = lambda o, v: None,
) -> Reverse:
    """Bisection over `values` (ascending) for the smallest that meets `target` in at least
    `coverage` of the seeds. `param` is a policy parameter of `venue`, or a full path."""
    path = param_path(venue, param)
    params.with_value(scenario, path, values[0])  # a bad path fails before any sim runs
    result = Reverse(path, venue, target, coverage, values)
    cache: dict[int, Point] = {}

    def meets(i: int) -> bool:
        if i not in cache:
            cache[i] = sweep(scenario, path, [values[i]], seeds, workers, done)[0]
            result.tried.append(cache[i])
        return cache[i].share_meeting(venue, target) >= coverage

    low, high = 0, len(values) - 1
    if not meets(high):
        result.verdict = f"{target} is not met even at {path}={values[high]:g}"
        return result
    if meets(low):
        result.answer = cache[low]
        result.verdict = f"{target} is met already at the grid's low end, {values[low]:g}"
        return result
    while high - low > 1:  # low fails, high meets
        mid = (low + high) // 2
        if meets(mid):
            high = mid
        else:
            low = mid
    result.answer, result.below = cache[high], cache[low]
    result.verdict = (
        f"smallest {path} meeting {target} in {coverage:.0%} of {seeds} seeds: "
        f"{values[high]:g} (one step below, {values[low]:g}, does not)"
    )
    return result
