"""`bankrun bench matching`: orders per second of the pure order book on one core, for a mixed
workload (70 % limit, 20 % cancel, 10 % market) on books of different sizes."""

from __future__ import annotations

import random
import time
from typing import Any

from bankrun.domain.orderbook import MarketConfig, OrderBook, Side

CONFIG = MarketConfig("BTC/USD", tick_size=1, lot_size=1)
MID = 1_000_000


def _filled_book(resting: int, rng: random.Random) -> tuple[OrderBook, list[str]]:
    """A book with `resting` passive orders spread over 2,000 ticks each side of the mid."""
    book = OrderBook(CONFIG)
    ids = []
    for i in range(resting):
        side = Side.BUY if i % 2 else Side.SELL
        offset = rng.randint(1, 2_000)
        price = MID - offset if side is Side.BUY else MID + offset
        oid = f"r{i}"
        book.limit(oid, f"mm-{i % 50}", side, price, rng.randint(1, 20))
        ids.append(oid)
    return book, ids


def run_matching_bench(
    sizes: tuple[int, ...] = (10**5, 10**6), orders: int = 200_000, seed: int = 7
) -> dict[str, Any]:
    figures: dict[str, Any] = {"workload": "70% limit, 20% cancel, 10% market", "orders": orders}
    for size in sizes:
        rng = random.Random(seed)
        book, ids = _filled_book(size, rng)
        plan = []
        for n in range(orders):
            roll = rng.random()
            if roll < 0.7:
                side = Side.BUY if rng.random() < 0.5 else Side.SELL
                offset = rng.randint(-5, 2_000)  # mostly passive, some crossing the spread
                price = MID - offset if side is Side.BUY else MID + offset
                plan.append(("limit", f"n{n}", side, price, rng.randint(1, 20)))
            elif roll < 0.9:
                plan.append(("cancel", ids[rng.randrange(len(ids))]))
            else:
                side = Side.BUY if rng.random() < 0.5 else Side.SELL
                protection = MID + 50 if side is Side.BUY else MID - 50
                plan.append(("market", f"n{n}", side, rng.randint(1, 40), protection))
        start = time.perf_counter()
        limit, cancel, market = book.limit, book.cancel, book.market
        for cmd in plan:
            if cmd[0] == "limit":
                limit(cmd[1], "taker", cmd[2], cmd[3], cmd[4])
            elif cmd[0] == "cancel":
                cancel(cmd[1])
            else:
                market(cmd[1], "taker", cmd[2], cmd[3], cmd[4])
        elapsed = time.perf_counter() - start
        figures[f"orders_per_s_at_{size:_}_resting"] = orders / elapsed
        figures[f"resting_after_{size:_}"] = len(book.orders)
    return figures
