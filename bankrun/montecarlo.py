"""Monte Carlo: a scenario's seeded variations, each a full `sim`, in parallel processes.

A variation is the same scenario under another seed — the customers' balances, their
thresholds, who is informed: everything the seed draws. Each is simulated end to end by the
same handlers as any `sim`, and reduced to per-venue metrics and a few curves on the tick
grid. Every metric is then reported as a median with a 90 % band (5th to 95th percentile);
a metric a seed never reaches (a venue that never runs dry) counts in `n` as missing.
"""

from __future__ import annotations

import functools
import hashlib
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from bankrun import events as ev
from bankrun import report, sim, summary, workload
from bankrun.scenario import Scenario

HOUR = 3600.0
BAND = (5.0, 95.0)  # percentiles: a 90 % band
#: bootstrap resamples behind a band's standard errors (see `Error`)
RESAMPLES = 1_000

#: metric -> how the tables name it; each is read from a venue's summary row.
METRICS = {
    "dry_at_hours": "dry (h)",
    "halted_at_hours": "halted (h)",
    "paid_fraction": "money paid",
    "requests_paid_share": "requests paid",
    "fire_sale_losses": "fire-sale losses",
    "latency_p99_hours": "latency p99 (h)",
}
#: curve -> what it plots, each a share of the venue's starting liabilities (fear: as is).
CURVES = {
    "cash": "hot + warm cash, share of starting liabilities",
    "paid": "paid out, cumulative share of starting liabilities",
    "fear": "fear level of its customers",
}


@dataclass
class Outcome:
    """One seed's answer: per venue, each metric (None: not reached) and, when drawn and not
    yet written to a `CurveFile`, each curve."""

    seed: int
    wall_seconds: float
    venues: dict[str, dict[str, float | None]]
    curves: dict[str, dict[str, list[float]]]


@dataclass(frozen=True)
class Error:
    """Bootstrap standard errors of a band's three numbers: how far each would move were as
    many seeds drawn again. They shrink as one over the square root of the seeds, so they
    say whether more seeds would change the answer, or fewer would do."""

    median: float
    low: float
    high: float


@dataclass(frozen=True)
class Band:
    median: float
    low: float
    high: float
    n: int  # seeds that reached the metric
    of: int  # seeds run
    error: Error | None = None  # None: fewer than two seeds reached it


def variations(scenario: Scenario, seeds: int) -> list[Scenario]:
    """The scenario under `seeds` consecutive seeds, its own first, without the work no metric
    sees (see `unseen_off`)."""
    scenario = unseen_off(scenario)
    return [scenario.model_copy(update={"seed": scenario.seed + i}) for i in range(seeds)]


def unseen_off(scenario: Scenario) -> Scenario:
    """The scenario without what nobody acts on, so that no metric can change:

    - proofs of reserves nobody sees (`published: false`): an auditor's view, 6-9 % of a
      seed's work (hashing every balance into a sum tree at each attestation);
    - markets that price no holding (ftx-2022's BTC/USD): quoted for their own sake, no venue
      holds or sells there and no customer watches them, yet their makers re-quote every
      tick (5 % of a seed)."""
    update: dict = {}
    if any(v.por is not None and not v.por.published for v in scenario.venues):
        update["venues"] = [
            v if v.por is None or v.por.published else v.model_copy(update={"por": None})
            for v in scenario.venues
        ]
    priced = tuple(m for m in scenario.markets if m.backs)
    if priced and len(priced) < len(scenario.markets):  # a scenario keeps one market at least
        update["markets"] = priced
    return scenario.model_copy(update=update) if update else scenario


def outcome(scenario: Scenario, curves: bool = True) -> Outcome:
    """Simulate one variation and keep what the bands need (not the log); its curves only if
    asked (a sweep's or a reverse stress test's seeds need none)."""
    started = time.perf_counter()
    totals, series = summary.Tally(), report.Series()
    # most events are of none of these types. None is a copy of another: the broker's log is
    # at-least-once, the bus's exactly-once (a journal answers a repeated id with no outputs)
    wanted = totals.COUNTED | (series.DRAWN if curves else frozenset())

    def watch(events: list[ev.Event]) -> None:
        for event in events:
            if type(event) in wanted:
                totals.add(event)
                if curves:
                    series.add(event)

    with sim.no_cycle_collection():  # until the sim's state is dropped: see there
        bus = sim.simulate(scenario, watch, wanted)
        fear = bus.desk.fear if bus.desk is not None else {}
        del bus
    rows = totals.summary({})["venues"]
    drawn = _curves(series.venues, grid(scenario), fear) if curves else {}
    venues = {
        name: {
            "dry_at_hours": row["dry_at_hours"],
            "halted_at_hours": row["halted_at_hours"],
            "paid_fraction": row["paid_fraction"],
            "requests_paid_share": (
                row["withdrawals_paid"] / row["withdrawals_requested"]
                if row["withdrawals_requested"]
                else None
            ),
            "fire_sale_losses": row["fire_sale_losses"] / 100,
            "latency_p99_hours": row["latency_p99_hours"],
        }
        for name, row in rows.items()
    }
    return Outcome(scenario.seed, round(time.perf_counter() - started, 3), venues, drawn)


