"""`bankrun bench withdrawals`: withdrawals per second end to end through the real stack
(gateway -> custody -> saga -> custody -> saga, four Kafka hops), with latency, as a ratio to
the raw broker measured on the same broker in the same run."""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import Progress

from bankrun import events as ev
from bankrun.bench.broker import measure_broker
from bankrun.runner import kafka
from bankrun.runner.processes import wait_until
from bankrun.runner.stack import Stack
from bankrun.topics import WITHDRAWAL_EVENTS

VENUE = "bench"


def run_withdrawals_bench(withdrawals: int, concurrency: int, console: Console) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bankrun-bench-") as tmp:
        stack = Stack(Path(tmp), "bench", prometheus=False, progress=console.log)
        with stack:
            assert stack.bootstrap is not None
            baseline = asyncio.run(measure_broker(stack.bootstrap, 50_000, 200, 300, console))
            customers = 200
            genesis: list[ev.Event] = [
                ev.VenueOpened(
                    venue=VENUE,
                    scenario_time=0,
                    policy="full-reserve",
                    params={"hot_ratio": 1.0, "warm_ratio": 0.0},
                )
            ]
            genesis += [
                ev.AccountFunded(
                    venue=VENUE, scenario_time=0, account=f"c-{i}", asset="USD", amount=10**12
                )
                for i in range(customers)
            ]
            asyncio.run(kafka.publish(stack.bootstrap, genesis))
            with httpx.Client(base_url=stack.gateway_url) as client:
                wait_until(
                    lambda: client.get(f"/accounts/{VENUE}/c-{customers - 1}").status_code == 200,
                    60,
                    "accounts at the gateway",
                )
            elapsed = asyncio.run(
                _fire(stack.gateway_url, withdrawals, customers, concurrency, console)
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
        "withdrawals_per_s": rate,
        "latency_p50_ms": p50,
        "latency_p99_ms": p99,
        "broker_produce_msgs_per_s": baseline["produce_msgs_per_s"],
        "broker_round_trip_p50_ms": baseline["latency_p50_ms"],
        "ratio_to_broker_produce": rate / baseline["produce_msgs_per_s"],
        "latency_p50_vs_broker_round_trip": p50 / baseline["latency_p50_ms"],
    }


async def _fire(url: str, n: int, customers: int, concurrency: int, console: Console) -> float:
    """Send `n` withdrawals with `concurrency` clients; seconds until every one is answered."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(n):
            queue.put_nowait(i)

        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                body = {
                    "venue": VENUE,
                    "account": f"c-{i % customers}",
                    "asset": "USD",
                    "amount": 1,
                    "request_id": f"bench-{i}",
                }
                reply = await client.post("/withdrawals", json=body)
                reply.raise_for_status()

        start = time.perf_counter()
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("withdrawals answered", total=n)
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            while True:
                counts = (await client.get(f"/venues/{VENUE}/withdrawals")).json()["counts"]
                bar.update(task, completed=counts.get("paid", 0))
                if counts.get("paid", 0) >= n:
                    break
                await asyncio.sleep(0.05)
        return time.perf_counter() - start
