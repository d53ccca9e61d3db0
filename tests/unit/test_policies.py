"""Each reserve policy: where deposits sit, and what it mobilizes when cash runs short."""

import pytest
from pydantic import ValidationError

from bankrun.domain.ledger import Totals
from bankrun.domain.policies import POLICIES, Gate, Sheet, make_policy

L = 1_000_000_000
SEGMENTS = {"retail": 900_000_000, "whale": 100_000_000}


def test_every_canonical_policy_is_there():
    assert set(POLICIES) == {"full-reserve", "fractional", "lcr", "commingled"}


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_allocation_never_places_more_than_was_deposited(name):
    placed = make_policy(name).allocate(L, SEGMENTS)
    assert all(amount >= 0 for amount in placed.values())
    assert sum(placed.values()) <= L


def test_fractional_keeps_its_liquid_ratio_in_the_hot_wallet():
    placed = make_policy("fractional", {"liquid_ratio": 0.1}).allocate(L, SEGMENTS)
    assert L - sum(placed.values()) == 100_000_000


def test_fractional_sells_less_liquid_assets_at_a_haircut_to_cover_the_waiting():
    policy = make_policy(
        "fractional", {"liquid_ratio": 0.1, "haircut": 0.1, "cold_delay_hours": 72}
    )
    sheet = Sheet(Totals(liabilities=L, hot=0, less_liquid=900_000_000), SEGMENTS, waiting=9_000)
    (move,) = policy.on_shortfall(sheet)
    assert (move.source, move.proceeds, move.delay_hours) == ("less_liquid", 9_000, 72)
    assert move.amount == 10_000  # 9,000 of cash costs 10,000 of assets at a 10 % haircut


def test_nothing_is_mobilized_twice_for_the_same_need():
    policy = make_policy("fractional")
    in_transit = Sheet(
        Totals(liabilities=L, transit=9_000, less_liquid=10**8), SEGMENTS, waiting=9_000
    )
    assert policy.on_shortfall(in_transit) == []


def test_full_reserve_refills_from_warm_before_cold():
    policy = make_policy(
        "full-reserve",
        {"hot_ratio": 0.1, "warm_ratio": 0.2, "warm_delay_hours": 1, "cold_delay_hours": 24},
    )
    sheet = Sheet(
        Totals(liabilities=L, hot=0, warm=50_000_000, cold=700_000_000),
        SEGMENTS,
        waiting=10_000_000,
    )
    moves = policy.on_shortfall(sheet)
    assert [(m.source, m.delay_hours) for m in moves] == [("warm", 1), ("cold", 24)]
    assert sum(m.proceeds for m in moves) == 10_000_000 + 100_000_000
    assert all(m.amount == m.proceeds for m in moves)  # cash tiers: no haircut


def test_commingled_recovers_little_from_the_affiliate_loan():
    policy = make_policy(
        "commingled",
        {
            "liquid_ratio": 0.1,
            "affiliate_loan_ratio": 0.9,
            "token_collateral_ratio": 1.0,
            "token_haircut": 0.9,
        },
    )
    sheet = Sheet(Totals(liabilities=L, affiliate_loan=900_000_000), SEGMENTS, waiting=50_000_000)
    (move,) = policy.on_shortfall(sheet)
    assert move.source == "affiliate_loan"
    assert move.proceeds == 50_000_000
    assert move.amount == 500_000_000  # ten units of loan for one of cash


def test_lcr_holds_enough_hqla_for_thirty_days_of_stressed_outflows():
    policy = make_policy("lcr", {"run_off_rates": {"retail": 0.1, "whale": 0.4}, "target_lcr": 1.0})
    placed = policy.allocate(L, SEGMENTS)
    hot = L - sum(placed.values())
    t = Totals(liabilities=L, hot=hot, less_liquid=placed["less_liquid"], cold=placed["cold"])
    assert policy.lcr(Sheet(t, SEGMENTS)) == pytest.approx(1.0, rel=1e-6)


@pytest.mark.parametrize(
    ("name", "params", "field"),
    [
        ("fractional", {"liquid_ratio": 2}, "liquid_ratio"),
        ("fractional", {"haircut": 1}, "haircut"),
        ("full-reserve", {"hot_ratio": 0.7, "warm_ratio": 0.7}, "hot_ratio + warm_ratio"),
        ("commingled", {"liquid_rati0": 0.1}, "liquid_rati0"),
        ("lcr", {"run_off_rates": {"retail": -1}}, "retail"),
    ],
)
def test_bad_params_name_the_param(name, params, field):
    with pytest.raises(ValidationError) as bad:
        make_policy(name, params)
    assert field in str(bad.value)


def test_a_gate_must_do_something():
    with pytest.raises(ValidationError):
        Gate(trigger="dry")
    assert Gate(trigger="dry", halt=True).tripped(dry=True, liquid_ratio=None)
    ratio_gate = Gate(trigger="liquid_ratio_below", threshold=0.05, max_per_account_per_day=10)
    assert ratio_gate.tripped(dry=False, liquid_ratio=0.01)
    assert not ratio_gate.tripped(dry=False, liquid_ratio=0.5)


def test_each_policy_names_the_promise_its_alert_is_held_to():
    assert make_policy("full-reserve", {"hot_ratio": 0.15}).target() == ("reserve_ratio", 0.15)
    assert make_policy("fractional", {"liquid_ratio": 0.2}).target() == ("reserve_ratio", 0.2)
    assert make_policy("commingled", {"liquid_ratio": 0.1}).target() == ("reserve_ratio", 0.1)
    assert make_policy("lcr", {"target_lcr": 1.5}).target() == ("lcr", 1.5)