def grid(scenario: Scenario) -> list[float]:
    """Scenario hours at which curves are sampled: zero and every clock tick (a step)."""
    return [0.0, *(round(t / HOUR, 6) for t in workload.tick_times(scenario))]


def _curves(
    venues: dict[str, report.VenueSeries],
    hours: list[float],
    fear: dict[str, list[tuple[float, float]]],
) -> dict[str, dict[str, list[float]]]:
    """Each venue's cash (hot + warm) and cumulative pay-out from the report's series, as
    shares of its first liabilities, both as the step at each grid hour opens: the snapshot
    taken at the tick, and what was paid before it."""
    out: dict[str, dict[str, list[float]]] = {}
    for name, v in venues.items():
        if not v.hours:
            continue
        whole = v.liabilities[0] or 1
        cash = [(h + w) / whole for h, w in zip(v.tiers["hot"], v.tiers["warm"], strict=True)]
        paid = [(at, total / whole) for at, total in v.flows["paid"]]
        out[name] = {
            "cash": _on_grid(list(zip(v.hours, cash, strict=True)), hours),
            "paid": _on_grid(paid, hours, start=0.0, before=True),
        }
    for name, points in fear.items():
        out.setdefault(name, {})["fear"] = _on_grid(points, hours)
    return out


def _on_grid(
    points: list[tuple[float, float]],
    hours: list[float],
    start: float | None = None,
    before: bool = False,
) -> list[float]:
    """The last point's value at each hour — at or, with `before`, strictly before it
    (ahead of the first point: `start`, or the first point's value)."""
    out, i = [], 0
    last = start if start is not None else (points[0][1] if points else 0.0)
    reach = -1e-9 if before else 1e-9
    for hour in hours:
        while i < len(points) and points[i][0] <= hour + reach:
            last = points[i][1]
            i += 1
        out.append(last)
    return out


