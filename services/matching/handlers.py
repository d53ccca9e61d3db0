"""Matching: each command or tick becomes book results, and those become events.

The books are the one piece of service state that is not a dict of values, so the journal
records each input (and, every `SNAPSHOT_EVERY` inputs, a snapshot of every book in the
partition); `restore` rebuilds the books from the latest snapshot plus the inputs after it.
Deterministic: the same inputs in the same order give the same books and the same events.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from bankrun import events as ev
from bankrun.domain.market import Market
from bankrun.domain.orderbook import Accepted, Cancelled, Rejected, Result, Side, Trade
from services.common.journal import SNAPSHOT, Effects, Partition

log = logging.getLogger(__name__)
ENGINE = "books"  # in memory only: symbol -> Market, rebuilt by `restore`
APPLIED = "applied"
SNAPSHOT_EVERY = 1_000
INPUTS = (ev.MarketOpened, ev.OrderPlaced, ev.MarketTick)
HANDLED = frozenset(cls.model_fields["type"].default for cls in INPUTS)
Markets = dict[str, Market]


def handle(event: ev.Event, lookup: Callable[[str], Any]) -> Effects:
    effects = Effects()
    if not isinstance(event, INPUTS):
        return effects
    markets: Markets = lookup(ENGINE)
    effects.sets["input"] = event.model_dump(mode="json")
    effects.increments[APPLIED] = 1
    effects.emit(*apply(markets, event))
    if isinstance(event, ev.MarketTick) and event.market in markets:
        _mark(event, markets[event.market].mark, lookup, effects)
    if ((lookup(APPLIED) or 0) + 1) % SNAPSHOT_EVERY == 0:
        effects.sets[SNAPSHOT] = {s: m.snapshot() for s, m in markets.items()}
    return effects


def told_key(venue: str, market: str) -> str:
    """The price `venue` was last told for `market`."""
    return f"told/{venue}/{market}"


def _mark(event: ev.MarketTick, price: int, lookup: Callable[[str], Any], effects: Effects) -> None:
    """Tell each venue listed the market's price, unless it was last told that price: a venue
    marks its holdings to market itself whenever they change (when they open, at a sale's
    end), so the same price again would change nothing — 19 marks in 20 of an ftx-2022 run."""
    for venue in event.mark_venues:
        key = told_key(venue, event.market)
        if lookup(key) != price:
            effects.sets[key] = price
            effects.emit(
                event.caused(
                    ev.PriceMarked, label=venue, venue=venue, market=event.market, price=price
                )
            )


def restore(partition: Partition, records: list[dict[str, Any]]) -> None:
    """The books as the records left them: latest snapshot, then replay what came after."""
    markets: Markets = {}
    start = 0
    for i, record in enumerate(records):
        snapshot = record["sets"].get(SNAPSHOT)
        if snapshot is not None:
            markets = {s: Market.restore(m) for s, m in snapshot.items()}
            start = i + 1
    for record in records[start:]:
        recorded = record["sets"].get("input")
        if recorded is not None:
            apply(markets, ev.from_dict(recorded))
    partition.state[ENGINE] = markets
    if records:
        log.info(
            "partition %s: books %s rebuilt from %d records (replayed %d after the snapshot)",
            partition.number,
            sorted(markets),
            len(records),
            len(records) - start,
        )


def apply(markets: Markets, event: ev.Event) -> list[ev.Event]:
    """Run one input through the books; what happened, as events."""
    if isinstance(event, ev.MarketOpened):
        if event.market not in markets:
            markets[event.market] = Market(event.spec)
            return [book_snapshot(event, markets[event.market])]
        return []
    market = markets.get(event.market)  # type: ignore[attr-defined]
    if isinstance(event, ev.MarketTick):
        if market is None:
            return []
        out = _results(event, market.tick(event.scenario_time, event.news_severity), market)
        out.append(book_snapshot(event, market))
        return out
    assert isinstance(event, ev.OrderPlaced)
    before = market.mark if market else None
    if market is None:
        results: list[Result] = [Rejected(event.order_id, "unknown_market")]
    else:
        results = market.execute(
            event.kind,
            event.order_id,
            event.owner,
            Side(event.side),
            price=event.price,
            quantity=event.quantity,
            protection=event.protection,
            max_slippage_bps=event.max_slippage_bps,
            distressed=event.distressed,
        )
    out = _results(event, results, market, owner=event.owner)
    traded = [e for e in out if isinstance(e, ev.TradeExecuted)]
    if traded and market is not None:
        out.append(book_snapshot(event, market))
    rejected = next((r for r in results if isinstance(r, Rejected)), None)
    if event.venue != ev.MARKET_VENUE and (rejected or event.kind == "market"):
        unfilled = next((r for r in results if isinstance(r, Cancelled)), None)
        out.append(
            event.caused(
                ev.OrderDone,
                market=event.market,
                order_id=event.order_id,
                requested=max(0, event.quantity or 0),
                filled=sum(t.quantity for t in traded),
                proceeds=sum(t.notional for t in traded),
                mark_before=before,
                reason=rejected.reason if rejected else (unfilled.reason if unfilled else None),
            )
        )
    return out


def _results(
    event: Any, results: list[Result], market: Market | None, owner: str = Market.MAKER
) -> list[ev.Event]:
    out: list[ev.Event] = []
    for i, r in enumerate(results):
        label = str(i)
        if isinstance(r, Trade):
            assert market is not None
            out.append(
                event.caused(
                    ev.TradeExecuted,
                    label=label,
                    venue=ev.MARKET_VENUE,
                    market=event.market,
                    maker_order_id=r.maker_id,
                    taker_order_id=r.taker_id,
                    maker_owner=r.maker_owner,
                    taker_owner=r.taker_owner,
                    taker_side=r.taker_side.value,
                    price=r.price,
                    quantity=r.quantity,
                    notional=market.config.notional(r.price, r.quantity),
                )
            )
        elif isinstance(r, Accepted):
            out.append(
                event.caused(
                    ev.OrderAccepted,
                    label=label,
                    market=event.market,
                    order_id=r.order_id,
                    owner=owner,
                    resting=r.resting,
                )
            )
        elif isinstance(r, Rejected):
            out.append(
                event.caused(
                    ev.OrderRejected,
                    label=label,
                    market=event.market,
                    order_id=r.order_id,
                    owner=owner,
                    reason=r.reason,
                )
            )
        else:
            out.append(
                event.caused(
                    ev.OrderCancelled,
                    label=label,
                    market=event.market,
                    order_id=r.order_id,
                    quantity=r.quantity,
                    reason=r.reason,
                )
            )
    return out


def book_snapshot(event: ev.Event, market: Market) -> ev.BookSnapshot:
    book = market.book
    bid, ask = book.best_bid(), book.best_ask()
    spread = None
    if bid is not None and ask is not None:
        spread = (ask - bid) / ((ask + bid) / 2) * 10_000
    bid_depth, ask_depth = market.depth_within(0.02)
    return event.caused(
        ev.BookSnapshot,
        venue=ev.MARKET_VENUE,
        market=market.config.symbol,
        last=market.mark,
        peak=market.peak,
        best_bid=bid,
        best_ask=ask,
        spread_bps=spread,
        bid_depth_2pct=bid_depth,
        ask_depth_2pct=ask_depth,
        bids=book.depth(Side.BUY, 10),
        asks=book.depth(Side.SELL, 10),
        stress=market.stress,
        volume=market.volume,
    )
