"""The faust shell every stream service shares: app settings, /metrics, /ready, and a consume
loop that decodes, dead-letters what it cannot use, applies a handler once, and emits.

A service module only says which topics it reads and what its handler decides.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import aclosing
from typing import Any

import faust
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from faust import stores as faust_stores
from faust.stores.memory import Store as MemoryStore
from faust.transport.drivers import aiokafka as aiokafka_driver
from prometheus_client import generate_latest
from pydantic import ValidationError

from bankrun import events as ev
from bankrun.runner.kafka import log_reader, log_writer
from bankrun.topics import (
    BY_NAME,
    COMPRESSION,
    DEAD_LETTERS,
    FETCH_MAX_WAIT_MS,
    MAX_EVENT_BYTES,
    PARTITIONS,
    Topic,
    topic_of,
)
from services.common import metrics
from services.common.journal import Effects, Folding, Journal, Partition, Restore
from services.common.settings import ServiceSettings
from services.common.spill import Spill

log = logging.getLogger(__name__)

Handler = Callable[[ev.Event, Callable[[str], Any]], Effects]
AfterCommit = Callable[[ev.Event, Effects, Partition], None]


def _short_fetch_wait() -> None:
    """faust builds its consumer with fetch_max_wait_ms=1500; shorten it before start.

    aiokafka reads `_fetch_max_wait_ms` when the consumer starts, so this is enough.
    """
    thread = aiokafka_driver.AIOKafkaConsumerThread
    if getattr(thread, "_bankrun_patched", False):
        return
    original = thread._create_worker_consumer

    def create(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer

    thread._create_worker_consumer = create
    thread._bankrun_patched = True


def create_app(service: str, settings: ServiceSettings) -> faust.App:
    """A faust app tuned for the embedded broker (see DESIGN.md: measured settings)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    _short_fetch_wait()
    app = faust.App(
        f"bankrun-{service}-{settings.run_id}",
        broker=[f"kafka://{b}" for b in settings.bootstrap.split(",")],
        web_host=settings.host,
        web_port=settings.port,
        web_bind=settings.host,
        datadir=str(settings.data_dir / service),
        store="memory://",
        topic_replication_factor=1,
        topic_partitions=PARTITIONS,
        broker_session_timeout=10,
        broker_rebalance_timeout=10,
        consumer_auto_offset_reset="earliest",
        recovery_consistency_check=False,  # JournalStore's offset is past the end
        producer_linger_ms=1,
        producer_compression_type=COMPRESSION,
    )

    @app.page("/metrics")
    async def _metrics(web: Any, request: Any) -> Any:
        return web.bytes(generate_latest(), content_type="text/plain; version=0.0.4")

    @app.page("/consumer")
    async def _consumer(web: Any, request: Any) -> Any:
        """What the consumer holds: assigned, paused, position and highwater per partition."""
        inner = app.consumer._thread._ensure_consumer()
        rows = {}
        for tp in sorted(app.consumer.assignment()):
            try:
                position = inner._subscription.subscription.assignment.state_value(tp).position
            except Exception:
                position = None
            rows[str(tp)] = {
                "paused": tp in inner.paused(),
                "position": position,
                "highwater": inner.highwater(tp),
            }
        return web.json(rows)

    @app.page("/ready")
    async def _ready(web: Any, request: Any) -> Any:
        ready = app.tables.recovery.completed.is_set() and not app.rebalancing
        assigned = sorted(str(tp) for tp in app.consumer.assignment()) if ready else []
        body = {"service": service, "ready": ready, "assigned": assigned}
        return web.json(body, status=200 if ready else 503)

    return app


def journal_table(app: faust.App) -> faust.Table:
    """The journal's records: a changelogged Table that faust's recovery leaves alone."""
    return app.Table("journal", default=None, partitions=PARTITIONS, store=JOURNAL_STORE)


def raw_topic(app: faust.App, topic: Topic) -> faust.TopicT:
    return app.topic(
        topic.name,
        key_type=bytes,
        value_type=bytes,
        partitions=topic.partitions,
        key_serializer="raw",
        value_serializer="raw",
    )


