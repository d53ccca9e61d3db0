"""Market makers: simulated liquidity providers whose quotes thin out under stress.

A maker quotes a ladder of bids and asks around a mid. Stress (0 calm .. 1 panic) — from the
news, the token's drawdown from its peak, and the venue's withdrawal troubles — widens the
spread and shrinks the size at every level, so the book is thinnest exactly when a venue has
to sell into it. Makers re-quote around the last trade, so a fire sale that walks down the
ladder drags the next ladder down with it: the death spiral, from nothing but these rules.
Pure: the matching service (or `sim`) places and cancels what `ladder` returns.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from bankrun.domain.orderbook import Accepted, MarketConfig, OrderBook, Side, Trade


class MakerParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    levels: int = Field(10, gt=0, le=200, description="price levels quoted on each side")
    spread_bps: float = Field(20.0, gt=0, le=5_000, description="calm half-spread, bps of mid")
    step_bps: float = Field(25.0, gt=0, le=5_000, description="distance between levels, bps")
    level_notional: int = Field(5_000_000, gt=0, description="calm size per level, quote minor")
    stress_widening: float = Field(10.0, ge=0, le=100, description="spread x (1 + this x stress)")
    stress_thinning: float = Field(0.9, ge=0, le=1, description="size x (1 - this x stress)")


@dataclass(frozen=True)
class Quote:
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


class Market:
    """One market: a book, its makers' quotes, and the marks a fire sale leaves behind."""

    MAKER = "maker"

    def __init__(self, config: MarketConfig, params: MakerParams, start_price: int):
        self.config = config
        self.params = params
        self.book = OrderBook(config)
        self.peak = self.mark = start_price
        self._quotes: list[str] = []
        self._n = 0

    @property
    def drawdown(self) -> float:
        return 1 - self.mark / self.peak

    def requote(self, news_severity: float = 0.0, withdrawal_trouble: float = 0.0) -> float:
        """Pull the old ladder, post a new one around the mark; returns the stress used."""
        for order_id in self._quotes:
            self.book.cancel(order_id)
        self._quotes.clear()
        level = stress(news_severity, self.drawdown, withdrawal_trouble)
        for q in ladder(self.config, self.params, self.mark, level):
            order_id = self._next_id()
            results = self.book.limit(order_id, self.MAKER, q.side, q.price, q.quantity)
            if results and isinstance(results[0], Accepted) and results[0].resting:
                self._quotes.append(order_id)
        return level

    def sell(self, owner: str, quantity: int, max_slippage_bps: float) -> tuple[int, int]:
        """Market-sell up to `quantity`, never below mark x (1 - slippage): (filled, proceeds)."""
        floor = max(
            self.config.tick_size,
            _tick(self.config, self.mark * (1 - max_slippage_bps / 10_000), down=False),
        )
        quantity -= quantity % self.config.lot_size
        if quantity <= 0:
            return 0, 0
        results = self.book.market(self._next_id(), owner, Side.SELL, quantity, floor)
        trades = [r for r in results if isinstance(r, Trade)]
        if trades:
            self.mark = trades[-1].price
            self.peak = max(self.peak, self.mark)
        filled = sum(t.quantity for t in trades)
        return filled, sum(self.config.notional(t.price, t.quantity) for t in trades)

    def _next_id(self) -> str:
        self._n += 1
        return f"{self.config.symbol}-{self._n}"