@functools.cache
def code_version() -> str:
    """A digest of the code an outcome depends on: every module of `bankrun` and `services`
    (the handlers, the desk, the tallies). Each outcome line carries it, so that no seed
    another version ran is taken for one this version would have."""
    import bankrun
    import services

    digest = hashlib.sha256()
    for package in (bankrun, services):
        root = Path(package.__file__).parent
        for path in sorted(root.rglob("*.py")):
            digest.update(path.relative_to(root.parent).as_posix().encode() + b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def workers_default() -> int:
    return len(os.sched_getaffinity(0))


def run(
    scenarios: Iterable[Scenario],
    workers: int | None = None,
    done: Callable[[int, Outcome], None] = lambda i, o: None,
    curves: CurveFile | None = None,
) -> list[Outcome]:
    """Simulate each scenario, `workers` at a time in forked processes (1: in this one);
    `done(index, outcome)` hears of each as it finishes. Outcomes come back in the order
    given, with their metrics only: each one's curves, if `curves` is given, go to that file
    as it finishes, and are not drawn otherwise. On any error or Ctrl-C the pool's processes
    are terminated before it propagates: none outlive it."""
    todo = [(i, scenario, curves is not None) for i, scenario in enumerate(scenarios)]
    workers = min(workers or workers_default(), len(todo)) or 1
    results: dict[int, Outcome] = {}

    def finished(i: int, result: Outcome) -> None:
        if curves is not None:
            curves.keep(result)
        results[i] = result
        done(i, result)

    if workers == 1:
        for item in todo:
            finished(*_indexed(item))
    else:
        fork = multiprocessing.get_context("fork")  # children start with everything imported
        with fork.Pool(workers, initializer=_worker_signals) as pool:  # exit terminates them
            for i, result in pool.imap_unordered(_indexed, todo):
                finished(i, result)
    return [results[i] for i in range(len(todo))]


def _worker_signals() -> None:
    """Ctrl-C is the parent's to handle (it terminates the pool); SIGTERM just ends a worker."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _indexed(item: tuple[int, Scenario, bool]) -> tuple[int, Outcome]:
    i, scenario, curves = item
    return i, outcome(scenario, curves)


def band(values: Iterable[float | None]) -> Band | None:
    values = list(values)
    present = np.array([v for v in values if v is not None], dtype=float)
    if not len(present):
        return None
    low, median, high = np.percentile(present, [BAND[0], 50.0, BAND[1]])
    return Band(float(median), float(low), float(high), len(present), len(values), error(present))


def error(present: np.ndarray) -> Error | None:
    """The band's standard errors, from `RESAMPLES` resamples of the seeds that reached the
    metric (drawn with replacement, each as many as there are): the spread of each resample's
    median and percentiles. A fixed generator: the same values give the same errors."""
    if len(present) < 2:
        return None
    draws = np.random.default_rng(0).integers(0, len(present), size=(RESAMPLES, len(present)))
    low, median, high = np.percentile(present[draws], [BAND[0], 50.0, BAND[1]], axis=1)
    return Error(float(median.std(ddof=1)), float(low.std(ddof=1)), float(high.std(ddof=1)))


def bands(outcomes: list[Outcome]) -> dict[str, dict[str, Band | None]]:
    """Per venue and metric, over the seeds."""
    venues = list(outcomes[0].venues) if outcomes else []
    return {
        venue: {m: band(o.venues[venue][m] for o in outcomes) for m in METRICS} for venue in venues
    }


class CurveFile:
    """Every seed's curves, written to a `.npy` file as each seed finishes — a row per seed
    of venue x curve x grid hour, in seed order, NaN where a seed drew no such curve — so the
    command holds none of them however many seeds run (a seed's curves are ~7,000 numbers for
    `ftx-2022`); the bands are read back from the file. `numpy.load` opens it for any other
    analysis (the rows of seeds an interrupt left unfinished are zeros)."""

    def __init__(self, path: Path, scenario: Scenario, seeds: int):
        self.first = scenario.seed  # row i holds seed first + i
        self.hours = grid(scenario)
        self.series = [(v.id, curve) for v in scenario.venues for curve in CURVES]
        shape = (seeds, len(self.series), len(self.hours))
        self.rows = np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=shape)
        self.drawn = np.zeros(shape[:2], dtype=bool)  # which rows hold which series

    def keep(self, outcome: Outcome) -> None:
        """Write a seed's curves to its row, and drop them from the outcome."""
        index = outcome.seed - self.first
        for j, (venue, curve) in enumerate(self.series):
            values = outcome.curves.get(venue, {}).get(curve)
            self.rows[index, j] = np.nan if values is None else values
            self.drawn[index, j] = values is not None
        outcome.curves = {}

    def copy(self, path: Path, seeds: Iterable[int]) -> None:
        """Take these seeds' rows from another such file of the same scenario (a series that
        a seed did not draw is NaN throughout there)."""
        earlier = np.load(path, mmap_mode="r")
        if earlier.shape[1:] != self.rows.shape[1:]:
            raise ValueError(f"{path}: curves of shape {earlier.shape}, not {self.rows.shape}")
        for seed in seeds:
            index = seed - self.first
            self.rows[index] = earlier[index]
            self.drawn[index] = ~np.isnan(earlier[index]).all(axis=1)

    def bands(self) -> dict[str, dict[str, dict[str, list[float]]]]:
        """Per venue and curve: `low`, `median` and `high` at each grid hour, over the seeds
        kept so far that drew it."""
        out: dict[str, dict[str, dict[str, list[float]]]] = {}
        for j, (venue, curve) in enumerate(self.series):
            seeds = np.flatnonzero(self.drawn[:, j])
            if not len(seeds):
                continue
            low, median, high = np.percentile(self.rows[seeds, j], [BAND[0], 50.0, BAND[1]], axis=0)
            out.setdefault(venue, {})[curve] = {
                "low": low.round(6).tolist(),
                "median": median.round(6).tolist(),
                "high": high.round(6).tolist(),
            }
        return out


def as_json(
    scenario: Scenario,
    outcomes: list[Outcome],
    bands: dict[str, dict[str, Band | None]],
    curves: CurveFile,
    wall_seconds: float,
) -> dict:
    """What `montecarlo.json` holds: the bands (`bands(outcomes)`), the curves' bands, and
    every seed's metrics."""
    return {
        "scenario": scenario.name,
        "seeds": [o.seed for o in outcomes],
        "band_percentiles": list(BAND),
        "wall_seconds": round(wall_seconds, 2),
        "bands": {
            venue: {m: asdict(b) if b else None for m, b in metrics.items()}
            for venue, metrics in bands.items()
        },
        "hours": grid(scenario),
        "curves": curves.bands(),
        "outcomes": [
            {"seed": o.seed, "wall_seconds": o.wall_seconds, **o.venues} for o in outcomes
        ],
    }
