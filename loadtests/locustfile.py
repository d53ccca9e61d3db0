"""Locust load for `bankrun run`: customers send the planned withdrawals through the gateway,
each at its scenario time (wall = started_at + scenario seconds / speed).

The plan (JSON lines, written by the runner from the scenario's load model) decides who asks
for what and when; Locust delivers it over HTTP and records what the gateway answered. When
the plan is spent and nothing is in flight, the last user stops the run.

Environment: BANKRUN_PLAN (path), BANKRUN_STARTED_AT (epoch seconds), BANKRUN_SPEED.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from typing import Any

from locust import FastHttpUser, constant, events, task
from locust.exception import StopUser

PLAN: deque[dict[str, Any]] = deque()
CLOCK = {"started_at": 0.0, "speed": 1.0}
IN_FLIGHT = {"n": 0}


@events.init.add_listener
def _load_plan(environment: Any, **_: Any) -> None:
    path = os.environ.get("BANKRUN_PLAN")
    if not path:
        return
    with open(path) as lines:
        PLAN.extend(json.loads(line) for line in lines)
    CLOCK["started_at"] = float(os.environ["BANKRUN_STARTED_AT"])
    CLOCK["speed"] = float(os.environ["BANKRUN_SPEED"])


class ScheduledWithdrawer(FastHttpUser):
    """A customer desk: takes the next planned withdrawal, waits for its time, sends it."""

    wait_time = constant(0)

    @task
    def withdraw(self) -> None:
        if not PLAN:
            if IN_FLIGHT["n"] == 0 and self.environment.runner is not None:
                self.environment.runner.quit()
            raise StopUser
        request = PLAN.popleft()
        IN_FLIGHT["n"] += 1
        try:
            due = CLOCK["started_at"] + request["at"] / CLOCK["speed"]
            delay = due - time.time()
            if delay > 0:
                time.sleep(delay)  # gevent-patched: yields to the other users
            body = {k: request[k] for k in ("venue", "account", "asset", "amount")}
            with self.client.post(
                "/withdrawals",
                json=body,
                headers={"Idempotency-Key": request["request_id"]},
                name="/withdrawals",
                catch_response=True,
            ) as reply:
                if reply.status_code not in (200, 202):
                    reply.failure(f"{reply.status_code}: {reply.text[:200]}")
        finally:
            IN_FLIGHT["n"] -= 1