def run_service(
    app: faust.App,
    service: str,
    settings: ServiceSettings,
    inputs: Iterable[Topic],
    handle: Handler,
    handled: frozenset[str],
    after_commit: AfterCommit | None = None,
    restore: Restore | None = None,
) -> None:
    """Wire the consume loop: one agent over all `inputs`; the journal's records are the one
    changelogged Table, and each partition's state is rebuilt from them in memory."""
    records = journal_table(app)
    folding: set[int] = set()

    def _folded(partition: int) -> None:
        metrics.JOURNAL_FOLDED.labels(service).inc()
        if partition not in folding:
            folding.add(partition)
            log.info("journal[%s]: folding records past the last %d", partition, keep)

    def _committed(partition: int, topic: str) -> int:
        known = _faust_committed(app, TopicPartition(topic, partition))
        return -1 if known is None else known

    def _spilled(partition: int) -> None:
        log.info("journal[%s]: state past the %d hottest keys waits on disk", partition, hot)

    keep, hot = settings.journal_keep, settings.hot_keys
    spill = Spill(settings.data_dir / service / "spill.sqlite")  # a cache: starts empty
    fold = Folding(lambda: records.data, keep, _folded, _committed, spill, hot, _spilled)
    journal = Journal(records, restore, fold)

    gaps = Gaps(app, settings.bootstrap)

    @app.on_partitions_revoked.connect
    def _revoked(sender: Any, revoked: set[Any], **_: Any) -> None:
        journal.forget({tp.partition for tp in revoked})
        gaps.forget(revoked)

    outputs = {name: raw_topic(app, spec) for name, spec in BY_NAME.items()}
    dead_letters = outputs[DEAD_LETTERS.name]
    source = app.topic(*(t.name for t in inputs), key_serializer="raw", value_serializer="raw")

    @app.agent(source, name=f"{service}-consume")
    async def consume(stream: Any) -> None:
        async for message in stream.events():
            msg = message.message
            await gaps.catch_up(msg, handle_skipped)
            await handle_one(msg)
            metrics.CONSUMED.labels(service, msg.topic).inc()
            metrics.CONSUMED_OFFSET.labels(service, msg.topic, str(msg.partition)).set(
                msg.offset + 1
            )

    belongs = {t.name: frozenset(t.type_names) for t in inputs}

    async def handle_skipped(record: Any) -> None:
        metrics.GAP_RECORDS.labels(service, record.topic).inc()
        await handle_one(record)
        metrics.CONSUMED.labels(service, record.topic).inc()

    async def handle_one(msg: Any) -> None:
        """Decode, dead-letter what cannot be used, apply once, emit."""
        event = decode(msg.value, belongs[msg.topic], handled)
        if event is None:
            metrics.IGNORED.labels(service).inc()
            return  # well-formed enough, and not this service's business
        if isinstance(event, str):
            await _dead_letter(dead_letters, service, msg, event, settings.scenario_time())
            return
        metrics.EVENTS.labels(service, event.type).inc()
        if not journal.loaded(msg.partition):  # rebuilt from its records first
            loading = journal.loading(msg.partition)
            await _read_changelog(app, records, loading, settings.bootstrap)
            journal.adopt(loading)
        part = journal.at(msg.partition)
        try:
            effects, new = part.commit(
                str(event.event_id), lambda: handle(event, part.lookup), (msg.topic, msg.offset)
            )
        except Exception as crash:  # one bad event must not stop the stream
            log.exception("handler failed on %s", event.event_id)
            reason = f"handler_error: {crash!r}"
            await _dead_letter(dead_letters, service, msg, reason, settings.scenario_time())
            return
        if not new:
            metrics.DUPLICATES.labels(service).inc()
        elif after_commit is not None:
            after_commit(event, effects, part)
        for out in effects.outputs:
            await outputs[out.topic].send(key=out.key.encode(), value=out.value)
            metrics.PRODUCED.labels(service, out.topic).inc()


