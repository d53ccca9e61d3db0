"""The shipped FTX-style scenario, in sim: dumping the affiliate's token collateral spirals
the token, the commingled venue recovers little, and a full-reserve venue never notices."""

from __future__ import annotations

import pytest

from bankrun import events as ev
from bankrun import scenario, sim, summary
from bankrun.domain.market import MakerParams

SCENARIO = scenario.load("ftx-token-spiral")


@pytest.fixture(scope="module")
def spiral() -> dict:
    return summary.summarize(sim.simulate(SCENARIO).log, {})


def test_the_token_falls_at_least_75_percent_within_72_hours(spiral):
    token = spiral["markets"]["PLATFORM/USD"]
    assert token["start_price"] == 2_200
    assert token["drawdown_72h"] >= 0.75
    assert token["traded_base"] > 0


def test_the_commingled_venue_recovers_far_less_than_the_collateral_was_marked_at(spiral):
    venue = spiral["venues"]["commingled"]
    assert abs(venue["collateral_mark_start"] - 600_000_000) < 2_200  # 60 % of deposits
    assert 0 < venue["fire_sale_proceeds"] < 0.25 * venue["collateral_mark_start"]
    assert venue["fire_sale_proceeds"] < venue["fire_sale_mark_value"]  # slippage is real
    assert venue["dry_at_hours"] is not None


def test_a_full_reserve_venue_does_not_depend_on_the_token(spiral):
    """Same run with a token market twice as deep at half the price: full-reserve's numbers
    are identical, the commingled venue's are not."""
    token = next(m for m in SCENARIO.markets if m.symbol == "PLATFORM/USD")
    other_token = token.model_copy(
        update={"start_price": 1_100, "makers": MakerParams(level_notional=10_000_000)}
    )
    markets = tuple(other_token if m is token else m for m in SCENARIO.markets)
    other = summary.summarize(
        sim.simulate(SCENARIO.model_copy(update={"markets": markets})).log, {}
    )
    assert other["venues"]["full-reserve"] == spiral["venues"]["full-reserve"]
    assert spiral["venues"]["full-reserve"]["paid_fraction"] == 1.0
    assert other["venues"]["commingled"] != spiral["venues"]["commingled"]


def test_the_commingled_venue_is_marked_to_the_falling_token():
    """Its equity follows the token down: reserve snapshots carry the mark-to-market loss."""
    bus = sim.simulate(SCENARIO)
    snaps = [e for e in bus.log if isinstance(e, ev.ReserveSnapshot) and e.venue == "commingled"]
    # from genesis on at what its token units fetch: 60 % of deposits, less than a token below
    assert snaps[0].holdings["affiliate_loan"] == snaps[0].collateral_value
    assert 600_000_000 - 2_200 < snaps[0].collateral_value <= 600_000_000
    assert snaps[-1].holdings["affiliate_loan"] < 0.1 * 600_000_000
    assert snaps[-1].equity < -0.4 * 1_000_000_000  # a hole of over 40 % of deposits
    assert snaps[-1].collateral_value < 0.1 * snaps[0].collateral_value
