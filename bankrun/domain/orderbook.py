"""A limit order book: price-time priority, integer prices and quantities, pure and deterministic.

Prices are integer minor units of the quote asset and must sit on the market's tick; quantities
are integer minor units of the base asset and must be whole lots. Every call returns what
happened as small frozen records (accepted, rejected with a reason, trade, cancelled), which the
matching service turns into events; replaying the accepted commands rebuilds the same book.

Self-trade prevention is "expire taker": an incoming order never trades with a resting order of
the same owner; the rest of the incoming order is cancelled with reason `self_trade`. A market
order is immediate-or-cancel and carries a protection price it never trades through.

Speed: each price level is a FIFO of order ids; the best bid and ask come from heaps of
prices with lazy deletion of emptied levels; an order is found by id in a dict. Submitting
costs O(log levels) plus O(1) per fill; a cancel is O(1) (the id leaves the level's FIFO
lazily, when it reaches the front).
"""

from __future__ import annotations

import heapq
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

SEEN_WINDOW = 10_000  # recent order ids remembered for duplicate detection


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


@dataclass(frozen=True)
class MarketConfig:
    symbol: str
    tick_size: int  # quote minor units per price step (prices: quote minor per whole base)
    lot_size: int  # base minor units per quantity step
    base_unit: int = 1  # base minor units in one whole unit (10**8 for BTC)

    def __post_init__(self) -> None:
        if self.tick_size <= 0 or self.lot_size <= 0 or self.base_unit <= 0:
            raise ValueError("tick_size, lot_size and base_unit must be positive")

    def notional(self, price: int, quantity: int) -> int:
        """Quote minor units paid for `quantity` base minor units at `price` (rounded down)."""
        return price * quantity // self.base_unit


class Accepted(NamedTuple):
    order_id: str
    resting: int  # quantity left on the book after matching


class Rejected(NamedTuple):
    order_id: str
    reason: str


class Trade(NamedTuple):
    maker_id: str
    taker_id: str
    maker_owner: str
    taker_owner: str
    taker_side: Side
    price: int
    quantity: int


class Cancelled(NamedTuple):
    order_id: str
    quantity: int  # what was still open
    reason: str = "cancelled"


Result = Accepted | Rejected | Trade | Cancelled


@dataclass(slots=True)
class Order:
    order_id: str
    owner: str
    side: Side
    price: int
    remaining: int


