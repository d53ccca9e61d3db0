"""Records a faust stream skips are read again from the broker, in order, and booked with
faust's consumer as done, so nothing is lost and its commits go on."""

from __future__ import annotations

import asyncio
import uuid
from types import SimpleNamespace

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from services.common.faust_app import (
    NOTHING_TO_RECOVER,
    Gaps,
    JournalStore,
    _read_range,
    create_app,
    journal_table,
)
from services.common.settings import ServiceSettings

pytestmark = pytest.mark.integration

TOPIC = "bankrun.customer-requests"


async def _send(bootstrap: str, values: list[bytes], partition: int) -> list[int]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        sent = [await producer.send_and_wait(TOPIC, v, partition=partition) for v in values]
    finally:
        await producer.stop()
    return [meta.offset for meta in sent]


def message(offset: int, partition: int) -> SimpleNamespace:
    """What the stream hands the agent: only the position matters here."""
    return SimpleNamespace(topic=TOPIC, partition=partition, offset=offset)


@pytest.fixture
def app(broker, tmp_path):
    settings = ServiceSettings(bootstrap=broker, run_id=uuid.uuid4().hex[:8], data_dir=tmp_path)
    return create_app("gaps-test", settings)


def test_a_jump_in_offsets_reads_the_skipped_records_and_books_them(broker, app):
    partition = 2
    values = [f"gap-{uuid.uuid4()}-{i}".encode() for i in range(8)]
    offsets = asyncio.run(_send(broker, values, partition))
    first = offsets[0]
    tp = TopicPartition(TOPIC, partition)
    app.consumer._committed_offset[tp] = first  # what faust seeks to after an assignment
    gaps = Gaps(app, broker)

    handled: list = []
    booked_when_handled: list = []

    async def handle(record) -> None:  # faust must not hear of the gap before it is handled
        booked_when_handled.append(bool(app.consumer._gap[tp]))
        handled.append(record)

    async def scenario() -> None:
        await gaps.catch_up(message(first, partition), handle)
        await gaps.catch_up(message(first + 1, partition), handle)
        assert handled == []
        await gaps.catch_up(message(first + 6, partition), handle)

    asyncio.run(scenario())
    assert [r.offset for r in handled] == [first + 2, first + 3, first + 4, first + 5]
    assert [r.value for r in handled] == values[2:6]
    assert booked_when_handled == [False] * 4
    booked = app.consumer._gap[tp]
    assert sorted((i.begin, i.end) for i in booked) == [(first + 2, first + 6)]


def test_redelivered_and_first_messages_are_not_gaps(broker, app):
    partition = 1
    offsets = asyncio.run(_send(broker, [b"a", b"b", b"c"], partition))
    gaps = Gaps(app, broker)
    tp = TopicPartition(TOPIC, partition)
    app.consumer._committed_offset[tp] = offsets[1]

    async def scenario() -> list[list]:
        return [
            await gaps.skipped_before(message(offsets[1], partition)),  # at the committed one
            await gaps.skipped_before(message(offsets[2], partition)),
            await gaps.skipped_before(message(offsets[0], partition)),  # replayed after a seek
        ]

    assert asyncio.run(scenario()) == [[], [], []]
    assert not app.consumer._gap[tp]
    gaps.forget([tp])  # revoked: the next assignment starts from the committed offset again
    assert (TOPIC, partition) not in gaps.next


def test_before_faust_has_sought_the_broker_says_where_the_group_stands(broker, app):
    """A message can reach the agent before faust's seek; the group's own commit counts."""
    partition = 0
    offsets = asyncio.run(_send(broker, [b"x", b"y", b"z", b"w"], partition))
    tp = TopicPartition(TOPIC, partition)
    gaps = Gaps(app, broker)

    async def commit_then_ask() -> tuple[int, int]:
        never = await gaps.committed(tp)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=broker, group_id=app.conf.id, enable_auto_commit=False
        )
        await consumer.start()
        try:
            consumer.assign([tp])
            await consumer.commit({tp: offsets[2]})
        finally:
            await consumer.stop()
        return never, await gaps.committed(tp)

    never, after = asyncio.run(commit_then_ask())
    assert (never, after) == (0, offsets[2])
    skipped = asyncio.run(gaps.skipped_before(message(offsets[3], partition)))
    assert [r.value for r in skipped] == [b"z"]


def test_a_slow_read_goes_on_while_records_come_and_stops_when_none_do(broker):
    """A busy broker serves a long changelog slowly (a restart after a 10-minute constant
    load read ~320 records a second); only a read that gets nothing for `timeout` fails."""
    partition = 3
    (start,) = asyncio.run(_send(broker, [b"first"], partition))
    tp = TopicPartition(TOPIC, partition)

    async def trickle(producer: AIOKafkaProducer) -> None:
        for i in range(5):
            # pacing the writer: the records take longer than the timeout, each well within it
            await asyncio.sleep(0.6)
            await producer.send_and_wait(TOPIC, f"late-{i}".encode(), partition=partition)

    async def read_while_written() -> list:
        producer = AIOKafkaProducer(bootstrap_servers=broker)
        await producer.start()  # before the read: a busy machine is slow to start one
        writer = asyncio.create_task(trickle(producer))
        try:
            return await _read_range(broker, tp, start, start + 6, timeout=2.0)
        finally:
            await writer
            await producer.stop()

    records = asyncio.run(read_while_written())
    assert [r.value for r in records] == [b"first"] + [f"late-{i}".encode() for i in range(5)]
    with pytest.raises(RuntimeError, match=r"nothing read for 2\.0 s"):
        asyncio.run(_read_range(broker, tp, start + 6, start + 7, timeout=2.0))


def test_faust_recovers_nothing_of_the_journal(app):
    """Our reader loads it (`_read_changelog`); faust would read ~35 records/s and stop at
    Tansu's under-reported high watermark. (A bare "scheme://" store URL is falsy in yarl,
    and faust then silently falls back to its memory store: checked here.)"""
    table = journal_table(app)
    assert isinstance(table.data, JournalStore)
    assert table.persisted_offset(TopicPartition("any", 0)) == NOTHING_TO_RECOVER
    assert app.conf.recovery_consistency_check is False
