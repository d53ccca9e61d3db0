"""`bankrun bench locust`: what Locust delivers, and how many customers a run can carry.

Throughput: a burst of withdrawals all due at once, delivered by Locust (as in a run: the asks
file, FastHttpUsers, optional workers) to all-hot venues through the gateway; answered
withdrawals per second from Locust's own statistics, as a ratio to the raw broker measured on
the same broker in the same run.

Capacity: the first hours of `ftx-2022` (the panic and its burst of asks) at the scenario's
speed, with more customers per venue each time; for each size the run's clock lag — how far
scenario time fell behind wall time while the stack settled each step. The panic's burst (most
customers asking within one step) is where the lag peaks; between bursts the clock catches up.
"""

from __future__ import annotations

import csv
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from bankrun import scenario as scenarios
from bankrun.bench.withdrawals import funded_stack, spread_venues
from bankrun.runner.locust import AskFile, LocustOptions, start_locust, wait_for_locust
from bankrun.runner.run import run
from bankrun.workload import Request


def run_locust_bench(
    withdrawals: int, users: int, workers: int, venues: int, console: Console
) -> dict[str, Any]:
    names = spread_venues(venues)
    customers = 200
    with funded_stack(names, customers, console) as (stack, baseline):
        asks = AskFile(stack.run_dir / "asks.jsonl")
        started = time.time()
        asks.start(started, 1.0)
        asks.append(
            Request(0.0, names[i % len(names)], f"c-{i % customers}", "USD", 1, f"bench-{i}")
            for i in range(withdrawals)
        )
        asks.close()
        options = LocustOptions(users=users, workers=workers)
        csv_prefix = stack.run_dir / "locust"
        swarm = start_locust(stack, asks, options, csv_prefix)
        if not wait_for_locust(swarm, 600):
            raise TimeoutError("Locust did not finish the burst in 600 s")
        for proc in swarm:
            proc.stop()
        rows = _stats(Path(f"{csv_prefix}_stats.csv"))
    answered = {name: row for (kind, name), row in rows.items() if kind == "withdrawal"}
    count = sum(int(r["Request Count"]) for r in answered.values())
    rate = sum(float(r["Requests/s"]) for r in answered.values())
    if count < withdrawals:
        raise RuntimeError(f"Locust answered {count} of {withdrawals} withdrawals; see its log")
    post = rows[("POST", "/withdrawals")]
    return {
        "withdrawals": withdrawals,
        "answered": count,
        "paid": int(answered["paid"]["Request Count"]) if "paid" in answered else 0,
        "users": users,
        "locust_workers": workers,
        "withdrawals_per_s": rate,
        "post_p50_ms": float(post["50%"]),
        "post_p99_ms": float(post["99%"]),
        "answer_p50_ms": _weighted(answered.values(), "50%"),
        # Locust's aggregate counts the `withdrawal` answers too: take them out
        "http_requests_per_s": float(rows[("", "Aggregated")]["Requests/s"]) - rate,
        "broker_produce_msgs_per_s": baseline["produce_msgs_per_s"],
        "ratio_to_broker_produce": rate / baseline["produce_msgs_per_s"],
    }


def _stats(path: Path) -> dict[tuple[str, str], dict[str, str]]:
    with path.open() as rows:
        return {(r["Type"], r["Name"]): r for r in csv.DictReader(rows)}


def _weighted(rows: Any, column: str) -> float:
    rows = list(rows)
    total = sum(int(r["Request Count"]) for r in rows)
    return sum(float(r[column]) * int(r["Request Count"]) for r in rows) / total if total else 0.0


def run_capacity_bench(
    sizes: list[int], hours: float, users: int, console: Console
) -> list[dict[str, Any]]:
    """One `run` of the first `hours` of ftx-2022 per size (customers per venue)."""
    base = scenarios.load("ftx-2022")
    results = []
    for size in sizes:
        data = base.model_dump(mode="json")
        data["duration_hours"] = hours
        data["news"] = [n for n in data["news"] if n["at_hours"] <= hours]
        for venue in data["venues"]:
            venue["customers"] = size
        spec = scenarios.Scenario.model_validate(data)
        console.log(f"capacity: {size} customers per venue, {hours:g} h of ftx-2022")
        with tempfile.TemporaryDirectory(prefix="bankrun-capacity-") as tmp:
            done = run(
                spec,
                yaml.safe_dump(data),
                Path(tmp),
                locust=LocustOptions(users=users),
                progress=lambda m: None,
            )
        lag = done.summary["clock_lag_s"]
        tick_wall = spec.tick_hours * 3600 / spec.speed
        results.append(
            {
                "customers": size * len(spec.venues),
                "asks": done.summary["asked_requests"],
                "speed": spec.speed,
                "tick_wall_s": tick_wall,
                "lag_p50_s": lag["p50"],
                "lag_p99_s": lag["p99"],
                "lag_max_s": lag["max"],
                "wall_s": done.summary["wall_seconds"],
                "problems": len(done.problems),
            }
        )
    return results
