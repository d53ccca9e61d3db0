"""A panic as it unfolds, step by step: every venue's crowd, what its customers have seen, and
who asks for money next.

One desk serves both modes. `sim` tells it what the in-process log holds; `run` tells it what
the gateway answers (all a customer can see). Either way a step goes: the clock ticks and the
system settles, the desk is told what happened since the last step, then it decides. So the
same seed and the same answers make the same asks, and the run is not planned but unfolds.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bankrun.domain.panic import Crowd, PanicParams, Signals
from bankrun.scenario import Scenario, VenueSpec
from bankrun.workload import HOUR, Request, customers

#: A request's first answer may be `queued`; its final one comes later, maybe in the same step.
_ANSWER_ORDER = {"queued": 0}


#: A published proof this much later than its interval counts as missing.
OVERDUE = 1.5


@dataclass(frozen=True)
class Proof:
    """A published proof of reserves, as a customer reads it."""

    venue: str
    hours: float
    ratio: float | None  # None: nothing owed


@dataclass(frozen=True)
class Answer:
    venue: str
    request_id: str
    outcome: str  # queued | paid | rejected | cancelled


class PanicDesk:
    def __init__(self, scenario: Scenario, params: PanicParams):
        self.scenario = scenario
        self.crowds = {
            v.id: Crowd(
                [(c.account, c.balance, c.segment) for c in customers(scenario, v)],
                params,
                seed=f"{scenario.seed}/{v.crowd}",
            )
            for v in scenario.venues
        }
        self.asked: dict[str, tuple[str, str, int]] = {}  # request id -> venue, account, amount
        self.drawdown = 0.0
        self.halted: set[str] = set()
        self.proofs: dict[str, Proof] = {}  # venue -> its last published proof
        self.steps = 0
        self.fear: dict[str, list[tuple[float, float]]] = {v.id: [] for v in scenario.venues}

    @property
    def token_market(self) -> str | None:
        """The market whose fall frightens token-exposed customers."""
        market = self.scenario.market_of("platform_token")
        return market.symbol if market else None

    def see(
        self,
        hours: float,
        answers: Iterable[Answer] = (),
        token: tuple[int, int] | None = None,
        halted: Iterable[str] = (),
        proofs: Iterable[Proof] = (),
    ) -> None:
        """What customers saw since the last step: answers to their requests, the token's last
        price and peak, halted venues, published proofs of reserves. Answers are taken in
        request order (a `queued` before the same request's final answer), not in the order
        they happened to arrive, so a run and a sim told the same answers reach the same
        fear."""
        for answer in sorted(answers, key=_in_request_order):
            who = self.asked.get(answer.request_id)
            if who is None or who[0] != answer.venue:
                continue  # not one of the desk's customers
            venue, account, amount = who
            self.crowds[venue].answered(account, answer.outcome, amount, hours)
        if token is not None:
            last, peak = token
            self.drawdown = 1 - last / peak
        self.halted.update(halted)
        for proof in proofs:
            last = self.proofs.get(proof.venue)
            if last is None or proof.hours >= last.hours:
                self.proofs[proof.venue] = proof

    def save_fear(self, path: Path) -> None:
        """Each venue's fear level at every step, `{venue: [[hours, fear], ...]}`, for the
        report (fear is the desk's, not an event: no service ever sees it)."""
        path.write_text(json.dumps(self.fear))

    def exposure(self, venue: str) -> float:
        """Share of a venue's deposits it placed at venues that have halted: its customers know
        the claims (the scenario's, like a published exposure) and see the halts. A credit line
        counts for nothing: what was drawn on it is not published."""
        spec = next(v for v in self.scenario.venues if v.id == venue)
        stuck = sum(c.amount for c in spec.claims if c.placed and c.counterparty in self.halted)
        return stuck / spec.total_deposits

    def proof(self, venue: VenueSpec, hours: float) -> float | None:
        """What the venue's published proof says: its ratio (capped at 1), 0 once one is
        overdue, None for a venue that publishes none (or not yet: its first is not due)."""
        por = venue.por
        if por is None or not por.published:
            return None
        last = self.proofs.get(venue.id)
        expected = last.hours if last else por.first_at_hours
        if hours > expected + OVERDUE * por.interval_hours:
            return 0.0
        if last is None:
            return None
        return 1.0 if last.ratio is None else min(1.0, last.ratio)

    def decide(self, t: float) -> list[Request]:
        """Who asks at scenario second `t`, venue by venue; request ids follow the step."""
        hours = t / HOUR
        out = []
        for venue in self.scenario.venues:
            signals = Signals(
                news=self.scenario.news_severity(hours, venue.id),
                drawdown=self.drawdown if venue.token_exposed else 0.0,
                halted=venue.id in self.halted,
                exposure=self.exposure(venue.id),
                proof=self.proof(venue, hours),
            )
            crowd = self.crowds[venue.id]
            for j, ask in enumerate(crowd.decide(hours, signals)):
                request_id = f"{venue.id}-p{self.steps:05d}-{j:05d}"
                self.asked[request_id] = (venue.id, ask.account, ask.amount)
                out.append(Request(t, venue.id, ask.account, venue.asset, ask.amount, request_id))
            self.fear[venue.id].append((hours, round(crowd.level, 4)))
        self.steps += 1
        return out


def _in_request_order(answer: Answer) -> tuple[str, int]:
    return answer.request_id, _ANSWER_ORDER.get(answer.outcome, 1)
