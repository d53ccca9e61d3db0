"""The baseline benchmark: raw aiokafka throughput and round-trip latency on the broker.

Later benchmarks report their figures as a ratio to these, measured in the same run, so a
slow machine shows up in both and the ratio stays meaningful.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from rich.console import Console
from rich.progress import Progress

from bankrun.runner.kafka import embedded_broker, log_reader


def run_broker_bench(
    messages: int, size: int, samples: int, bootstrap: str | None, console: Console
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bankrun-bench-") as tmp:
        broker = None
        if bootstrap is None:
            broker, bootstrap = embedded_broker(Path(tmp))
        try:
            figures = asyncio.run(measure_broker(bootstrap, messages, size, samples, console))
        finally:
            if broker is not None:
                broker.stop()
    figures["broker"] = "embedded tansu" if broker is not None else bootstrap
    return figures


async def _topic(bootstrap: str, name: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 1, 1)])
    finally:
        await admin.close()


async def measure_broker(
    bootstrap: str, messages: int, size: int, samples: int, console: Console
) -> dict[str, Any]:
    topic = f"bench-{os.getpid()}-{time.monotonic_ns()}"
    rt_topic = topic + "-rt"
    await _topic(bootstrap, topic)
    await _topic(bootstrap, rt_topic)
    payload = os.urandom(size // 2).hex().encode()[:size].ljust(size, b"x")
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=256 * 1024, acks=1
    )
    await producer.start()
    try:
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("produce", total=messages)
            start = time.perf_counter()
            pending = []
            for i in range(messages):
                pending.append(await producer.send(topic, payload))
                if len(pending) >= 5000:
                    await asyncio.gather(*pending)
                    pending.clear()
                    bar.update(task, completed=i + 1)
            await asyncio.gather(*pending)
            produce_s = time.perf_counter() - start
            bar.update(task, completed=messages)

            task = bar.add_task("consume", total=messages)
            consumer = log_reader(bootstrap, 500, max_partition_fetch_bytes=4 << 20)
            await consumer.start()
            tp = TopicPartition(topic, 0)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            start = time.perf_counter()
            seen = 0
            while seen < messages:  # count messages: end_offsets() is not trusted on Tansu
                batch = await consumer.getmany(tp, timeout_ms=1000, max_records=20_000)
                seen += sum(len(r) for r in batch.values())
                bar.update(task, completed=seen)
            consume_s = time.perf_counter() - start
            await consumer.stop()

            task = bar.add_task("round trips", total=samples)
            latencies = await _round_trips(
                bootstrap, rt_topic, samples, payload, lambda n: bar.update(task, completed=n)
            )
    finally:
        await producer.stop()
    mb = messages * size / 1e6
    return {
        "messages": messages,
        "message_bytes": size,
        "produce_msgs_per_s": messages / produce_s,
        "produce_MB_per_s": mb / produce_s,
        "consume_msgs_per_s": messages / consume_s,
        "consume_MB_per_s": mb / consume_s,
        "round_trips": samples,
        "latency_p50_ms": _pct(latencies, 50),
        "latency_p99_ms": _pct(latencies, 99),
    }


async def _round_trips(
    bootstrap: str, topic: str, samples: int, payload: bytes, tick: Any
) -> list[float]:
    """Produce one message, wait until a consumer has it; repeat. Same fetch wait as services."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    await producer.start()
    consumer = log_reader(bootstrap)
    await consumer.start()
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    await consumer.seek_to_beginning(tp)
    out = []
    try:
        for i in range(samples):
            start = time.perf_counter()
            await producer.send_and_wait(topic, payload)
            got = 0
            while not got:
                batch = await consumer.getmany(tp, timeout_ms=1000)
                got = sum(len(r) for r in batch.values())
            out.append((time.perf_counter() - start) * 1000)
            tick(i + 1)
    finally:
        await consumer.stop()
        await producer.stop()
    return out


def _pct(values: list[float], pct: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]
