"""The order book's laws, checked on random command sequences (hypothesis)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bankrun.domain.orderbook import (
    Accepted,
    Cancelled,
    MarketConfig,
    OrderBook,
    Rejected,
    Side,
    Trade,
)

CONFIG = MarketConfig("PLATFORM/USD", tick_size=5, lot_size=10)

commands = st.lists(
    st.one_of(
        st.tuples(
            st.just("limit"),
            st.sampled_from(list(Side)),
            st.integers(1, 40),
            st.integers(1, 20),
            st.sampled_from(["mm-1", "mm-2", "venue-1"]),
        ),
        st.tuples(
            st.just("market"),
            st.sampled_from(list(Side)),
            st.integers(1, 40),
            st.integers(1, 50),
            st.sampled_from(["mm-1", "venue-1"]),
        ),
        st.tuples(st.just("cancel"), st.integers(0, 200)),
    ),
    max_size=120,
)


def play(cmds):
    """Run commands; returns the book, every result, and each order's submitted quantity."""
    book = OrderBook(CONFIG)
    results: list = []
    submitted: dict[str, tuple[str, Side, int, int]] = {}
    for n, cmd in enumerate(cmds):
        oid = f"o-{n}"
        if cmd[0] == "limit":
            _, side, ticks, lots, owner = cmd
            submitted[oid] = ("limit", side, ticks * CONFIG.tick_size, lots * CONFIG.lot_size)
            out = book.limit(oid, owner, side, ticks * CONFIG.tick_size, lots * CONFIG.lot_size)
        elif cmd[0] == "market":
            _, side, ticks, lots, owner = cmd
            submitted[oid] = ("market", side, ticks * CONFIG.tick_size, lots * CONFIG.lot_size)
            out = book.market(oid, owner, side, lots * CONFIG.lot_size, ticks * CONFIG.tick_size)
        else:
            out = book.cancel(f"o-{cmd[1]}")
        results.append((oid, cmd, out))
        bid, ask = book.best_bid(), book.best_ask()
        assert bid is None or ask is None or bid < ask, "the book is crossed"
    return book, results, submitted


@settings(max_examples=300, deadline=None)
@given(commands)
def test_quantities_are_conserved(cmds):
    book, results, submitted = play(cmds)
    filled: dict[str, int] = {}
    cancelled: dict[str, int] = {}
    for _, _, out in results:
        for r in out:
            if isinstance(r, Trade):
                filled[r.maker_id] = filled.get(r.maker_id, 0) + r.quantity
                filled[r.taker_id] = filled.get(r.taker_id, 0) + r.quantity
            elif isinstance(r, Cancelled):
                cancelled[r.order_id] = cancelled.get(r.order_id, 0) + r.quantity
    for oid, (_, _, _, qty) in submitted.items():
        resting = book.orders[oid].remaining if oid in book.orders else 0
        assert filled.get(oid, 0) + resting + cancelled.get(oid, 0) == qty, oid
    assert book.resting_quantity() == sum(o.remaining for o in book.orders.values())


@settings(max_examples=300, deadline=None)
@given(commands)
def test_price_time_priority_and_protection(cmds):
    arrival = {}
    _, results, submitted = play(cmds)
    for n, (oid, _cmd, out) in enumerate(results):
        arrival[oid] = n
        trades = [r for r in out if isinstance(r, Trade)]
        if not trades:
            continue
        _kind, side, limit, _ = submitted[oid]
        prices = [t.price for t in trades]
        # better prices first: a buyer lifts the cheapest ask, a seller hits the highest bid
        assert prices == sorted(prices, reverse=side is Side.SELL)
        for a, b in itertools.pairwise(trades):
            if a.price == b.price:
                assert arrival[a.maker_id] < arrival[b.maker_id]  # older first at a price
        # neither a limit nor a market order's protection is ever traded through
        assert (
            all(p <= limit for p in prices) if side is Side.BUY else all(p >= limit for p in prices)
        )
        assert all(t.maker_owner != t.taker_owner for t in trades)  # no self-trades


@settings(max_examples=200, deadline=None)
@given(commands)
def test_replaying_the_commands_rebuilds_the_same_book(cmds):
    first, results, _ = play(cmds)
    again, results_again, _ = play(cmds)
    assert results == results_again
    assert {k: (o.price, o.remaining) for k, o in first.orders.items()} == {
        k: (o.price, o.remaining) for k, o in again.orders.items()
    }
    assert first.depth(Side.BUY, 100) == again.depth(Side.BUY, 100)
    assert first.depth(Side.SELL, 100) == again.depth(Side.SELL, 100)


@settings(max_examples=200, deadline=None)
@given(commands)
def test_the_event_log_alone_rebuilds_the_resting_orders(cmds):
    """Accepted (what rested) minus fills minus cancels equals the book: the log suffices."""
    book, results, _submitted = play(cmds)
    open_qty: dict[str, int] = {}
    for _, _, out in results:
        for r in out:
            if isinstance(r, Accepted) and r.resting:
                open_qty[r.order_id] = r.resting
            elif isinstance(r, Trade) and r.maker_id in open_qty:
                open_qty[r.maker_id] -= r.quantity
            elif isinstance(r, Cancelled) and r.order_id in open_qty:
                open_qty[r.order_id] -= r.quantity
    rebuilt = {k: v for k, v in open_qty.items() if v}
    assert rebuilt == {k: o.remaining for k, o in book.orders.items()}


class TestBadInput:
    def setup_method(self):
        self.book = OrderBook(CONFIG)
        self.book.limit("ask-1", "mm-1", Side.SELL, 100, 50)

    @pytest.mark.parametrize(
        ("price", "quantity", "reason"),
        [
            (0, 10, "invalid_price"),
            (-5, 10, "invalid_price"),
            (101, 10, "price_not_tick_aligned"),
            (100, 0, "invalid_quantity"),
            (100, -10, "invalid_quantity"),
            (100, 15, "quantity_not_lot_aligned"),
            (100.0, 10, "invalid_price"),
        ],
    )
    def test_a_bad_order_is_rejected_and_the_book_is_unchanged(self, price, quantity, reason):
        before = self.book.depth(Side.SELL), self.book.depth(Side.BUY)
        assert self.book.limit("bad", "x", Side.BUY, price, quantity) == [Rejected("bad", reason)]
        assert (self.book.depth(Side.SELL), self.book.depth(Side.BUY)) == before

    def test_cancel_of_an_unknown_order_is_rejected(self):
        assert self.book.cancel("nope") == [Rejected("nope", "unknown_order")]
        assert self.book.depth(Side.SELL) == [(100, 50)]

    def test_an_order_id_is_used_once(self):
        assert self.book.limit("ask-1", "mm-1", Side.SELL, 105, 10) == [
            Rejected("ask-1", "duplicate_order_id")
        ]


def test_a_fire_sale_walks_down_the_book():
    book = OrderBook(CONFIG)
    for i, price in enumerate((100, 95, 90, 50)):
        book.limit(f"bid-{i}", "mm-1", Side.BUY, price, 10)
    out = book.market("dump", "venue-1", Side.SELL, 40, protection=60)
    assert [t.price for t in out if isinstance(t, Trade)] == [100, 95, 90]
    assert out[-1] == Cancelled("dump", 10, "unfilled")  # protection held at 60
    assert book.last_price == 90
