import pytest

from bankrun import scenario
from bankrun.scenario import ScenarioError

GOOD = """
name: tiny
duration_hours: 6
venues:
  - id: frac
    policy: fractional
    params: {liquid_ratio: 0.2}
    customers: 3
    total_deposits: 1000
load: {model: constant, amount_per_hour: 10}
"""


def test_shipped_scenarios_load():
    shipped = list(scenario.SCENARIO_DIR.glob("*.yaml"))
    assert len(shipped) >= 2
    for path in shipped:
        assert scenario.load(path).venues


def test_a_good_file_loads_with_policy_defaults_filled_in():
    spec = scenario.parse(GOOD)
    assert spec.venues[0].params == {
        "liquid_ratio": 0.2,
        "cold_delay_hours": 72.0,
        "haircut": 0.1,
        "max_slippage_bps": 1000.0,
    }


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        ("customers: 3", "customers: -3", "venues.0.customers"),
        ("total_deposits: 1000", "total_deposits: 10.5", "venues.0.total_deposits"),
        ("liquid_ratio: 0.2", "liquid_ratio: 1.5", "params.liquid_ratio"),
        ("liquid_ratio: 0.2", "liquid_rate: 0.2", "params.liquid_rate"),
        ("policy: fractional", "policy: yolo", "unknown policy 'yolo'"),
        ("duration_hours: 6", "duration_hours: 0", "duration_hours"),
        ("amount_per_hour: 10", "amount_per_hour: -1", "load.amount_per_hour"),
        ("name: tiny", "name: Tiny Run", "name"),
        ("customers: 3", "customers: 3\n    gate: {trigger: dry}", "venues.0.gate"),
    ],
)
def test_errors_name_the_field(old, new, named):
    with pytest.raises(ScenarioError) as bad:
        scenario.parse(GOOD.replace(old, new))
    assert named in str(bad.value)


def test_duplicate_venues_are_refused():
    venue = GOOD[GOOD.index("  - id") : GOOD.index("load:")]
    with pytest.raises(ScenarioError, match="unique"):
        scenario.parse(GOOD.replace("load:", venue + "load:"))


def test_unknown_scenario_name_lists_the_shipped_ones():
    with pytest.raises(ScenarioError, match="policies-48h"):
        scenario.load("no-such-scenario")
