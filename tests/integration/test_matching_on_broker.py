"""Matching as a real faust worker on the real broker: orders in, trades and prices out, bad
orders rejected with a reason; and a restarted worker rebuilds its books from its journal."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from bankrun import events as ev
from bankrun.domain.market import MakerParams, MarketSpec
from bankrun.runner import kafka
from bankrun.runner.processes import group_alive, http_ok
from bankrun.runner.stack import Stack
from bankrun.topics import MARKET_DATA, MARKET_FILLS
from tests.conftest import wait_for_events

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def matching(broker, tmp_path_factory):
    stack = Stack(
        tmp_path_factory.mktemp("matching-run"),
        f"it-{uuid.uuid4().hex[:8]}",
        bootstrap=broker,
        prometheus=False,
        services=("matching",),
    )
    with stack:
        yield stack
    assert not any(group_alive(pid) for pid in stack.pids())


def publish(bootstrap: str, *events: ev.Event) -> None:
    asyncio.run(kafka.publish(bootstrap, events))


def order(symbol: str, order_id: str, **fields) -> ev.OrderPlaced:
    base = {
        "venue": "seller",
        "scenario_time": 60,
        "market": symbol,
        "order_id": order_id,
        "owner": "seller",
        "kind": "limit",
        "side": "buy",
    }
    return ev.OrderPlaced(**(base | fields))


def test_orders_trade_bad_ones_are_rejected_and_a_restart_keeps_the_book(broker, matching):
    symbol = f"T{uuid.uuid4().hex[:6].upper()}/USD"
    spec = MarketSpec(
        symbol=symbol,
        start_price=1_000,
        tick_size=5,
        lot_size=10,
        makers=MakerParams(levels=3, level_notional=50_000),
    )
    publish(
        broker,
        ev.MarketOpened(scenario_time=0, market=symbol, spec=spec),
        ev.MarketTick(scenario_time=0, market=symbol, mark_venues=("seller",)),
        order(symbol, "bad-price", price=1_003, quantity=10),
        order(symbol, "resting-bid", price=900, quantity=500, owner="buyer", venue="buyer"),
    )

    def of(seen, cls, **match):
        return [
            e
            for e in seen
            if isinstance(e, cls)
            and e.market == symbol
            and all(getattr(e, k) == v for k, v in match.items())
        ]

    seen = wait_for_events(
        broker, MARKET_DATA, lambda s: of(s, ev.OrderAccepted, order_id="resting-bid")
    )
    assert [r.reason for r in of(seen, ev.OrderRejected)] == ["price_not_tick_aligned"]
    fills = wait_for_events(broker, MARKET_FILLS, lambda s: of(s, ev.PriceMarked))
    assert of(fills, ev.PriceMarked)[0].price == 1_000

    # restart: the new worker must rebuild the book, resting bid included, from its journal
    matching.processes["matching"].stop()
    matching.start_service("matching").wait_ready(
        http_ok(matching.urls["matching"] + "/ready"), 120
    )
    publish(
        broker,
        order(symbol, "dump", kind="market", side="sell", quantity=5_000, max_slippage_bps=2_000),
    )
    seen = wait_for_events(broker, MARKET_FILLS, lambda s: of(s, ev.OrderDone, order_id="dump"))
    (done,) = of(seen, ev.OrderDone, order_id="dump")
    trades = of(
        wait_for_events(
            broker, MARKET_DATA, lambda s: of(s, ev.TradeExecuted, taker_order_id="dump")
        ),
        ev.TradeExecuted,
        taker_order_id="dump",
    )
    assert "resting-bid" in {t.maker_order_id for t in trades}  # survived the restart
    assert done.filled == sum(t.quantity for t in trades) > 500
    assert done.proceeds == sum(t.notional for t in trades)
