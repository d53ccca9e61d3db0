"""What the gateway knows, folded from the log: venues, balances, withdrawal outcomes.

Pure and eventually consistent: it lags custody by the time an event takes to travel.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from bankrun import events as ev
from bankrun.clock import ScenarioClock
from services.common.spill import HOT_KEYS, Feed, Spill


@dataclass(frozen=True)
class Attested:
    """A published attestation and the balances its tree commits to (None: parts missing)."""

    event: ev.PorAttested
    balances: list[tuple[str, int]] | None

    def public(self) -> dict[str, Any]:
        """What anyone may read: the root, totals and ratio, not the balances."""
        return {
            **self.event.model_dump(
                mode="json",
                include={
                    "venue",
                    "asset",
                    "seq",
                    "root",
                    "height",
                    "accounts",
                    "liabilities",
                    "ledger_liabilities",
                    "pending",
                    "eligible",
                    "excluded",
                    "reserves",
                    "ratio",
                    "solvent",
                    "problems",
                    "scenario_time",
                },
            ),
            "scenario_hours": self.event.scenario_time / 3600,
        }


@dataclass
class ReadModel:
    """Per-request knowledge (each request's status, the outcome feeds) keeps its `hot` most
    recently used requests in memory and the rest in `spill`: it grows with every request a
    run makes, the rest with its venues and accounts."""

    venues: dict[str, str] = field(default_factory=dict)  # venue -> policy
    clocks: dict[str, ScenarioClock] = field(default_factory=dict)
    paced_by_ticks: set[str] = field(default_factory=set)
    ticks: dict[str, float] = field(default_factory=dict)  # venue -> last tick's scenario time
    gated: dict[str, float] = field(default_factory=dict)  # venue -> scenario time
    halted: dict[str, float] = field(default_factory=dict)
    accounts: dict[str, int] = field(default_factory=dict)  # venue -> accounts known
    balances: dict[tuple[str, str, str], int] = field(default_factory=dict)
    markets: dict[str, dict[str, Any]] = field(default_factory=dict)  # symbol -> top of book
    counts: dict[str, Counter[str]] = field(default_factory=dict)  # venue -> status -> requests
    proofs: dict[str, Attested] = field(default_factory=dict)  # venue -> last published
    _parts: dict[tuple[str, int], dict[int, tuple]] = field(default_factory=dict)
    applied: int = 0
    spill: Spill = field(default_factory=Spill)
    hot: int = HOT_KEYS
    #: (venue, request id) -> what is known of the request
    withdrawals: MutableMapping[Hashable, dict[str, Any]] = field(init=False)
    outcomes: dict[str, Feed] = field(init=False)  # venue -> (request id, status), in order

    def __post_init__(self) -> None:
        self.withdrawals = self.spill.tier("withdrawals", self.hot)
        self.outcomes = {}

    def keep_in(self, spill: Spill, hot: int) -> None:
        """Hold per-request knowledge in `spill` from now on (before anything is applied)."""
        if self.applied or self.withdrawals:
            raise RuntimeError("a read model moves to another spill only while empty")
        self.spill, self.hot = spill, hot
        self.__post_init__()

    def apply(self, event: ev.Event) -> None:
        match event:
            case ev.VenueOpened():
                self.venues[event.venue] = event.policy
            case ev.ScenarioStarted():
                self.clocks[event.venue] = ScenarioClock(event.started_at, event.speed)
                if event.paced_by == "ticks":
                    self.paced_by_ticks.add(event.venue)
            case ev.ClockTick():
                self.ticks[event.venue] = event.scenario_time
            case ev.VenueGated():
                self.gated[event.venue] = event.scenario_time
            case ev.VenueUngated():
                self.gated.pop(event.venue, None)
            case ev.PolicyChanged():
                self.venues[event.venue] = event.policy
            case ev.VenueHalted():
                self.halted[event.venue] = event.scenario_time
            case ev.PorLeaves():
                self._parts.setdefault((event.venue, event.seq), {})[event.part] = event.balances
            case ev.PorAttested():
                self._attested(event)
            case ev.BookSnapshot():
                self.markets[event.market] = {
                    "market": event.market,
                    "price": event.last,
                    "peak": event.peak,
                    "drawdown": round(1 - event.last / event.peak, 6),
                    "best_bid": event.best_bid,
                    "best_ask": event.best_ask,
                    "spread_bps": event.spread_bps,
                    "bid_depth_2pct": event.bid_depth_2pct,
                    "ask_depth_2pct": event.ask_depth_2pct,
                    "stress": event.stress,
                    "scenario_time": event.scenario_time,
                }
            case ev.BalanceSnapshot():
                key = (event.venue, event.account, event.asset)
                if key not in self.balances:
                    self.accounts[event.venue] = self.accounts.get(event.venue, 0) + 1
                self.balances[key] = event.available
            case (
                ev.WithdrawalQueued()
                | ev.WithdrawalPaid()
                | ev.WithdrawalCancelled()
                | ev.WithdrawalRejected()
            ):
                status = event.type.removeprefix("withdrawal.")
                reason = getattr(event, "reason", None)
                finished = None if status == "queued" else event.scenario_time
                key = (event.venue, event.request_id)
                before = self.withdrawals.get(key, {}).get("status")
                self.withdrawals[key] = self._status(event, status, reason, finished)
                if before != status:  # a redelivered outcome is not news
                    self._counted(event.venue, before, status)
                    self._feed(event.venue).append((event.request_id, status))
            case _:
                return
        self.applied += 1

    def _attested(self, event: ev.PorAttested) -> None:
        """Keep the venue's last published attestation with the balances its tree was built
        from (all parts come before it on the venue's partition); drop older parts."""
        parts = self._parts.pop((event.venue, event.seq), {})
        for key in [k for k in self._parts if k[0] == event.venue and k[1] < event.seq]:
            del self._parts[key]
        if not event.published:
            return  # an auditor's view: in the log, not shown to customers
        last = self.proofs.get(event.venue)
        if last is not None and last.event.seq >= event.seq:
            return  # redelivered
        balances = [pair for i in sorted(parts) for pair in parts[i]]
        complete = len(parts) == event.parts and len(balances) == event.accounts
        self.proofs[event.venue] = Attested(event, balances if complete else None)

    @staticmethod
    def _status(
        event: Any, status: str, reason: str | None, finished_at: float | None
    ) -> dict[str, Any]:
        requested_at = getattr(event, "requested_at", event.scenario_time)
        return {
            "request_id": event.request_id,
            "venue": event.venue,
            "account": event.account,
            "asset": event.asset,
            "amount": event.amount,
            "status": status,
            "reason": reason,
            "requested_at": requested_at,
            "finished_at": finished_at,
        }

    def accepted(self, request: ev.WithdrawalRequested) -> dict[str, Any]:
        """Remember a request this gateway published, until its outcome arrives."""
        key = (request.venue, request.request_id)
        known = self.withdrawals.get(key)
        if known is None:
            known = self.withdrawals[key] = self._status(request, "requested", None, None)
            self._counted(request.venue, None, "requested")
        return known

    def _counted(self, venue: str, before: str | None, now: str) -> None:
        counts = self.counts.setdefault(venue, Counter())
        if before is not None:
            counts[before] -= 1
        counts[now] += 1

    def _feed(self, venue: str) -> Feed:
        feed = self.outcomes.get(venue)
        if feed is None:
            feed = self.outcomes[venue] = self.spill.feed(f"outcomes/{venue}")
        return feed

    def outcome_page(self, venue: str, after: int, limit: int) -> list[tuple[str, str]]:
        feed = self.outcomes.get(venue)
        return [] if feed is None else feed.page(after, limit)

    def scenario_time(self, venue: str, wall: float, fallback: ScenarioClock) -> float:
        """Now, in scenario seconds: from the wall clock, or the last tick when ticks pace the
        run (between ticks a settled system has nothing else to tell time by)."""
        if venue in self.paced_by_ticks:
            return self.ticks.get(venue, 0.0)
        return self.clocks.get(venue, fallback).scenario_time(wall)

    def status(self, venue: str) -> str:
        return "halted" if venue in self.halted else "gated" if venue in self.gated else "open"

    def account(self, venue: str, account: str) -> dict[str, int]:
        return {
            asset: available
            for (v, a, asset), available in self.balances.items()
            if v == venue and a == account
        }

    def has_account(self, venue: str, account: str, asset: str) -> bool:
        return (venue, account, asset) in self.balances
