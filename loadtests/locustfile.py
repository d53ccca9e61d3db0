"""Locust load for `bankrun run`: customers who take their withdrawals to the gateway.

bankrun's core decides who asks for how much and when — the constant plan up front, or the
panic desk step by step as the run unfolds — and appends each ask to an asks file (JSON
lines; `{"end": true}` closes it). Locust delivers: a `Customer` takes the next ask, sends it
at its scenario time with an idempotency key, follows it (long-polling its status) until the
venue answers, and reports the answer as a Locust request of type `withdrawal` named `paid`,
`queued` or `rejected`, timed from request to answer. `RunShape` follows the run: as many
users as asks are waiting for an answer (never fewer than before, up to the cap), and it ends
the test once the file is closed and every ask is answered.

Distributed (`--locust-workers N`): every worker reads the file and takes every N-th ask; the
master only counts them, for the shape.

Each customer calls with its own bearer token, made from the run's secret (`bankrun.auth`).

Environment: BANKRUN_ASKS (path; the file's first line gives the wall clock at scenario time
zero and the speed, so Locust may start before the run), BANKRUN_MAX_USERS,
BANKRUN_LOCUST_WORKERS (0: one standalone process), BANKRUN_AUTH_SECRET or
BANKRUN_AUTH_SECRET_FILE (required).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import gevent
from gevent.queue import Queue
from locust import FastHttpUser, LoadTestShape, constant, events, task
from locust.runners import MasterRunner, WorkerRunner

from bankrun.auth import Tokens, bearer

FOLLOW_S = 60.0  # how long a customer keeps checking for an answer
WAIT_S = 5.0  # how long the gateway holds one status request for an answer
GRACE_S = 15.0  # after the file closes, how long the shape waits for an answer that does not come


class Asks:
    """This process's share of the asks file, followed as it grows."""

    def __init__(self) -> None:
        self.queue: Queue[dict[str, Any]] = Queue()
        self.total = 0  # asks in the file, every shard's
        self.closed_at: float | None = None
        self.started_at, self.speed = 0.0, 1.0  # until the file's first line says
        self._follower: gevent.Greenlet | None = None

    def follow(self, shard: int, shards: int, keep: bool) -> None:
        path = os.environ.get("BANKRUN_ASKS")
        if self._follower is None and path:
            self._follower = gevent.spawn(self._tail, path, shard, shards, keep)

    def _tail(self, path: str, shard: int, shards: int, keep: bool) -> None:
        while not os.path.exists(path):
            gevent.sleep(0.1)  # a Locust started before the run (compose) waits for its file
        with open(path) as lines:
            pending = ""
            while self.closed_at is None:
                chunk = lines.readline()
                if not chunk:
                    gevent.sleep(0.01)  # a file has no "data arrived" to wait on
                    continue
                pending += chunk
                if not pending.endswith("\n"):
                    continue  # the writer is mid-line
                ask, pending = json.loads(pending), ""
                if "started_at" in ask:  # the run's clock: scenario time zero, and its speed
                    self.started_at, self.speed = ask["started_at"], ask["speed"]
                    continue
                if ask.get("end"):
                    self.closed_at = time.time()
                    break
                if keep and self.total % shards == shard:
                    self.queue.put(ask)
                self.total += 1

    def due(self, ask: dict[str, Any]) -> float:
        return self.started_at + ask["at"] / self.speed


ASKS = Asks()
TOKENS: list[Tokens] = []  # the run's, once the test starts


@events.test_start.add_listener
def _start(environment: Any, **_: Any) -> None:
    runner = environment.runner
    if not TOKENS:
        TOKENS.append(Tokens.from_env())
    workers = int(os.environ.get("BANKRUN_LOCUST_WORKERS", "0"))
    if isinstance(runner, WorkerRunner):
        ASKS.follow(runner.worker_index, max(1, workers), keep=True)
    else:
        ASKS.follow(0, 1, keep=not isinstance(runner, MasterRunner))


