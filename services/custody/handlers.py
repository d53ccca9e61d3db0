"""Custody: each input event becomes ledger postings and the events they cause.

Pure: reads state through a lookup, returns `Effects`; "now" is the input event's scenario
time, so a replay decides exactly as the first pass did. The faust app (stack) and the
in-process bus (sim) apply the same decisions.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from bankrun import events as ev
from bankrun.domain import ledger
from bankrun.domain.ledger import ClaimState, LedgerError, Posting, Totals
from bankrun.domain.policies import Move, ReservePolicy, Sheet, make_policy
from services.common.journal import Dispatch, Effects, View, dispatch
from services.custody import proofs

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


def units_key(venue: str, holding: str) -> str:
    """Base minor units behind a holding (for the affiliate loan: its collateral)."""
    return f"units/{venue}/{holding}"


def face_key(venue: str) -> str:
    """What the affiliate still owes: its loan is worth the lesser of this and its collateral."""
    return f"face/{venue}/affiliate_loan"


def price_key(venue: str, market: str) -> str:
    return f"price/{venue}/{market}"


def request_key(venue: str, request_id: str) -> str:
    """What became of a withdrawal's money: `reserved`, then `paid` or `released`; `refused` if
    it was never reserved. Money moves once per request id, whatever command comes again."""
    return f"request/{venue}/{request_id}"


def frozen_key(venue: str, kind: str, counterparty: str) -> str:
    """Set once the venue's claim of `kind` on `counterparty` is frozen: it freezes once."""
    return f"frozen/{venue}/{kind}:{counterparty}"


def drawing_key(venue: str) -> str:
    """A borrower's draws asked for and not yet answered: lender -> amount."""
    return f"drawing/{venue}"


def line_closed_key(venue: str, lender: str) -> str:
    """Set once `lender` answered a draw of the venue's with `line_closed`: it is not asked
    again."""
    return f"line-closed/{venue}/{lender}"


def lines_closed_key(venue: str) -> str:
    """Set once the venue halted: it funds no more draws on the lines it extended."""
    return f"lines-closed/{venue}"


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
            "markets": {h: m.model_dump() for h, m in event.markets.items()},
            "lent": [c.model_dump() for c in event.claims if c.lender == event.venue],
            "lines": [
                c.model_dump()
                for c in event.claims
                if c.borrower == event.venue and c.kind == ClaimState.CREDIT_LINE
            ],
            "por": event.por.model_dump() if event.por else None,
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
    proofs.index_account(state, state.get(venue_key(event.venue)) or {}, event.venue, event.account)
    _snapshot(event, state, effects)


def _scenario_started(event: ev.ScenarioStarted, state: View, effects: Effects) -> None:
    """Time zero: the venue places its claims on other venues first (deposits there, loans to
    them; a credit line places nothing until it is drawn), then the rest of its customers'
    deposits as its policy says."""
    config = state.get(venue_key(event.venue))
    if config is None:
        raise LedgerError(f"scenario started for unknown venue {event.venue!r}")
    asset = config["asset"]
    policy = policy_of(config)
    t = read_totals(state, event.venue, asset)
    lent = [c for c in config.get("lent", []) if c["kind"] != ClaimState.CREDIT_LINE]
    if sum(c["amount"] for c in lent) > t.liabilities:
        raise LedgerError(f"{event.venue} places more at other venues than it holds")
    for c in lent:
        _post(
            state,
            ledger.place_claim(
                event.venue, ClaimState(c["kind"]), c["borrower"], asset, c["amount"]
            ),
        )
    rest = t.liabilities - sum(c["amount"] for c in lent)
    placed = policy.allocate(rest, _segments(state, event.venue, asset))
    for source, amount in placed.items():
        if amount > 0:
            _post(state, ledger.move(event.venue, source, asset, amount))
            _open_holding(state, event.venue, config, policy, source, amount)
    _mark_to_market(state, event.venue, config)  # matching tells a price only once it moves
    effects.emit(reserve_snapshot(event, state, policy, asset))
    _attest_if_due(event, state, effects, config)


