"""What an earlier `sim --seeds` folder can give a new one: the seeds it already ran.

An interrupted batch is finished, or a study of 50 seeds grown to 200, without running a seed
twice. A seed is taken only if nothing that decides its outcome differs: the same scenario as
it ran (every field, `--set` included: the folder's `scenario.yaml`), and the same code (each
outcome line names the version of `bankrun` and `services` that made it). A seed's outcome
is then the one a new run would compute (a sim is deterministic for a seed), so the bands of
a resumed folder are those of a fresh one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bankrun import compare
from bankrun.montecarlo import Outcome, code_version
from bankrun.scenario import Scenario, ScenarioError, load


class ResumeError(ValueError):
    """A folder whose seeds cannot stand for this run's; the message says why."""


@dataclass(frozen=True)
class Earlier:
    folder: Path
    outcomes: dict[int, Outcome]  # by seed: those in this run's range, curves in `curves`

    @property
    def curves(self) -> Path:
        return self.folder / "curves.npy"


def earlier(folder: Path, scenario: Scenario, seeds: int) -> Earlier:
    """The seeds of `folder` that this run of `scenario` over `seeds` seeds would run."""
    try:
        theirs = load(folder / "scenario.yaml")
    except (ScenarioError, OSError) as bad:
        raise ResumeError(f"{folder}: no scenario to resume from: {bad}") from None
    where = difference(theirs.model_dump(mode="json"), scenario.model_dump(mode="json"))
    if where is not None:
        raise ResumeError(f"{folder} ran another scenario: {where}")
    try:
        rows = compare.rows(folder)
    except compare.CompareError as bad:
        raise ResumeError(str(bad)) from None
    version = code_version()
    other = sorted(s for s, row in rows.items() if row.get("code") != version)
    if other:
        raise ResumeError(
            f"{folder}: seeds {other[0]}… were run by other code than this "
            f"(version {rows[other[0]].get('code') or 'unrecorded'}, this is {version}): "
            "their outcomes could differ; run them again"
        )
    if not (folder / "curves.npy").is_file():
        raise ResumeError(f"{folder}: no curves.npy to take the seeds' curves from")
    wanted = range(scenario.seed, scenario.seed + seeds)
    return Earlier(
        folder,
        {
            seed: Outcome(seed, row.get("wall_seconds", 0.0), row["venues"], {})
            for seed, row in sorted(rows.items())
            if seed in wanted
        },
    )


def difference(theirs: Any, ours: Any, path: str = "") -> str | None:
    """The first field at which two scenarios (as JSON data) differ, named by its path."""
    if isinstance(theirs, dict) and isinstance(ours, dict):
        for key in [*theirs, *(k for k in ours if k not in theirs)]:
            found = difference(theirs.get(key), ours.get(key), f"{path}.{key}" if path else key)
            if found is not None:
                return found
        return None
    if isinstance(theirs, list) and isinstance(ours, list) and len(theirs) == len(ours):
        for i, (a, b) in enumerate(zip(theirs, ours, strict=True)):
            same_id = isinstance(a, dict) and isinstance(b, dict) and a.get("id") == b.get("id")
            name = a["id"] if same_id and a.get("id") else i  # a venue by its id
            found = difference(a, b, f"{path}.{name}")
            if found is not None:
                return found
        return None
    if theirs != ours:
        return f"{path}: {_short(theirs)} there, {_short(ours)} here"
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."
