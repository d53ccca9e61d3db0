"""The panic model: customers who withdraw when their fear passes a threshold of their own.

Granovetter: thresholds differ from customer to customer, so a run is a cascade — the few
with low thresholds go first, and every departure raises the fear of those who stay. Whales
and informed accounts have lower thresholds and move first. Fear is built from what a
customer reads (the news), sees (the platform token's drawdown, its own venue's answers:
queued or refused withdrawals, a halt; a venue it had placed money at halting) and hears (the
share of others who already left), and from the venue's published proof of reserves: a proof
that reserves cover what is owed calms, one that falls short (or is overdue) frightens in
proportion to the shortfall.
Diamond-Dybvig: a credible guarantee — or a venue that simply keeps paying — damps the same
news, and the cascade never starts.

Pure and seeded: time and what the venue answered are inputs; the output is who asks for how
much. `bankrun.panic_desk` steps it for `sim` and `run` alike.
"""

from __future__ import annotations

import bisect
import heapq
import random
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class PanicParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    threshold_mean: float = Field(0.6, gt=0, le=3, description="a retail customer's mean threshold")
    threshold_spread: float = Field(0.25, ge=0, le=2, description="standard deviation of it")
    whale_factor: float = Field(0.6, gt=0, le=1, description="whales' thresholds are scaled by it")
    informed_share: float = Field(0.02, ge=0, le=1, description="share of informed customers")
    informed_factor: float = Field(0.5, gt=0, le=1, description="their thresholds are scaled by it")
    news_weight: float = Field(0.6, ge=0, le=5)
    drawdown_weight: float = Field(0.5, ge=0, le=5)
    trouble_weight: float = Field(0.8, ge=0, le=5)
    herd_weight: float = Field(0.3, ge=0, le=5)
    exposure_weight: float = Field(
        2.0, ge=0, le=10, description="fear per share of deposits stuck at halted venues"
    )
    guarantee: float = Field(
        0.0,
        ge=0,
        le=1,
        description="credibility of a guarantee or proof of reserves: fear x (1 - it)",
    )
    proof_weight: float = Field(
        1.0,
        ge=0,
        le=10,
        description="fear per unit of shortfall in a published proof of reserves (1 - ratio; "
        "an overdue proof counts as no reserves at all)",
    )
    proof_calm: float = Field(
        0.3, ge=0, le=1, description="a published proof of full reserves damps fear: x (1 - it)"
    )
    withdraw_share: float = Field(1.0, gt=0, le=1, description="share of the balance asked for")
    retry_hours: float = Field(2.0, gt=0, le=168, description="wait before asking again")
    max_retries: int = Field(5, ge=0, le=100)
    trouble_memory: float = Field(
        0.8, ge=0, lt=1, description="weight of past answers in the trouble a customer sees"
    )


@dataclass(frozen=True)
class Signals:
    """What every customer of a venue can see at a moment, each 0 … 1."""

    news: float = 0.0
    drawdown: float = 0.0
    halted: bool = False
    exposure: float = 0.0  # share of the venue's deposits it had placed at venues now halted
    proof: float | None = None  # the last published reserves/liabilities, capped at 1; 0 when
    #                             overdue; None when the venue publishes no proof


class State(StrEnum):
    CALM = "calm"
    ASKED = "asked"  # waiting for an answer, or queued
    RETRY = "retry"  # refused; will ask again
    DONE = "done"  # paid, or gave up


@dataclass
class Depositor:
    account: str
    balance: int
    threshold: float
    whale: bool
    informed: bool
    state: State = State.CALM
    retry_at: float = 0.0
    tries: int = 0


@dataclass(frozen=True)
class Ask:
    account: str
    amount: int
    retry: bool