def _open_holding(
    state: View, venue: str, config: dict, policy: ReservePolicy, source: str, amount: int
) -> None:
    """A non-cash holding starts at its market's price: so many units of what backs it."""
    market = config["markets"].get(source)
    if market is None:
        if source in ledger.Holding.__members__.values():
            raise LedgerError(f"no market prices {source} at {venue}")
        return  # a cash tier
    loan = source == ledger.Holding.AFFILIATE_LOAN
    ratio = getattr(policy.params, "token_collateral_ratio", 1.0) if loan else 1.0
    units = int(amount * ratio) * market["base_unit"] // market["start_price"]
    state.set(units_key(venue, source), units)
    state.set(price_key(venue, market["market"]), market["start_price"])
    if loan:
        state.set(face_key(venue), amount)


def _price_marked(event: ev.PriceMarked, state: View, effects: Effects) -> None:
    config = state.get(venue_key(event.venue))
    if config is None:
        return
    state.set(price_key(event.venue, event.market), event.price)
    _mark_to_market(state, event.venue, config)


def _mark_to_market(state: View, venue: str, config: dict) -> None:
    """Every holding at what its units fetch at the last price (the loan: at most its face)."""
    asset = config["asset"]
    for source, market in config["markets"].items():
        acct = ledger.holding(venue, ledger.Holding(source), asset)
        book = state.get(acct.key)
        if book is None:
            continue
        delta = _market_value(state, venue, source, market) - book
        if delta:
            _post(state, ledger.revalue(venue, ledger.Holding(source), asset, delta))


def _worth(state: View, venue: str, market: dict, units: int) -> int:
    """`units` (base minor units) at the last price the venue was told for `market`."""
    price = state.get(price_key(venue, market["market"]), market["start_price"])
    return units * price // market["base_unit"]


def _market_value(state: View, venue: str, source: str, market: dict) -> int:
    value = _worth(state, venue, market, state.get(units_key(venue, source), 0))
    if source == ledger.Holding.AFFILIATE_LOAN:
        value = min(value, state.get(face_key(venue), 0))
    return value


def _order_done(event: ev.OrderDone, state: View, effects: Effects) -> None:
    """A sale has ended: unsold units go back, the loss is booked, the cash will land."""
    config = state.get(venue_key(event.venue))
    mobs = state.get(mobilizations_key(event.venue), [])
    mob = next((m for m in mobs if m.get("order_id") == event.order_id), None)
    if config is None or mob is None or mob["proceeds"] is not None:
        return
    asset, source = config["asset"], mob["source"]
    unsold = mob["units"] - event.filled
    back = mob["amount"] * unsold // mob["units"] if mob["units"] else 0
    if back:
        _post(state, ledger.unwind(event.venue, ledger.Holding(source), asset, back))
    if unsold:
        _bump(state, units_key(event.venue, source), unsold)
    sold_book = mob["amount"] - back
    if sold_book != event.proceeds:
        _post(state, ledger.realize(event.venue, asset, sold_book, event.proceeds))
    if source == ledger.Holding.AFFILIATE_LOAN:
        _bump(
            state, face_key(event.venue), -min(event.proceeds, state.get(face_key(event.venue), 0))
        )
    rest = [m for m in mobs if m is not mob]
    if event.proceeds:
        rest.append({**mob, "amount": event.proceeds, "proceeds": event.proceeds})
    state.set(mobilizations_key(event.venue), rest)
    effects.emit(
        event.caused(
            ev.FireSaleFilled,
            asset=asset,
            source=source,
            market=event.market,
            units=mob["units"],
            filled=event.filled,
            proceeds=event.proceeds,
            mark_value=mob["mark_value"] * event.filled // mob["units"] if mob["units"] else 0,
        )
    )
    _mark_to_market(state, event.venue, config)


def _clock_tick(event: ev.ClockTick, state: View, effects: Effects) -> None:
    config = state.get(venue_key(event.venue))
    if config is None:
        return
    asset = config["asset"]
    now, pending = event.scenario_time, state.get(mobilizations_key(event.venue), [])
    due = [m for m in pending if m["lands_at"] <= now and m["proceeds"] is not None]
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
        state.set(mobilizations_key(event.venue), [m for m in pending if m not in due])
    policy = policy_of(config)
    unmoved = _find_cash(event, state, effects, config, policy, asset, shortfall=False)
    effects.emit(reserve_snapshot(event, state, policy, asset, unmoved))
    _attest_if_due(event, state, effects, config)


