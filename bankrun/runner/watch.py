"""The live invariant watcher: `bankrun verify`'s conservation checks while the run goes on.

A thread reads every catalogue topic from the start, as the services write it, into the same
`summary.Conservation` that verify uses. The run's clock asks it at settled points (nothing
in flight): it first reads as far as everything written so far — counted, not taken from end
offsets — then checks. A violation counts in `bankrun_invariant_violations_total{venue,check}`
(the runner's /metrics, scraped by Prometheus as job `runner`), is written to
`invariant_violation.json`, and stops the run.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry, Gauge, start_http_server
from prometheus_client import Counter as PromCounter

from bankrun import events as ev
from bankrun.runner import kafka
from bankrun.runner.processes import free_port
from bankrun.summary import Conservation, Violation
from bankrun.topics import CATALOGUE

CATCH_UP_S = 60.0


class InvariantViolated(RuntimeError):
    """The watcher found a broken invariant; the run stops and reports it."""

    def __init__(self, report: dict[str, Any]):
        first = report["violations"][0]["text"]
        super().__init__(
            f"invariant violated at scenario hour {report['scenario_hours']:.2f}: {first}"
            + (
                f" (and {len(report['violations']) - 1} more)"
                if len(report["violations"]) > 1
                else ""
            )
        )
        self.report = report


class Watcher:
    def __init__(self, run_dir: Path, run_id: str, confirm: bool = False):
        """`confirm`: report a violation only if the next settled point still has it — for
        loads that do not wait at settled points (constant), where the watcher may have read
        a reservation past the cut and not yet the balance that goes with it."""
        self.confirm = confirm
        self._suspect: set[tuple[str, str, str]] = set()
        self.bootstrap = ""
        self.run_dir, self.run_id = run_dir, run_id
        self.conservation = Conservation()
        self.read: Counter[str] = Counter()
        self.checks = 0
        self.registry = CollectorRegistry()
        self.violations = PromCounter(
            "bankrun_invariant_violations",
            "Conservation checks the live watcher found broken, by venue and check",
            ["venue", "check"],
            registry=self.registry,
        )
        self.checked = Gauge(
            "bankrun_invariant_checks",
            "Settled points at which the live watcher checked every invariant",
            registry=self.registry,
        )
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="watcher", daemon=True)
        self.port = free_port()
        self._server: Any = None
        self.error: BaseException | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def serve(self) -> str:
        """Start its /metrics (before Prometheus, which scrapes it); returns host:port."""
        self._server, _ = start_http_server(self.port, "127.0.0.1", registry=self.registry)
        return self.target

    def follow(self, bootstrap: str) -> None:
        """Start reading the log (once the broker is up)."""
        self.bootstrap = bootstrap
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _run(self) -> None:
        try:
            asyncio.run(self._follow())
        except BaseException as crash:  # reported by check(), never silently
            self.error = crash

    async def _follow(self) -> None:
        consumer = kafka.log_reader(self.bootstrap)
        await consumer.start()
        try:
            partitions = [TopicPartition(t.name, p) for t in CATALOGUE for p in range(t.partitions)]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            while not self._stop.is_set():
                batches = await consumer.getmany(timeout_ms=200, max_records=10_000)
                with self._lock:
                    for tp, records in batches.items():
                        self.read[tp.topic] += len(records)
                        for record in records:
                            self._add(record.value)
        finally:
            await consumer.stop()

    def _add(self, raw: bytes | None) -> None:
        try:
            self.conservation.add(ev.decode(raw or b""))
        except ValueError:
            return  # not an event (a dead letter's source, hostile input): not money

    def check(self, written: dict[str, float], hours: float) -> None:
        """Read as far as `written` (records per topic so far), then check; raise
        `InvariantViolated` on the first broken invariant."""
        deadline = time.monotonic() + CATCH_UP_S
        while True:
            if self.error is not None:
                raise RuntimeError(f"the invariant watcher stopped: {self.error!r}")
            with self._lock:
                behind = {t: n - self.read[t] for t, n in written.items() if self.read[t] < n}
                if not behind:
                    found = self.conservation.violations()
                    self.checks += 1
                    self.checked.set(self.checks)
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"the invariant watcher is behind the log: {behind}")
            time.sleep(0.01)
        if found and self.confirm:
            seen = {(v.check, v.venue, v.text.split(":")[0]) for v in found}
            confirmed = [
                v
                for v in found
                if v.check == "paid_twice"
                or (v.check, v.venue, v.text.split(":")[0]) in self._suspect
            ]
            self._suspect = seen
            found = confirmed
        if found:
            self._report(found, hours)

    def _report(self, found: list[Violation], hours: float) -> None:
        for violation in found:
            self.violations.labels(violation.venue, violation.check).inc()
        report = {
            "run_id": self.run_id,
            "scenario_hours": round(hours, 4),
            "wall": round(time.time(), 3),
            "events_checked": self.conservation.events,
            "violations": [
                {"check": v.check, "venue": v.venue, "text": v.text} for v in found[:100]
            ],
            "count": len(found),
        }
        (self.run_dir / "invariant_violation.json").write_text(json.dumps(report, indent=2))
        raise InvariantViolated(report)

    def status(self) -> dict[str, Any]:
        return {"checks": self.checks, "events": self.conservation.events, "violations": 0}
