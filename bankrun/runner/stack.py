"""The embedded stack: broker, topics, services as processes, Prometheus; started in order,
each waited on by a readiness check, and stopped in reverse whatever happens. Or a stack
someone else runs (`Attached`: docker compose), which the runner only uses."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bankrun.auth import SecretMissing, Tokens
from bankrun.runner import kafka
from bankrun.runner.processes import ManagedProcess, StartupError, free_port, http_ok, wait_until
from bankrun.runner.prometheus import start_prometheus
from bankrun.runner.tally import Tally
from services.common.settings import ServiceSettings

Progress = Callable[[str], None]

#: service -> how to start it (`{port}` is filled in); faust workers and the uvicorn gateway.
SERVICES: dict[str, list[str]] = {
    "custody": ["-m", "faust", "-A", "services.custody.app", "worker", "-l", "info"],
    "withdrawal": ["-m", "faust", "-A", "services.withdrawal.app", "worker", "-l", "info"],
    "matching": ["-m", "faust", "-A", "services.matching.app", "worker", "-l", "info"],
    "gateway": ["-m", "services.gateway"],
}


@dataclass(frozen=True)
class Attached:
    """A stack someone else runs (the docker-compose one): the runner starts nothing, finds
    each service replica through Prometheus' targets, and stops nothing."""

    gateway: str
    prometheus: str


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
    attached: Attached | None = None
    replicas: dict[str, list[str]] = field(default_factory=dict)  # attached: service -> URLs
    #: the run's token secret: BANKRUN_AUTH_SECRET(_FILE) if set (attached: must be, the
    #: stack's own), else a fresh one for this run; passed to the gateway and Locust by
    #: environment, never written down
    tokens: Tokens | None = None
    tally: Tally = field(default_factory=Tally)  # message counts across restarts
    #: more Prometheus jobs beside the services (the runner's invariant watcher): job -> host:port
    extra_targets: dict[str, str] = field(default_factory=dict)
    #: set once the stack is being stopped: waits in worker threads give up (settle)
    stopping: threading.Event = field(default_factory=threading.Event)

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

    def endpoints(self) -> list[tuple[str, str]]:
        """(service, base URL) of every service process, every replica when attached."""
        if self.attached:
            return [(s, url) for s, urls in sorted(self.replicas.items()) for url in urls]
        return [(s, self.urls[s]) for s in self.services if s in self.urls]

    @property
    def auth(self) -> Tokens:
        assert self.tokens is not None, "the stack has not started"
        return self.tokens

    def start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.tokens = Tokens.from_env()
        except SecretMissing as missing:
            if self.attached:
                raise StartupError(
                    f"an attached run needs the stack's auth secret: {missing}"
                ) from None
            self.tokens = Tokens.generate()
        if self.attached:
            self._attach(self.attached)
            return
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
            targets.update(self.extra_targets)
            proc, self.urls["prometheus"] = start_prometheus(self.run_dir, targets, self.run_id)
            self.processes["prometheus"] = proc
        self._record_pids()
        self.progress("stack is up")

    def _attach(self, to: Attached) -> None:
        if self.bootstrap is None:
            raise StartupError("an attached run needs the stack's Kafka (--bootstrap)")
        self.urls.update(kafka=self.bootstrap, gateway=to.gateway, prometheus=to.prometheus)
        created = asyncio.run(kafka.create_topics(self.bootstrap))
        self.progress(f"attached; topics ready ({len(created)} created)")
        wait_until(http_ok(f"{to.gateway}/ready"), 120, f"the gateway at {to.gateway}")
        wait_until(self._find_replicas, 120, "every service among Prometheus' targets", 1.0)
        self._record_pids()
        found = ", ".join(f"{s} x{len(u)}" for s, u in sorted(self.replicas.items()))
        self.progress(f"attached to {found}; run_id label {self.run_id!r}")

    def _find_replicas(self) -> bool:
        """Each service's replicas, from Prometheus' active targets, and the run_id label the
        stack's series carry (the runner queries with it)."""
        try:
            reply = httpx.get(f"{self.urls['prometheus']}/api/v1/targets", timeout=5)
            targets = reply.json()["data"]["activeTargets"]
        except (httpx.HTTPError, KeyError, ValueError):
            return False
        self.replicas = {}
        for target in targets:
            job = target["labels"].get("job")
            if job in self.services and target.get("health") == "up":
                url = target["scrapeUrl"].removesuffix("/metrics")
                self.replicas.setdefault(job, []).append(url)
                self.run_id = target["labels"].get("run_id", self.run_id)
        return set(self.replicas) == set(self.services)

    def _record_pids(self) -> None:
        """pids.json: what this run started, so anyone can check it was all stopped."""
        pids = {name: p.pid for name, p in self.processes.items() if p.process is not None}
        (self.run_dir / "pids.json").write_text(json.dumps(pids, indent=2))

    def settings(self, port: int) -> ServiceSettings:
        assert self.bootstrap is not None
        return ServiceSettings(
            bootstrap=self.bootstrap,
            run_id=self.run_id,
            host="127.0.0.1",
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
            env={
                **self.settings(port).to_env(),
                **(self.auth.env() if service == "gateway" else {}),
                **(self.auth.por_env() if service in ("gateway", "custody") else {}),
                "PYTHONUNBUFFERED": "1",
            },
        ).start()
        self.adopt(service, proc)
        return proc

    def adopt(self, name: str, proc: ManagedProcess) -> None:
        """A process the run started beside the stack (Locust): stopped with it, by its PID."""
        self.processes[name] = proc
        self._record_pids()

    def stop_services(self) -> None:
        """Stop the services (gateway first), leaving broker and Prometheus up for export."""
        self.stopping.set()
        for name in reversed(SERVICES):
            if name in self.processes:
                self.progress(f"stopping {name}")
                self.processes[name].stop()

    def stop(self) -> None:
        self.stopping.set()
        for name in reversed(list(self.processes)):
            self.processes[name].stop()

    def pids(self) -> list[int]:
        return [p.pid for p in self.processes.values() if p.process is not None]
