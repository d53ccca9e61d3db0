"""What the gateway knows, folded from the log: venues, balances, withdrawal outcomes.

Pure and eventually consistent: it lags custody by the time an event takes to travel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bankrun import events as ev


@dataclass
class ReadModel:
    venues: dict[str, str] = field(default_factory=dict)  # venue -> policy
    balances: dict[tuple[str, str, str], int] = field(default_factory=dict)
    withdrawals: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    applied: int = 0

    def apply(self, event: ev.Event) -> None:
        match event:
            case ev.VenueOpened():
                self.venues[event.venue] = event.policy
            case ev.BalanceSnapshot():
                self.balances[(event.venue, event.account, event.asset)] = event.available
            case ev.WithdrawalPaid() | ev.WithdrawalRejected():
                self.withdrawals[(event.venue, event.request_id)] = {
                    "request_id": event.request_id,
                    "venue": event.venue,
                    "account": event.account,
                    "asset": event.asset,
                    "amount": event.amount,
                    "status": "paid" if isinstance(event, ev.WithdrawalPaid) else "rejected",
                    "reason": getattr(event, "reason", None),
                    "requested_at": event.requested_at,
                    "finished_at": event.scenario_time,
                }
            case _:
                return
        self.applied += 1

    def accepted(self, request: ev.WithdrawalRequested) -> dict[str, Any]:
        """Remember a request this gateway published, until its outcome arrives."""
        return self.withdrawals.setdefault(
            (request.venue, request.request_id),
            {
                "request_id": request.request_id,
                "venue": request.venue,
                "account": request.account,
                "asset": request.asset,
                "amount": request.amount,
                "status": "requested",
                "reason": None,
                "requested_at": request.scenario_time,
                "finished_at": None,
            },
        )

    def account(self, venue: str, account: str) -> dict[str, int]:
        return {
            asset: available
            for (v, a, asset), available in self.balances.items()
            if v == venue and a == account
        }

    def has_account(self, venue: str, account: str, asset: str) -> bool:
        return (venue, account, asset) in self.balances
