"""The panic load in `sim`: fear feeds on what the venue answers, so reserves change the run."""

from __future__ import annotations

from bankrun import scenario, sim, summary

PANIC = """
name: panic-check
seed: 3
duration_hours: 24
venues:
  - {id: thin, policy: fractional, params: {liquid_ratio: 0.05, cold_delay_hours: 48},
     customers: 400, total_deposits: 1000000000}
  - {id: deep, policy: fractional, params: {liquid_ratio: 0.9, cold_delay_hours: 48},
     customers: 400, total_deposits: 1000000000}
news:
  - {at_hours: 2, headline: "A balance-sheet leak", severity: 0.5}
load: {model: panic}
"""


def venues(text: str) -> dict:
    return summary.summarize(sim.simulate(scenario.parse(text)).log, {})["venues"]


def test_the_same_news_drains_a_thin_venue_and_not_a_deep_one():
    rows = venues(PANIC)
    thin, deep = rows["thin"], rows["deep"]
    assert thin["dry_at_hours"] is not None and deep["dry_at_hours"] is None
    assert deep["amount_requested"] < 0.8 * thin["amount_requested"]  # whales still leave
    assert deep["paid_fraction"] == 1.0
    assert thin["withdrawals_requested"] > 2 * deep["withdrawals_requested"]


def test_a_credible_guarantee_keeps_the_thin_venue_from_a_run():
    guarded = PANIC.replace(
        "load: {model: panic}", "load: {model: panic, params: {guarantee: 0.8}}"
    )
    assert (
        venues(guarded)["thin"]["amount_requested"]
        < 0.25 * venues(PANIC)["thin"]["amount_requested"]
    )


def test_a_panic_sim_is_deterministic_for_its_seed():
    assert venues(PANIC) == venues(PANIC)
    assert venues(PANIC) != venues(PANIC.replace("seed: 3", "seed: 4"))