@dataclass
class OrderBook:
    config: MarketConfig
    orders: dict[str, Order] = field(default_factory=dict)
    # per side: price -> FIFO of order ids, and price -> open quantity
    levels: dict[Side, dict[int, deque[str]]] = field(
        default_factory=lambda: {Side.BUY: {}, Side.SELL: {}}
    )
    volume: dict[Side, dict[int, int]] = field(
        default_factory=lambda: {Side.BUY: {}, Side.SELL: {}}
    )
    _bid_prices: list[int] = field(default_factory=list)  # negated: a max-heap
    _ask_prices: list[int] = field(default_factory=list)
    # ids of recent orders, oldest first: an id is refused while it is resting or among the
    # last SEEN_WINDOW ids, so memory and snapshots stay bounded however long a book lives
    seen: OrderedDict[str, None] = field(default_factory=OrderedDict)
    last_price: int | None = None

    # --- reads -------------------------------------------------------------------------

    def best_bid(self) -> int | None:
        heap, volume = self._bid_prices, self.volume[Side.BUY]
        while heap and not volume.get(-heap[0]):
            heapq.heappop(heap)
        return -heap[0] if heap else None

    def best_ask(self) -> int | None:
        heap, volume = self._ask_prices, self.volume[Side.SELL]
        while heap and not volume.get(heap[0]):
            heapq.heappop(heap)
        return heap[0] if heap else None

    def depth(self, side: Side, levels: int = 10) -> list[tuple[int, int]]:
        """(price, quantity) of the best `levels` price levels on one side."""
        volume = self.volume[side]
        pick = heapq.nlargest if side is Side.BUY else heapq.nsmallest
        return [(p, volume[p]) for p in pick(levels, (p for p, q in volume.items() if q > 0))]

    def resting_quantity(self) -> int:
        return sum(sum(v.values()) for v in self.volume.values())

    def resting(self) -> list[tuple[str, str, str, int, int]]:
        """Every resting order, (id, owner, side, price, remaining): best price first, then
        time priority within each level — enough to rebuild the book exactly."""
        out = []
        for side in (Side.BUY, Side.SELL):
            levels = self.levels[side]
            for price in sorted(levels, reverse=side is Side.BUY):
                for order_id in levels[price]:
                    order = self.orders.get(order_id)
                    if order is not None and order.price == price and order.side is side:
                        out.append((order_id, order.owner, side.value, price, order.remaining))
        return out

    def snapshot(self) -> dict[str, object]:
        return {"resting": self.resting(), "seen": list(self.seen), "last": self.last_price}

    @classmethod
    def restore(cls, config: MarketConfig, snapshot: dict[str, Any]) -> OrderBook:
        book = cls(config)
        for order_id, owner, side, price, remaining in snapshot["resting"]:
            book._rest(Order(order_id, owner, Side(side), price, remaining))
        book.seen = OrderedDict.fromkeys(snapshot["seen"])
        book.last_price = snapshot["last"]
        return book

    # --- commands ----------------------------------------------------------------------

    def limit(
        self, order_id: str, owner: str, side: Side, price: int, quantity: int
    ) -> list[Result]:
        problem = self._check_new(order_id, quantity) or self._check_price(price)
        if problem:
            return [Rejected(order_id, problem)]
        return self._match(order_id, owner, side, quantity, price, rest=True)

    def market(
        self, order_id: str, owner: str, side: Side, quantity: int, protection: int
    ) -> list[Result]:
        """Buy or sell now, never beyond `protection` (a price); what cannot fill is cancelled."""
        problem = self._check_new(order_id, quantity) or self._check_price(protection)
        if problem:
            return [Rejected(order_id, problem)]
        return self._match(order_id, owner, side, quantity, protection, rest=False)

    def cancel(self, order_id: str) -> list[Result]:
        order = self.orders.pop(order_id, None)
        if order is None:
            return [Rejected(order_id, "unknown_order")]
        self._take(order.side, order.price, order.remaining)
        return [Cancelled(order_id, order.remaining)]

    # --- internals ---------------------------------------------------------------------

    def _check_new(self, order_id: str, quantity: int) -> str | None:
        if order_id in self.seen or order_id in self.orders:
            return "duplicate_order_id"
        if type(quantity) is not int or quantity <= 0:
            return "invalid_quantity"
        if quantity % self.config.lot_size:
            return "quantity_not_lot_aligned"
        return None

    def _check_price(self, price: int) -> str | None:
        if type(price) is not int or price <= 0:
            return "invalid_price"
        if price % self.config.tick_size:
            return "price_not_tick_aligned"
        return None

    def _match(
        self, order_id: str, owner: str, side: Side, quantity: int, limit: int, rest: bool
    ) -> list[Result]:
        seen = self.seen
        seen[order_id] = None
        if len(seen) > SEEN_WINDOW:
            seen.popitem(last=False)
        out: list[Result] = [Accepted(order_id, 0)]
        left = quantity
        buying = side is Side.BUY
        other = Side.SELL if buying else Side.BUY
        levels, orders = self.levels[other], self.orders
        best_of = self.best_ask if buying else self.best_bid
        while left:
            best = best_of()
            if best is None or (best > limit if buying else best < limit):
                break
            queue = levels[best]
            maker = orders.get(queue[0])
            if maker is None:  # cancelled earlier: drop it now
                queue.popleft()
                continue
            if maker.owner == owner:
                out.append(Cancelled(order_id, left, "self_trade"))
                left = 0
                break
            fill = left if left < maker.remaining else maker.remaining
            maker.remaining -= fill
            left -= fill
            self.last_price = best
            out.append(Trade(maker.order_id, order_id, maker.owner, owner, side, best, fill))
            if maker.remaining == 0:
                queue.popleft()
                del orders[maker.order_id]
            self._take(other, best, fill)
        if left:
            if rest:
                self._rest(Order(order_id, owner, side, limit, left))
                out[0] = Accepted(order_id, left)
            else:
                out.append(Cancelled(order_id, left, "unfilled"))
        return out

    def _take(self, side: Side, price: int, quantity: int) -> None:
        """Less resting at a level; an emptied level goes (with the ids of orders cancelled
        there), so a book that is re-quoted every tick for days stays as small as it looks."""
        volume = self.volume[side]
        volume[price] -= quantity
        if not volume[price]:
            del volume[price]
            self.levels[side].pop(price, None)

    def _rest(self, order: Order) -> None:
        side, price = order.side, order.price
        self.orders[order.order_id] = order
        queue = self.levels[side].get(price)
        if queue is None:
            queue = self.levels[side][price] = deque()
        volume = self.volume[side]
        if not volume.get(price):
            if side is Side.BUY:
                heapq.heappush(self._bid_prices, -price)
            else:
                heapq.heappush(self._ask_prices, price)
        queue.append(order.order_id)
        volume[price] = volume.get(price, 0) + order.remaining
