"""`bankrun run`: a scenario end to end on the real stack, into `runs/<run-id>/`.

Customers act through the gateway over HTTP; every wait is on a condition with a deadline.
After the services stop, the whole log is exported and the run is checked against the
in-memory core (same plan, same ledger rules) and against Prometheus.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bankrun import events as ev
from bankrun.runner import kafka
from bankrun.runner.processes import wait_until
from bankrun.runner.prometheus import scalar
from bankrun.runner.stack import Stack
from bankrun.scenario import Scenario
from bankrun.topics import CATALOGUE
from bankrun.workload import Plan, VenueOutcome, expected, plan

Step = Callable[[str, int, int], None]  # (what, done, total)


def new_run_id(scenario: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{scenario}-{secrets.token_hex(2)}"


@dataclass
class RunResult:
    run_id: str
    run_dir: Path
    summary: dict[str, Any]
    problems: list[str]


class Customers:
    """The customers' side of the gateway API, with the waits a client needs."""

    def __init__(self, base_url: str, timeout: float = 60.0):
        self.http = httpx.Client(base_url=base_url, timeout=10.0)
        self.timeout = timeout

    def close(self) -> None:
        self.http.close()

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        reply = self.http.post(path, json=body)
        if reply.status_code >= 400:
            raise RuntimeError(f"POST {path} {body} -> {reply.status_code}: {reply.text}")
        return reply.json()

    def get(self, path: str) -> httpx.Response:
        return self.http.get(path)

    def wait_for(self, path: str, check: Callable[[dict[str, Any]], bool], what: str) -> None:
        def ok() -> bool:
            reply = self.get(path)
            return reply.status_code == 200 and check(reply.json())

        wait_until(ok, self.timeout, what, interval=0.05)

    def balance(self, venue: str, account: str, asset: str) -> int | None:
        reply = self.get(f"/accounts/{venue}/{account}")
        return reply.json()["balances"].get(asset) if reply.status_code == 200 else None


def drive(customers: Customers, scenario: Scenario, the_plan: Plan, step: Step) -> list[dict]:
    """Open accounts, deposit, withdraw, through the gateway; returns every final status."""
    venues = {v.id for v in scenario.venues}
    customers.wait_for(
        "/venues", lambda b: venues <= {v["venue"] for v in b["venues"]}, "venues at the gateway"
    )
    n = len(the_plan.customers)
    for i, c in enumerate(the_plan.customers, 1):
        customers.post("/accounts", {"venue": c.venue, "account": c.account, "asset": c.asset})
        step("opening accounts", i, n)
    for i, c in enumerate(the_plan.customers, 1):
        customers.wait_for(
            f"/accounts/{c.venue}/{c.account}", lambda b: True, f"account {c.account} opened"
        )
        body = {"venue": c.venue, "account": c.account, "asset": c.asset, "amount": c.deposit}
        customers.post("/deposits", body)
        step("depositing", i, n)
    for i, c in enumerate(the_plan.customers, 1):
        customers.wait_for(
            f"/accounts/{c.venue}/{c.account}",
            lambda b, c=c: b["balances"].get(c.asset) == c.deposit,
            f"deposit of {c.account} credited",
        )
        step("deposits credited", i, n)
    m = len(the_plan.withdrawals)
    for i, w in enumerate(the_plan.withdrawals, 1):
        customers.post("/withdrawals", {**asdict(w)})
        step("requesting withdrawals", i, m)
    statuses = []
    for i, w in enumerate(the_plan.withdrawals, 1):
        path = f"/withdrawals/{w.venue}/{w.request_id}"
        customers.wait_for(path, lambda b: b["status"] in ("paid", "rejected"), f"{w.request_id}")
        statuses.append(customers.get(path).json())
        step("withdrawal outcomes", i, m)
    return statuses


