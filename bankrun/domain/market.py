"""Market makers: simulated liquidity providers whose quotes thin out under stress.

A maker quotes a ladder of bids and asks around a mid. Stress (0 calm .. 1 panic) — from the
news, the token's drawdown from its peak, and the venue's withdrawal troubles — widens the
spread and shrinks the size at every level, so the book is thinnest exactly when a venue has
to sell into it. Makers re-quote around the last trade, so a fire sale that walks down the
ladder drags the next ladder down with it: the death spiral, from nothing but these rules.
Pure: the matching service (or `sim`) places and cancels what `ladder` returns.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from bankrun.domain.orderbook import (
    Accepted,
    MarketConfig,
    OrderBook,
    Rejected,
    Result,
    Side,
    Trade,
)


class MakerParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    levels: int = Field(10, gt=0, le=200, description="price levels quoted on each side")
    spread_bps: float = Field(20.0, gt=0, le=5_000, description="calm half-spread, bps of mid")
    step_bps: float = Field(25.0, gt=0, le=5_000, description="distance between levels, bps")
    level_notional: int = Field(5_000_000, gt=0, description="calm size per level, quote minor")
    stress_widening: float = Field(10.0, ge=0, le=100, description="spread x (1 + this x stress)")
    stress_thinning: float = Field(0.9, ge=0, le=1, description="size x (1 - this x stress)")
    anchor: float = Field(
        0.0,
        ge=0,
        le=1,
        description="pull of the quotes' centre back toward the start price on each re-quote: "
        "0 for a reflexive asset (the venue's own token), more for one with value elsewhere",
    )


class Quote(NamedTuple):  # a ladder of these, made anew on every tick of every market
    side: Side
    price: int
    quantity: int


def stress(news_severity: float, drawdown: float, withdrawal_trouble: float) -> float:
    """How frightened the makers are, 0..1: the worst of what they read, see and hear."""
    clamp = [min(1.0, max(0.0, x)) for x in (news_severity, drawdown, withdrawal_trouble)]
    worst = max(clamp)
    return min(1.0, worst + 0.25 * (sum(clamp) - worst))


def ladder(config: MarketConfig, params: MakerParams, mid: int, level_stress: float) -> list[Quote]:
    """The quotes a maker posts around `mid` (quote minor units per whole base unit)."""
    s = min(1.0, max(0.0, level_stress))
    half_spread = params.spread_bps * (1 + params.stress_widening * s) / 10_000
    step = params.step_bps * (1 + params.stress_widening * s) / 10_000
    notional = params.level_notional * (1 - params.stress_thinning * s)
    quotes = []
    for i in range(params.levels):
        distance = half_spread + i * step
        bid = _tick(config, mid * (1 - distance), down=True)
        ask = _tick(config, mid * (1 + distance), down=False)
        for side, price in ((Side.BUY, bid), (Side.SELL, ask)):
            if price <= 0:
                continue
            quantity = _lots(config, notional * config.base_unit / price)
            if quantity > 0:
                quotes.append(Quote(side, price, quantity))
    return quotes


def _tick(config: MarketConfig, price: float, down: bool) -> int:
    ticks = int(price // config.tick_size) if down else -int(-price // config.tick_size)
    return max(0, ticks * config.tick_size)


def _lots(config: MarketConfig, quantity: float) -> int:
    return int(quantity // config.lot_size) * config.lot_size


class MarketSpec(BaseModel):
    """One market of a scenario: its book's units, where its price starts, its makers, and
    which non-cash holdings it prices (and a venue sells into it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    symbol: str = Field(pattern=r"^[A-Z0-9]{1,12}/[A-Z]{3,5}$")
    tick_size: int = Field(1, gt=0, description="quote minor units per price step")
    lot_size: int = Field(1, gt=0, description="base minor units per quantity step")
    base_unit: int = Field(1, gt=0, description="base minor units in one whole unit")
    start_price: int = Field(gt=0, description="quote minor units per whole base unit")
    makers: MakerParams = MakerParams()
    backs: tuple[str, ...] = Field((), description="holdings priced by this market")
    trouble_half_life_hours: float = Field(
        6.0, gt=0, description="how fast makers forget a forced seller"
    )

    @property
    def config(self) -> MarketConfig:
        return MarketConfig(self.symbol, self.tick_size, self.lot_size, self.base_unit)


DEFAULT_MARKETS = (
    MarketSpec(  # the venue's own token: $22, in cents per whole token, lots of one token
        symbol="PLATFORM/USD",
        start_price=2_200,
        base_unit=100,
        lot_size=100,
        backs=("platform_token", "affiliate_loan"),
    ),
    MarketSpec(  # a deep, liquid crypto market
        symbol="BTC/USD",
        start_price=2_000_000,
        base_unit=10**8,
        lot_size=10**4,
        makers=MakerParams(level_notional=50_000_000, spread_bps=2, step_bps=5, anchor=0.5),
    ),
    MarketSpec(  # what `less_liquid` holdings are: thin, wide, sold at a discount
        symbol="ILLIQ/USD",
        start_price=10_000,
        base_unit=100,
        lot_size=100,
        makers=MakerParams(spread_bps=100, step_bps=100, level_notional=20_000_000, anchor=0.2),
        backs=("less_liquid",),
    ),
)


class Market:
    """One market: a book, its makers' quotes, and the marks trades leave behind.

    Makers read three signals: the news (given on each tick), the drawdown from the peak, and
    `trouble` — set when a distressed venue sells, fading with a half-life — so a venue's
    fire sale is met by a book that thins as it sells.
    """

    MAKER = "maker"

    def __init__(self, spec: MarketSpec):
        self.spec = spec
        self.config = spec.config
        self.params = spec.makers
        self.book = OrderBook(self.config)
        self.peak = self.mark = spec.start_price
        self.trouble = 0.0
        self.stress = 0.0
        self.volume = 0
        self.last_tick = 0.0
        self._quotes: list[str] = []
        self._n = 0

    @property
    def drawdown(self) -> float:
        return 1 - self.mark / self.peak

    def tick(self, now: float, news_severity: float) -> list[Result]:
        """Scenario time moved on: old fright fades, makers re-quote."""
        hours = max(0.0, now - self.last_tick) / 3600
        self.trouble *= 0.5 ** (hours / self.spec.trouble_half_life_hours)
        self.last_tick = max(self.last_tick, now)
        return self.requote(news_severity)

    def requote(self, news_severity: float = 0.0) -> list[Result]:
        """Pull the old ladder and post a new one around the mark — unless the new one is the
        old one quote for quote, still resting in full: then makers leave it be, and keep
        their place in the queue (a calm book: over half of ftx-2022's ticks)."""
        self.stress = stress(news_severity, self.drawdown, self.trouble)
        # where the makers think the price is: the last trade, pulled toward fair value
        self.mark = round(self.mark + self.params.anchor * (self.spec.start_price - self.mark))
        self.peak = max(self.peak, self.mark)
        quotes = ladder(self.config, self.params, self.mark, self.stress)
        if self._standing(quotes):
            return []
        for order_id in self._quotes:
            self.book.cancel(order_id)
        self._quotes.clear()
        out: list[Result] = []
        for q in quotes:
            order_id = self._next_id()
            results = self._record(
                self.book.limit(order_id, self.MAKER, q.side, q.price, q.quantity)
            )
            if results and isinstance(results[0], Accepted) and results[0].resting:
                self._quotes.append(order_id)
            out += [r for r in results if isinstance(r, Trade)]
        return out

    def _standing(self, quotes: list[Quote]) -> bool:
        """Whether the ladder rests already: each quote an order of the last ladder, unfilled."""
        if len(quotes) != len(self._quotes):
            return False
        orders = self.book.orders
        for order_id, q in zip(self._quotes, quotes, strict=True):
            order = orders.get(order_id)
            if order is None or (order.side, order.price, order.remaining) != q:
                return False
        return True

    def execute(
        self,
        kind: str,
        order_id: str,
        owner: str,
        side: Side,
        price: int | None = None,
        quantity: int | None = None,
        protection: int | None = None,
        max_slippage_bps: float | None = None,
        distressed: bool = False,
    ) -> list[Result]:
        """One command from outside: limit, market (immediate or cancel) or cancel."""
        if kind == "cancel":
            order = self.book.orders.get(order_id)
            if order is not None and order.owner != owner:
                return [Rejected(order_id, "not_owner")]
            return self.book.cancel(order_id)
        if owner == self.MAKER:
            return [Rejected(order_id, "reserved_owner")]
        if distressed:
            self.trouble = 1.0
        if kind == "limit":
            return self._record(self.book.limit(order_id, owner, side, price, quantity))  # type: ignore[arg-type]
        if protection is None and max_slippage_bps is not None:
            protection = self.protection(side, max_slippage_bps)
        if protection is None:
            return [Rejected(order_id, "missing_protection")]
        return self._record(self.book.market(order_id, owner, side, quantity, protection))  # type: ignore[arg-type]

    def protection(self, side: Side, max_slippage_bps: float) -> int:
        """The worst price a market order may reach: `max_slippage_bps` beyond the nearer of
        the mark and the best opposite quote — a forced seller takes what the book offers."""
        cut = max_slippage_bps / 10_000
        if side is Side.SELL:
            bid = self.book.best_bid()
            ref = self.mark if bid is None else min(self.mark, bid)
            return max(self.config.tick_size, _tick(self.config, ref * (1 - cut), down=False))
        ask = self.book.best_ask()
        ref = self.mark if ask is None else max(self.mark, ask)
        return _tick(self.config, ref * (1 + cut), down=True)

    def sell(self, owner: str, quantity: int, max_slippage_bps: float) -> tuple[int, int]:
        """Market-sell up to `quantity`, never below mark x (1 - slippage): (filled, proceeds)."""
        quantity -= quantity % self.config.lot_size
        if quantity <= 0:
            return 0, 0
        results = self.execute(
            "market",
            self._next_id(),
            owner,
            Side.SELL,
            quantity=quantity,
            max_slippage_bps=max_slippage_bps,
        )
        trades = [r for r in results if isinstance(r, Trade)]
        return sum(t.quantity for t in trades), sum(
            self.config.notional(t.price, t.quantity) for t in trades
        )

    def depth_within(self, fraction: float) -> tuple[int, int]:
        """Quote minor units bid and asked within `fraction` of the mid."""
        bid, ask = self.book.best_bid(), self.book.best_ask()
        mid = (bid + ask) / 2 if bid is not None and ask is not None else self.mark
        notional = self.config.notional
        bids = sum(
            notional(p, q)
            for p, q in self.book.volume[Side.BUY].items()
            if q > 0 and p >= mid * (1 - fraction)
        )
        asks = sum(
            notional(p, q)
            for p, q in self.book.volume[Side.SELL].items()
            if q > 0 and p <= mid * (1 + fraction)
        )
        return bids, asks

    def _record(self, results: list[Result]) -> list[Result]:
        for r in results:
            if isinstance(r, Trade):
                self.mark = r.price
                self.peak = max(self.peak, r.price)
                self.volume += r.quantity
        return results

    def _next_id(self) -> str:
        self._n += 1
        return f"{self.config.symbol}-{self._n}"

    # --- snapshot and restore: the matching service's restart point ----------------------

    def snapshot(self) -> dict[str, Any]:
        return {
            "spec": self.spec.model_dump(mode="json"),
            "mark": self.mark,
            "peak": self.peak,
            "trouble": self.trouble,
            "stress": self.stress,
            "volume": self.volume,
            "last_tick": self.last_tick,
            "quotes": list(self._quotes),
            "n": self._n,
            "book": self.book.snapshot(),
        }

    @classmethod
    def restore(cls, snapshot: dict[str, Any]) -> Market:
        market = cls(MarketSpec.model_validate(snapshot["spec"]))
        market.mark, market.peak = snapshot["mark"], snapshot["peak"]
        market.trouble, market.stress = snapshot["trouble"], snapshot["stress"]
        market.volume, market.last_tick = snapshot["volume"], snapshot["last_tick"]
        market._quotes, market._n = list(snapshot["quotes"]), snapshot["n"]
        market.book = OrderBook.restore(market.config, snapshot["book"])
        return market
