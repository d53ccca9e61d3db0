from bankrun import scenario
from bankrun.workload import expected, plan


def test_the_plan_is_seeded_and_the_core_answer_adds_up():
    spec = scenario.load("slice")
    assert plan(spec) == plan(spec)
    outcome = expected(spec, plan(spec))["safe-1"]
    requested = len(plan(spec).withdrawals)
    assert outcome.paid + sum(outcome.rejected.values()) == requested
    assert outcome.liabilities_end + outcome.paid_amount == outcome.liabilities_start
    assert outcome.hot_end == outcome.liabilities_end  # full reserve
