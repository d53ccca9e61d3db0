"""A run's numbers, computed from its event log alone — by `sim`, by `run`, and by `verify`.

Also the checks that the log is consistent: nothing paid twice, no customer owed less than
zero, and for every account, what it brought equals what it holds plus what was taken out.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bankrun import events as ev
from bankrun.topics import DEAD_LETTERS

HOUR = 3600.0


@dataclass
class VenueTally:
    policy: str = "unknown"
    asset: str = "USD"
    liabilities_start: int | None = None
    liquid_start: int | None = None
    requested: int = 0
    amount_requested: int = 0
    paid: set[str] = field(default_factory=set)
    amount_paid: int = 0
    rejected: dict[str, str] = field(default_factory=dict)  # request id -> reason
    asks: dict[str, tuple[str, int]] = field(default_factory=dict)  # request -> account, amount
    first_ask_at: dict[str, float] = field(default_factory=dict)  # account -> scenario seconds
    last_ask: dict[str, str] = field(default_factory=dict)  # account -> its latest request id
    paid_to: dict[str, int] = field(default_factory=dict)  # account -> amount paid to it
    funded: dict[str, int] = field(default_factory=dict)  # account -> starting balance
    ever_queued: set[str] = field(default_factory=set)
    cancelled: set[str] = field(default_factory=set)
    latencies: list[float] = field(default_factory=list)
    dry_at: float | None = None
    gated_at: float | None = None
    halted_at: float | None = None
    mobilized: int = 0
    collateral_mark_start: int | None = None
    fire_sale_proceeds: int = 0
    fire_sale_mark_value: int = 0
    fire_sale_units: int = 0
    claims_start: dict[str, int] = field(default_factory=dict)  # deposit, loan at genesis
    claims_frozen_at: float | None = None
    claims_frozen: int = 0
    claim_losses: int = 0
    credit_drawn: int = 0  # as borrower: what lenders sent on their credit lines
    credit_lent: int = 0  # as lender: what it sent on the lines it extended
    operator_actions: list[dict[str, Any]] = field(default_factory=list)
    proofs: list[ev.PorAttested] = field(default_factory=list)  # proof-of-reserves attestations

    def proof_row(self) -> dict[str, Any] | None:
        """What the venue's proofs of reserves said over the run (None: it attested none)."""
        if not self.proofs:
            return None
        ratios = [p.ratio for p in self.proofs if p.ratio is not None]
        last = self.proofs[-1]
        return {
            "published": last.published,
            "attestations": len(self.proofs),
            "first_ratio": self.proofs[0].ratio,
            "min_ratio": min(ratios) if ratios else None,
            "last_ratio": last.ratio,
            "solvent_throughout": all(p.solvent for p in self.proofs),
            "first_insolvent_at_hours": next(
                (_hours(p.scenario_time) for p in self.proofs if not p.solvent), None
            ),
            "last_root": last.root,
        }

    def claimed_by_account(self) -> dict[str, int]:
        """What each customer asked for and still wanted: a refused ask that its customer
        asked again counts once (as the later ask), and a cancelled one not at all."""
        final = set(self.last_ask.values())
        out: dict[str, int] = {}
        for rid, (account, amount) in self.asks.items():
            if rid not in self.cancelled and (rid not in self.rejected or rid in final):
                out[account] = out.get(account, 0) + amount
        return out

    def claimed(self) -> int:
        return sum(self.claimed_by_account().values())

    def row(self, venue: str) -> dict[str, Any]:
        finished = self.paid | set(self.rejected) | self.cancelled
        waiting = self.ever_queued - finished
        reasons: dict[str, int] = {}
        for reason in self.rejected.values():
            reasons[reason] = reasons.get(reason, 0) + 1
        return {
            "venue": venue,
            "policy": self.policy,
            "asset": self.asset,
            "liabilities_start": self.liabilities_start,
            "liquid_start": self.liquid_start,
            "withdrawals_requested": self.requested,
            "withdrawals_paid": len(self.paid),
            "withdrawals_queued": len(waiting),
            "withdrawals_rejected": len(self.rejected),
            "withdrawals_cancelled": len(self.cancelled),
            "withdrawals_ever_queued": len(self.ever_queued),
            "rejected_by_reason": dict(sorted(reasons.items())),
            "amount_requested": self.amount_requested,
            "amount_paid": self.amount_paid,
            "amount_claimed": (claimed := self.claimed()),
            "paid_fraction": round(self.amount_paid / claimed, 6) if claimed else None,
            "dry_at_hours": _hours(self.dry_at),
            "gated_at_hours": _hours(self.gated_at),
            "halted_at_hours": _hours(self.halted_at),
            "latency_p50_hours": _quantile(self.latencies, 0.50),
            "latency_p99_hours": _quantile(self.latencies, 0.99),
            "mobilized": self.mobilized,
            "collateral_mark_start": self.collateral_mark_start,
            "fire_sale_proceeds": self.fire_sale_proceeds,
            "fire_sale_mark_value": self.fire_sale_mark_value,
            "fire_sale_losses": self.fire_sale_mark_value - self.fire_sale_proceeds,
            "fire_sale_units": self.fire_sale_units,
            "claims_start": self.claims_start,
            "claims_frozen_at_hours": _hours(self.claims_frozen_at),
            "claims_frozen": self.claims_frozen,
            "claim_losses": self.claim_losses,
            "credit_drawn": self.credit_drawn,
            "credit_lent": self.credit_lent,
            "operator_actions": self.operator_actions,
            "proof_of_reserves": self.proof_row(),
        }


