"""The live watcher on a real broker: quiet while the books balance, stops at a forged one."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from bankrun import events as ev
from bankrun.runner import kafka
from bankrun.runner.watch import InvariantViolated, Watcher

pytestmark = pytest.mark.integration


@pytest.fixture
def own_broker(tmp_path) -> Iterator[str]:
    """A broker of its own: the watcher reads every topic, other tests' events included."""
    proc, bootstrap = kafka.embedded_broker(tmp_path / "broker")
    try:
        asyncio.run(kafka.create_topics(bootstrap))
        yield bootstrap
    finally:
        proc.stop()


def test_a_forged_balance_is_caught_at_the_next_settled_point(own_broker, tmp_path):
    broker = own_broker
    watcher = Watcher(tmp_path, "watch-test")
    watcher.serve()
    watcher.follow(broker)
    venue, account = "watch-venue", "whale-1"
    try:
        sent: Counter[str] = Counter()
        funded = ev.AccountFunded(
            venue=venue, scenario_time=0, account=account, asset="USD", amount=5_000
        )
        honest = ev.BalanceSnapshot(
            venue=venue, scenario_time=0, account=account, asset="USD", available=5_000
        )
        sent += asyncio.run(kafka.publish(broker, [funded, honest]))
        watcher.check(dict(sent), hours=0.0)  # balances: nothing to report

        forged = honest.model_copy(update={"event_id": uuid.uuid4(), "available": 6_000})
        sent += asyncio.run(kafka.publish(broker, [forged]))
        with pytest.raises(InvariantViolated) as stopped:
            watcher.check(dict(sent), hours=1.5)
        assert "brought 5000, holds 6000 + taken 0" in str(stopped.value)
        report = json.loads((tmp_path / "invariant_violation.json").read_text())
        assert report["violations"][0]["check"] == "conservation"
        assert report["scenario_hours"] == 1.5
        metrics = httpx.get(f"http://{watcher.target}/metrics").text
        assert (
            f'bankrun_invariant_violations_total{{check="conservation",venue="{venue}"}} 1.0'
            in metrics
        )
    finally:
        watcher.stop()


def test_without_lockstep_a_violation_must_outlive_one_settled_point(own_broker, tmp_path):
    """A constant load does not wait at settled points: the watcher may read one side of a
    movement past the cut, so it reports only what the next point still shows."""
    watcher = Watcher(tmp_path, "watch-confirm", confirm=True)
    watcher.serve()
    watcher.follow(own_broker)
    try:
        forged = ev.BalanceSnapshot(
            venue="v", scenario_time=0, account="a-1", asset="USD", available=7
        )
        funded = ev.AccountFunded(venue="v", scenario_time=0, account="a-1", asset="USD", amount=5)
        sent = Counter(asyncio.run(kafka.publish(own_broker, [funded, forged])))
        watcher.check(dict(sent), hours=1.0)  # seen once: a suspect, not yet a violation
        assert not (tmp_path / "invariant_violation.json").exists()
        with pytest.raises(InvariantViolated):
            watcher.check(dict(sent), hours=1.1)
    finally:
        watcher.stop()