class Gaps:
    """Records the stream skipped, found by their offsets, so the handler sees every one.

    Offsets are contiguous on our topics (no transactions, no compaction), so a message whose
    offset is past the one after the last we handled means the stream dropped what lies
    between. faust can: a record fetched while a restarted worker recovers its partitions was
    seen never to reach the agent, and faust itself books a jump in offsets as a gap it may
    commit past (it expects compacted topics and transaction markers). The missing range is
    read again straight from the broker and handled first (the journal drops what was handled
    already), then booked with faust as done, so its commits go on.
    """

    def __init__(self, app: faust.App, bootstrap: str) -> None:
        self.app = app
        self.bootstrap = bootstrap
        self.next: dict[tuple[str, int], int] = {}

    def forget(self, revoked: Iterable[Any]) -> None:
        for tp in revoked:
            self.next.pop((tp.topic, tp.partition), None)

    async def skipped_before(self, msg: Any) -> list[Any]:
        """The records between the last one handled on `msg`'s partition and `msg`."""
        key = (msg.topic, msg.partition)
        tp = TopicPartition(*key)
        expected = self.next.get(key)
        if expected is None:  # the first since assigned: the stream starts at the committed one
            expected = await self.committed(tp)
        self.next[key] = max(expected, msg.offset + 1)
        if msg.offset <= expected:
            return []
        log.warning("%s[%s]: offsets %d-%d skipped by the stream", *key, expected, msg.offset - 1)
        return await _read_range(self.bootstrap, tp, expected, msg.offset)

    async def catch_up(self, msg: Any, handle: Callable[[Any], Awaitable[None]]) -> None:
        """Handle what the stream skipped before `msg`, then book it with faust as done — in
        that order: booked first, a commit could pass records a crash then loses."""
        skipped = await self.skipped_before(msg)
        for record in skipped:
            await handle(record)
        if skipped:
            tp = TopicPartition(msg.topic, msg.partition)
            await self.app.consumer._add_gap(tp, skipped[0].offset, msg.offset - 1)

    async def committed(self, tp: TopicPartition) -> int:
        """The group's committed offset: faust's, once it has sought there after an
        assignment, else the broker's (a message can come before faust's seek)."""
        known = _faust_committed(self.app, tp)
        if known is not None:
            return known
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            offsets = await admin.list_consumer_group_offsets(self.app.conf.id, partitions=[tp])
        finally:
            await admin.close()
        found = offsets.get(tp)
        return max(found.offset, 0) if found is not None else 0


def _faust_committed(app: faust.App, tp: TopicPartition) -> int | None:
    """The offset faust committed (or sought to) on `tp`; None until it has."""
    known = app.consumer._committed_offset.get(tp)
    return None if known is None else int(known)


async def _records(
    bootstrap: str, tp: TopicPartition, start: int | None, timeout: float
) -> AsyncIterator[Any]:
    """The records of `tp` from offset `start` (None: the log's beginning), as they are read,
    until the caller has what it wants — or `timeout` passes with nothing read (RuntimeError:
    a busy broker may serve a long log slowly, but it must serve it). Use it inside
    `aclosing`, so the consumer stops as soon as the caller is done."""
    consumer = log_reader(bootstrap)
    await asyncio.wait_for(consumer.start(), timeout)
    try:
        consumer.assign([tp])
        if start is None:
            await asyncio.wait_for(consumer.seek_to_beginning(tp), timeout)
        else:
            consumer.seek(tp, start)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            batch = (await consumer.getmany(tp, timeout_ms=200)).get(tp, [])
            if batch:
                deadline = time.monotonic() + timeout
            for record in batch:
                yield record
        raise RuntimeError(f"{tp.topic}[{tp.partition}]: nothing read for {timeout} s")
    finally:
        await consumer.stop()


async def _read_range(
    bootstrap: str, tp: TopicPartition, start: int, end: int, timeout: float = 60
) -> list[Any]:
    """The records of `tp` at offsets [start, end): all of them, or an error."""
    found: list[Any] = []
    async with aclosing(_records(bootstrap, tp, start, timeout)) as records:
        async for record in records:
            if record.offset < end:
                found.append(record)
            if record.offset >= end - 1:
                return found
    return found  # not reached: the reader returns the records or raises


class JournalStore(MemoryStore):
    """faust's in-memory store, telling faust's recovery that nothing is left to read.

    The journal's records are read by `_read_changelog` instead, when a partition is first
    used: faust's recovery read about 35 records a second here (a restarted custody took
    minutes over a soak's changelog), and stopped short anyway at Tansu's under-reported
    high watermark. Needs `recovery_consistency_check=False`: the offset is past the end.
    """

    def persisted_offset(self, tp: Any) -> int:
        return NOTHING_TO_RECOVER


NOTHING_TO_RECOVER = 2**62
JOURNAL_STORE = "bankrun-journal://journal"  # not "scheme://": an empty yarl URL is falsy
faust_stores.STORES["bankrun-journal"] = f"{__name__}:JournalStore"


