"""What the load does at each step of a run's clock.

`Planned` (the constant load): every ask is known before the run and written to the asks file
at once; Locust sends each at its scenario time and the clock keeps wall time.

`Unfolding` (the panic load): the run decides its asks as it goes, in lockstep with the clock
— the same steps as `sim` (`bankrun.panic_desk`). Before a tick, the asks of the last step are
in and handled; after it, the system settles, the desk is told what customers can see at the
gateway (answers, the token price, halts), and it decides the next asks. When settling takes
longer than a step, scenario time falls behind wall time: the run reports that lag.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Protocol

import httpx

from bankrun import workload
from bankrun.panic_desk import Answer, PanicDesk, Proof
from bankrun.runner.locust import AskFile
from bankrun.runner.settle import in_flight, moved, stack_counts, until_settled
from bankrun.runner.stack import Stack
from bankrun.scenario import PanicLoad, Scenario
from bankrun.topics import CUSTOMER_REQUESTS

SETTLE_S = 120.0  # a step that makes no progress for this long is a broken stack, not a slow one


class Steps(Protocol):
    async def before_tick(self, t: float, sent: Counter[str]) -> None: ...
    async def after_tick(self, t: float, sent: Counter[str]) -> None: ...


class Planned:
    def __init__(self, scenario: Scenario, asks: AskFile):
        asks.append(workload.requests(scenario))

    async def before_tick(self, t: float, sent: Counter[str]) -> None:
        return None

    async def after_tick(self, t: float, sent: Counter[str]) -> None:
        return None


class Unfolding:
    def __init__(
        self, scenario: Scenario, load: PanicLoad, asks: AskFile, stack: Stack, client: httpx.Client
    ):
        self.desk = PanicDesk(scenario, load.params)
        self.scenario, self.asks, self.stack, self.client = scenario, asks, stack, client
        self.cursors = {v.id: 0 for v in scenario.venues}

    async def before_tick(self, t: float, sent: Counter[str]) -> None:
        await asyncio.to_thread(self._settle, sent)

    async def after_tick(self, t: float, sent: Counter[str]) -> None:
        await asyncio.to_thread(self._step, t, sent)

    def _settle(self, sent: Counter[str]) -> None:
        """Every ask so far accepted by the gateway, and nothing in flight anywhere."""

        def probe() -> tuple[bool, float | None]:
            counts = stack_counts(self.stack, self.client)
            if counts is None:
                return False, None
            accepted = counts.get(("produced", "gateway", CUSTOMER_REQUESTS.name), 0)
            done = accepted >= self.asks.count and in_flight(self.stack, sent, counts) == 0
            return done, moved(counts)

        until_settled(probe, "the stack to settle after a step", SETTLE_S, self.stack.stopping)

    def _step(self, t: float, sent: Counter[str]) -> None:
        self._settle(sent)
        self.desk.see(t / workload.HOUR, **self._seen())
        self.asks.append(self.desk.decide(t))

    def _seen(self) -> dict[str, object]:
        """What a customer can see at the gateway: answers since the last step, the token's
        price and peak, which venues halted, their published proofs of reserves."""
        gateway = self.stack.gateway_url
        answers = []
        for venue in self.cursors:
            while True:
                page = self.client.get(
                    f"{gateway}/venues/{venue}/outcomes", params={"after": self.cursors[venue]}
                ).json()
                if not page["outcomes"]:
                    break
                answers += [Answer(venue, o["request_id"], o["status"]) for o in page["outcomes"]]
                self.cursors[venue] = page["next"]
        token = None
        if self.desk.token_market:
            reply = self.client.get(f"{gateway}/markets/{self.desk.token_market}")
            if reply.status_code == 200:
                token = (reply.json()["price"], reply.json()["peak"])
        venues = self.client.get(f"{gateway}/venues").json()["venues"]
        halted = [v["venue"] for v in venues if v["status"] == "halted"]
        proofs = []
        for venue in self.scenario.venues:
            if venue.por is None or not venue.por.published:
                continue
            reply = self.client.get(f"{gateway}/por/{venue.id}")
            if reply.status_code == 200:
                found = reply.json()
                proofs.append(Proof(venue.id, found["scenario_hours"], found["ratio"]))
        return {"answers": answers, "token": token, "halted": halted, "proofs": proofs}


def steps_for(scenario: Scenario, asks: AskFile, stack: Stack, client: httpx.Client) -> Steps:
    if isinstance(scenario.load, PanicLoad):
        return Unfolding(scenario, scenario.load, asks, stack, client)
    return Planned(scenario, asks)