@dataclass
class MarketTally:
    start: int | None = None
    low: int | None = None
    low_at: float | None = None
    low_72h: int | None = None
    last: int | None = None
    volume: int = 0
    notional: int = 0

    def see(self, price: int, at: float) -> None:
        if self.start is None:
            self.start = price
        if self.low is None or price < self.low:
            self.low, self.low_at = price, at
        if at <= 72 * HOUR and (self.low_72h is None or price < self.low_72h):
            self.low_72h = price
        self.last = price

    def row(self) -> dict[str, Any]:
        def fall(price: int | None) -> float | None:
            return None if price is None or not self.start else round(1 - price / self.start, 6)

        return {
            "start_price": self.start,
            "low": self.low,
            "low_at_hours": _hours(self.low_at),
            "last": self.last,
            "drawdown_max": fall(self.low),
            "drawdown_72h": fall(self.low_72h),
            "traded_base": self.volume,
            "traded_notional": self.notional,
        }


def _hours(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / HOUR, 6)


def _quantile(latencies: list[float], q: float) -> float | None:
    if not latencies:
        return None
    hours = sorted(x / HOUR for x in latencies)
    if len(hours) == 1:
        return round(hours[0], 6)
    return round(statistics.quantiles(hours, n=100, method="inclusive")[round(q * 100) - 1], 6)


class Dedupe:
    """Whether an event is the first copy of its id (the log is at-least-once). Ids are
    compared as their integers: hashing a `UUID` runs Python code, an int's does not."""

    def __init__(self) -> None:
        self._seen: set[int] = set()

    def first(self, event: ev.Event) -> bool:
        key = event.event_id.int
        if key in self._seen:
            return False
        self._seen.add(key)
        return True


def unique(events: Iterable[ev.Event]) -> list[ev.Event]:
    """Drop redelivered copies (same event id)."""
    dedupe = Dedupe()
    return [event for event in events if dedupe.first(event)]


def summarize(events: Iterable[ev.Event], meta: dict[str, Any]) -> dict[str, Any]:
    return Tally.over(events).summary(meta)


def tally(events: Iterable[ev.Event]) -> tuple[dict[str, VenueTally], dict[str, MarketTally]]:
    """Each venue's and market's running totals over the log (duplicates dropped)."""
    totals = Tally.over(events)
    return totals.venues, totals.markets