class Crowd:
    """A venue's customers, deciding hour by hour whether to run."""

    def __init__(self, customers: list[tuple[str, int, str]], params: PanicParams, seed: int | str):
        """`customers`: (account, balance, segment) with segment `retail` or `whale`."""
        rng = random.Random(f"{seed}/panic")
        self.params = params
        self.people: dict[str, Depositor] = {}
        for account, balance, segment in customers:
            threshold = max(0.02, rng.gauss(params.threshold_mean, params.threshold_spread))
            whale = segment == "whale"
            informed = rng.random() < params.informed_share
            threshold *= (params.whale_factor if whale else 1.0) * (
                params.informed_factor if informed else 1.0
            )
            self.people[account] = Depositor(account, balance, threshold, whale, informed)
        self.trouble = 0.0  # what customers have seen of the venue's answers, 0 … 1
        self.level = 0.0  # the fear at the last decision
        # A step costs what it asks, not the crowd's size: the calm wait in threshold order
        # (a customer never calms down again, so who runs is always a prefix of the rest),
        # the refused in order of when they ask again; `_order` keeps asks in account order.
        self._order = {account: i for i, account in enumerate(self.people)}
        calm = [p for p in self.people.values() if p.balance > 0]
        calm.sort(key=lambda p: p.threshold)
        self._calm = calm
        self._thresholds = [p.threshold for p in calm]
        self._next_calm = 0
        self._retries: list[tuple[float, int, str]] = []

    @property
    def withdrawn_share(self) -> float:
        """Share of customers who have asked for their money (the herd everyone hears of)."""
        return self._next_calm / len(self.people) if self.people else 0.0  # the calm who ran

    def fear(self, signals: Signals) -> float:
        p = self.params
        trouble = 1.0 if signals.halted else self.trouble
        raw = (
            p.news_weight * signals.news
            + p.drawdown_weight * signals.drawdown
            + p.trouble_weight * trouble
            + p.herd_weight * self.withdrawn_share
            + p.exposure_weight * signals.exposure
        )
        calm = 1.0
        if signals.proof is not None:
            raw += p.proof_weight * (1 - signals.proof)
            calm = 1 - p.proof_calm if signals.proof >= 1 else 1.0
        return raw * (1 - p.guarantee) * calm

    def decide(self, now_hours: float, signals: Signals) -> list[Ask]:
        """Who asks now: calm customers whose threshold the fear has passed, and refused ones
        whose wait is over. Fear is computed once per call, so a cascade unfolds call by call."""
        level = self.level = self.fear(signals)
        end = bisect.bisect_right(self._thresholds, level, lo=self._next_calm)
        running = self._calm[self._next_calm : end]
        self._next_calm = end
        due: dict[str, Depositor] = {}
        while self._retries and self._retries[0][0] <= now_hours:
            _, _, account = heapq.heappop(self._retries)
            person = self.people[account]
            if person.state is State.RETRY and person.retry_at <= now_hours:
                due[account] = person  # else a stale entry: answered again since
        running += due.values()
        running.sort(key=lambda p: self._order[p.account])
        asks = []
        for person in running:
            if person.balance <= 0:
                continue
            retry = person.state is State.RETRY
            amount = max(1, int(person.balance * self.params.withdraw_share))
            asks.append(Ask(person.account, amount, retry=retry))
            person.state = State.ASKED
            person.tries += 1
        return asks

    def answered(self, account: str, outcome: str, amount: int, now_hours: float) -> None:
        """What the venue answered: `paid`, `queued` or `rejected`. Anything but a payment is
        trouble that everyone hears of; a refused customer tries again later."""
        person = self.people[account]
        bad = outcome != "paid"
        memory = self.params.trouble_memory
        self.trouble = memory * self.trouble + (1 - memory) * (1.0 if bad else 0.0)
        if outcome == "paid":
            person.balance -= amount
            person.state = State.DONE
        elif outcome == "rejected":
            give_up = person.tries > self.params.max_retries
            person.state = State.DONE if give_up else State.RETRY
            person.retry_at = now_hours + self.params.retry_hours
            if not give_up:
                heapq.heappush(self._retries, (person.retry_at, self._order[account], account))