def summarize(
    scenario: Scenario, statuses: list[dict], want: dict[str, VenueOutcome]
) -> dict[str, Any]:
    venues: dict[str, Any] = {}
    for v in scenario.venues:
        mine = [s for s in statuses if s["venue"] == v.id]
        paid = [s for s in mine if s["status"] == "paid"]
        rejected = [s for s in mine if s["status"] == "rejected"]
        latencies = sorted(s["finished_at"] - s["requested_at"] for s in paid)
        requested_amount = sum(s["amount"] for s in mine)
        reasons: dict[str, int] = {}
        for s in rejected:
            reasons[s["reason"]] = reasons.get(s["reason"], 0) + 1
        venues[v.id] = {
            "policy": v.policy,
            "asset": v.asset,
            "customers": v.customers,
            "liabilities_start": want[v.id].liabilities_start,
            "liquid_reserves_start": want[v.id].reserves_start,
            "withdrawals": {
                "requested": len(mine),
                "paid": len(paid),
                "queued": 0,
                "rejected": len(rejected),
                "rejected_by_reason": reasons,
                "requested_amount": requested_amount,
                "paid_amount": sum(s["amount"] for s in paid),
            },
            "paid_fraction": (len(paid) / len(mine)) if mine else None,
            "dry_at_hours": None,
            "halted_at_hours": None,
            "latency_scenario_seconds": {
                "p50": _quantile(latencies, 0.5),
                "p99": _quantile(latencies, 0.99),
            },
        }
    return {"scenario": scenario.name, "seed": scenario.seed, "venues": venues}


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def check(summary: dict[str, Any], want: dict[str, VenueOutcome]) -> list[str]:
    """Where the stack disagrees with the core's answer for the same plan."""
    problems = []
    for venue, got in summary["venues"].items():
        w = got["withdrawals"]
        if w["paid"] != want[venue].paid:
            problems.append(f"{venue}: paid {w['paid']} withdrawals, core says {want[venue].paid}")
        if w["paid_amount"] != want[venue].paid_amount:
            problems.append(
                f"{venue}: paid {w['paid_amount']}, core says {want[venue].paid_amount}"
            )
        if w["rejected_by_reason"] != want[venue].rejected:
            problems.append(
                f"{venue}: rejections {w['rejected_by_reason']}, core says {want[venue].rejected}"
            )
    return problems


def run(
    scenario: Scenario,
    scenario_text: str,
    runs_dir: Path = Path("runs"),
    bootstrap: str | None = None,
    speed: float = 1.0,
    progress: Callable[[str], None] = lambda m: None,
    step: Step = lambda what, done, total: None,
) -> RunResult:
    run_id = new_run_id(scenario.name)
    run_dir = runs_dir / run_id
    run_dir.mkdir(parents=True)
    (run_dir / "scenario.yaml").write_text(scenario_text)
    the_plan = plan(scenario)
    want = expected(scenario, the_plan)
    started = time.time()
    stack = Stack(run_dir, run_id, bootstrap=bootstrap, speed=speed, progress=progress)
    statuses: list[dict] = []
    problems: list[str] = []
    with stack:
        (run_dir / "config.json").write_text(
            json.dumps(
                {
                    "run_id": run_id,
                    "speed": speed,
                    "started_at": stack.started_at,
                    "urls": stack.urls,
                    "embedded_broker": bootstrap is None,
                },
                indent=2,
            )
        )
        progress(f"opening {len(scenario.venues)} venue(s)")
        asyncio.run(
            kafka.publish(
                stack.bootstrap or "",
                [
                    ev.VenueOpened(
                        venue=v.id, scenario_time=0.0, policy=v.policy, assets=(v.asset,)
                    )
                    for v in scenario.venues
                ],
            )
        )
        customers = Customers(stack.gateway_url)
        try:
            statuses = drive(customers, scenario, the_plan, step)
        finally:
            customers.close()
        progress("checking Prometheus")
        total = sum(w.liabilities_end for w in want.values())
        promql = f'sum(bankrun_customer_liabilities{{run_id="{run_id}"}})'
        try:
            wait_until(
                lambda: scalar(stack.prometheus_url, promql) == total, 30, f"{promql} == {total}"
            )
        except TimeoutError as slow:
            problems.append(str(slow))
        prom_liabilities = scalar(stack.prometheus_url, promql)
        stack.stop_services()
        progress("exporting the event log")
        exported = export_events(stack.bootstrap or "", run_dir / "events.jsonl")
    summary = summarize(scenario, statuses, want)
    problems += check(summary, want)
    summary.update(
        {
            "run_id": run_id,
            "wall_seconds": round(time.time() - started, 2),
            "events_exported": exported,
            "prometheus": {"customer_liabilities": prom_liabilities},
            "expected_by_core": {k: asdict(v) for k, v in want.items()},
            "problems": problems,
        }
    )
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True))
    shutil.rmtree(run_dir / "state", ignore_errors=True)
    return RunResult(run_id, run_dir, summary, problems)


def export_events(bootstrap: str, path: Path) -> int:
    """Write every record of every catalogue topic to JSONL; returns how many."""
    count = 0
    with path.open("w") as out:
        for topic in CATALOGUE:
            for record in asyncio.run(kafka.read_topic(bootstrap, topic)):
                out.write(json.dumps(record) + "\n")
                count += 1
    return count
