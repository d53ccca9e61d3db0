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
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bankrun import events as ev
from bankrun import report, sim, summary, workload
from bankrun.auth import bearer
from bankrun.chaos import ChaosPlan
from bankrun.runner import kafka, keep, overview
from bankrun.runner.chaos import Chaos
from bankrun.runner.locust import AskFile, LocustOptions, start_locust, wait_for_locust
from bankrun.runner.processes import ManagedProcess, wait_until
from bankrun.runner.prometheus import query
from bankrun.runner.settle import Step, settled_counts, wait_until_drained, written
from bankrun.runner.stack import Attached, Progress, Stack
from bankrun.runner.steps import Steps, Unfolding, steps_for
from bankrun.runner.watch import InvariantViolated, Watcher
from bankrun.scenario import PanicLoad, Scenario
from bankrun.topics import CATALOGUE, topic_of

FEAR_FILE = report.FEAR_FILE
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


def prepare_folder(label: str, text: str, runs_dir: Path) -> tuple[str, Path]:
    """A new `runs/<stamp>-<label>-<hex>/` holding the scenario exactly as given."""
    run_id = new_run_id(label)
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
    report.build(run_dir, result, log)
    return RunResult(run_id, run_dir, result, problems)


def simulate(scenario: Scenario, text: str, runs_dir: Path = Path("runs")) -> RunResult:
    run_id, run_dir = prepare_folder(f"{scenario.name}-sim", text, runs_dir)
    started = time.time()
    bus = sim.simulate(scenario)
    if bus.desk is not None:
        bus.desk.save_fear(run_dir / FEAR_FILE)
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
    locust: LocustOptions | None = None,
    progress: Progress = lambda m: None,
    step: Step = lambda what, done, total: None,
    status: Progress = lambda line: None,
    attach: Attached | None = None,
    asks_file: Path | None = None,
    chaos: ChaosPlan | None = None,
    watch: bool = True,
    started_hook: Callable[[Stack], None] = lambda stack: None,
) -> RunResult:
    """Attached (`attach`), the stack and its Locust are someone else's: the runner publishes
    the genesis and the clock to `bootstrap`, writes the asks to `asks_file` for that Locust,
    reads the gateway and Prometheus, and starts and stops nothing."""
    speed = speed or scenario.speed
    locust = locust or LocustOptions()
    run_id, run_dir = prepare_folder(scenario.name, scenario_text, runs_dir)
    asks = AskFile(asks_file if attach and asks_file else run_dir / "asks.jsonl")
    started = time.time()
    problems: list[str] = []
    stack = Stack(
        run_dir, run_id, bootstrap=bootstrap, speed=speed, progress=progress, attached=attach
    )
    lockstep = isinstance(scenario.load, PanicLoad)  # steps settle; constant loads do not wait
    watcher = Watcher(run_dir, run_id, confirm=not lockstep) if watch else None
    if watcher is not None and not attach:
        stack.extra_targets["runner"] = watcher.serve()
    breaker: Chaos | None = None
    with stack:
        assert stack.bootstrap is not None
        started_hook(stack)
        if watcher is not None:
            watcher.follow(stack.bootstrap)
        if chaos is not None:
            breaker = Chaos(chaos, stack, run_dir / "chaos.json", scenario.duration_hours)
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
        gateway = httpx.Client(  # the desk and the watch read as the operator
            base_url=stack.gateway_url, timeout=10, headers=bearer(stack.auth.operator())
        )
        swarm: list[ManagedProcess] = []
        lags: dict[str, float] = {}
        alerts_at_end: list[dict[str, Any]] = []
        interrupted = False
        steps: Steps | None = None
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
            asks.start(t0, speed)
            steps = steps_for(scenario, asks, stack, gateway)
            if not attach:
                swarm = start_locust(stack, asks, locust, run_dir / "locust")
            _record_config(run_dir, run_id, speed, t0, stack, bootstrap, locust)
            progress(
                (
                    f"load: {scenario.load.model} through the stack's Locust (asks in {asks.path})"
                    if attach
                    else f"load: {scenario.load.model} through Locust (up to {locust.users} users"
                    + (f", {locust.workers} workers" if locust.workers else "")
                    + (f", UI {stack.urls['locust']}" if locust.ui else "")
                    + ")"
                )
                + f", {scenario.duration_hours} h at speed {speed:g}"
            )
            watch = _Watch(stack, scenario, gateway, run_dir, status)
            lags = asyncio.run(
                _clock(
                    stack.bootstrap,
                    scenario,
                    t0,
                    speed,
                    sent,
                    steps,
                    step,
                    watch.tick,
                    _at_settled(stack, watcher, breaker, progress),
                )
            )
            accepted = _wait_for_answers(gateway, scenario, step)
            asks.close()
            if not wait_for_locust(swarm, 60):
                problems.append(f"Locust did not end by itself; see {swarm[0].log_path}")
            wait_until_drained(stack, sent, step)
            wait_for_scrape(stack, after=time.time())
            alerts_at_end = keep.active_alerts(stack.prometheus_url)
            if accepted != asks.count:
                problems.append(
                    f"the gateway accepted {accepted} of {asks.count} asked "
                    f"withdrawals; see locust_failures.csv"
                )
        except InvariantViolated as broken:  # stop at once, keep the log for the post-mortem
            problems.append(f"{broken}; see invariant_violation.json")
            progress(f"[red]{broken}[/]: stopping the run")
        except TimeoutError as stalled:  # a stuck stack: the same, the log tells where
            problems.append(f"stopped: {stalled}")
            progress(f"[red]{stalled}[/]: stopping the run, keeping what was recorded")
        except KeyboardInterrupt:  # keep what was recorded: stop the load, export the log
            interrupted = True
            problems.append("interrupted: the log ends where the run was stopped")
            progress("interrupted: stopping the load, keeping what was recorded")
        finally:
            gateway.close()
            if isinstance(steps, Unfolding):
                steps.desk.save_fear(run_dir / FEAR_FILE)
            if breaker is not None:
                breaker.close()  # pending restarts abandoned, pauses ended
        for proc in swarm:
            proc.stop()
        stack.stop_services()
        progress("exporting the event log")
        export_events(stack.bootstrap, run_dir / "events.jsonl")
        dry_scrapes = prometheus_dry_lags(stack, summary.read_log(run_dir / "events.jsonl"))
        market_prices = prometheus_market_prices(stack)
        progress("keeping the run's alerts and series from Prometheus")
        fired = _keep_prometheus(stack, started, alerts_at_end, run_dir)
        if watcher is not None:
            watcher.stop()
    meta = {
        "scenario": scenario.name,
        "mode": "run",
        "seed": scenario.seed,
        "speed": speed,
        "wall_seconds": round(time.time() - started, 2),
        "asked_requests": asks.count,
        "clock_lag_s": lags,
        "prometheus_buffer_dry": dry_scrapes,
        "prometheus_market_price": market_prices,
        "prometheus_alerts_fired": fired,
        "invariants": watcher.status() if watcher is not None else None,
        "chaos": breaker.summary() if breaker is not None else None,
    }
    shutil.rmtree(run_dir / "state", ignore_errors=True)
    if asks.path.parent != run_dir:  # attached: keep it, and clear the way for the next run
        shutil.copy(asks.path, run_dir / "asks.jsonl")
        asks.path.unlink()
    result = _finish(run_id, run_dir, meta, problems)
    if interrupted:
        raise Interrupted(result)
    return result


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) during a run: every process stopped, and the run folder holds the
    log and summary up to that point."""

    def __init__(self, result: RunResult):
        super().__init__(f"interrupted; what was recorded is in {result.run_dir}")
        self.result = result


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
    locust: LocustOptions,
) -> None:
    """Written whole or not at all (a new file renamed into place): tests and tools poll for
    it while the run goes, and must never read half of it."""
    partial = run_dir / "config.json.partial"
    partial.write_text(
        json.dumps(
            {
                "run_id": run_id,
                "speed": speed,
                "started_at": t0,
                "urls": stack.urls,
                "embedded_broker": bootstrap is None,
                "locust": asdict(locust),
            },
            indent=2,
        )
    )
    partial.replace(run_dir / "config.json")


async def _clock(
    bootstrap: str,
    scenario: Scenario,
    t0: float,
    speed: float,
    sent: Counter[str],
    steps: Steps,
    step: Step,
    watch: Callable[[float], None] = lambda hours: None,
    at_settled: Callable[[float, Counter[str]], Awaitable[None]] | None = None,
) -> dict[str, float]:
    """Publish every clock tick at its wall time, or as soon after as the load's steps allow;
    `sent` counts what went to each topic. Returns how late the ticks were (wall seconds)."""
    lateness: list[float] = []
    producer = kafka.log_writer(bootstrap, linger_ms=1)
    await producer.start()
    try:
        for t in [0.0, *workload.tick_times(scenario)]:
            delay = t0 + t / speed - time.time()
            if delay > 0:
                await asyncio.sleep(delay)  # pacing the scenario clock, not synchronization
            await steps.before_tick(t, sent)
            if at_settled is not None:
                await at_settled(t / 3600, sent)
            lateness.append(max(0.0, time.time() - (t0 + t / speed)))
            for tick in workload.ticks_at(scenario, t) if t > 0 else ():
                topic = topic_of(type(tick))
                await producer.send(topic.name, tick.to_bytes(), key=topic.key_of(tick).encode())
                sent[topic.name] += 1
            await producer.flush()
            await steps.after_tick(t, sent)
            step("scenario hours", t / 3600, scenario.duration_hours)
            await asyncio.to_thread(watch, t / 3600)
    finally:
        await producer.stop()
    ordered = sorted(lateness)
    return {
        "max": round(ordered[-1], 3),
        "p50": round(ordered[len(ordered) // 2], 3),
        "p99": round(ordered[int(len(ordered) * 0.99)], 3),
        "last": round(lateness[-1], 3),
    }


def _at_settled(
    stack: Stack, watcher: Watcher | None, breaker: Chaos | None, progress: Progress
) -> Callable[[float, Counter[str]], Awaitable[None]]:
    """At each step's settled point (before its tick): the watcher checks the invariants on
    everything written so far, then due chaos actions are applied."""

    async def at(hours: float, sent: Counter[str]) -> None:
        if watcher is None and not (breaker is not None and breaker.due(hours)):
            return
        counts = await asyncio.to_thread(settled_counts, stack, sent)
        if watcher is not None:
            await asyncio.to_thread(watcher.check, written(sent, counts), hours)
        if breaker is not None and breaker.due(hours):
            before = len(breaker.applied)
            await breaker.apply_due(hours, sent)
            await breaker.restarted()
            for entry in breaker.applied[before:]:
                what = entry.get("service") or entry.get("topic") or entry.get("account", "")
                done = entry.get("event") or entry["action"]
                progress(f"chaos h {hours:.2f}: {done} {what} {entry.get('pid', '')}".rstrip())

    return at


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


def _keep_prometheus(
    stack: Stack, started: float, alerts_at_end: list[dict[str, Any]], run_dir: Path
) -> dict[str, list[str]]:
    """`alerts.json` (the alerts API at the end of the load, and every alert that fired),
    `prometheus/` (every series of the run) and `overview.png` (the overview dashboard's
    panels); returns which venues (or jobs) each alert fired for."""
    url, end = stack.prometheus_url, time.time()
    history = keep.fired(url, stack.run_id, started, end)
    (run_dir / "alerts.json").write_text(
        json.dumps({"active_at_end": alerts_at_end, "fired": history}, indent=2)
    )
    keep.export_series(url, stack.run_id, started, end, run_dir / "prometheus")
    overview.render(url, stack.run_id, started, end, run_dir / "overview.png")
    out: dict[str, set[str]] = {}
    for alert in history:
        labels = alert["labels"]
        out.setdefault(labels["alertname"], set()).add(labels.get("venue") or labels.get("job", ""))
    return {name: sorted(who) for name, who in sorted(out.items())}


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
