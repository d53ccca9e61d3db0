"""The monitoring as tested code: rules and alerts pass promtool's checks and unit tests, every
alert is tested firing and not firing, has its runbook, and both scrape configs come from one
piece of code."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from bankrun.runner.prometheus import (
    COMPOSE_CONFIG,
    OPS_DIR,
    RULES,
    compose_config_text,
    scrape_config,
)

README = Path(__file__).resolve().parents[2] / "README.md"
TESTS = sorted((OPS_DIR / "tests").glob("*.test.yml"))
RULE_FILES = sorted(RULES.glob("*.yml"))


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary, "promtool is missing: apt-get install -y prometheus"
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=120)


def alerts() -> dict[str, dict]:
    rules = [
        r for f in RULE_FILES for g in yaml.safe_load(f.read_text())["groups"] for r in g["rules"]
    ]
    return {r["alert"]: r for r in rules if "alert" in r}


def test_the_rules_pass_promtool_check():
    assert RULE_FILES
    done = promtool("check", "rules", *map(str, RULE_FILES))
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_rules_pass_their_promtool_unit_tests():
    assert TESTS
    done = promtool("test", "rules", *map(str, TESTS))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_alert_is_tested_firing_and_not_firing():
    cases: dict[str, set[bool]] = {}
    for path in TESTS:
        for group in yaml.safe_load(path.read_text())["tests"]:
            for case in group.get("alert_rule_test", []):
                cases.setdefault(case["alertname"], set()).add(bool(case["exp_alerts"]))
    assert set(alerts()) == {
        "LiquidityBufferDry",
        "LiquidityRunwayLow",
        "WithdrawalQueueGrowing",
        "VenueHalted",
        "ReserveRatioBelowPolicy",
        "ServiceDown",
    }
    for name in alerts():
        assert cases.get(name) == {True, False}, name


@pytest.mark.parametrize("name", sorted(alerts()))
def test_every_alert_says_what_happened_and_has_a_runbook(name):
    rule = alerts()[name]
    assert rule["labels"]["severity"] in ("warning", "critical")
    notes = rule["annotations"]
    assert notes["summary"] and notes["description"]
    anchor = notes["runbook"].removeprefix("README.md#")
    headings = re.findall(r"^#+ (.+)$", README.read_text(), re.M)
    assert anchor in {h.strip().lower().replace(" ", "-") for h in headings}, anchor


def test_the_compose_scrape_config_is_generated_and_both_configs_are_valid(tmp_path):
    assert COMPOSE_CONFIG.read_text() == compose_config_text(), (
        "ops/prometheus/prometheus.compose.yml is stale: run `python -m bankrun.runner.prometheus`"
    )
    embedded = tmp_path / "prometheus.yml"
    embedded.write_text(yaml.safe_dump(scrape_config({"custody": "127.0.0.1:9001"}, "r1")))
    for config in (COMPOSE_CONFIG, embedded):
        done = promtool("check", "config", str(config))
        assert done.returncode == 0, done.stdout + done.stderr
    assert yaml.safe_load(embedded.read_text())["rule_files"] == [str(RULES / "*.yml")]