class Customer(FastHttpUser):
    """A customer at the gateway: asks for a withdrawal, then checks until it is answered."""

    wait_time = constant(0)

    @task
    def withdraw(self) -> None:
        ask = ASKS.queue.get()  # blocks this user until there is something to do
        delay = ASKS.due(ask) - time.time()
        if delay > 0:
            gevent.sleep(delay)  # the ask's scenario time
        sent = time.time()
        if self._ask(ask, sent):
            self._follow(ask, sent)

    def _ask(self, ask: dict[str, Any], sent: float) -> bool:
        """POST the ask; while the gateway is down or restarting (no connection, 5xx) send it
        again — the idempotency key makes that safe — each retry a failed `retry` row."""
        body = {k: ask[k] for k in ("venue", "account", "asset", "amount")}
        while True:
            with self.client.post(
                "/withdrawals",
                json=body,
                headers={"Idempotency-Key": ask["request_id"], **self._auth(ask)},
                name="/withdrawals",
                catch_response=True,
            ) as reply:
                if reply.status_code in (200, 202):
                    return True
                down = reply.status_code == 0 or reply.status_code >= 500
                if not down or time.time() - sent > FOLLOW_S:
                    reply.failure(f"{reply.status_code}: {(reply.text or '')[:200]}")
                    return False
                reply.success()  # not the ask's answer: reported as a retry below
            self.environment.events.request.fire(
                request_type="retry",
                name="/withdrawals",
                response_time=0,
                response_length=0,
                exception=ConnectionError(f"gateway answered {reply.status_code}; retrying"),
                context={},
            )
            gevent.sleep(0.2)

    def _follow(self, ask: dict[str, Any], sent: float) -> None:
        """Long-poll the status until the venue answers (the gateway holds each GET up to
        WAIT_S); a 404 means the gateway has not read its own request back yet."""
        url = f"/withdrawals/{ask['venue']}/{ask['request_id']}?wait={WAIT_S:g}"
        while time.time() - sent < FOLLOW_S:
            reply = self.client.get(
                url, name="/withdrawals/[venue]/[request_id]?wait", headers=self._auth(ask)
            )
            status = reply.json().get("status") if reply.status_code == 200 else None
            if status not in (None, "requested"):
                self._answered(status, sent)
                return
            if status is None:
                gevent.sleep(0.05)  # not known yet: nothing to wait on at the gateway
        self._answered("unanswered", sent, error=TimeoutError(f"no answer in {FOLLOW_S:.0f} s"))

    @staticmethod
    def _auth(ask: dict[str, Any]) -> dict[str, str]:
        return bearer(TOKENS[0].customer(ask["venue"], ask["account"]))

    def _answered(self, status: str, sent: float, error: Exception | None = None) -> None:
        self.environment.events.request.fire(
            request_type="withdrawal",
            name=status,
            response_time=(time.time() - sent) * 1000,
            response_length=0,
            exception=error,
            context={},
        )


class RunShape(LoadTestShape):
    """Users follow the run: one per ask waiting for its answer, up to BANKRUN_MAX_USERS, never
    fewer than before (a stopped user would drop the ask it holds). Ends when the file is closed
    and all is answered — or nothing more has been answered for GRACE_S."""

    def __init__(self) -> None:
        super().__init__()
        self.cap = int(os.environ.get("BANKRUN_MAX_USERS", "20"))
        self.floor = max(1, int(os.environ.get("BANKRUN_LOCUST_WORKERS", "0")))
        self.users = self.floor
        self.progress = (0, time.time())  # answers so far, and when that count last grew

    def answered(self) -> int:
        assert self.runner is not None
        stats = self.runner.stats
        got = sum(e.num_requests for (_, kind), e in stats.entries.items() if kind == "withdrawal")
        refused = stats.get("/withdrawals", "POST").num_failures
        return got + refused

    def tick(self) -> tuple[int, float] | None:
        answered = self.answered()
        if answered > self.progress[0]:
            self.progress = (answered, time.time())
        waiting = ASKS.total - answered
        stalled = time.time() - max(self.progress[1], ASKS.closed_at or 0.0) > GRACE_S
        if ASKS.closed_at is not None and (waiting <= 0 or stalled):
            return None
        self.users = max(self.users, min(self.cap, waiting))
        return self.users, float(self.cap)
