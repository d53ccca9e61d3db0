"""The withdrawal saga: custody's answers move each request along its state machine.

reserved -> ask custody to pay from liquid reserves; paid -> done; refused at either step ->
rejected with custody's reason (after a failed payout the reserved funds are released).
Pure: reads the saga's state through `lookup`, returns `Effects`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bankrun import events as ev
from bankrun.domain.withdrawal import Status, Withdrawal
from services.common.journal import Effects

Lookup = Callable[[str], Any]


def withdrawal_key(request_id: str) -> str:
    return "withdrawal/" + request_id


def venue_key(venue: str) -> str:
    return "venue/" + venue


def handle(event: ev.Event, lookup: Lookup, now: float) -> tuple[Effects, Withdrawal | None]:
    """What the saga does about `event`; also the withdrawal as it ends up, if one moved."""
    effects = Effects()
    if isinstance(event, ev.VenueOpened):
        effects.sets[venue_key(event.venue)] = {"policy": event.policy}
        return effects, None
    if not isinstance(
        event, ev.FundsReserved | ev.FundsRejected | ev.PayoutSettled | ev.PayoutFailed
    ):
        return effects, None

    stored = lookup(withdrawal_key(event.request_id))
    current = (
        Withdrawal.from_dict(stored)
        if stored
        else Withdrawal(
            request_id=event.request_id,
            venue=event.venue,
            account=event.account,
            asset=event.asset,
            amount=event.amount,
            requested_at=event.requested_at,
        )
    )
    step = {
        "account": event.account,
        "asset": event.asset,
        "request_id": event.request_id,
        "amount": event.amount,
        "requested_at": event.requested_at,
    }
    match event:
        case ev.FundsReserved():
            moved = current.to(Status.RESERVED, now)
            effects.emit(event.caused(ev.PayoutRequested, now, **step))
        case ev.FundsRejected():
            moved = current.to(Status.REJECTED, now, event.reason)
            effects.emit(event.caused(ev.WithdrawalRejected, now, reason=event.reason, **step))
        case ev.PayoutSettled():
            moved = current.to(Status.PAID, now)
            latency = max(0.0, now - event.requested_at)
            effects.emit(event.caused(ev.WithdrawalPaid, now, latency_s=latency, **step))
        case ev.PayoutFailed():
            moved = current.to(Status.REJECTED, now, event.reason)
            effects.emit(
                event.caused(ev.ReleaseRequested, now, reason=event.reason, **step),
                event.caused(ev.WithdrawalRejected, now, reason=event.reason, **step),
            )
    if moved is None:
        return effects, None
    effects.sets[withdrawal_key(event.request_id)] = moved.to_dict()
    return effects, moved