async def _read_changelog(
    app: faust.App, table: Any, part: Partition, bootstrap: str, timeout: float = 60
) -> None:
    """Load a partition's journal records from its changelog, to its end, into `part` as they
    are read (it folds them as it goes).

    The end is a marker we write to the changelog partition and read up to: an end we put
    there ourselves, not the high watermark the broker reports (Tansu's points inside the
    last batch, DESIGN.md). Read with a plain aiokafka consumer, at its speed.
    """
    topic, partition = table.changelog_topic.get_topic_name(), part.number
    marker = f"__end__/{uuid.uuid4()}".encode()
    log.info("changelog %s[%s]: writing an end marker", topic, partition)
    producer = log_writer(bootstrap)
    await asyncio.wait_for(producer.start(), timeout)
    try:
        await asyncio.wait_for(
            producer.send_and_wait(topic, None, key=marker, partition=partition), timeout
        )
    finally:
        await producer.stop()
    log.info("changelog %s[%s]: reading up to the end marker", topic, partition)
    found = 0
    tp = TopicPartition(topic, partition)
    async with aclosing(_records(bootstrap, tp, None, timeout)) as records:
        async for record in records:
            if record.key == marker:
                log.info("changelog %s[%s]: %d records loaded", topic, partition, found)
                return
            if record.value is None or record.key.startswith(b"__end__/"):
                continue
            key = app.serializers.loads_key(
                table.key_type, record.key, serializer=table.key_serializer
            )
            part.load(
                key,
                app.serializers.loads_value(
                    table.value_type, record.value, serializer=table.value_serializer
                ),
            )
            found += 1


def decode(
    value: bytes | None, belongs: frozenset[str], handled: frozenset[str]
) -> ev.Event | str | None:
    """The event in a message; None when it is of a type this service does not handle (not
    validated: not its business); or, as a string, why it cannot be used. Never raises: one bad
    message must not stop the stream."""
    if not value:
        return "invalid_event: no value (a null or empty message)"
    if len(value) > MAX_EVENT_BYTES:
        return f"oversized: {len(value)} bytes, more than the {MAX_EVENT_BYTES} an event may have"
    try:
        raw = json.loads(value.decode("utf-8"))  # json.loads(bytes) guesses other encodings
    except (ValueError, RecursionError) as bad:
        return f"invalid_event: not JSON: {bad}"
    if not isinstance(raw, dict):
        return f"invalid_event: not a JSON object but {_JSON_NAMES.get(type(raw), 'a value')}"
    kind = raw.get("type")
    if not isinstance(kind, str):
        return "invalid_event: type: missing or not a string"
    if kind not in ev.EVENT_TYPES:
        return f"invalid_event: unknown type {kind[:100]!r}"
    if kind not in belongs:
        return f"wrong_topic: {kind} is carried by {topic_of(ev.EVENT_TYPES[kind]).name}"
    if kind not in handled:
        return None
    try:
        return ev.from_dict(raw)
    except ValidationError as bad:
        return _validation_reason(bad)


_JSON_NAMES = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


def _validation_reason(error: ValidationError) -> str:
    """Every problem, each with the field it is about."""
    problems = [
        f"{'.'.join(str(p) for p in e.get('loc', ())) or 'message'}: {e.get('msg')}"
        for e in error.errors()
    ]
    return "invalid_event: " + "; ".join(problems)


async def _dead_letter(
    topic: faust.TopicT, service: str, msg: Any, reason: str, now: float
) -> None:
    raw: bytes = msg.value or b""
    letter = ev.DeadLetter(
        scenario_time=now,
        consumer=service,
        source_topic=msg.topic,
        partition=msg.partition,
        offset=msg.offset,
        reason=reason[:2000],
        key=msg.key.decode("utf-8", "backslashreplace") if msg.key else None,
        payload=raw.decode("utf-8", "backslashreplace")[:100_000],
    )
    metrics.DEAD_LETTERS.labels(service, msg.topic).inc()
    metrics.PRODUCED.labels(service, DEAD_LETTERS.name).inc()
    log.warning("dead-lettered %s[%s]@%s: %s", msg.topic, msg.partition, msg.offset, reason)
    await topic.send(key=msg.topic.encode(), value=letter.to_bytes())