class Tally:
    """The running totals, an event at a time: over a whole log, or as a sim goes, so that a
    Monte Carlo seed keeps no log (each event is tallied while it is still in the cache).
    `add` counts what it is given: drop redelivered copies first (`Dedupe`)."""

    #: The event types `add` counts (a test holds this to its cases). The rest, most of a log
    #: (balance snapshots, reservations, payouts, price marks, ticks), are passed over at once
    #: instead of being tried against every case.
    COUNTED: frozenset[type[ev.Event]] = frozenset(
        {
            ev.BookSnapshot,
            ev.TradeExecuted,
            ev.VenueOpened,
            ev.AccountFunded,
            ev.ReserveSnapshot,
            ev.WithdrawalRequested,
            ev.WithdrawalPaid,
            ev.WithdrawalRejected,
            ev.WithdrawalQueued,
            ev.WithdrawalCancelled,
            ev.BufferDry,
            ev.VenueGated,
            ev.VenueHalted,
            ev.MobilizationLanded,
            ev.FireSaleFilled,
            ev.GateRequested,
            ev.HaltRequested,
            ev.PolicyChangeRequested,
            ev.PorAttested,
            ev.ClaimWrittenDown,
            ev.CreditDrawn,
        }
    )

    def __init__(self) -> None:
        self.venues: dict[str, VenueTally] = {}
        self.markets: dict[str, MarketTally] = {}

    @classmethod
    def over(cls, events: Iterable[ev.Event]) -> Tally:
        totals = cls()
        for event in unique(events):
            totals.add(event)
        return totals

    def summary(self, meta: dict[str, Any]) -> dict[str, Any]:
        venues = {n: t.row(n) for n, t in sorted(self.venues.items()) if n != "unknown"}
        return {
            **meta,
            "venues": venues,
            "markets": {name: m.row() for name, m in sorted(self.markets.items())},
        }

    def add(self, event: ev.Event) -> None:
        if type(event) not in self.COUNTED:
            return
        markets = self.markets
        match event:
            case ev.BookSnapshot():
                markets.setdefault(event.market, MarketTally()).see(event.last, event.scenario_time)
                return
            case ev.TradeExecuted():
                m = markets.setdefault(event.market, MarketTally())
                m.volume += event.quantity
                m.notional += event.notional
                return
        if event.venue == ev.MARKET_VENUE:
            return
        t = self.venues.get(event.venue)
        if t is None:  # not setdefault: that would build a VenueTally for every event
            t = self.venues[event.venue] = VenueTally()
        match event:
            case ev.VenueOpened():
                t.policy, t.asset = event.policy, event.assets[0]
            case ev.AccountFunded():
                t.funded[event.account] = event.amount
            case ev.ReserveSnapshot() if t.liabilities_start is None:
                t.liabilities_start, t.liquid_start = event.liabilities, event.hot
                t.collateral_mark_start = event.collateral_value
                t.claims_start = {k: v for k, v in event.claims.items() if k != "frozen"}
            case ev.WithdrawalRequested():
                t.requested += 1
                t.amount_requested += event.amount
                t.asks[event.request_id] = (event.account, event.amount)
                t.first_ask_at.setdefault(event.account, event.scenario_time)
                t.last_ask[event.account] = event.request_id
            case ev.WithdrawalPaid():
                t.paid.add(event.request_id)
                t.amount_paid += event.amount
                t.paid_to[event.account] = t.paid_to.get(event.account, 0) + event.amount
                t.latencies.append(event.latency_s)
            case ev.WithdrawalRejected():
                t.rejected[event.request_id] = event.reason
            case ev.WithdrawalQueued():
                t.ever_queued.add(event.request_id)
            case ev.WithdrawalCancelled():
                t.cancelled.add(event.request_id)
            case ev.BufferDry():
                t.dry_at = event.scenario_time
            case ev.VenueGated():
                t.gated_at = event.scenario_time
            case ev.VenueHalted():
                t.halted_at = event.scenario_time
            case ev.MobilizationLanded():
                t.mobilized += event.proceeds
            case ev.FireSaleFilled():
                t.fire_sale_proceeds += event.proceeds
                t.fire_sale_mark_value += event.mark_value
                t.fire_sale_units += event.filled
            case ev.GateRequested() | ev.HaltRequested() | ev.PolicyChangeRequested():
                t.operator_actions.append(_operator_action(event))
            case ev.PorAttested():
                t.proofs.append(event)
            case ev.ClaimWrittenDown():
                if t.claims_frozen_at is None:
                    t.claims_frozen_at = event.scenario_time
                t.claims_frozen += event.frozen
                t.claim_losses += event.loss
            case ev.CreditDrawn():
                t.credit_drawn += event.amount
                self.venues.setdefault(event.lender, VenueTally()).credit_lent += event.amount


