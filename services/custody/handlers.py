"""Custody decides ledger movements: each input event becomes a posting and the events it causes.

Pure: reads balances through a `Book`, returns `Effects`; the faust app applies them once.
"""

from __future__ import annotations

from bankrun import events as ev
from bankrun.domain import ledger
from bankrun.domain.ledger import Book, LedgerError, Posting
from services.common.journal import Effects

VENUE_PREFIX = "venue/"


def venue_key(venue: str) -> str:
    return VENUE_PREFIX + venue


def handle(event: ev.Event, book: Book, now: float) -> Effects:
    """What custody does about `event` at scenario time `now`."""
    effects = Effects()
    match event:
        case ev.VenueOpened():
            effects.sets[venue_key(event.venue)] = {
                "policy": event.policy,
                "assets": list(event.assets),
            }
        case ev.AccountOpened():
            try:
                _post(effects, ledger.open_account(book, event.venue, event.account, event.asset))
            except ledger.AccountExists:
                return effects
            effects.emit(_snapshot(event, book, effects, now))
        case ev.DepositMade():
            try:
                posting = ledger.deposit(
                    book, event.venue, event.account, event.asset, event.amount
                )
            except LedgerError as refused:
                effects.emit(
                    event.caused(
                        ev.DepositRejected,
                        now,
                        account=event.account,
                        asset=event.asset,
                        amount=event.amount,
                        reason=refused.reason,
                    )
                )
                return effects
            _post(effects, posting)
            effects.emit(_snapshot(event, book, effects, now))
        case ev.WithdrawalRequested():
            step = _step_fields(event, requested_at=event.scenario_time)
            try:
                posting = ledger.reserve(
                    book, event.venue, event.account, event.asset, event.amount
                )
            except LedgerError as refused:
                effects.emit(event.caused(ev.FundsRejected, now, reason=refused.reason, **step))
                return effects
            _post(effects, posting)
            effects.emit(
                event.caused(ev.FundsReserved, now, **step), _snapshot(event, book, effects, now)
            )
        case ev.PayoutRequested():
            step = _step_fields(event, requested_at=event.requested_at)
            try:
                posting = ledger.pay_out(book, event.venue, event.asset, event.amount)
            except LedgerError as refused:
                effects.emit(event.caused(ev.PayoutFailed, now, reason=refused.reason, **step))
                return effects
            _post(effects, posting)
            effects.emit(event.caused(ev.PayoutSettled, now, **step))
        case ev.ReleaseRequested():
            _post(effects, ledger.release(event.venue, event.account, event.asset, event.amount))
            effects.emit(_snapshot(event, book, effects, now))
    return effects


def _step_fields(event: ev.WithdrawalRequested | ev.PayoutRequested, requested_at: float) -> dict:
    return {
        "account": event.account,
        "asset": event.asset,
        "request_id": event.request_id,
        "amount": event.amount,
        "requested_at": requested_at,
    }


def _post(effects: Effects, posting: Posting) -> None:
    effects.post(posting)
    for delta_key, amount in totals_delta(posting).items():
        effects.increments[delta_key] = effects.increments.get(delta_key, 0) + amount


def totals_delta(posting: Posting) -> dict[str, int]:
    """Running totals a posting changes: liabilities and each wallet tier, per venue and asset."""
    delta: dict[str, int] = {}
    for line in posting.lines:
        acct = line.account
        what = "liabilities" if acct.is_liability else acct.name
        sign = -1 if acct.is_liability else 1
        key = total_key(acct.venue, what, acct.asset)
        delta[key] = delta.get(key, 0) + sign * line.amount
    return delta


def total_key(venue: str, what: str, asset: str) -> str:
    return f"total/{venue}/{what}/{asset}"


def _snapshot(
    event: ev.AccountOpened | ev.DepositMade | ev.WithdrawalRequested | ev.ReleaseRequested,
    book: Book,
    effects: Effects,
    now: float,
) -> ev.BalanceSnapshot:
    key = ledger.customer(event.venue, event.account, event.asset).key
    balance = (book.get(key) or 0) + effects.increments.get(key, 0)
    return event.caused(
        ev.BalanceSnapshot, now, account=event.account, asset=event.asset, available=-balance
    )
