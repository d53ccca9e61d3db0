"""The matching service's decisions: commands in, book events out; bad input is rejected with
a reason and leaves the book alone; the journal alone rebuilds the books."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bankrun import events as ev
from bankrun.domain.market import MakerParams, MarketSpec
from services.common.journal import Partition
from services.matching import handlers

SPEC = MarketSpec(
    symbol="TOKEN/USD",
    tick_size=5,
    lot_size=10,
    base_unit=100,
    start_price=2_000,
    makers=MakerParams(levels=5, level_notional=100_000),
)


def fresh() -> Partition:
    part = Partition({}, restore=handlers.restore).rebuild()
    feed(part, ev.MarketOpened(scenario_time=0, market=SPEC.symbol, spec=SPEC))
    feed(part, ev.MarketTick(scenario_time=0, market=SPEC.symbol))
    return part


def feed(part: Partition, event: ev.Event) -> list[ev.Event]:
    effects, _ = part.commit(str(event.event_id), lambda: handlers.handle(event, part.get))
    return [o.event for o in effects.outputs if o.event is not None]


def order(**fields) -> ev.OrderPlaced:
    base = {
        "venue": "venue-1",
        "scenario_time": 60,
        "market": SPEC.symbol,
        "order_id": "o-1",
        "owner": "venue-1",
        "kind": "limit",
        "side": "buy",
        "price": 1_500,
        "quantity": 100,
    }
    return ev.OrderPlaced(**(base | fields))


def books(part: Partition) -> dict:
    return {s: m.snapshot() for s, m in part.get(handlers.ENGINE).items()}


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"price": 0}, "invalid_price"),
        ({"price": -5}, "invalid_price"),
        ({"price": 1_502}, "price_not_tick_aligned"),
        ({"quantity": 0}, "invalid_quantity"),
        ({"quantity": -10}, "invalid_quantity"),
        ({"quantity": 15}, "quantity_not_lot_aligned"),
        ({"market": "NOPE/USD"}, "unknown_market"),
        ({"kind": "cancel", "order_id": "never-placed"}, "unknown_order"),
        ({"kind": "market", "price": None}, "missing_protection"),
        ({"owner": "maker"}, "reserved_owner"),
    ],
)
def test_bad_input_is_rejected_with_a_reason_and_the_book_is_unchanged(fields, reason):
    part = fresh()
    before = books(part)
    out = feed(part, order(**fields))
    rejected = [e for e in out if isinstance(e, ev.OrderRejected)]
    assert [r.reason for r in rejected] == [reason]
    assert books(part) == before
    done = [e for e in out if isinstance(e, ev.OrderDone)]
    assert [d.reason for d in done] == [reason]  # the venue that sent it hears why


def test_a_cancel_of_someone_elses_order_is_refused():
    part = fresh()
    feed(part, order(order_id="mine"))
    out = feed(part, order(kind="cancel", order_id="mine", owner="venue-2", venue="venue-2"))
    assert [e.reason for e in out if isinstance(e, ev.OrderRejected)] == ["not_owner"]


def test_a_market_sell_trades_reports_the_book_and_tells_its_owner():
    part = fresh()
    out = feed(
        part,
        order(kind="market", side="sell", price=None, quantity=500, max_slippage_bps=500),
    )
    trades = [e for e in out if isinstance(e, ev.TradeExecuted)]
    (done,) = [e for e in out if isinstance(e, ev.OrderDone)]
    (snap,) = [e for e in out if isinstance(e, ev.BookSnapshot)]
    assert trades and all(t.taker_side == "sell" for t in trades)
    assert done.filled == sum(t.quantity for t in trades)
    assert done.proceeds == sum(t.notional for t in trades)
    assert done.mark_before == 2_000
    assert all(t.price >= 2_000 * 0.95 for t in trades)  # never through the protection
    assert snap.last == trades[-1].price


def test_a_tick_marks_every_listed_venue_and_a_forced_seller_frightens_the_makers():
    part = fresh()
    calm = feed(part, ev.MarketTick(scenario_time=900, market=SPEC.symbol, mark_venues=("a", "b")))
    assert sorted(e.venue for e in calm if isinstance(e, ev.PriceMarked)) == ["a", "b"]
    calm_stress = next(e for e in calm if isinstance(e, ev.BookSnapshot)).stress
    feed(
        part,
        order(
            kind="market",
            side="sell",
            price=None,
            quantity=10,
            max_slippage_bps=100,
            distressed=True,
        ),
    )
    scared = feed(part, ev.MarketTick(scenario_time=1800, market=SPEC.symbol))
    snap = next(e for e in scared if isinstance(e, ev.BookSnapshot))
    assert snap.stress > calm_stress + 0.5
    assert (
        snap.bid_depth_2pct < next(e for e in calm if isinstance(e, ev.BookSnapshot)).bid_depth_2pct
    )


def test_a_venue_is_told_a_price_only_when_it_is_not_the_last_it_was_told():
    """A venue marks its holdings again itself when they change, so the same price twice
    would change nothing: a calm book's ticks tell nobody."""
    part = fresh()

    def told(t: float, venues: tuple[str, ...]) -> tuple[list[tuple[str, int]], int]:
        out = feed(part, ev.MarketTick(scenario_time=t, market=SPEC.symbol, mark_venues=venues))
        last = next(e for e in out if isinstance(e, ev.BookSnapshot)).last
        return sorted((e.venue, e.price) for e in out if isinstance(e, ev.PriceMarked)), last

    assert told(900, ("a",)) == ([("a", 2_000)], 2_000)
    assert told(1800, ("a", "b")) == ([("b", 2_000)], 2_000)  # only the venue never told
    assert told(2700, ("a", "b")) == ([], 2_000)
    feed(part, order(kind="market", side="sell", price=None, quantity=500, max_slippage_bps=500))
    marks, last = told(3600, ("a", "b"))
    assert last < 2_000
    assert marks == [("a", last), ("b", last)]
    rebuilt = Partition(part.records, restore=handlers.restore).rebuild()
    out = feed(rebuilt, ev.MarketTick(scenario_time=4500, market=SPEC.symbol, mark_venues=("a",)))
    assert [e for e in out if isinstance(e, ev.PriceMarked)] == []  # what it told, it recalls