def _operator_action(
    command: ev.GateRequested | ev.HaltRequested | ev.PolicyChangeRequested,
) -> dict[str, Any]:
    """What the operator ordered, and when: the summary says which outcomes were decided."""
    action: dict[str, Any] = {"at_hours": _hours(command.scenario_time), "reason": command.reason}
    match command:
        case ev.GateRequested():
            action["action"] = "gate" if command.gated else "ungate"
            if command.max_per_account_per_day is not None:
                action["max_per_account_per_day"] = command.max_per_account_per_day
        case ev.HaltRequested():
            action["action"] = "halt"
        case ev.PolicyChangeRequested():
            action |= {"action": "policy", "policy": command.policy, "params": command.params}
    return action


@dataclass(frozen=True)
class Violation:
    check: str  # paid_twice | conservation | overpaid
    venue: str
    text: str


@dataclass
class Conservation:
    """The conservation checks, fed one event at a time: `bankrun verify` feeds it a whole
    log, the live watcher (`bankrun.runner.watch`) the log as it grows, and asks at settled
    points — between them a balance and the reservation it follows may sit on different
    topics, read in either order."""

    dedupe: Dedupe = field(default_factory=Dedupe)
    brought: dict[tuple[str, str, str], int] = field(default_factory=dict)
    holds: dict[tuple[str, str, str], int] = field(default_factory=dict)
    reserved: dict[tuple[str, str, str], int] = field(default_factory=dict)
    paid_requests: dict[tuple[str, str], int] = field(default_factory=dict)
    paid_by: dict[tuple[str, str, str], int] = field(default_factory=dict)
    events: int = 0

    def add(self, event: ev.Event) -> None:
        if not self.dedupe.first(event):
            return  # a redelivered copy: the log is at-least-once
        self.events += 1
        match event:
            case ev.AccountFunded() | ev.DepositMade():
                key = (event.venue, event.account, event.asset)
                self.brought[key] = self.brought.get(key, 0) + event.amount
            case ev.BalanceSnapshot():
                self.holds[(event.venue, event.account, event.asset)] = event.available
            case ev.FundsReserved():
                key = (event.venue, event.account, event.asset)
                self.reserved[key] = self.reserved.get(key, 0) + event.amount
            case ev.ReleaseRequested():
                key = (event.venue, event.account, event.asset)
                self.reserved[key] = self.reserved.get(key, 0) - event.amount
            case ev.WithdrawalPaid():
                rid = (event.venue, event.request_id)
                self.paid_requests[rid] = self.paid_requests.get(rid, 0) + 1
                key = (event.venue, event.account, event.asset)
                self.paid_by[key] = self.paid_by.get(key, 0) + event.amount

    def violations(self) -> list[Violation]:
        out = [
            Violation("paid_twice", venue, f"{venue}/{rid} paid {n} times")
            for (venue, rid), n in self.paid_requests.items()
            if n > 1
        ]
        for key, amount in sorted(self.brought.items()):
            held, taken = self.holds.get(key, 0), self.reserved.get(key, 0)
            name = "/".join(key)
            if held + taken != amount:
                out.append(
                    Violation(
                        "conservation",
                        key[0],
                        f"{name}: brought {amount}, holds {held} + taken {taken}",
                    )
                )
            paid = self.paid_by.get(key, 0)
            if paid > taken:
                out.append(
                    Violation(
                        "overpaid",
                        key[0],
                        f"{name}: paid {paid} but only {taken} was reserved",
                    )
                )
        return out


def check(events: Iterable[ev.Event]) -> list[str]:
    """Conservation checks on a log; an empty list means it holds."""
    conservation = Conservation()
    for event in events:
        conservation.add(event)
    return [v.text for v in conservation.violations()]


def read_log(path: Path, invalid: list[str] | None = None) -> list[ev.Event]:
    """Events of an events.jsonl export. A record that is not an event, or breaks its schema
    (a negative balance, say), is left out — and, if `invalid` is given, listed there."""
    out = []
    with path.open() as lines:
        for number, line in enumerate(lines, 1):
            record = json.loads(line)
            value = record["value"]
            try:
                out.append(ev.from_dict(value))
            except ValueError as bad:
                if invalid is not None and record.get("topic") != DEAD_LETTERS.name:
                    invalid.append(f"line {number} ({record.get('topic')}): {bad}".splitlines()[0])
    return out


def write_log(path: Path, records: Iterable[dict[str, Any]]) -> int:
    count = 0
    with path.open("w") as out:
        for record in records:
            out.write(json.dumps(record) + "\n")
            count += 1
    return count
