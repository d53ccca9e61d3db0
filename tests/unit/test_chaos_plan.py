"""Chaos plans: validated like scenarios (the field named), random actions drawn from a seed."""

from __future__ import annotations

from pathlib import Path

import pytest

from bankrun.chaos import ChaosPlan, InvalidPlan, Kill, load_plan, resolve_plan


def plan_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    return path


class TestValidation:
    def test_the_shipped_plans_load(self):
        for name in ("kill-each-twice", "flash-kills"):
            assert load_plan(resolve_plan(name)).concrete(120)

    @pytest.mark.parametrize(
        ("text", "field"),
        [
            ("actions: [{do: kill, service: ledger, at_hours: 1}]", "actions.0.kill.service"),
            ("actions: [{do: pause, service: custody, at_hours: 1}]", "actions.0.pause.for_s"),
            ("actions: [{do: kill, service: custody, at_hours: -1}]", "actions.0.kill.at_hours"),
            ("actions: [{do: explode, at_hours: 1}]", "actions.0"),
            ("random: {seed: 1, kills: 3}", "random.kills"),
            ("random: {down_s: [5, 1]}", "random"),
            ("actions: [{do: duplicate, topic: nope, at_hours: 1}]", "actions.0.duplicate"),
            ("surprise: true", "surprise"),
            (
                "actions: [{do: kill, service: custody, at_hours: 1, replica: 1}]",
                "actions.0.kill.replica: Value error, not yet",
            ),
        ],
    )
    def test_a_bad_plan_names_the_field(self, tmp_path, text, field):
        with pytest.raises(InvalidPlan) as bad:
            load_plan(plan_file(tmp_path, text))
        assert f"{field}" in str(bad.value)

    def test_an_action_after_the_scenario_ends_is_refused(self):
        plan = ChaosPlan.model_validate(
            {"actions": [{"do": "kill", "service": "custody", "at_hours": 9}]}
        )
        assert plan.check_against(8) == [
            "actions.0.at_hours: 9.0 is after the scenario's end (8 h)"
        ]


class TestRandom:
    def test_the_same_seed_draws_the_same_actions(self):
        plan = ChaosPlan.model_validate({"random": {"seed": 7, "kills_per_service": 2}})
        assert plan.concrete(120) == plan.concrete(120)
        other = ChaosPlan.model_validate({"random": {"seed": 8, "kills_per_service": 2}})
        assert other.concrete(120) != plan.concrete(120)

    def test_every_service_is_killed_as_often_as_asked_within_the_window(self):
        plan = ChaosPlan.model_validate(
            {"random": {"seed": 1, "kills_per_service": 2, "between_hours": [2, 10]}}
        )
        kills = [a for a in plan.concrete(120) if isinstance(a, Kill)]
        assert sorted(a.service for a in kills) == sorted(
            ["custody", "withdrawal", "matching", "gateway"] * 2
        )
        assert all(2 <= a.at_hours <= 10 for a in kills)
        assert [a.at_hours for a in plan.concrete(120)] == sorted(
            a.at_hours for a in plan.concrete(120)
        )