def _claim_frozen(event: ev.ClaimFrozen, state: View, effects: Effects) -> None:
    """A venue this one placed money at has halted: the claim (and any of it called back and
    not yet landed) is frozen and marked down to its recovery; the loss hits equity at once.
    A credit line closes: one never drawn on has nothing to write down."""
    config = state.get(venue_key(event.venue))
    done = frozen_key(event.venue, event.kind, event.counterparty)
    if config is None or state.get(done) is not None:
        return
    state.set(done, event.scenario_time)
    asset, kind = config["asset"], ClaimState(event.kind)
    held = state.get(ledger.claim(event.venue, kind, event.counterparty, asset).key) or 0
    if kind is ClaimState.CREDIT_LINE and not held:
        return
    source = f"{kind.value}:{event.counterparty}"
    mobs = state.get(mobilizations_key(event.venue), [])
    stuck = [m for m in mobs if m["source"] == source]
    in_transit = sum(m["amount"] for m in stuck)
    face = held + in_transit
    kept = face * round(event.recovery * 10**6) // 10**6
    if face:
        _post(
            state,
            ledger.freeze_claim(
                event.venue, kind, event.counterparty, asset, held, in_transit, kept
            ),
        )
    if stuck:
        state.set(mobilizations_key(event.venue), [m for m in mobs if m["source"] != source])
    effects.emit(
        event.caused(
            ev.ClaimWrittenDown,
            asset=asset,
            counterparty=event.counterparty,
            frozen=face,
            value=kept,
            loss=face - kept,
        ),
        reserve_snapshot(event, state, policy_of(config), asset),
    )


def _credit_draw_requested(event: ev.CreditDrawRequested, state: View, effects: Effects) -> None:
    """A borrower draws on a line this venue extended: funded out of the hot wallet, up to the
    line's limit and after what its own customers' reserved withdrawals need."""
    config = state.get(venue_key(event.venue))
    if config is None:
        return
    asset = config["asset"]
    line = next(
        (
            c
            for c in config.get("lent", [])
            if c["kind"] == ClaimState.CREDIT_LINE and c["borrower"] == event.borrower
        ),
        None,
    )
    amount, reason = 0, None
    if (
        line is None
        or state.get(lines_closed_key(event.venue)) is not None
        or state.get(frozen_key(event.venue, ClaimState.CREDIT_LINE, event.borrower)) is not None
    ):
        reason = "line_closed"
    else:
        drawn = (
            state.get(ledger.claim(event.venue, ClaimState.CREDIT_LINE, event.borrower, asset).key)
            or 0
        )
        hot = state.get(ledger.wallet(event.venue, ledger.Tier.HOT, asset).key) or 0
        spare = hot - state.get(total_key(event.venue, "waiting", asset), 0)
        amount = max(0, min(event.amount, line["amount"] - drawn, spare))
        if not amount:
            reason = "line_used" if drawn >= line["amount"] else "no_cash"
    if amount:
        _post(
            state,
            ledger.place_claim(event.venue, ClaimState.CREDIT_LINE, event.borrower, asset, amount),
        )
    effects.emit(
        event.caused(
            ev.CreditDrawn,
            venue=event.borrower,
            lender=event.venue,
            asset=asset,
            requested=event.amount,
            amount=amount,
            reason=reason,
        )
    )
    if amount:
        effects.emit(reserve_snapshot(event, state, policy_of(config), asset))


def _credit_drawn(event: ev.CreditDrawn, state: View, effects: Effects) -> None:
    """The lender's answer to a draw: what it sent is on its way to the hot wallet, owed to it,
    and lands after the line's delay like any mobilization."""
    config = state.get(venue_key(event.venue))
    drawing = dict(state.get(drawing_key(event.venue)) or {})
    if config is None or drawing.pop(event.lender, None) is None:
        return  # answered already: a redelivered answer moves nothing
    state.set(drawing_key(event.venue), drawing)
    if event.reason == "line_closed":
        state.set(line_closed_key(event.venue, event.lender), event.scenario_time)
    if not event.amount:
        return
    line = next(c for c in config["lines"] if c["lender"] == event.lender)
    _post(state, ledger.draw(event.venue, event.lender, event.asset, event.amount))
    started, record = _mobilization(
        event,
        "",
        event.asset,
        f"{ClaimState.CREDIT_LINE.value}:{event.lender}",
        event.amount,
        event.amount,
        line["call_delay_hours"],
    )
    effects.emit(started)
    state.set(
        mobilizations_key(event.venue),
        [*state.get(mobilizations_key(event.venue), []), record],
    )


