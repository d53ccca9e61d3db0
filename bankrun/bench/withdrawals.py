"""`bankrun bench withdrawals`: withdrawals per second end to end through the real stack
(gateway -> custody -> saga -> custody -> saga, four Kafka hops), with latency, as a ratio to
the raw broker measured on the same broker in the same run."""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import Progress

from bankrun import events as ev
from bankrun.auth import bearer
from bankrun.bench.broker import measure_broker
from bankrun.runner import kafka
from bankrun.runner.processes import wait_until
from bankrun.runner.stack import Stack
from bankrun.topics import WITHDRAWAL_EVENTS, spread_keys
from bankrun.workload import all_hot_venue


def spread_venues(n: int) -> list[str]:
    return spread_keys(n, "bench-{}")


@contextlib.contextmanager
def funded_stack(
    names: list[str], customers: int, console: Console
) -> Iterator[tuple[Stack, dict[str, float]]]:
    """The embedded stack (no Prometheus, in a temporary folder) with all-hot venues whose
    customers the gateway knows, and the raw broker measured on it first: the baseline of the
    same run."""
    with (
        tempfile.TemporaryDirectory(prefix="bankrun-bench-") as tmp,
        Stack(Path(tmp), "bench", prometheus=False, progress=console.log) as stack,
    ):
        assert stack.bootstrap is not None
        baseline = asyncio.run(measure_broker(stack.bootstrap, 50_000, 200, 300, console))
        genesis = [e for v in names for e in all_hot_venue(v, customers, 10**12)]
        asyncio.run(kafka.publish(stack.bootstrap, genesis))
        operator = bearer(stack.auth.operator())
        with httpx.Client(base_url=stack.gateway_url, headers=operator) as client:
            for venue in names:
                wait_until(
                    lambda v=venue: (
                        client.get(f"/accounts/{v}/c-{customers - 1}").status_code == 200
                    ),
                    60,
                    "accounts at the gateway",
                )
        yield stack, baseline


def run_withdrawals_bench(
    withdrawals: int, concurrency: int, venues: int, console: Console
) -> dict[str, Any]:
    names = spread_venues(venues)
    customers = 200
    with funded_stack(names, customers, console) as (stack, baseline):
        assert stack.bootstrap is not None
        posts: list[float] = []
        elapsed = asyncio.run(
            _fire(stack, names, withdrawals, customers, concurrency, console, posts)
        )
        records = asyncio.run(kafka.read_topic(stack.bootstrap, WITHDRAWAL_EVENTS))
    paid = [
        ev.decode(json.dumps(r["value"]))
        for r in records
        if isinstance(r["value"], dict) and r["value"].get("type") == "withdrawal.paid"
    ]
    # wall time from the gateway taking the request to the saga publishing the payment
    latencies = sorted(
        (p.occurred_at.timestamp() - p.requested_wall) * 1000
        for p in paid
        if p.requested_wall is not None
    )
    rate = withdrawals / elapsed
    p50 = statistics.quantiles(latencies, n=100, method="inclusive")[49]
    p99 = statistics.quantiles(latencies, n=100, method="inclusive")[98]
    return {
        "withdrawals": withdrawals,
        "paid": len(latencies),
        "concurrency": concurrency,
        "venues": len(names),
        "withdrawals_per_s": rate,
        "latency_p50_ms": p50,
        "latency_p99_ms": p99,
        "http_post_p50_ms": statistics.median(posts),
        "broker_produce_msgs_per_s": baseline["produce_msgs_per_s"],
        "broker_round_trip_p50_ms": baseline["latency_p50_ms"],
        "ratio_to_broker_produce": rate / baseline["produce_msgs_per_s"],
        "latency_p50_vs_broker_round_trip": p50 / baseline["latency_p50_ms"],
    }


async def _fire(
    stack: Stack,
    venues: list[str],
    n: int,
    customers: int,
    concurrency: int,
    console: Console,
    posts: list[float],
) -> float:
    """Send `n` withdrawals with `concurrency` clients; seconds until every one is answered.
    Each POST's duration (until the gateway has the request in the log) goes to `posts`."""
    tokens = stack.auth
    operator = bearer(tokens.operator())
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as client:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(n):
            queue.put_nowait(i)

        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                body = {
                    "venue": venues[i % len(venues)],
                    "account": f"c-{i % customers}",
                    "asset": "USD",
                    "amount": 1,
                    "request_id": f"bench-{i}",
                }
                sent = time.perf_counter()
                token = tokens.customer(body["venue"], body["account"])
                reply = await client.post("/withdrawals", json=body, headers=bearer(token))
                posts.append((time.perf_counter() - sent) * 1000)
                reply.raise_for_status()

        start = time.perf_counter()
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("withdrawals answered", total=n)
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            while True:
                paid = 0
                for venue in venues:
                    reply = await client.get(f"/venues/{venue}/withdrawals", headers=operator)
                    paid += reply.json()["counts"].get("paid", 0)
                bar.update(task, completed=paid)
                if paid >= n:
                    break
                await asyncio.sleep(0.1)
        return time.perf_counter() - start
