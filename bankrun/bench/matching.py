"""`bankrun bench matching`: orders per second for a mixed workload (70 % limit, 20 % cancel,
10 % market), twice:

- **core**: the pure order book on one core, on books of 10^5 and 10^6 resting orders, and how
  the per-order cost grows with the book;
- **end to end**: the same mix through the real matching service (a faust worker) on the
  embedded broker — published to `bankrun.market-orders`, timed until the service has consumed
  every order — with the raw broker's produce throughput measured in the same run.
"""

from __future__ import annotations

import asyncio
import gc
import math
import random
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import Progress

from bankrun import events as ev
from bankrun.bench.broker import measure_broker
from bankrun.domain.market import MakerParams, MarketSpec
from bankrun.domain.orderbook import MarketConfig, OrderBook, Side
from bankrun.runner import kafka
from bankrun.runner.processes import wait_until
from bankrun.runner.settle import message_counts
from bankrun.runner.stack import Stack
from bankrun.topics import (
    DEAD_LETTERS,
    MARKET_DATA,
    MARKET_FILLS,
    MARKET_ORDERS,
    partition_of,
    spread_keys,
)

CONFIG = MarketConfig("BTC/USD", tick_size=1, lot_size=1)
MID = 1_000_000
WORKLOAD = "70% limit, 20% cancel, 10% market"
VENUE = "bench"  # the orders' envelope venue: not "market", so the service reports order.done
#: Ticks each side of the mid where the end-to-end orders rest. The core spreads 10^5+ orders
#: over 2,000 ticks; the service's books hold a few thousand, so a narrower band keeps them
#: about as dense near the mid, and market orders (protection 50 ticks) find something to take.
E2E_BAND = 200


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
    sizes: tuple[int, ...] = (10**5, 10**6),
    orders: int = 200_000,
    seed: int = 7,
    e2e_orders: int = 20_000,
    markets: int = 4,
    resting_per_market: int = 1_000,
    console: Console | None = None,
) -> dict[str, dict[str, Any]]:
    """{"core": figures, "e2e": figures}; `e2e_orders=0` skips the stack (no "e2e" then)."""
    console = console or Console(quiet=True)
    figures = {"core": core_figures(sizes, orders, seed, console)}
    if e2e_orders > 0:
        figures["e2e"] = e2e_figures(e2e_orders, markets, resting_per_market, seed, console)
    return figures


# --- the pure core ------------------------------------------------------------------------


def core_figures(
    sizes: tuple[int, ...], orders: int, seed: int, console: Console
) -> dict[str, Any]:
    figures: dict[str, Any] = {"workload": WORKLOAD, "orders": orders}
    rates: dict[int, float] = {}
    for size in sizes:
        console.log(f"core: filling a book with {size:,} resting orders")
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
        console.log(f"core: {orders:,} orders on {size:,} resting")
        # the book's million objects are long-lived: keep the cyclic collector from rescanning
        # them during the measurement (what a long-running engine does after loading)
        gc.collect()
        gc.freeze()
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
        rates[size] = orders / elapsed
        figures[f"orders_per_s_at_{size:_}_resting"] = rates[size]
        figures[f"resting_after_{size:_}"] = len(book.orders)
        gc.unfreeze()
        del book, ids, plan
    if len(sizes) >= 2:
        figures.update(_growth(min(sizes), max(sizes), rates[min(sizes)], rates[max(sizes)]))
    return figures


def _growth(small: int, big: int, small_rate: float, big_rate: float) -> dict[str, Any]:
    """How the per-order cost grows with the book: the rate ratio, and cost ~ size^k."""
    cost_ratio = small_rate / big_rate  # per-order cost at `big` / at `small`
    exponent = math.log(cost_ratio) / math.log(big / small)
    return {
        f"rate_ratio_{big:_}_vs_{small:_}": big_rate / small_rate,
        "cost_growth": (
            f"per-order cost x{cost_ratio:.2f} for a x{big / small:g} book "
            f"(cost ~ size^{exponent:.2f}; 0 = flat, 1 = linear)"
        ),
    }


# --- end to end through the matching service ----------------------------------------------


def spread_markets(n: int) -> list[str]:
    return spread_keys(n, "BENCH{}/USD")


def market_spec(symbol: str) -> MarketSpec:
    """Unit ticks and lots around `MID`, like the core bench; the makers never quote (no
    market ticks are sent), so the book holds only the bench's orders."""
    return MarketSpec(
        symbol=symbol,
        tick_size=1,
        lot_size=1,
        base_unit=1,
        start_price=MID,
        makers=MakerParams(levels=1, level_notional=1),
    )


