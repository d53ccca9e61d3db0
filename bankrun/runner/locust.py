"""Locust for a run: one headless process, or a master with N worker processes, optionally with
its web UI on loopback; and the asks file through which bankrun's core hands it the load.

Locust runs in processes of its own, started and stopped by PID with the stack: importing
Locust monkey-patches the whole interpreter for gevent, which the runner's asyncio Kafka
clock must not be subjected to.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from bankrun.runner.processes import ManagedProcess, free_port, http_ok, tcp_open, wait_until
from bankrun.runner.stack import Stack
from bankrun.workload import Request

LOCUSTFILE = Path(__file__).resolve().parents[2] / "loadtests" / "locustfile.py"


@dataclass
class AskFile:
    """JSON lines of withdrawals for Locust to deliver, appended as they are decided: first
    `{"started_at": …, "speed": …}` (the wall clock at scenario time zero, so a Locust started
    beforehand — the compose one — knows when each ask is due), then the asks;
    `{"end": true}` closes it. Kept in the run folder: what was asked, in order."""

    path: Path
    count: int = 0

    def __post_init__(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("")

    def start(self, started_at: float, speed: float) -> None:
        with self.path.open("a") as out:
            out.write(json.dumps({"started_at": started_at, "speed": speed}) + "\n")

    def append(self, requests: Iterable[Request]) -> int:
        lines = [json.dumps(asdict(r)) + "\n" for r in requests]
        with self.path.open("a") as out:
            out.writelines(lines)
        self.count += len(lines)
        return len(lines)

    def close(self) -> None:
        with self.path.open("a") as out:
            out.write(json.dumps({"end": True}) + "\n")


@dataclass
class LocustOptions:
    users: int = 100  # the most users the run's shape may reach
    workers: int = 0  # 0: one standalone process
    ui: bool = False  # keep the web UI open on loopback to watch the run


def start_locust(
    stack: Stack, asks: AskFile, options: LocustOptions, csv: Path
) -> list[ManagedProcess]:
    """Start Locust for the run (ready to take asks) and return its processes, master first."""
    env = {
        "BANKRUN_ASKS": str(asks.path),
        "BANKRUN_MAX_USERS": str(options.users),
        "BANKRUN_LOCUST_WORKERS": str(options.workers),
        **stack.auth.env(),  # Locust acts for every customer: it makes their tokens
    }
    common = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--host", stack.gateway_url]
    argv = [*common, "--csv", str(csv), "--only-summary", "--exit-code-on-error", "0"]
    if options.ui:
        port = free_port()
        stack.urls["locust"] = f"http://127.0.0.1:{port}"
        argv += ["--web-host", "127.0.0.1", "--web-port", str(port), "--autostart"]
        argv += ["--autoquit", "0"]
    else:
        argv += ["--headless"]
    master_port = free_port()
    if options.workers:
        argv += ["--master", "--master-bind-host", "127.0.0.1"]
        argv += ["--master-bind-port", str(master_port), "--expect-workers", str(options.workers)]
    master = ManagedProcess("locust", argv, stack.log_dir / "locust.log", env=env).start()
    stack.adopt("locust", master)
    procs = [master]
    if options.workers:
        master.wait_ready(tcp_open("127.0.0.1", master_port), 60)
        for i in range(options.workers):
            worker_argv = [*common, "--worker", "--master-host", "127.0.0.1"]
            worker_argv += ["--master-port", str(master_port)]
            name = f"locust-worker-{i}"
            proc = ManagedProcess(name, worker_argv, stack.log_dir / f"{name}.log", env=env)
            stack.adopt(name, proc.start())
            procs.append(proc)
    if options.ui:
        master.wait_ready(http_ok(stack.urls["locust"]), 60)
    return procs


def wait_for_locust(procs: list[ManagedProcess], timeout: float) -> bool:
    """Locust ends itself once every ask is answered; True if it did within `timeout`."""
    try:
        wait_until(lambda: not any(p.running() for p in procs), timeout, "Locust to finish", 0.2)
    except TimeoutError:
        return False
    return True
