"""Custody as a real faust worker on the real broker: bad input and duplicates."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from bankrun import events as ev
from bankrun.runner import kafka
from bankrun.runner.processes import group_alive
from bankrun.runner.stack import Stack
from bankrun.topics import BALANCES, CUSTOMER_REQUESTS, DEAD_LETTERS
from tests.conftest import wait_for_events

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def custody(broker, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("custody-run")
    stack = Stack(
        run_dir,
        f"it-{uuid.uuid4().hex[:8]}",
        bootstrap=broker,
        prometheus=False,
        services=("custody",),
    )
    with stack:
        yield stack
    assert not any(group_alive(pid) for pid in stack.pids())


def publish(bootstrap: str, *events: ev.Event) -> None:
    asyncio.run(kafka.publish(bootstrap, events))


def publish_raw(bootstrap: str, topic: str, key: bytes, *values: bytes) -> None:
    async def send():
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        try:
            for value in values:
                await producer.send_and_wait(topic, value, key=key)
        finally:
            await producer.stop()

    asyncio.run(send())


def snapshots(seen, venue, account):
    return [
        e
        for e in seen
        if isinstance(e, ev.BalanceSnapshot) and (e.venue, e.account) == (venue, account)
    ]


def test_garbage_goes_to_the_dead_letter_topic_and_the_next_event_still_counts(broker, custody):
    venue = "dlq-venue"
    publish(broker, ev.VenueOpened(venue=venue, scenario_time=0, policy="full-reserve"))
    not_json = b"\x00\xff this is not an event"
    wrong_shape = b'{"type": "deposit.made", "venue": "dlq-venue", "amount": -5}'
    publish_raw(broker, CUSTOMER_REQUESTS.name, venue.encode(), not_json, wrong_shape)
    publish(
        broker, ev.AccountOpened(venue=venue, scenario_time=0, account="after-garbage", asset="USD")
    )

    seen = wait_for_events(broker, BALANCES, lambda s: snapshots(s, venue, "after-garbage"))
    assert snapshots(seen, venue, "after-garbage")[0].available == 0

    def mine(s):
        return [e for e in s if isinstance(e, ev.DeadLetter) and e.key == venue]

    letters = mine(wait_for_events(broker, DEAD_LETTERS, lambda s: len(mine(s)) >= 2))
    assert [letter.source_topic for letter in letters] == [CUSTOMER_REQUESTS.name] * 2
    assert letters[0].payload == not_json.decode("utf-8", "backslashreplace")
    assert letters[0].reason.startswith("invalid_event")
    assert "deposit.made.amount: Input should be greater than 0" in letters[1].reason
    assert letters[1].consumer == "custody"


def test_a_duplicate_event_changes_nothing(broker, custody):
    venue = "dup-venue"
    opened = ev.AccountOpened(venue=venue, scenario_time=0, account="whale-1", asset="USD")
    first = ev.DepositMade(
        venue=venue, scenario_time=1, account="whale-1", asset="USD", amount=100_00
    )
    marker = ev.DepositMade(venue=venue, scenario_time=2, account="whale-1", asset="USD", amount=1)
    publish(broker, ev.VenueOpened(venue=venue, scenario_time=0, policy="full-reserve"), opened)
    publish(broker, first, first, opened, first)  # redelivered, and an account opened twice
    publish(broker, marker)

    seen = wait_for_events(
        broker,
        BALANCES,
        lambda s: any(e.causation_id == marker.event_id for e in snapshots(s, venue, "whale-1")),
    )
    final = next(e for e in snapshots(seen, venue, "whale-1") if e.causation_id == marker.event_id)
    assert final.available == 100_01

    metrics = httpx.get(custody.urls["custody"] + "/metrics").text
    assert (
        f'bankrun_customer_liabilities{{asset="USD",policy="full-reserve",venue="{venue}"}} 10001.0'
        in metrics
    )
    duplicates = [
        line
        for line in metrics.splitlines()
        if line.startswith('bankrun_duplicate_events_total{service="custody"}')
    ]
    assert duplicates and float(duplicates[0].split()[-1]) >= 2