def workload(
    symbols: list[str], resting: int, orders: int, seed: int
) -> tuple[list[ev.Event], list[ev.Event]]:
    """(warm-up, timed): the warm-up opens each market and rests `resting` passive orders on
    it; the timed part is `orders` commands of the mix, round robin over the markets. Cancels
    name an order placed earlier on the same market (some of them filled or cancelled by then,
    which the book rejects), with its owner, as a real client would."""
    rng = random.Random(seed)
    warm: list[ev.Event] = []
    owners: dict[str, dict[str, str]] = {s: {} for s in symbols}
    ids: dict[str, list[str]] = {s: [] for s in symbols}

    def place(symbol: str, order_id: str, owner: str, **fields: Any) -> ev.OrderPlaced:
        return ev.OrderPlaced(
            venue=VENUE,
            scenario_time=0,
            market=symbol,
            order_id=order_id,
            owner=owner,
            **fields,
        )

    def limit(symbol: str, order_id: str, owner: str, side: str, price: int) -> ev.OrderPlaced:
        """A limit order, remembered so a later cancel can name it with its owner."""
        ids[symbol].append(order_id)
        owners[symbol][order_id] = owner
        quantity = rng.randint(1, 20)
        return place(
            symbol, order_id, owner, kind="limit", side=side, price=price, quantity=quantity
        )

    for symbol in symbols:
        warm.append(ev.MarketOpened(scenario_time=0, market=symbol, spec=market_spec(symbol)))
        for i in range(resting):
            side = "buy" if i % 2 else "sell"
            offset = rng.randint(1, E2E_BAND)
            price = MID - offset if side == "buy" else MID + offset
            warm.append(limit(symbol, f"r{i}", f"mm-{i % 50}", side, price))
    timed: list[ev.Event] = []
    for n in range(orders):
        symbol = symbols[n % len(symbols)]
        roll = rng.random()
        side = "buy" if rng.random() < 0.5 else "sell"
        owner = f"taker-{n % 50}"
        if roll < 0.7:
            offset = rng.randint(-5, E2E_BAND)  # mostly passive, some crossing the spread
            price = MID - offset if side == "buy" else MID + offset
            timed.append(limit(symbol, f"n{n}", owner, side, price))
        elif roll < 0.9 and ids[symbol]:
            target = ids[symbol][rng.randrange(len(ids[symbol]))]
            timed.append(place(symbol, target, owners[symbol][target], kind="cancel"))
        else:
            protection = MID + 50 if side == "buy" else MID - 50
            quantity = rng.randint(1, 40)
            timed.append(
                place(
                    symbol,
                    f"n{n}",
                    owner,
                    kind="market",
                    side=side,
                    quantity=quantity,
                    protection=protection,
                )
            )
    return warm, timed


def e2e_figures(
    orders: int, markets: int, resting: int, seed: int, console: Console
) -> dict[str, Any]:
    symbols = spread_markets(markets)
    warm, timed = workload(symbols, resting, orders, seed)
    size = round(sum(len(e.to_bytes()) for e in timed) / len(timed))
    with tempfile.TemporaryDirectory(prefix="bankrun-bench-") as tmp:
        stack = Stack(
            Path(tmp), "bench", prometheus=False, services=("matching",), progress=console.log
        )
        with stack:
            assert stack.bootstrap is not None
            console.log(f"raw broker baseline ({size}-byte messages, one partition)")
            baseline = asyncio.run(measure_broker(stack.bootstrap, 50_000, size, 300, console))
            console.log(f"warm-up: {len(symbols)} markets, {resting:,} resting orders each")
            _through_service(stack, warm, "warm-up consumed", console)
            before = _produced(stack)
            console.log(f"timed: {orders:,} orders over {len(symbols)} markets")
            elapsed, consumed = _through_service(stack, timed, "orders consumed", console)
            produced = {t: n - before.get(t, 0) for t, n in _produced(stack).items()}
    rate = orders / elapsed
    partitions = {partition_of(s) for s in symbols}
    return {
        "workload": WORKLOAD,
        "orders": orders,
        "consumed": consumed,
        "markets": len(symbols),
        "partitions_used": len(partitions),
        "resting_per_market_at_start": resting,
        "order_message_bytes": size,
        "elapsed_s": elapsed,
        "e2e_orders_per_s": rate,
        "market_data_events_per_order": produced.get(MARKET_DATA.name, 0) / orders,
        "market_fills_events_per_order": produced.get(MARKET_FILLS.name, 0) / orders,
        "dead_letters": int(produced.get(DEAD_LETTERS.name, 0)),
        "broker_produce_msgs_per_s": baseline["produce_msgs_per_s"],
        "ratio_to_broker_produce": rate / baseline["produce_msgs_per_s"],
    }


def _consumed(stack: Stack) -> int:
    counts = message_counts(stack.urls["matching"])
    return int(counts.get(("consumed", "matching", MARKET_ORDERS.name), 0))


def _produced(stack: Stack) -> dict[str, float]:
    counts = message_counts(stack.urls["matching"])
    return {topic: n for (kind, _, topic), n in counts.items() if kind == "produced"}


def _through_service(
    stack: Stack, events: list[ev.Event], label: str, console: Console
) -> tuple[float, int]:
    """Publish `events` (in a thread) while watching the service's consumed counter; seconds
    from the first send until the service has consumed them all, and how many it consumed.

    Counts, not end offsets: Tansu under-reports high watermarks.
    """
    assert stack.bootstrap is not None
    before = _consumed(stack)
    service = stack.processes["matching"]
    seen = 0
    with ThreadPoolExecutor(1) as pool, Progress(console=console, transient=True) as bar:
        task = bar.add_task(label, total=len(events))
        start = time.perf_counter()
        sending = pool.submit(asyncio.run, kafka.publish(stack.bootstrap, events))

        def alive() -> None:
            service.check_alive()
            if sending.done() and sending.exception() is not None:
                raise RuntimeError(f"publishing failed: {sending.exception()!r}")

        def done() -> bool:
            nonlocal seen
            try:
                seen = _consumed(stack) - before
            except httpx.HTTPError:
                return False  # a busy or dying worker; `alive` tells which
            bar.update(task, completed=seen)
            return seen >= len(events)

        try:
            wait_until(done, 60 + len(events) / 100, f"matching: {label}", 0.05, alive=alive)
        except TimeoutError as slow:
            raise TimeoutError(
                f"{slow} ({seen:,} of {len(events):,} consumed); log tail:\n{service.tail()}"
            ) from None
        elapsed = time.perf_counter() - start
        sent = sending.result()
    if sent[MARKET_ORDERS.name] != len(events):
        raise RuntimeError(f"published {dict(sent)}, expected {len(events)} market orders")
    return elapsed, seen
