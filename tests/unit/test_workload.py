import pytest

from bankrun import scenario, workload

SPEC = scenario.load("dry-arithmetic")


@pytest.mark.parametrize("distribution", ["equal", "uniform", "pareto"])
def test_balances_add_up_to_the_deposits_exactly(distribution):
    venue = SPEC.venues[0].model_copy(
        update={
            "balances": SPEC.venues[0].balances.model_copy(update={"distribution": distribution})
        }
    )
    people = workload.customers(SPEC, venue)
    assert sum(c.balance for c in people) == venue.total_deposits
    assert min(c.balance for c in people) >= 1
    assert len(people) == venue.customers


def test_pareto_makes_whales():
    people = sorted(workload.customers(SPEC, SPEC.venues[0]), key=lambda c: -c.balance)
    top_tenth = sum(c.balance for c in people[: len(people) // 10])
    assert top_tenth > 0.3 * SPEC.venues[0].total_deposits


def test_the_constant_load_asks_the_same_amount_every_hour():
    requests = [r for r in workload.requests(SPEC) if r.venue == "frac-10"]
    per_hour: dict[int, int] = {}
    for r in requests:
        per_hour[int(r.at // 3600)] = per_hour.get(int(r.at // 3600), 0) + r.amount
    assert set(per_hour.values()) == {SPEC.load.amount_per_hour}
    assert len(per_hour) == SPEC.duration_hours
    assert workload.requests(SPEC) == workload.requests(SPEC)  # seeded


def test_nobody_is_planned_to_ask_for_more_than_they_hold():
    held = {c.account: c.balance for c in workload.customers(SPEC, SPEC.venues[0])}
    for r in workload.requests(SPEC):
        if r.venue == "frac-10":
            held[r.account] -= r.amount
    assert min(held.values()) >= 0


def test_ticks_reach_the_end_of_the_scenario():
    times = workload.tick_times(SPEC)
    assert times[0] == SPEC.tick_hours * 3600
    assert times[-1] == SPEC.duration_hours * 3600
