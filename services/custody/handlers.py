"""Custody: each input event becomes ledger postings and the events they cause.

Pure: reads state through a lookup, returns `Effects`; "now" is the input event's scenario
time, so a replay decides exactly as the first pass did. The faust app (stack) and the
in-process bus (sim) apply the same decisions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bankrun import events as ev
from bankrun.domain import ledger
from bankrun.domain.ledger import LedgerError, Posting, Totals
from bankrun.domain.policies import Move, ReservePolicy, Sheet, make_policy
from services.common.journal import Dispatch, Effects, View, dispatch

Lookup = Callable[[str], Any]
HOUR = 3600.0
SEGMENTS = ("retail", "whale")


def venue_key(venue: str) -> str:
    return f"venue/{venue}"


def total_key(venue: str, what: str, asset: str) -> str:
    return f"total/{venue}/{what}/{asset}"


def segment_key(venue: str, account: str) -> str:
    return f"segment/{venue}/{account}"


def mobilizations_key(venue: str) -> str:
    return f"mobilizations/{venue}"


def dry_key(venue: str) -> str:
    return f"dry/{venue}"


def handle(event: ev.Event, lookup: Lookup) -> Effects:
    return dispatch(_HANDLERS, event, lookup)


def _venue_opened(event: ev.VenueOpened, state: View, effects: Effects) -> None:
    make_policy(event.policy, event.params)  # refuse params the policy does not accept
    state.set(
        venue_key(event.venue),
        {
            "policy": event.policy,
            "params": event.params,
            "gate": event.gate,
            "asset": event.assets[0],
        },
    )


def _account_funded(event: ev.AccountFunded, state: View, effects: Effects) -> None:
    acct = ledger.customer(event.venue, event.account, event.asset)
    if state.get(acct.key) is not None:
        return
    _post(
        state,
        Posting.transfer(
            ledger.wallet(event.venue, ledger.Tier.HOT, event.asset), acct, event.amount
        ),
    )
    state.set(segment_key(event.venue, event.account), event.segment)
    _bump(state, total_key(event.venue, f"seg:{event.segment}", event.asset), event.amount)
    effects.emit(_snapshot(event, state))


def _scenario_started(event: ev.ScenarioStarted, state: View, effects: Effects) -> None:
    """Time zero: the venue places its customers' deposits as its policy says."""
    config = state.get(venue_key(event.venue))
    if config is None:
        raise LedgerError(f"scenario started for unknown venue {event.venue!r}")
    asset = config["asset"]
    policy = _policy(config)
    t = read_totals(state, event.venue, asset)
    placed = policy.allocate(t.liabilities, _segments(state, event.venue, asset))
    for source, amount in placed.items():
        if amount > 0:
            _post(state, ledger.move(event.venue, source, asset, amount))
    effects.emit(reserve_snapshot(event, state, policy, asset))


def _clock_tick(event: ev.ClockTick, state: View, effects: Effects) -> None:
    config = state.get(venue_key(event.venue))
    if config is None:
        return
    asset = config["asset"]
    due, later = [], []
    for mob in state.get(mobilizations_key(event.venue), []):
        (due if mob["lands_at"] <= event.scenario_time else later).append(mob)
    for mob in due:
        _post(state, ledger.land_mobilization(event.venue, asset, mob["amount"], mob["proceeds"]))
        effects.emit(
            event.caused(
                ev.MobilizationLanded,
                label=mob["id"],
                asset=asset,
                source=mob["source"],
                amount=mob["amount"],
                proceeds=mob["proceeds"],
            )
        )
    if due:
        state.set(mobilizations_key(event.venue), later)
    policy = _policy(config)
    _start(event, state, effects, policy.rebalance(sheet(state, event.venue, asset)), asset)
    effects.emit(reserve_snapshot(event, state, policy, asset))


def _account_opened(event: ev.AccountOpened, state: View, effects: Effects) -> None:
    try:
        _post(state, ledger.open_account(state, event.venue, event.account, event.asset))
    except ledger.AccountExists:
        return
    state.set(segment_key(event.venue, event.account), "retail")
    effects.emit(_snapshot(event, state))


def _deposit_made(event: ev.DepositMade, state: View, effects: Effects) -> None:
    try:
        posting = ledger.deposit(state, event.venue, event.account, event.asset, event.amount)
    except LedgerError as refused:
        effects.emit(
            event.caused(
                ev.DepositRejected,
                account=event.account,
                asset=event.asset,
                amount=event.amount,
                reason=refused.reason,
            )
        )
        return
    _post(state, posting)
    _bump(state, _segment_total(state, event), event.amount)
    effects.emit(_snapshot(event, state))


def _withdrawal_requested(event: ev.WithdrawalRequested, state: View, effects: Effects) -> None:
    step = _step(event, requested_at=event.scenario_time)
    step["requested_wall"] = event.occurred_at.timestamp()
    try:
        posting = ledger.reserve(state, event.venue, event.account, event.asset, event.amount)
    except LedgerError as refused:
        effects.emit(event.caused(ev.FundsRejected, reason=refused.reason, **step))
        return
    _post(state, posting)
    _bump(state, _segment_total(state, event), -event.amount)
    effects.emit(event.caused(ev.FundsReserved, **step), _snapshot(event, state))


