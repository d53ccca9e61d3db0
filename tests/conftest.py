"""Shared fixtures: a real embedded broker, and waiting on topics with a deadline."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from bankrun import events as ev
from bankrun.runner import kafka
from bankrun.runner.processes import group_alive
from bankrun.runner.stack import Stack
from bankrun.topics import Topic


def bankrun(*args: str) -> list[str]:
    """The command line of `bankrun ARGS`, run by this Python."""
    return [sys.executable, "-c", "from bankrun.cli import app; app()", *args]


def in_background(argv: list[str], out: Path, **env: str) -> subprocess.Popen:
    """`argv` started and left running, both its streams written to `out`, `env` added."""
    with out.open("w") as sink:
        return subprocess.Popen(
            argv, stdout=sink, stderr=subprocess.STDOUT, env={**os.environ, **env}
        )


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The embedded Tansu broker with the catalogue's topics; stopped (and checked) at the end."""
    proc, bootstrap = kafka.embedded_broker(tmp_path_factory.mktemp("broker"))
    try:
        asyncio.run(kafka.create_topics(bootstrap))
        yield bootstrap
    finally:
        proc.stop()
    assert not group_alive(proc.pid)


def wait_for_events(
    bootstrap: str,
    topic: Topic,
    predicate: Callable[[list[ev.Event | bytes]], bool],
    timeout: float = 60.0,
) -> list[ev.Event | bytes]:
    """Read `topic` from the start until `predicate(everything so far)` holds, or fail."""
    return asyncio.run(_wait_for_events(bootstrap, topic, predicate, timeout))


async def _wait_for_events(bootstrap, topic, predicate, timeout):
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=50
    )
    await consumer.start()
    seen: list[ev.Event | bytes] = []
    try:
        partitions = [TopicPartition(topic.name, p) for p in range(topic.partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + timeout
        while not predicate(seen):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out on {topic.name}; saw {len(seen)}: {seen[-5:]}")
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    try:
                        seen.append(ev.decode(record.value))
                    except ValueError:
                        seen.append(record.value)
    finally:
        await consumer.stop()
    return seen


def record_stacks(monkeypatch: pytest.MonkeyPatch, module: object) -> list[Stack]:
    """Every Stack `module` enters from now on, so a test can check its processes stopped."""
    stacks: list[Stack] = []

    class RecordedStack(Stack):
        def __enter__(self) -> Stack:
            stacks.append(self)
            return super().__enter__()

    monkeypatch.setattr(module, "Stack", RecordedStack)
    return stacks


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return tmp_path / "run"
