"""Two Monte Carlo folders, seed by seed: what a change did, with the draws held fixed.

`--seeds N` always runs seeds `seed … seed + N - 1`, so a folder of the scenario and one of it
changed (`--set`, another policy) ran the same customers, thresholds and informed accounts
seed for seed. The difference within each seed is then the change's own effect: two bands can
overlap from the draws' spread alone while every seed moves the same way (common random
numbers, the usual way to compare two policies over a simulation). A change to the crowd
itself (its size, balances or thresholds) draws other customers: then only the seed is shared.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bankrun.montecarlo import METRICS, Band, band

Outcomes = dict[int, dict[str, dict[str, float | None]]]  # seed -> venue -> metric -> value


class CompareError(ValueError):
    """A folder that is not a Monte Carlo run, or two that share no seed."""


@dataclass(frozen=True)
class Difference:
    """One metric of one venue in both folders, and B - A over the seeds both reached it in."""

    a: Band | None
    b: Band | None
    delta: Band | None
    higher: int  # seeds in which B's value is above A's
    lower: int
    only_a: int  # seeds in which only A reached it (a venue that ran dry in A, never in B)
    only_b: int


def read(folder: Path) -> Outcomes:
    """Each seed's metrics, from the folder's `outcomes.jsonl` (what `sim --seeds` wrote)."""
    return {seed: row["venues"] for seed, row in rows(folder).items()}


def rows(folder: Path) -> dict[int, dict[str, Any]]:
    """Each seed's line of a `sim --seeds` folder's `outcomes.jsonl`, by seed."""
    path = folder / "outcomes.jsonl"
    if not path.is_file():
        raise CompareError(f"{folder}: no outcomes.jsonl — not a `bankrun sim --seeds` folder")
    out: dict[int, dict[str, Any]] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        try:
            row = json.loads(line)
            seed, value, venues = row["seed"], row.get("value"), row["venues"]
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
            raise CompareError(f"{path}:{number}: not an outcome line") from None
        if not isinstance(venues, dict):
            raise CompareError(f"{path}:{number}: not an outcome line")
        if value is not None:
            raise CompareError(
                f"{folder}: a sweep's or a reverse search's folder, not a "
                "`bankrun sim --seeds` folder"
            )
        out[seed] = row
    if not out:
        raise CompareError(f"{path}: no seed finished")
    return out


def compare(a: Outcomes, b: Outcomes) -> tuple[list[int], dict[str, dict[str, Difference]]]:
    """The seeds both ran, and per venue both have (in A's order) and metric, the difference."""
    seeds = sorted(set(a) & set(b))
    if not seeds:
        raise CompareError(f"no seed in common (A: {_span(a)}; B: {_span(b)})")
    first = a[seeds[0]]
    venues = [v for v in first if all(v in a[s] and v in b[s] for s in seeds)]
    if not venues:
        raise CompareError("no venue in common")
    return seeds, {
        v: {m: _difference([(a[s][v].get(m), b[s][v].get(m)) for s in seeds]) for m in METRICS}
        for v in venues
    }


def _difference(pairs: list[tuple[float | None, float | None]]) -> Difference:
    both = [(x, y) for x, y in pairs if x is not None and y is not None]
    return Difference(
        a=band(x for x, _ in pairs),
        b=band(y for _, y in pairs),
        delta=band([y - x for x, y in both]) if both else None,
        higher=sum(y > x for x, y in both),
        lower=sum(y < x for x, y in both),
        only_a=sum(x is not None and y is None for x, y in pairs),
        only_b=sum(x is None and y is not None for x, y in pairs),
    )


def _span(outcomes: Outcomes) -> str:
    return f"seeds {min(outcomes)} to {max(outcomes)}"


def to_json(a: Path, b: Path, seeds: list[int], diffs: dict[str, dict[str, Difference]]) -> str:
    venues = {v: {m: asdict(d) for m, d in metrics.items()} for v, metrics in diffs.items()}
    return json.dumps({"a": str(a), "b": str(b), "seeds": seeds, "venues": venues}, indent=2)