def _payout_requested(event: ev.PayoutRequested, state: View, effects: Effects) -> None:
    step = _step(event, requested_at=event.requested_at)
    step["requested_wall"] = event.requested_wall
    try:
        posting = ledger.pay_out(state, event.venue, event.asset, event.amount)
    except ledger.InsufficientLiquidity as dry:
        effects.emit(event.caused(ev.PayoutFailed, reason=dry.reason, **step))
        if state.get(dry_key(event.venue)) is None:
            state.set(dry_key(event.venue), event.scenario_time)
            effects.emit(event.caused(ev.BufferDry, asset=event.asset, request_id=event.request_id))
        config = state.get(venue_key(event.venue))
        if config is not None:
            moves = _policy(config).on_shortfall(sheet(state, event.venue, event.asset))
            _start(event, state, effects, moves, event.asset)
        return
    except LedgerError as refused:
        effects.emit(event.caused(ev.PayoutFailed, reason=refused.reason, **step))
        return
    _post(state, posting)
    effects.emit(event.caused(ev.PayoutSettled, **step))


def _release_requested(event: ev.ReleaseRequested, state: View, effects: Effects) -> None:
    _post(state, ledger.release(event.venue, event.account, event.asset, event.amount))
    _bump(state, _segment_total(state, event), event.amount)
    effects.emit(_snapshot(event, state))


_HANDLERS: Dispatch = {
    ev.VenueOpened: _venue_opened,
    ev.AccountFunded: _account_funded,
    ev.ScenarioStarted: _scenario_started,
    ev.ClockTick: _clock_tick,
    ev.AccountOpened: _account_opened,
    ev.DepositMade: _deposit_made,
    ev.WithdrawalRequested: _withdrawal_requested,
    ev.PayoutRequested: _payout_requested,
    ev.ReleaseRequested: _release_requested,
}
HANDLED = frozenset(cls.model_fields["type"].default for cls in _HANDLERS)


# --- helpers ---------------------------------------------------------------------------


def _policy(config: dict[str, Any]) -> ReservePolicy:
    return make_policy(config["policy"], config["params"])


def _start(event: ev.Event, state: View, effects: Effects, moves: list[Move], asset: str) -> None:
    """Book mobilizations: the source is debited now, cash lands on a later clock tick."""
    if not moves:
        return
    pending = list(state.get(mobilizations_key(event.venue), []))
    for i, move in enumerate(moves):
        _post(state, ledger.start_mobilization(state, event.venue, move.source, asset, move.amount))
        started = event.caused(
            ev.MobilizationStarted,
            label=f"{i}",
            asset=asset,
            source=move.source,
            amount=move.amount,
            proceeds=move.proceeds,
            lands_at=event.scenario_time + move.delay_hours * HOUR,
        )
        pending.append(
            {
                "id": str(started.event_id),
                "source": move.source,
                "amount": move.amount,
                "proceeds": move.proceeds,
                "lands_at": started.lands_at,
            }
        )
        effects.emit(started)
    state.set(mobilizations_key(event.venue), pending)


def _post(state: View, posting: Posting) -> None:
    """Apply a posting to the ledger and to the venue's running totals."""
    for line in posting.lines:
        _bump(state, line.account.key, line.amount)
        acct = line.account
        sign = -1 if acct.is_liability or acct.kind is ledger.AccountKind.EQUITY else 1
        _bump(state, total_key(acct.venue, ledger.bucket(acct), acct.asset), sign * line.amount)
        if acct.kind is ledger.AccountKind.PENDING:
            _bump(state, total_key(acct.venue, "waiting", acct.asset), -line.amount)


def _bump(state: View, key: str, amount: int) -> None:
    state.effects.increments[key] = state.effects.increments.get(key, 0) + amount


def _segment_total(state: View, event: Any) -> str:
    segment = state.get(segment_key(event.venue, event.account), "retail")
    return total_key(event.venue, f"seg:{segment}", event.asset)


def _segments(state: View, venue: str, asset: str) -> dict[str, int]:
    return {s: state.get(total_key(venue, f"seg:{s}", asset), 0) for s in SEGMENTS}


def read_totals(state: View | Any, venue: str, asset: str) -> Totals:
    fields = Totals.__dataclass_fields__
    return Totals(**{name: state.get(total_key(venue, name, asset), 0) or 0 for name in fields})


def sheet(state: View, venue: str, asset: str) -> Sheet:
    return Sheet(
        totals=read_totals(state, venue, asset),
        owed_by_segment=_segments(state, venue, asset),
        waiting=state.get(total_key(venue, "waiting", asset), 0),
    )


def reserve_snapshot(
    event: ev.Event, state: View, policy: ReservePolicy, asset: str
) -> ev.ReserveSnapshot:
    current = sheet(state, event.venue, asset)
    t = current.totals
    return event.caused(
        ev.ReserveSnapshot,
        asset=asset,
        liabilities=t.liabilities,
        hot=t.hot,
        warm=t.warm,
        cold=t.cold,
        transit=t.transit,
        holdings={
            "platform_token": t.platform_token,
            "affiliate_loan": t.affiliate_loan,
            "less_liquid": t.less_liquid,
        },
        equity=t.equity,
        waiting=current.waiting,
        lcr=policy.lcr(current),
        dry=state.get(dry_key(event.venue)) is not None,
    )


def _step(event: ev.WithdrawalRequested | ev.PayoutRequested, requested_at: float) -> dict:
    return {
        "account": event.account,
        "asset": event.asset,
        "request_id": event.request_id,
        "amount": event.amount,
        "requested_at": requested_at,
    }


def _snapshot(event: Any, state: View) -> ev.BalanceSnapshot:
    balance = state.get(ledger.customer(event.venue, event.account, event.asset).key) or 0
    return event.caused(
        ev.BalanceSnapshot, account=event.account, asset=event.asset, available=-balance
    )
