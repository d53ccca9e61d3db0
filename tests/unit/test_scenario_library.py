"""The shipped scenarios do what their headers say (in sim)."""

from __future__ import annotations

import pytest

from bankrun import scenario, sim, summary


@pytest.fixture(scope="module")
def ftx() -> dict:
    return summary.summarize(sim.simulate(scenario.load("ftx-2022")).log, {})


def test_ftx_runs_dry_and_halts_within_72_hours(ftx):
    venue = ftx["venues"]["ftx"]
    assert venue["policy"] == "commingled"
    assert venue["dry_at_hours"] is not None and venue["dry_at_hours"] < 72
    assert venue["halted_at_hours"] is not None and venue["halted_at_hours"] < 72
    assert venue["paid_fraction"] < 0.5


def test_beside_it_a_full_reserve_venue_pays_every_valid_request(ftx):
    venue = ftx["venues"]["full-reserve"]
    assert venue["withdrawals_requested"] > 0.9 * 2000  # it met the same run
    assert venue["withdrawals_paid"] == venue["withdrawals_requested"]
    assert venue["paid_fraction"] == 1.0


def test_the_token_collapses_as_the_affiliate_loan_is_recalled(ftx):
    assert ftx["markets"]["PLATFORM/USD"]["drawdown_72h"] >= 0.75
    venue = ftx["venues"]["ftx"]
    assert venue["fire_sale_proceeds"] < 0.25 * venue["collateral_mark_start"]


def test_baseline_never_runs_dry():
    rows = summary.summarize(sim.simulate(scenario.load("baseline")).log, {})["venues"]
    assert len(rows) == 4
    for venue, row in rows.items():
        assert row["dry_at_hours"] is None, venue
        assert row["paid_fraction"] == 1.0, venue


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (("policy: commingled", "policy: shadow-banking"), "venues.0"),
        (("total_deposits: 890000000000", "total_deposits: -5"), "venues.0.total_deposits"),
        (("at_hours: 88,", "at_hours: 500,"), "news"),
        (("  - id: ftx\n", "  - customers_only: true\n"), "venues.0"),
    ],
)
def test_an_invalid_ftx_scenario_fails_naming_the_field(edit, field):
    text = scenario.resolve("ftx-2022").read_text()
    assert edit[0] in text
    with pytest.raises(scenario.ScenarioError) as bad:
        scenario.parse(text.replace(*edit, 1))
    assert field in str(bad.value)
