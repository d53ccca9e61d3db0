"""`bankrun run` and `bankrun sim`: a scenario end to end, into `runs/<run-id>/`.

`run` starts the real stack, publishes the genesis and the scenario clock, and has Locust send
the planned withdrawals through the gateway at their scenario times; after the services stop,
the whole log is exported. `sim` feeds the same events to the same handlers in process.
Either way `summary.json` is computed from `events.jsonl`, which `bankrun verify` rechecks.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from bankrun import events as ev
from bankrun import sim, summary, workload
from bankrun.runner import kafka
from bankrun.runner.processes import ManagedProcess, wait_until
from bankrun.runner.prometheus import query
from bankrun.runner.stack import Stack
from bankrun.scenario import Scenario
from bankrun.topics import (
    CATALOGUE,
    topic_of,
)

Progress = Callable[[str], None]
Step = Callable[[str, float, float], None]  # (what, done, total)
LOCUSTFILE = Path(__file__).resolve().parents[2] / "loadtests" / "locustfile.py"
LEAD_SECONDS = 3.0  # wall seconds between publishing the genesis and scenario time zero


def new_run_id(scenario: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{scenario}-{secrets.token_hex(2)}"


@dataclass
class RunResult:
    run_id: str
    run_dir: Path
    summary: dict[str, Any]
    problems: list[str]


def _prepare(scenario: Scenario, text: str, runs_dir: Path, mode: str) -> tuple[str, Path]:
    run_id = new_run_id(scenario.name if mode == "run" else f"{scenario.name}-sim")
    run_dir = runs_dir / run_id
    run_dir.mkdir(parents=True)
    (run_dir / "scenario.yaml").write_text(text)
    return run_id, run_dir


def _finish(run_id: str, run_dir: Path, meta: dict[str, Any], problems: list[str]) -> RunResult:
    log = summary.read_log(run_dir / "events.jsonl")
    result = summary.summarize(log, {"run_id": run_id, **meta})
    problems = problems + summary.check(log)
    result["problems"] = problems
    (run_dir / "summary.json").write_text(json.dumps(result, indent=2, sort_keys=True))
    return RunResult(run_id, run_dir, result, problems)


def simulate(scenario: Scenario, text: str, runs_dir: Path = Path("runs")) -> RunResult:
    run_id, run_dir = _prepare(scenario, text, runs_dir, "sim")
    started = time.time()
    bus = sim.simulate(scenario)
    summary.write_log(
        run_dir / "events.jsonl",
        ({"topic": topic_of(type(e)).name, "value": e.model_dump(mode="json")} for e in bus.log),
    )
    meta = {
        "scenario": scenario.name,
        "mode": "sim",
        "seed": scenario.seed,
        "speed": None,
        "wall_seconds": round(time.time() - started, 3),
    }
    return _finish(run_id, run_dir, meta, [])


def run(
    scenario: Scenario,
    scenario_text: str,
    runs_dir: Path = Path("runs"),
    bootstrap: str | None = None,
    speed: float | None = None,
    users: int = 20,
    progress: Progress = lambda m: None,
    step: Step = lambda what, done, total: None,
    status: Progress = lambda line: None,
) -> RunResult:
    speed = speed or scenario.speed
    run_id, run_dir = _prepare(scenario, scenario_text, runs_dir, "run")
    plan = workload.requests(scenario)
    plan_path = run_dir / "plan.jsonl"
    summary.write_log(plan_path, (asdict(r) for r in plan))
    started = time.time()
    problems: list[str] = []
    stack = Stack(run_dir, run_id, bootstrap=bootstrap, speed=speed, progress=progress)
    with stack:
        assert stack.bootstrap is not None
        progress(
            f"genesis: {len(scenario.venues)} venues, "
            f"{sum(v.customers for v in scenario.venues)} customers"
        )
        before_zero = [
            e
            for e in workload.genesis(scenario, 0.0, speed)
            if not isinstance(e, ev.ScenarioStarted)
        ]
        sent = asyncio.run(kafka.publish(stack.bootstrap, before_zero))
        gateway = httpx.Client(base_url=stack.gateway_url, timeout=10)
        try:
            _wait_for_accounts(gateway, scenario, step)
            t0 = time.time() + LEAD_SECONDS  # scenario time zero, once every customer exists
            stack.started_at = t0
            zero = [
                e
                for e in workload.genesis(scenario, t0, speed)
                if isinstance(e, ev.ScenarioStarted)
            ]
            sent += asyncio.run(kafka.publish(stack.bootstrap, zero))
            _record_config(run_dir, run_id, speed, t0, stack, bootstrap, users)
            locust = _start_locust(
                stack, run_dir, plan_path, t0, speed, users, scenario.duration_hours * 3600 / speed
            )
            progress(
                f"load: {len(plan)} withdrawals from Locust ({users} users), "
                f"{scenario.duration_hours} h at speed {speed:g}"
            )
            watch = _Watch(stack, scenario, gateway, run_dir, status)
            sent += asyncio.run(
                _clock(stack.bootstrap, scenario, t0, speed, locust, step, watch.tick)
            )
            accepted = _wait_for_answers(gateway, scenario, step)
            wait_until_drained(stack, sent, step)
            wait_for_scrape(stack, after=time.time())
            if accepted != len(plan):
                problems.append(
                    f"the gateway accepted {accepted} of {len(plan)} planned "
                    f"withdrawals; see locust_failures.csv"
                )
        finally:
            gateway.close()
        stack.stop_services()
        progress("exporting the event log")
        export_events(stack.bootstrap, run_dir / "events.jsonl")
        dry_scrapes = prometheus_dry_lags(stack, summary.read_log(run_dir / "events.jsonl"))
        market_prices = prometheus_market_prices(stack)
    meta = {
        "scenario": scenario.name,
        "mode": "run",
        "seed": scenario.seed,
        "speed": speed,
        "wall_seconds": round(time.time() - started, 2),
        "planned_requests": len(plan),
        "prometheus_buffer_dry": dry_scrapes,
        "prometheus_market_price": market_prices,
    }
    shutil.rmtree(run_dir / "state", ignore_errors=True)
    return _finish(run_id, run_dir, meta, problems)


def _wait_for_accounts(gateway: httpx.Client, scenario: Scenario, step: Step) -> None:
    """Every funded customer is known at the gateway before scenario time zero."""
    want = {v.id: v.customers for v in scenario.venues}
    total = sum(want.values())

    def known() -> bool:
        reply = gateway.get("/venues")
        if reply.status_code != 200:
            return False
        have = {v["venue"]: v["accounts"] for v in reply.json()["venues"]}
        done = sum(min(have.get(v, 0), n) for v, n in want.items())
        step("customers onboarded", done, total)
        return done >= total

    wait_until(known, 300, "every funded customer at the gateway", interval=0.2)


def _record_config(
    run_dir: Path,
    run_id: str,
    speed: float,
    t0: float,
    stack: Stack,
    bootstrap: str | None,
    users: int,
) -> None:
    (run_dir / "config.json").write_text(
        json.dumps(
            {
                "run_id": run_id,
                "speed": speed,
                "started_at": t0,
                "urls": stack.urls,
                "embedded_broker": bootstrap is None,
                "locust_users": users,
            },
            indent=2,
        )
    )


def _start_locust(
    stack: Stack,
    run_dir: Path,
    plan: Path,
    t0: float,
    speed: float,
    users: int,
    scenario_wall_seconds: float,
) -> ManagedProcess:
    argv = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "-u",
        str(users),
        "-r",
        str(users),
        "--host",
        stack.gateway_url,
        "--run-time",
        f"{int(scenario_wall_seconds + LEAD_SECONDS + 120)}s",
        "--csv",
        str(run_dir / "locust"),
        "--only-summary",
        "--exit-code-on-error",
        "0",
    ]
    env = {"BANKRUN_PLAN": str(plan), "BANKRUN_STARTED_AT": str(t0), "BANKRUN_SPEED": str(speed)}
    proc = ManagedProcess("locust", argv, stack.log_dir / "locust.log", env=env).start()
    stack.processes["locust"] = proc
    return proc


async def _clock(
    bootstrap: str,
    scenario: Scenario,
    t0: float,
    speed: float,
    locust: ManagedProcess,
    step: Step,
    watch: Callable[[float], None] = lambda hours: None,
) -> Counter[str]:
    """Publish every clock tick at its wall time while Locust delivers the load; returns how
    many ticks went to each topic."""
    sent: Counter[str] = Counter()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=1)
    await producer.start()
    try:
        for t in workload.tick_times(scenario):
            delay = t0 + t / speed - time.time()
            if delay > 0:
                await asyncio.sleep(delay)  # pacing the scenario clock, not synchronization
            for tick in workload.ticks_at(scenario, t):
                topic = topic_of(type(tick))
                await producer.send(topic.name, tick.to_bytes(), key=topic.key_of(tick).encode())
                sent[topic.name] += 1
            step("scenario hours", t / 3600, scenario.duration_hours)
            watch(t / 3600)
        await producer.flush()
    finally:
        await producer.stop()
    deadline = time.time() + 120
    while locust.running() and time.time() < deadline:
        await asyncio.sleep(0.2)
    if locust.running():
        raise RuntimeError(f"Locust did not finish; see {locust.log_path}")
    return sent


class _Watch:
    """The live line of a run: scenario hour, each venue's liquid reserve and state, Locust's
    rate and failures — read from the gateway, Prometheus and Locust's CSV every few seconds.
    Only a display: a failed read shows as `?` and never stops the run."""

    EVERY_S = 2.0

    def __init__(
        self, stack: Stack, scenario: Scenario, gateway: httpx.Client, run_dir: Path, out: Progress
    ):
        self.stack, self.scenario, self.gateway = stack, scenario, gateway
        self.history = run_dir / "locust_stats_history.csv"
        self.out = out
        self.last = 0.0

    def tick(self, hours: float) -> None:
        if time.monotonic() - self.last < self.EVERY_S:
            return
        self.last = time.monotonic()
        self.out(f"h {hours:5.1f} | {self._venues()} | {self._locust()}")

    def _venues(self) -> str:
        try:
            states = {v["venue"]: v["status"] for v in self.gateway.get("/venues").json()["venues"]}
            rows = query(
                self.stack.prometheus_url,
                f'bankrun_reserve_ratio{{run_id="{self.stack.run_id}"}}',
            )
            liquid = {r["metric"]["venue"]: float(r["value"][1]) for r in rows}
        except (httpx.HTTPError, RuntimeError, KeyError, ValueError):
            return "venues ?"
        parts = []
        for venue in self.scenario.venues:
            ratio = liquid.get(venue.id)
            shown = "?" if ratio is None else f"{ratio:.0%}"
            state = states.get(venue.id, "?")
            parts.append(f"{venue.id} {shown}" + ("" if state == "open" else f" {state}"))
        return " ".join(parts)

    def _locust(self) -> str:
        try:
            lines = self.history.read_text().splitlines()
            header, last = lines[0].split(","), lines[-1].split(",")
            row = dict(zip(header, last, strict=False))
            return (
                f"locust {float(row['Requests/s']):.0f} req/s, {row['Total Failure Count']} failed"
            )
        except (OSError, IndexError, KeyError, ValueError):
            return "locust ?"


def _wait_for_answers(gateway: httpx.Client, scenario: Scenario, step: Step) -> int:
    """Wait until every withdrawal the gateway accepted has an answer (paid, queued or
    rejected); returns how many it accepted."""
    seen = {"accepted": 0}

    def answered() -> bool:
        waiting = accepted = 0
        for venue in scenario.venues:
            counts = gateway.get(f"/venues/{venue.id}/withdrawals").json()["counts"]
            waiting += counts.get("requested", 0)
            accepted += sum(counts.values())
        seen["accepted"] = accepted
        step("answers", accepted - waiting, accepted)
        return waiting == 0

    wait_until(answered, 120, "an answer to every accepted withdrawal", interval=0.25)
    return seen["accepted"]


def message_counts(url: str) -> dict[tuple[str, str, str], float]:
    """(produced|consumed, service, topic) -> count, from a service's /metrics."""
    counts: dict[tuple[str, str, str], float] = {}
    text = httpx.get(f"{url}/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        if family.name not in ("bankrun_messages_produced", "bankrun_messages_consumed"):
            continue
        kind = family.name.rsplit("_", 1)[1]
        for sample in family.samples:
            if sample.name.endswith("_total"):
                key = (kind, sample.labels["service"], sample.labels["topic"])
                counts[key] = sample.value
    return counts


def wait_until_drained(
    stack: Stack, runner_sent: Counter[str], step: Step, timeout: float = 120
) -> None:
    """Every message written to a service's input topics has been consumed by that service.

    Counts, not offsets (Tansu's end offsets are not to be trusted): the runner knows what it
    sent to each topic; each service reports what it produced and consumed per topic.
    Once the load has stopped, equal counts mean the last tick's consequences — landed cash,
    the queue drained, payouts settled — are all in the log.
    """
    services = [s for s in stack.services if s in stack.urls]
    streams = ("custody", "withdrawal", "matching")

    def drained() -> bool:
        counts: dict[tuple[str, str, str], float] = {}
        for service in services:
            counts.update(message_counts(stack.urls[service]))
        produced = {topic: float(n) for topic, n in runner_sent.items()}
        for (kind, _, topic), n in counts.items():
            if kind == "produced":
                produced[topic] = produced.get(topic, 0) + n
        behind = 0.0
        for topic in CATALOGUE:
            for reader in topic.readers:
                if reader in streams and reader in services:
                    got = counts.get(("consumed", reader, topic.name), 0)
                    behind += max(0.0, produced.get(topic.name, 0) - got)
        step("in flight", 0 if behind else 1, 1)
        return behind == 0

    wait_until(drained, timeout, "every service to consume what was written for it", 0.2)


def prometheus_dry_lags(stack: Stack, log: list[ev.Event]) -> dict[str, dict[str, float]]:
    """For each venue that ran dry: wall time of the event, and of the first scrape that read
    `bankrun_buffer_dry` 1. The lag is at most one scrape interval when metrics tell the truth."""
    out = {}
    for event in summary.unique(log):
        if not isinstance(event, ev.BufferDry):
            continue
        at = event.occurred_at.timestamp()
        selector = f'bankrun_buffer_dry{{run_id="{stack.run_id}",venue="{event.venue}"}}'
        window = int(time.time() - at) + 60
        rows = query(stack.prometheus_url, f"{selector}[{window}s]")
        ones = [float(ts) for r in rows for ts, value in r["values"] if value == "1"]
        if ones:
            first = min(ones)
            out[event.venue] = {"event_wall": at, "first_scrape": first, "lag_s": first - at}
    return out


def wait_for_scrape(stack: Stack, after: float, timeout: float = 30) -> None:
    """Prometheus has scraped every service since `after`: the gauges it keeps for the run
    include the last events, not a second before them."""
    if "prometheus" not in stack.urls:
        return
    selector = f'up{{run_id="{stack.run_id}"}}'

    def scraped() -> bool:
        rows = query(stack.prometheus_url, f"timestamp({selector})")
        return bool(rows) and min(float(r["value"][1]) for r in rows) > after

    wait_until(scraped, timeout, "a Prometheus scrape after the last event", interval=0.2)


def prometheus_market_prices(stack: Stack) -> dict[str, float]:
    """The last `bankrun_market_price` Prometheus scraped for each market: the summary's
    `last` price, if the metric means what it says."""
    selector = f'bankrun_market_price{{run_id="{stack.run_id}"}}'
    rows = query(stack.prometheus_url, f"last_over_time({selector}[1h])")
    return {r["metric"]["market"]: float(r["value"][1]) for r in rows}


def export_events(bootstrap: str, path: Path) -> int:
    """Write every record of every catalogue topic to JSONL; returns how many."""
    count = 0
    with path.open("w") as out:
        for topic in CATALOGUE:
            for record in asyncio.run(kafka.read_topic(bootstrap, topic)):
                out.write(json.dumps(record) + "\n")
                count += 1
    return count
