"""`bankrun bench sim`: how fast `sim` is, and what `--seeds N` gains from parallel processes.

Simulated customer-hours per second on one core (a scenario's customers x its hours, over the
wall time of one sim), and the speed-up of `--seeds N` over the same N seeds one by one. The
baseline, measured in the same run, is the machine's own parallel capacity: a pure-Python loop
alone and in every worker at once — a speed-up can only be judged against it.
"""

from __future__ import annotations

import multiprocessing
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from bankrun import montecarlo, sim
from bankrun.scenario import Scenario

SPIN = 20_000_000


def _spin(n: int = SPIN) -> float:
    started = time.perf_counter()
    x = 0
    for i in range(n):
        x += i
    return time.perf_counter() - started


def parallel_capacity(workers: int) -> dict[str, float]:
    """The same loop in one process, then in `workers` at once: how many loops' worth of
    work the machine does in parallel (2.0 on two free cores)."""
    alone = _spin()
    started = time.perf_counter()
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        list(pool.map(_spin, [SPIN] * workers))
    together = time.perf_counter() - started
    return {"loop_alone_s": alone, "loops_in_parallel": workers * alone / together}


def run_sim_bench(scenario: Scenario, seeds: int, workers: int) -> dict[str, Any]:
    started = time.perf_counter()
    bus = sim.simulate(scenario)
    one = time.perf_counter() - started
    customers = sum(v.customers for v in scenario.venues)
    serial = _seeds_seconds(scenario, seeds, workers=1)
    parallel = _seeds_seconds(scenario, seeds, workers)
    capacity = parallel_capacity(workers)
    return {
        # the interpreter's build alone moves these figures by 15-20 % (see the Makefile)
        "python": f"{platform.python_version()} {os.path.realpath(sys.executable)}",
        "scenario": scenario.name,
        "customers": customers,
        "hours": scenario.duration_hours,
        "one_sim_s": one,
        "events": len(bus.log),
        "events_per_s": len(bus.log) / one,
        "customer_hours_per_s": customers * scenario.duration_hours / one,
        "seeds": seeds,
        "workers": workers,
        "one_by_one_s": serial,
        "parallel_s": parallel,
        "seeds_speedup": serial / parallel,
        "baseline_loops_in_parallel": capacity["loops_in_parallel"],
        "speedup_vs_capacity": serial / parallel / capacity["loops_in_parallel"],
        "seconds_per_seed_parallel": parallel / seeds,
    }


def _seeds_seconds(scenario: Scenario, seeds: int, workers: int) -> float:
    """Wall seconds of what `sim --seeds` does: the seeds, their curves written to a file."""
    with tempfile.TemporaryDirectory() as folder:
        curves = montecarlo.CurveFile(Path(folder) / "curves.npy", scenario, seeds)
        started = time.perf_counter()
        montecarlo.run(montecarlo.variations(scenario, seeds), workers, curves=curves)
        return time.perf_counter() - started
