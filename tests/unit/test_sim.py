"""`sim`: the core alone against the acceptance arithmetic, and its answers under duplicates."""

import uuid

import pytest

from bankrun import scenario, sim, summary, workload

ARITHMETIC = scenario.load("dry-arithmetic")


@pytest.fixture(scope="module")
def arithmetic():
    bus = sim.simulate(ARITHMETIC)
    return summary.summarize(bus.log, {}), bus


def test_a_fractional_buffer_runs_dry_at_liquid_over_rate(arithmetic):
    result, _ = arithmetic
    frac = result["venues"]["frac-10"]
    assert frac["liquid_start"] == 100_000_000 and frac["liabilities_start"] == 1_000_000_000
    step = ARITHMETIC.load.step_hours
    assert abs(frac["dry_at_hours"] - 100_000_000 / 10_000_000) <= step
    assert frac["amount_paid"] == 100_000_000  # the buffer, to the last unit, and no more
    assert frac["withdrawals_queued"] == frac["withdrawals_requested"] - frac["withdrawals_paid"]


def test_full_reserve_pays_every_valid_request(arithmetic):
    result, _ = arithmetic
    full = result["venues"]["full-1"]
    assert full["withdrawals_paid"] == full["withdrawals_requested"] > 0
    assert full["paid_fraction"] == 1.0
    warm_delay = ARITHMETIC.venues[1].params["warm_delay_hours"]
    assert full["latency_p99_hours"] <= warm_delay  # late only by its tier delay


def test_the_log_conserves_money(arithmetic):
    _, bus = arithmetic
    assert summary.check(bus.log) == []


def test_a_tampered_log_is_caught(arithmetic):
    _, bus = arithmetic
    paid = next(e for e in bus.log if type(e).__name__ == "WithdrawalPaid")
    forged = paid.model_copy(update={"event_id": uuid.uuid4()})
    problems = summary.check([*bus.log, forged])
    assert any("paid 2 times" in p for p in problems)


def test_duplicates_change_nothing(arithmetic):
    result, _ = arithmetic
    bus = sim.InProcessBus()
    for event in sim.timeline(ARITHMETIC):
        bus.publish(event)
        bus.publish(event)  # every input delivered twice
    again = summary.summarize(bus.log, {})
    assert again == result


def test_a_gate_halts_after_the_buffer_runs_dry():
    spec = scenario.load("policies-48h")
    result = summary.summarize(sim.simulate(spec).log, {})["venues"]
    gated, plain = result["gated"], result["fractional"]
    assert gated["halted_at_hours"] == pytest.approx(gated["dry_at_hours"] + 4, abs=0.25)
    assert gated["rejected_by_reason"].get("venue_halted", 0) > 0
    assert plain["halted_at_hours"] is None
    assert result["full-reserve"]["withdrawals_rejected"] == 0
    assert result["commingled"]["fire_sale_losses"] > 0


def test_sim_is_deterministic():
    a = summary.summarize(sim.simulate(ARITHMETIC).log, {})
    b = summary.summarize(sim.simulate(ARITHMETIC).log, {})
    assert a == b
    assert len(workload.requests(ARITHMETIC)) == a["venues"]["frac-10"]["withdrawals_requested"] * 2
