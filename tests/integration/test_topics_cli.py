"""`bankrun topics`, the compose stack's one-shot setup, against the real embedded broker."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from typer.testing import CliRunner

from bankrun.cli import app
from bankrun.runner import kafka
from bankrun.runner.processes import free_port, group_alive
from bankrun.topics import CATALOGUE

pytestmark = pytest.mark.integration

NAMES = {t.name for t in CATALOGUE}


@pytest.fixture(scope="module")
def empty_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A broker of its own with no topics yet: the session `broker` already has them all,
    and the command must be seen creating them, not only finding them."""
    proc, bootstrap = kafka.embedded_broker(tmp_path_factory.mktemp("empty-broker"))
    try:
        yield bootstrap
    finally:
        proc.stop()
    assert not group_alive(proc.pid)


def topics_on(bootstrap: str) -> dict[str, int]:
    """Topic name -> partition count, as the broker describes it."""

    async def describe() -> dict[str, int]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            described = await admin.describe_topics(sorted(NAMES))
        finally:
            await admin.close()
        return {t["topic"]: len(t["partitions"]) for t in described if t["error_code"] == 0}

    return asyncio.run(describe())


def bankrun_topics(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["topics", *args])
    return result.exit_code, result.output


def test_creates_every_catalogue_topic_then_finds_them_again(empty_broker: str) -> None:
    code, out = bankrun_topics("--bootstrap", empty_broker, "--wait", "30")
    assert code == 0, out
    assert f"{len(CATALOGUE)} created" in out
    assert topics_on(empty_broker) == {t.name: t.partitions for t in CATALOGUE}

    code, out = bankrun_topics("--bootstrap", empty_broker, "--wait", "30")
    assert code == 0, out
    assert "0 created" in out


def test_succeeds_on_a_broker_that_already_has_them(broker: str) -> None:
    code, out = bankrun_topics("--bootstrap", broker, "--wait", "30")
    assert code == 0, out
    assert set(topics_on(broker)) == NAMES


def test_unreachable_broker_times_out_with_a_message() -> None:
    closed = f"127.0.0.1:{free_port()}"  # bound once and released: nothing listens there
    code, out = bankrun_topics("--bootstrap", closed, "--wait", "2")
    assert code == 1
    assert f"topics not ready on {closed} after 2 s" in " ".join(out.split())
