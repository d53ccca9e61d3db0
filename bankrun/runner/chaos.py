"""Applying a chaos plan to a running stack, and recording what was done (`chaos.json`).

The run's clock calls `apply_due` at a settled point of each step (every ask handled, nothing
in flight) — so a killed process's counters, read just before the SIGKILL, are exactly what
it produced, and the run's lockstep survives it (`bankrun.runner.tally`). What the kill still
hits: offsets faust has not committed yet, which the restarted worker reads again. Restarts
and resumes run on timers, in wall seconds, while the clock waits for the stack to settle:
a killed or paused service never answers /metrics, so the step cannot pass before it is back.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bankrun.chaos import ChaosPlan, Duplicate, Forge, Kill, Pause
from bankrun.runner import kafka
from bankrun.runner.processes import ManagedProcess, StartupError, http_ok, wait_until
from bankrun.runner.stack import Stack
from bankrun.topics import BALANCES, BY_NAME

READY_S = 300.0  # a restarted service not ready by then is a broken restart


class ChaosError(RuntimeError):
    """An action that cannot be applied to this stack (e.g. an attached one)."""


@dataclass
class Chaos:
    plan: ChaosPlan
    stack: Stack
    path: Path  # chaos.json
    duration_hours: float
    applied: list[dict[str, Any]] = field(default_factory=list)
    _pending: list[Any] = field(default_factory=list)
    _timers: dict[str, threading.Thread] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _failed: dict[str, str] = field(default_factory=dict)  # service -> why its restart failed
    _abort: threading.Event = field(default_factory=threading.Event)  # the run is stopping

    def __post_init__(self) -> None:
        if self.stack.attached:
            raise ChaosError("--chaos needs the embedded stack: it only breaks what it started")
        self._pending = self.plan.concrete(self.duration_hours)
        self._write()

    def due(self, hours: float) -> bool:
        return bool(self._pending) and self._pending[0].at_hours <= hours

    async def apply_due(self, hours: float, sent: Counter[str]) -> None:
        """Apply every action due by scenario hour `hours` (the stack is settled)."""
        while self.due(hours):
            action = self._pending.pop(0)
            match action:
                case Kill():
                    await self._in_thread(self._kill, action, hours)
                case Pause():
                    await self._in_thread(self._pause, action, hours)
                case Duplicate():
                    await self._duplicate(action, hours, sent)
                case Forge():
                    await self._forge(action, hours, sent)

    async def restarted(self) -> None:
        """`wait_restarted`, off the event loop."""
        await self._in_thread(self.wait_restarted)

    async def _in_thread(self, work: Any, *args: Any) -> None:
        """Blocking work in a thread; if the run is cancelled (Ctrl-C), pending outages end
        at once — asyncio.run waits for its threads before it lets the run stop."""
        try:
            await asyncio.to_thread(work, *args)
        except asyncio.CancelledError:
            self._abort.set()
            raise

    def wait_restarted(self) -> None:
        """Block until every killed service is back and ready (recovered, not rebalancing).

        The clock must not go on before: a step's settled point needs every service's counts,
        and a service that is not back answers no /metrics."""
        for service, thread in list(self._timers.items()):
            if thread.name.startswith("chaos-restart"):
                thread.join()
                self._timers.pop(service, None)
        if self._failed:
            raise StartupError(
                "a restarted service did not come back: "
                + "; ".join(f"{s}: {why}" for s, why in sorted(self._failed.items()))
            )
        for service in self.stack.services:
            self._wait_ready(service)

    def close(self) -> None:
        """The run is stopping (at its end, on Ctrl-C or a violation): end pending outages
        now, so the stack is whole when it is stopped and nothing is started after it. A
        paused service is resumed at once; a killed one not yet started stays down (one
        started already is the stack's, which stops it)."""
        self._abort.set()
        for thread in list(self._timers.values()):
            thread.join()
        self._write()

    def kills(self) -> Counter[str]:
        return Counter(a["service"] for a in self.applied if a.get("signal") == "SIGKILL")

    # -- actions ------------------------------------------------------------------------

    def _kill(self, action: Kill, hours: float) -> None:
        self._settle_timer(action.service)
        old = self.stack.processes[action.service]
        url = self.stack.urls[action.service]
        self.stack.tally.retire(action.service, url)
        pid = old.pid
        os.killpg(pid, signal.SIGKILL)
        old.stop()  # reaps it and closes its log
        self._record(action, hours, pid=pid, signal="SIGKILL", down_s=action.down_s)

        def restart() -> None:
            if self._abort.wait(action.down_s):  # the outage itself, unless the run stops
                self._record(action, hours, signal=None, event="restart abandoned")
                return
            proc = ManagedProcess(old.name, old.argv, old.log_path, env=old.env).start()
            self.stack.adopt(action.service, proc)
            started = time.time()
            ready = http_ok(f"{url}/ready")
            try:
                proc.wait_ready(lambda: self._abort.is_set() or ready(), READY_S)
            except StartupError as slow:  # reported by wait_restarted, in the clock's thread
                self._failed[action.service] = str(slow).splitlines()[0]
                return
            back = not self._abort.is_set() or ready()
            self._record(
                action,
                hours,
                pid=proc.pid,
                signal=None,
                event="restarted" if back else "restart abandoned",
                **({"ready_after_s": round(time.time() - started, 2)} if back else {}),
            )

        self._start_timer(f"restart-{action.service}", restart, action.service)

    def _pause(self, action: Pause, hours: float) -> None:
        self._settle_timer(action.service)
        pid = self.stack.processes[action.service].pid
        os.killpg(pid, signal.SIGSTOP)
        self._record(action, hours, pid=pid, signal="SIGSTOP", for_s=action.for_s)

        def resume() -> None:
            self._abort.wait(action.for_s)  # the pause itself, cut short if the run stops
            os.killpg(pid, signal.SIGCONT)
            self._record(action, hours, pid=pid, signal="SIGCONT", event="resumed")

        self._start_timer(f"resume-{action.service}", resume, action.service)

    async def _duplicate(self, action: Duplicate, hours: float, sent: Counter[str]) -> None:
        records = (await kafka.read_topic(self.stack.bootstrap or "", BY_NAME[action.topic]))[
            -action.records :
        ]
        if action.reverse:
            records.reverse()
        await self._send(action.topic, records, sent)
        self._record(action, hours, records=len(records), reverse=action.reverse)

    async def _forge(self, action: Forge, hours: float, sent: Counter[str]) -> None:
        snapshots = await kafka.read_topic(self.stack.bootstrap or "", BALANCES)
        if not snapshots:
            raise ChaosError("forge: no balance to forge yet")
        record = snapshots[-1]
        value = dict(record["value"])
        value["available"] += action.amount
        value["event_id"] = str(uuid.uuid4())
        await self._send(BALANCES.name, [{**record, "value": value}], sent)
        self._record(action, hours, account=f"{value['venue']}/{value['account']}")

    # -- plumbing -----------------------------------------------------------------------

    async def _send(self, topic: str, records: list[dict[str, Any]], sent: Counter[str]) -> None:
        producer = kafka.log_writer(self.stack.bootstrap, linger_ms=1)
        await producer.start()
        try:
            for record in records:
                value = record["value"]
                raw = json.dumps(value).encode() if not isinstance(value, str) else value.encode()
                key = record["key"].encode() if record["key"] is not None else None
                await producer.send_and_wait(topic, raw, key=key, partition=record["partition"])
                sent[topic] += 1
        finally:
            await producer.stop()

    def _start_timer(self, name: str, work: Any, service: str) -> None:
        thread = threading.Thread(target=work, name=f"chaos-{name}", daemon=True)
        self._timers[service] = thread
        thread.start()

    def _settle_timer(self, service: str) -> None:
        """One outage at a time per service: wait for the last one to end."""
        thread = self._timers.pop(service, None)
        if thread is not None:
            thread.join()
            self._wait_ready(service)

    def _wait_ready(self, service: str) -> None:
        """Until `service` answers /ready, or the run is stopping (a waiting thread would
        hold the runner's exit for as long as READY_S)."""
        ready = http_ok(f"{self.stack.urls[service]}/ready")
        wait_until(lambda: self._abort.is_set() or ready(), READY_S, f"{service} to be ready")

    def _record(self, action: Any, hours: float, **what: Any) -> None:
        entry = {
            "action": action.do,
            **({"service": action.service} if hasattr(action, "service") else {}),
            **({"topic": action.topic} if hasattr(action, "topic") else {}),
            "planned_hours": action.at_hours,
            "scenario_hours": round(hours, 4),
            "wall": round(time.time(), 3),
            **what,
        }
        with self._lock:
            self.applied.append(entry)
            self._write()

    def _write(self) -> None:
        body = {
            "plan": self.plan.model_dump(mode="json"),
            "pending": [a.model_dump(mode="json") for a in self._pending],
            "applied": self.applied,
        }
        self.path.write_text(json.dumps(body, indent=2))

    def summary(self) -> dict[str, Any]:
        counts = Counter(a["action"] for a in self.applied if a.get("event") is None)
        return {
            "actions": dict(counts),
            "kills": dict(self.kills()),
            "restarts": sum(1 for a in self.applied if a.get("event") == "restarted"),
        }