def _lines_closed(event: ev.CreditLineClosed, state: View, effects: Effects) -> None:
    state.set(lines_closed_key(event.venue), event.scenario_time)


def _policy_requested(event: ev.PolicyChangeRequested, state: View, effects: Effects) -> None:
    """The operator's new policy: validated by its params model (as a scenario's is), then
    used for every rebalance and shortfall from now on. Holdings stay where the old policy put
    them: a policy decides how cash is found, and where deposits sit only at genesis. The next
    clock tick's reserve snapshot reports against the new policy's target."""
    config = state.get(venue_key(event.venue))
    if config is None:
        return
    make_policy(event.policy, event.params)  # refuse what the policy does not accept
    state.set(venue_key(event.venue), {**config, "policy": event.policy, "params": event.params})
    effects.emit(
        event.caused(
            ev.PolicyChanged, policy=event.policy, params=event.params, previous=config["policy"]
        )
    )


def _account_opened(event: ev.AccountOpened, state: View, effects: Effects) -> None:
    try:
        _post(state, ledger.open_account(state, event.venue, event.account, event.asset))
    except ledger.AccountExists:
        return
    state.set(segment_key(event.venue, event.account), "retail")
    proofs.index_account(state, state.get(venue_key(event.venue)) or {}, event.venue, event.account)
    _snapshot(event, state, effects)


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
    _snapshot(event, state, effects)


def _withdrawal_requested(event: ev.WithdrawalRequested, state: View, effects: Effects) -> None:
    done = request_key(event.venue, event.request_id)
    if state.get(done) is not None:
        return  # asked before under another event id: the first answer stands
    step = _step(event, requested_at=event.scenario_time)
    step["requested_wall"] = event.occurred_at.timestamp()
    try:
        posting = ledger.reserve(state, event.venue, event.account, event.asset, event.amount)
    except LedgerError as refused:
        state.set(done, "refused")
        effects.emit(event.caused(ev.FundsRejected, reason=refused.reason, **step))
        return
    state.set(done, "reserved")
    _post(state, posting)
    _bump(state, _segment_total(state, event), -event.amount)
    effects.emit(event.caused(ev.FundsReserved, **step))
    _snapshot(event, state, effects)


def _payout_requested(event: ev.PayoutRequested, state: View, effects: Effects) -> None:
    done = request_key(event.venue, event.request_id)
    if state.get(done) != "reserved":
        return  # paid or given back already, or never reserved: a command sent again pays nothing
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
            _find_cash(
                event, state, effects, config, policy_of(config), event.asset, shortfall=True
            )
        return
    except LedgerError as refused:
        effects.emit(event.caused(ev.PayoutFailed, reason=refused.reason, **step))
        return
    state.set(done, "paid")
    _post(state, posting)
    effects.emit(event.caused(ev.PayoutSettled, **step))


def _release_requested(event: ev.ReleaseRequested, state: View, effects: Effects) -> None:
    done = request_key(event.venue, event.request_id)
    if state.get(done) != "reserved":
        return  # given back or paid already, or never reserved: nothing to give back
    state.set(done, "released")
    _post(state, ledger.release(event.venue, event.account, event.asset, event.amount))
    _bump(state, _segment_total(state, event), event.amount)
    _snapshot(event, state, effects)


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
    ev.PriceMarked: _price_marked,
    ev.OrderDone: _order_done,
    ev.ClaimFrozen: _claim_frozen,
    ev.CreditDrawRequested: _credit_draw_requested,
    ev.CreditDrawn: _credit_drawn,
    ev.CreditLineClosed: _lines_closed,
    ev.PolicyChangeRequested: _policy_requested,
}
HANDLED = frozenset(cls.model_fields["type"].default for cls in _HANDLERS)


# --- helpers ---------------------------------------------------------------------------


def policy_of(config: dict[str, Any]) -> ReservePolicy:
    return make_policy(config["policy"], config["params"])


