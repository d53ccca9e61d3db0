"""Market makers thin out under stress, and a fire sale spirals the token down."""

import pytest

from bankrun.domain.market import MakerParams, Market, MarketSpec, ladder, stress
from bankrun.domain.orderbook import Side

PARAMS = MakerParams()
SPEC = MarketSpec(symbol="PLATFORM/USD", start_price=2_200, makers=PARAMS)  # cents per token
TOKEN = SPEC.config


def size_and_spread(quotes):
    bids = [q for q in quotes if q.side is Side.BUY]
    asks = [q for q in quotes if q.side is Side.SELL]
    depth = sum(q.price * q.quantity for q in quotes)
    return depth, min(a.price for a in asks) - max(b.price for b in bids)


def test_stress_widens_the_spread_and_thins_the_book():
    calm_depth, calm_spread = size_and_spread(ladder(TOKEN, PARAMS, 2_200, 0.0))
    panic_depth, panic_spread = size_and_spread(ladder(TOKEN, PARAMS, 2_200, 1.0))
    assert panic_spread > 5 * calm_spread
    assert panic_depth < 0.2 * calm_depth


def test_stress_reads_the_worst_signal():
    assert stress(0.0, 0.0, 0.0) == 0.0
    assert stress(0.8, 0.1, 0.0) >= 0.8
    assert stress(2.0, 0.0, 0.0) == 1.0


def test_a_small_sale_in_a_calm_market_barely_moves_the_price():
    market = Market(SPEC)
    market.requote()
    filled, proceeds = market.sell("venue-1", 1_000, max_slippage_bps=500)
    assert filled == 1_000
    assert market.drawdown < 0.01
    assert proceeds > 0.99 * 1_000 * 2_200


def test_dumping_the_collateral_spirals_the_token_down():
    """FTX: the affiliate's collateral is the venue's own token; selling it over three days
    (news worsening after a day) takes the price down by far more than 75 %."""
    market = Market(SPEC)
    collateral = 2_000_000
    left, proceeds = collateral, 0
    for hour in range(72):
        market.requote(news_severity=0.5 if hour < 24 else 0.8)
        filled, cash = market.sell("venue-1", min(left, collateral // 24), max_slippage_bps=2_000)
        left -= filled
        proceeds += cash
    assert market.drawdown >= 0.75
    assert proceeds < 0.25 * collateral * 2_200  # far below the pre-crisis mark


def test_makers_leave_a_ladder_that_is_still_right_and_repost_one_that_is_not():
    market = Market(SPEC)

    def requote(news_severity: float) -> tuple[set[str], list[tuple]]:
        market.requote(news_severity)
        resting = market.book.resting()
        return {o[0] for o in resting}, [o[2:] for o in resting]

    def ladder_now() -> list[tuple]:
        quotes = ladder(TOKEN, PARAMS, market.mark, market.stress)
        best_first = sorted(
            quotes, key=lambda q: (q.side is Side.SELL, -q.price if q.side is Side.BUY else q.price)
        )
        return [(q.side.value, q.price, q.quantity) for q in best_first]

    first, quotes = requote(0.0)
    assert quotes == ladder_now()
    assert requote(0.0) == (first, quotes)  # the same orders: their place in the queue kept
    frightened, quotes = requote(0.5)
    assert first.isdisjoint(frightened) and quotes == ladder_now()
    market.sell("venue-1", 100, max_slippage_bps=500)  # a fill moves the mark
    after, quotes = requote(0.5)
    assert frightened.isdisjoint(after) and quotes == ladder_now()


def test_the_floor_is_never_traded_through():
    market = Market(SPEC)
    market.requote()
    market.sell("venue-1", 10**7, max_slippage_bps=1_000)
    assert market.mark >= 2_200 * 0.9


@pytest.mark.parametrize("bad", [{"levels": 0}, {"stress_thinning": 2}, {"spread_bps": -1}])
def test_maker_params_are_validated(bad):
    with pytest.raises(ValueError):
        MakerParams(**bad)
