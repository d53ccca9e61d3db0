"""`bankrun bench locust` on a small burst with a Locust master and two workers: every
withdrawal is delivered and answered, the figures are positive, and nothing is left running.
No assertion on speed."""

from __future__ import annotations

import pytest
from rich.console import Console

from bankrun.bench import withdrawals
from bankrun.bench.locust import run_locust_bench
from bankrun.runner.processes import group_alive
from tests.conftest import record_stacks

pytestmark = pytest.mark.e2e


def test_locust_delivers_a_burst_through_the_gateway(monkeypatch):
    stacks = record_stacks(monkeypatch, withdrawals)
    figures = run_locust_bench(400, users=20, workers=2, venues=2, console=Console(quiet=True))
    assert figures["answered"] == figures["paid"] == 400
    for key in ("withdrawals_per_s", "post_p50_ms", "broker_produce_msgs_per_s"):
        assert figures[key] > 0, key
    assert 0 < figures["ratio_to_broker_produce"] < 1
    (stack,) = stacks
    assert {"locust", "locust-worker-0", "locust-worker-1"} <= set(stack.processes)
    assert not any(group_alive(pid) for pid in stack.pids())