def _find_cash(
    event: ev.Event,
    state: View,
    effects: Effects,
    config: dict,
    policy: ReservePolicy,
    asset: str,
    shortfall: bool,
) -> Sheet | None:
    """Call back deposits at other venues for what waits uncovered (they are the venue's
    nearest cash after hot), then draw on credit lines, then let the policy find the rest on
    the sheet as it will be. Returns the sheet it read if it moved nothing (still the venue's,
    so a clock tick's snapshot need not read it again: most ticks move nothing)."""
    current = sheet(state, event.venue, asset)
    calls = _calls(state, event.venue, config, asset, current.uncovered)
    if calls:
        called = sum(m.amount for m in calls)
        t = current.totals
        current = replace(
            current,
            totals=replace(t, transit=t.transit + called, claim_deposit=t.claim_deposit - called),
        )
    drawing = _draw(event, state, effects, config, asset, current) if config.get("lines") else 0
    if drawing:  # asked for: the policy counts on it as cash on its way
        current = replace(
            current, totals=replace(current.totals, transit=current.totals.transit + drawing)
        )
    moves = policy.on_shortfall(current) if shortfall else policy.rebalance(current)
    if not calls and not moves and not drawing:
        return current
    _start(event, state, effects, policy, calls + moves, asset)
    return None


def _calls(state: View, venue: str, config: dict, asset: str, need: int) -> list[Move]:
    """Deposits at other venues, in the scenario's order, called back until `need` is met."""
    calls = []
    for c in config.get("lent", []):
        if need <= 0:
            break
        if c["kind"] != ClaimState.DEPOSIT:
            continue
        held = state.get(ledger.claim(venue, ClaimState.DEPOSIT, c["borrower"], asset).key) or 0
        if held > 0:
            take = min(held, need)
            calls.append(Move(f"deposit:{c['borrower']}", take, take, c["call_delay_hours"]))
            need -= take
    return calls


def _draw(
    event: ev.Event, state: View, effects: Effects, config: dict, asset: str, current: Sheet
) -> int:
    """Draw on the venue's credit lines, in the scenario's order, for what waits uncovered
    beyond the draws already asked for; how much is asked for and not yet answered, all told.
    A line the lender closed is not asked again; one it had no cash for is, on the next need."""
    venue = event.venue
    drawing = state.get(drawing_key(venue)) or {}
    need = current.uncovered - sum(drawing.values())
    asked = dict(drawing)
    for c in config["lines"]:
        lender = c["lender"]
        if need <= 0:
            break
        if lender in drawing or state.get(line_closed_key(venue, lender)) is not None:
            continue
        drawn = -(state.get(ledger.borrowed(venue, lender, asset).key) or 0)
        amount = min(need, c["amount"] - drawn)
        if amount > 0:
            effects.emit(
                event.caused(
                    ev.CreditDrawRequested,
                    label=lender,
                    venue=lender,
                    borrower=venue,
                    asset=asset,
                    amount=amount,
                )
            )
            asked[lender] = amount
            need -= amount
    if asked != drawing:
        state.set(drawing_key(venue), asked)
    return sum(asked.values())


def _mobilization(
    event: ev.Event,
    label: str,
    asset: str,
    source: str,
    amount: int,
    proceeds: int,
    delay_hours: float,
    sale: bool = False,
) -> tuple[ev.MobilizationStarted, dict[str, Any]]:
    """A mobilization's event and the record a clock tick lands it by (a sale's proceeds are
    known only once its order is done: until then the record has none)."""
    started = event.caused(
        ev.MobilizationStarted,
        label=label,
        asset=asset,
        source=source,
        amount=amount,
        proceeds=proceeds,
        lands_at=event.scenario_time + delay_hours * HOUR,
    )
    record = {
        "id": str(started.event_id),
        "source": source,
        "amount": amount,
        "proceeds": None if sale else proceeds,
        "lands_at": started.lands_at,
    }
    return started, record