commands = st.lists(
    st.tuples(
        st.sampled_from(["limit", "limit", "limit", "market", "cancel", "tick"]),
        st.sampled_from(["buy", "sell"]),
        st.integers(300, 500),  # price in ticks of 5
        st.integers(1, 30),  # lots
        st.integers(0, 40),  # which earlier order to cancel
    ),
    max_size=120,
)


@settings(max_examples=40, deadline=None)
@given(commands, st.sampled_from([3, 7, 1_000]))
def test_the_journal_alone_rebuilds_the_same_books(cmds, every):
    """Snapshot + replay (snapshots every few inputs, or never) gives the live books back."""
    handlers_every = handlers.SNAPSHOT_EVERY
    handlers.SNAPSHOT_EVERY = every
    try:
        part = fresh()
        for i, (kind, side, ticks, lots, back) in enumerate(cmds):
            t = 60.0 * (i + 1)
            if kind == "tick":
                event: ev.Event = ev.MarketTick(
                    scenario_time=t, market=SPEC.symbol, news_severity=random.Random(i).random()
                )
            elif kind == "cancel":
                event = order(scenario_time=t, order_id=f"o-{max(0, i - back)}", kind="cancel")
            else:
                event = order(
                    scenario_time=t,
                    order_id=f"o-{i}",
                    kind=kind,
                    side=side,
                    price=ticks * 5 if kind == "limit" else None,
                    quantity=lots * 10,
                    max_slippage_bps=300 if kind == "market" else None,
                )
            feed(part, event)
        rebuilt = Partition(part.records, restore=handlers.restore).rebuild()
        assert books(rebuilt) == books(part)
    finally:
        handlers.SNAPSHOT_EVERY = handlers_every
