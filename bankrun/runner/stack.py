"""The embedded stack: broker, topics, services as processes, Prometheus; started in order,
each waited on by a readiness check, and stopped in reverse whatever happens."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bankrun.runner import kafka
from bankrun.runner.processes import ManagedProcess, free_port, http_ok
from bankrun.runner.prometheus import start_prometheus
from services.common.settings import ServiceSettings

Progress = Callable[[str], None]

#: service -> how to start it (`{port}` is filled in); faust workers and the uvicorn gateway.
SERVICES: dict[str, list[str]] = {
    "custody": ["-m", "faust", "-A", "services.custody.app", "worker", "-l", "info"],
    "withdrawal": ["-m", "faust", "-A", "services.withdrawal.app", "worker", "-l", "info"],
    "matching": ["-m", "faust", "-A", "services.matching.app", "worker", "-l", "info"],
    "gateway": ["-m", "services.gateway"],
}


@dataclass
class Stack:
    run_dir: Path
    run_id: str
    bootstrap: str | None = None  # an existing Kafka; None starts the embedded broker
    speed: float = 1.0
    prometheus: bool = True
    services: tuple[str, ...] = tuple(SERVICES)
    progress: Progress = lambda message: None
    started_at: float = field(default_factory=time.time)
    processes: dict[str, ManagedProcess] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)

    @property
    def log_dir(self) -> Path:
        return self.run_dir / "logs"

    @property
    def gateway_url(self) -> str:
        return self.urls["gateway"]

    @property
    def prometheus_url(self) -> str:
        return self.urls["prometheus"]

    def __enter__(self) -> Stack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.bootstrap is None:
            self.progress("starting the embedded broker (Tansu)")
            broker, self.bootstrap = kafka.embedded_broker(self.log_dir)
            self.processes["broker"] = broker
            self._record_pids()
        self.urls["kafka"] = self.bootstrap
        created = asyncio.run(kafka.create_topics(self.bootstrap))
        self.progress(f"topics ready ({len(created)} created)")
        for service in self.services:
            self.start_service(service)
        for service in self.services:
            self.progress(f"waiting for {service}")
            self.processes[service].wait_ready(http_ok(self.urls[service] + "/ready"), 120)
        if self.prometheus:
            self.progress("starting Prometheus")
            targets = {s: self.urls[s].removeprefix("http://") for s in self.services}
            proc, self.urls["prometheus"] = start_prometheus(self.run_dir, targets, self.run_id)
            self.processes["prometheus"] = proc
        self._record_pids()
        self.progress("stack is up")

    def _record_pids(self) -> None:
        """pids.json: what this run started, so anyone can check it was all stopped."""
        pids = {name: p.pid for name, p in self.processes.items() if p.process is not None}
        (self.run_dir / "pids.json").write_text(json.dumps(pids, indent=2))

    def settings(self, port: int) -> ServiceSettings:
        assert self.bootstrap is not None
        return ServiceSettings(
            bootstrap=self.bootstrap,
            run_id=self.run_id,
            port=port,
            data_dir=self.run_dir / "state",
            started_at=self.started_at,
            speed=self.speed,
        )

    def start_service(self, service: str) -> ManagedProcess:
        port = free_port()
        self.urls[service] = f"http://127.0.0.1:{port}"
        proc = ManagedProcess(
            service,
            [sys.executable, *SERVICES[service]],
            self.log_dir / f"{service}.log",
            env={**self.settings(port).to_env(), "PYTHONUNBUFFERED": "1"},
        ).start()
        self.adopt(service, proc)
        return proc

    def adopt(self, name: str, proc: ManagedProcess) -> None:
        """A process the run started beside the stack (Locust): stopped with it, by its PID."""
        self.processes[name] = proc
        self._record_pids()

    def stop_services(self) -> None:
        """Stop the services (gateway first), leaving broker and Prometheus up for export."""
        for name in reversed(SERVICES):
            if name in self.processes:
                self.progress(f"stopping {name}")
                self.processes[name].stop()

    def stop(self) -> None:
        for name in reversed(list(self.processes)):
            self.processes[name].stop()

    def pids(self) -> list[int]:
        return [p.pid for p in self.processes.values() if p.process is not None]
