"""The shipped scenarios do what their headers say (in sim)."""

from __future__ import annotations

import pytest

from bankrun import events as ev
from bankrun import scenario, sim, summary


def simulated(name: str) -> tuple[dict, list[ev.Event]]:
    log = sim.simulate(scenario.load(name)).log
    return summary.summarize(log, {}), log


def share_asked(log: list[ev.Event], venue: str, by_hours: float) -> float:
    """Share of a venue's deposits its customers had asked for by then (first asks only)."""
    deposits = sum(e.amount for e in log if isinstance(e, ev.AccountFunded) and e.venue == venue)
    asked: dict[str, int] = {}
    for e in log:
        if (
            isinstance(e, ev.WithdrawalRequested)
            and e.venue == venue
            and e.scenario_time <= by_hours * 3600
        ):
            asked.setdefault(e.account, e.amount)
    return sum(asked.values()) / deposits


@pytest.fixture(scope="module")
def ftx() -> dict:
    return simulated("ftx-2022")[0]


def test_ftx_runs_dry_and_halts_within_72_hours(ftx):
    venue = ftx["venues"]["ftx"]
    assert venue["policy"] == "commingled"
    assert venue["dry_at_hours"] is not None and venue["dry_at_hours"] < 72
    assert venue["halted_at_hours"] is not None and venue["halted_at_hours"] < 72
    assert venue["paid_fraction"] < 0.5


def test_beside_it_a_full_reserve_venue_pays_every_valid_request(ftx):
    venue = ftx["venues"]["full-reserve"]
    assert venue["withdrawals_requested"] > 0.9 * 1000  # it met the same run
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


def test_svb_pays_a_quarter_in_a_day_and_queues_most_of_the_rest_by_morning():
    result, log = simulated("svb-2023")
    svb = result["venues"]["svb"]
    assert 0.15 <= share_asked(log, "svb", 18) <= 0.35  # 9 March, before the share sale fails
    assert 0.2 <= svb["amount_paid"] / svb["liabilities_start"] <= 0.3
    assert share_asked(log, "svb", 36) >= 0.8  # the morning of 10 March
    assert svb["halted_at_hours"] is not None and svb["halted_at_hours"] < 48
    assert result["venues"]["full-reserve"]["paid_fraction"] == 1.0


def test_flash_panic_passes_a_full_reserve_venue_by_and_drains_a_thin_one():
    result, log = simulated("flash-panic")
    full, thin = result["venues"]["full-reserve"], result["venues"]["fractional"]
    assert full["dry_at_hours"] is None and full["paid_fraction"] == 1.0
    assert share_asked(log, "full-reserve", 8) < 0.2  # the fear faded
    assert thin["dry_at_hours"] is not None and thin["dry_at_hours"] <= 1.5
    assert share_asked(log, "fractional", 8) > 0.9


def test_slow_bleed_takes_weeks_to_run_dry():
    result, log = simulated("slow-bleed")
    celsius = result["venues"]["celsius"]
    assert 0.03 <= share_asked(log, "celsius", 72) < 0.2  # the first days: a bleed, not a run
    assert share_asked(log, "celsius", 504) < 0.3  # three weeks in
    assert celsius["dry_at_hours"] is not None and celsius["dry_at_hours"] > 504
    assert celsius["halted_at_hours"] is not None
    assert result["venues"]["full-reserve"]["paid_fraction"] == 1.0


def test_contagion_reaches_the_lender_with_a_large_exposure_after_ftx_halts():
    result, _ = simulated("contagion")
    rows = result["venues"]
    assert (rows["ftx"]["dry_at_hours"], rows["ftx"]["halted_at_hours"]) == (16, 56)  # as in 2022
    halted = rows["ftx"]["halted_at_hours"]
    for lender in ("blockfi", "genesis"):
        assert rows[lender]["claims_frozen_at_hours"] == halted
    blockfi = rows["blockfi"]
    assert blockfi["dry_at_hours"] >= halted
    assert blockfi["halted_at_hours"] == blockfi["dry_at_hours"] + 48  # its gate
    assert 96 <= blockfi["halted_at_hours"] <= 120  # BlockFi paused on 10 Nov
    assert rows["genesis"]["dry_at_hours"] is None  # its FTX claim alone did not sink it
    assert rows["unexposed"]["withdrawals_requested"] == 0


@pytest.mark.parametrize("name", scenario.shipped())
def test_every_shipped_scenario_says_where_it_comes_from(name):
    header = scenario.resolve(name).read_text().split("\nname:")[0]
    assert header.startswith(f"# {name}:") and header.count("\n") >= 3, name


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
