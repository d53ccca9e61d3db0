import pytest

from bankrun import scenario
from bankrun.scenario import ScenarioError


def write(tmp_path, text: str):
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return path


GOOD = """
name: tiny
venues:
  - {id: safe-1, policy: full-reserve, customers: 3, balance_min: 100, balance_max: 200}
"""


def test_shipped_scenarios_load():
    for path in scenario.SCENARIO_DIR.glob("*.yaml"):
        assert scenario.load(path).venues


def test_a_good_file_loads(tmp_path):
    assert scenario.load(write(tmp_path, GOOD)).venues[0].customers == 3


@pytest.mark.parametrize(
    ("text", "names"),
    [
        (GOOD.replace("customers: 3", "customers: -3"), "venues.0.customers"),
        (GOOD.replace("balance_min: 100", "balance_min: 1.5"), "venues.0.balance_min"),
        (GOOD.replace("full-reserve", "fractional"), "not implemented yet"),
        (GOOD.replace("full-reserve", "yolo"), "unknown policy 'yolo'"),
        (GOOD + "surprise: 1\n", "surprise"),
        (GOOD.replace("name: tiny", "name: Tiny Run"), "name"),
    ],
)
def test_errors_name_the_field(tmp_path, text, names):
    with pytest.raises(ScenarioError) as bad:
        scenario.load(write(tmp_path, text))
    assert names in str(bad.value)


def test_unknown_scenario_name_lists_the_shipped_ones():
    with pytest.raises(ScenarioError, match="slice"):
        scenario.load("no-such-scenario")
