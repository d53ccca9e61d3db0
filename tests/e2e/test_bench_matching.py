"""`bankrun bench matching` on a small workload: the core figures and the end-to-end figures
through the real matching service come out positive, every order is consumed, and the stack
it started is gone afterwards. No assertion on speed."""

from __future__ import annotations

import pytest

from bankrun.bench import matching
from bankrun.runner.processes import group_alive
from tests.conftest import record_stacks

pytestmark = pytest.mark.e2e


def test_matching_bench_end_to_end(monkeypatch):
    stacks = record_stacks(monkeypatch, matching)
    figures = matching.run_matching_bench(
        sizes=(1_000, 10_000), orders=2_000, e2e_orders=800, markets=2, resting_per_market=100
    )

    core = figures["core"]
    assert core["orders_per_s_at_1_000_resting"] > 0
    assert core["orders_per_s_at_10_000_resting"] > 0
    assert core["rate_ratio_10_000_vs_1_000"] > 0
    assert "cost ~ size^" in core["cost_growth"]

    e2e = figures["e2e"]
    assert e2e["orders"] == 800
    assert e2e["consumed"] == 800
    assert e2e["markets"] == 2
    assert e2e["partitions_used"] == 2
    assert e2e["dead_letters"] == 0
    for key in ("e2e_orders_per_s", "broker_produce_msgs_per_s", "ratio_to_broker_produce"):
        assert e2e[key] > 0, key
    # every order left a trace on market-data (accepted, rejected or cancelled)
    assert e2e["market_data_events_per_order"] >= 1

    assert len(stacks) == 1
    assert stacks[0].pids()
    assert not any(group_alive(pid) for pid in stacks[0].pids())


def test_no_e2e_skips_the_stack(monkeypatch):
    def no_stack(*args, **kwargs):
        raise AssertionError("the stack must not start with e2e_orders=0")

    monkeypatch.setattr(matching, "Stack", no_stack)
    figures = matching.run_matching_bench(sizes=(1_000, 2_000), orders=500, e2e_orders=0)
    assert set(figures) == {"core"}
    assert figures["core"]["orders_per_s_at_2_000_resting"] > 0
