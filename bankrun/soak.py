"""`bankrun soak`: a long steady run with periodic kills, watching every process's memory.

The scenario (default `baseline`, a constant load) is stretched to last `minutes` of wall
time at its speed; every `kill_every` minutes the next service in turn
is killed and started again (a chaos plan, applied as in `bankrun run --chaos`). A sampler
reads the resident memory (RSS, from /proc) of every process the run started, and of the
runner itself, every few seconds. The verdict leaves out the warm-up (the first minute of load,
while processes fill their pools and caches) and compares the median of the first and the
last quarter of what follows: memory that keeps growing with time shows there, while a
passing spike (a garbage collection, Prometheus compacting a block) does not.
"""

from __future__ import annotations

import csv
import json
import os
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bankrun.chaos import SERVICES, ChaosPlan, Kill
from bankrun.runner.stack import Stack
from bankrun.scenario import Scenario

SAMPLE_S = 5.0
FLAT = 0.2  # last quarter more than 20 % above the first: not flat
WARMUP_S = 60.0  # left out of the verdict (at most a quarter of a short soak)


def rss_mb(pid: int) -> float | None:
    """Resident memory of one process in MB; None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


MAX_HOURS = 24 * 90  # the scenario model's limit


def stretched(scenario: Scenario, minutes: float, speed: float | None = None) -> Scenario:
    """The scenario lasting `minutes` of wall time at `speed` (default its own) — or, if that
    would pass the scenario limit (90 days), at the speed that fits the limit; headlines past
    a shortened end are left out. Validated again. A panic load steps in lockstep: at a speed
    whose steps take longer to settle than they last, the clock falls behind and the soak
    lasts longer than asked."""
    speed = min(speed or scenario.speed, MAX_HOURS * 3600 / (minutes * 60))
    hours = round(minutes * 60 * speed / 3600, 3)
    data = scenario.model_dump(mode="json") | {"duration_hours": hours, "speed": speed}
    data["news"] = [n for n in data["news"] if n["at_hours"] <= hours]  # a shorter span
    return Scenario.model_validate(data)


def kill_plan(scenario: Scenario, minutes: float, kill_every: float) -> ChaosPlan:
    """One kill every `kill_every` wall minutes, services in turn, none in the last fifth."""
    hours_per_minute = 60 * scenario.speed / 3600
    kills: list[Kill] = []
    at = kill_every
    while at <= minutes * 0.8:
        service = SERVICES[len(kills) % len(SERVICES)]
        kills.append(
            Kill(do="kill", service=service, at_hours=round(at * hours_per_minute, 3), down_s=2)
        )
        at += kill_every
    return ChaosPlan(description=f"a kill every {kill_every:g} min, in turn", actions=kills)


@dataclass
class Sampler:
    """RSS of every process of the stack (by name; a restarted one under its new PID)."""

    stack: Stack | None = None
    samples: list[dict[str, Any]] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def watch(self, stack: Stack) -> None:
        self.stack = stack
        self._thread = threading.Thread(target=self._run, name="rss", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_S):  # the sampling period, not synchronization
            self.sample()

    def sample(self) -> None:
        """One reading of every process, while the load runs (Locust up): the export and
        the report after it read the whole log at once and are not the steady state."""
        assert self.stack is not None
        locust = self.stack.processes.get("locust")
        if locust is None or not locust.running():
            return
        now = round(time.time() - self.started, 1)
        pids = {"runner": os.getpid()}
        pids |= {n: p.pid for n, p in list(self.stack.processes.items()) if p.process}
        for name, pid in sorted(pids.items()):
            mb = rss_mb(pid)
            if mb is not None:
                self.samples.append({"t_s": now, "process": name, "pid": pid, "rss_mb": mb})

    def warmup(self) -> tuple[float, float]:
        """When the warm-up ends and the samples do (seconds since the sampler started)."""
        times = [s["t_s"] for s in self.samples]
        start, end = min(times), max(times)
        return start + min(WARMUP_S, (end - start) / 4), end

    def table(self) -> dict[str, dict[str, float]]:
        """Per process, after the warm-up: first- and last-quarter median RSS, their growth,
        the least-squares slope; and the peak of all samples."""
        out: dict[str, dict[str, float]] = {}
        if not self.samples:
            return out
        begin, end = self.warmup()
        span = end - begin
        for name in sorted({s["process"] for s in self.samples}):
            every = [(s["t_s"], s["rss_mb"]) for s in self.samples if s["process"] == name]
            mine = [(t, mb) for t, mb in every if t >= begin] or every
            first = [mb for t, mb in mine if t <= begin + span / 4] or [mine[0][1]]
            last = [mb for t, mb in mine if t >= end - span / 4] or [mine[-1][1]]
            q1, q4 = statistics.median(first), statistics.median(last)
            out[name] = {
                "first_quarter_mb": round(q1, 1),
                "last_quarter_mb": round(q4, 1),
                "growth": round(q4 / q1 - 1, 3) if q1 else 0.0,
                "slope_mb_per_min": round(_slope(mine) * 60, 3),
                "peak_mb": round(max(mb for _, mb in every), 1),
                "pids": len({s["pid"] for s in self.samples if s["process"] == name}),
            }
        return out

    def write(self, run_dir: Path, extra: dict[str, Any]) -> dict[str, Any]:
        with (run_dir / "soak.csv").open("w", newline="") as out:
            writer = csv.DictWriter(out, ["t_s", "process", "pid", "rss_mb"])
            writer.writeheader()
            writer.writerows(self.samples)
        table = self.table()
        body = {
            **extra,
            "sample_s": SAMPLE_S,
            "samples": len(self.samples),
            "warmup_s": round(self.warmup()[0] - self.samples[0]["t_s"], 1) if self.samples else 0,
            "rss": table,
            "flat": all(row["growth"] <= FLAT for row in table.values()),
            "not_flat": [name for name, row in table.items() if row["growth"] > FLAT],
        }
        (run_dir / "soak.json").write_text(json.dumps(body, indent=2))
        return body


def _slope(points: list[tuple[float, float]]) -> float:
    """Least-squares MB per second."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    return sum((t - mt) * (v - mv) for t, v in points) / var if var else 0.0