def _start(
    event: ev.Event,
    state: View,
    effects: Effects,
    policy: ReservePolicy,
    moves: list[Move],
    asset: str,
) -> None:
    """Book mobilizations: the source is debited now, cash lands on a later clock tick.

    Cash tiers land what was taken. A non-cash holding is sold now, by a market order into
    its book; what the order fetches (known when it is done) is what lands.
    """
    if not moves:
        return
    config = state.get(venue_key(event.venue)) or {}
    pending = list(state.get(mobilizations_key(event.venue), []))
    for i, move in enumerate(moves):
        market = config.get("markets", {}).get(move.source)
        sale = _sale(state, event.venue, asset, policy, move, market) if market else None
        if market and sale is None:
            continue  # nothing left to sell
        amount = sale["amount"] if sale else move.amount
        _post(state, ledger.start_mobilization(state, event.venue, move.source, asset, amount))
        started, record = _mobilization(
            event,
            f"{i}",
            asset,
            move.source,
            amount,
            move.proceeds if sale is None else min(move.proceeds, amount),
            move.delay_hours,
            sale=sale is not None,
        )
        effects.emit(started)
        if sale:
            order_id = f"{event.venue}.{started.event_id.hex[:16]}"
            record |= {
                "order_id": order_id,
                "units": sale["units"],
                "mark_value": sale["mark_value"],
            }
            _bump(state, units_key(event.venue, move.source), -sale["units"])
            effects.emit(
                event.caused(
                    ev.OrderPlaced,
                    label=f"{i}",
                    market=market["market"],
                    order_id=order_id,
                    owner=event.venue,
                    kind="market",
                    side="sell",
                    quantity=sale["units"],
                    max_slippage_bps=sale["max_slippage_bps"],
                    distressed=state.get(dry_key(event.venue)) is not None,
                )
            )
        pending.append(record)
    state.set(mobilizations_key(event.venue), pending)


def _sale(
    state: View, venue: str, asset: str, policy: ReservePolicy, move: Move, market: dict
) -> dict | None:
    """How many units of a holding to sell for `move.amount` of book value, in whole lots."""
    book = state.get(ledger.holding(venue, ledger.Holding(move.source), asset).key) or 0
    units = state.get(units_key(venue, move.source), 0)
    lot = market["lot_size"]
    if book <= 0 or units < lot:
        return None
    want = -(-units * move.amount // book)
    want = min(-(-want // lot) * lot, units - units % lot)
    return {
        "units": want,
        "amount": min(book, book * want // units),
        "mark_value": _worth(state, venue, market, want),
        "max_slippage_bps": getattr(policy.params, "max_slippage_bps", 1_000.0),
    }


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
    event: ev.Event, state: View, policy: ReservePolicy, asset: str, current: Sheet | None = None
) -> ev.ReserveSnapshot:
    """The venue's reserves as they stand: from `current` if given (its sheet, read since
    nothing changed it), else read now."""
    if current is None:
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
        claims=_claims(state, event.venue, t),
        borrowed=t.borrowed,
        equity=t.equity,
        waiting=current.waiting,
        lcr=policy.lcr(current),
        dry=state.get(dry_key(event.venue)) is not None,
        collateral_value=_collateral_value(state, event.venue),
    )


def _attest_if_due(event: ev.Event, state: View, effects: Effects, config: dict) -> None:
    """The sheet is read only when an attestation is due (not on every tick)."""
    if proofs.due(event, state, config):
        totals = read_totals(state, event.venue, config["asset"])
        mobilizations = state.get(mobilizations_key(event.venue), [])
        proofs.publish(event, state, effects, config, totals, mobilizations)


def _claims(state: View, venue: str, t: Totals) -> dict[str, int]:
    """A lender's claims by kind (a credit line's only if it extended one); none otherwise."""
    lent = (state.get(venue_key(venue)) or {}).get("lent")
    if not lent:
        return {}
    claims = {"deposit": t.claim_deposit, "loan": t.claim_loan}
    if any(c["kind"] == ClaimState.CREDIT_LINE for c in lent):
        claims["credit_line"] = t.claim_credit_line
    return claims | {"frozen": t.claim_frozen}


def _collateral_value(state: View, venue: str) -> int:
    config = state.get(venue_key(venue)) or {}
    market = config.get("markets", {}).get(ledger.Holding.AFFILIATE_LOAN)
    if market is None:
        return 0
    return _worth(
        state, venue, market, state.get(units_key(venue, ledger.Holding.AFFILIATE_LOAN), 0)
    )


def _step(event: ev.WithdrawalRequested | ev.PayoutRequested, requested_at: float) -> dict:
    return {
        "account": event.account,
        "asset": event.asset,
        "request_id": event.request_id,
        "amount": event.amount,
        "requested_at": requested_at,
    }


def _snapshot(event: Any, state: View, effects: Effects) -> None:
    """The customer's balance for the gateway's read model, as it stands now; made only if
    something reads it (a Monte Carlo seed does not)."""
    balance = state.get(ledger.customer(event.venue, event.account, event.asset).key) or 0
    effects.emit_lazily(
        ev.BalanceSnapshot,
        functools.partial(
            event.caused,
            ev.BalanceSnapshot,
            account=event.account,
            asset=event.asset,
            available=-balance,
        ),
    )
