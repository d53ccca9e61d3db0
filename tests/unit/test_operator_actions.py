"""The operator's gate, halt and policy change, told through the custody and saga handlers on
the in-process bus: what each command does to the venue's withdrawals, that a command
delivered twice (or repeated) changes nothing more, and that the summary names each one."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from bankrun import events as ev
from bankrun import summary
from bankrun.cli import app
from bankrun.sim import InProcessBus
from bankrun.topics import topic_of
from services.custody import handlers as custody

VENUE = "safe-1"
HOUR = 3600.0
DAY = 24 * HOUR


def opened(bus: InProcessBus, **params: float) -> None:
    """A full-reserve venue with whale-1 funded at genesis, its scenario started."""
    bus.publish(ev.VenueOpened(venue=VENUE, scenario_time=0, policy="full-reserve", params=params))
    bus.publish(
        ev.AccountFunded(venue=VENUE, scenario_time=0, account="whale-1", asset="USD", amount=1000)
    )
    bus.publish(
        ev.ScenarioStarted(venue=VENUE, scenario_time=0, started_at=0, speed=1, duration_hours=72)
    )


def ask(bus: InProcessBus, request_id: str, amount: int, at: float) -> None:
    bus.publish(
        ev.WithdrawalRequested(
            venue=VENUE,
            scenario_time=at,
            account="whale-1",
            asset="USD",
            request_id=request_id,
            amount=amount,
        )
    )


def since(bus: InProcessBus, mark: int, kind: type[ev.Event]) -> list:
    return [e for e in bus.log[mark:] if isinstance(e, kind)]


def outcome(bus: InProcessBus, request_id: str) -> str | None:
    kinds = (ev.WithdrawalPaid, ev.WithdrawalQueued, ev.WithdrawalRejected)
    found = [e.type for e in bus.log if isinstance(e, kinds) and e.request_id == request_id]
    return found[-1].removeprefix("withdrawal.") if found else None


@pytest.fixture
def bus() -> InProcessBus:
    bus = InProcessBus()
    opened(bus, hot_ratio=1.0, warm_ratio=0.0)
    return bus


class TestGate:
    def test_a_gated_venue_queues_requests_and_pays_them_once_the_gate_is_lifted(self, bus):
        gate = ev.GateRequested(venue=VENUE, scenario_time=HOUR, gated=True, reason="audit")
        bus.publish(gate)
        assert [g.reason for g in since(bus, 0, ev.VenueGated)] == ["audit"]
        ask(bus, "w-1", 100, at=2 * HOUR)
        bus.publish(ev.ClockTick(venue=VENUE, scenario_time=3 * HOUR))
        assert outcome(bus, "w-1") == "queued"  # cash enough, but the gate holds

        lift = ev.GateRequested(venue=VENUE, scenario_time=4 * HOUR, gated=False, reason="done")
        bus.publish(lift)
        assert [u.reason for u in since(bus, 0, ev.VenueUngated)] == ["done"]
        bus.publish(ev.ClockTick(venue=VENUE, scenario_time=5 * HOUR))
        assert outcome(bus, "w-1") == "paid"

    def test_a_command_again_or_a_second_gate_changes_nothing(self, bus):
        """A redelivered command re-sends what it caused under the same id (consumers drop
        it); a second gate while gated, or a second lift, causes nothing."""
        gate = ev.GateRequested(venue=VENUE, scenario_time=HOUR, gated=True, reason="audit")
        bus.publish(gate)
        bus.publish(gate)  # redelivered
        bus.publish(ev.GateRequested(venue=VENUE, scenario_time=HOUR, gated=True, reason="again"))
        bus.publish(ev.GateRequested(venue=VENUE, scenario_time=HOUR, gated=False, reason="x"))
        bus.publish(ev.GateRequested(venue=VENUE, scenario_time=HOUR, gated=False, reason="y"))
        assert len({g.event_id for g in since(bus, 0, ev.VenueGated)}) == 1
        assert [u.reason for u in since(bus, 0, ev.VenueUngated)] == ["x"]

    def test_a_gate_with_a_cap_refuses_what_passes_it_that_day(self, bus):
        gate = ev.GateRequested(
            venue=VENUE, scenario_time=HOUR, gated=True, max_per_account_per_day=150, reason="cap"
        )
        bus.publish(gate)
        ask(bus, "w-1", 100, at=2 * HOUR)
        ask(bus, "w-2", 100, at=3 * HOUR)
        ask(bus, "w-3", 100, at=DAY + HOUR)  # a new scenario day
        assert [outcome(bus, r) for r in ("w-1", "w-2", "w-3")] == ["paid", "rejected", "paid"]
        assert since(bus, 0, ev.WithdrawalRejected)[0].reason == "gated"

        bus.publish(ev.GateRequested(venue=VENUE, scenario_time=DAY, gated=False, reason="ok"))
        ask(bus, "w-4", 500, at=DAY + 2 * HOUR)
        assert outcome(bus, "w-4") == "paid"


class TestHalt:
    def test_a_halted_venue_refuses_requests_and_gives_the_money_back(self, bus):
        bus.publish(ev.HaltRequested(venue=VENUE, scenario_time=HOUR, reason="regulator"))
        bus.publish(ev.HaltRequested(venue=VENUE, scenario_time=HOUR, reason="twice"))
        assert [h.reason for h in since(bus, 0, ev.VenueHalted)] == ["regulator"]
        ask(bus, "w-1", 100, at=2 * HOUR)
        assert outcome(bus, "w-1") == "rejected"
        rejected = since(bus, 0, ev.WithdrawalRejected)[0]
        assert rejected.reason == "venue_halted"
        balances = since(bus, 0, ev.BalanceSnapshot)
        assert balances[-1].available == 1000  # reserved, then released

    def test_the_halt_of_an_unknown_venue_does_nothing(self):
        bus = InProcessBus()
        bus.publish(ev.HaltRequested(venue="nowhere", scenario_time=0, reason="typo"))
        assert not since(bus, 0, ev.VenueHalted)


class TestPolicyChange:
    def test_custody_finds_cash_by_the_new_params_from_then_on(self):
        """hot 20 %, warm 80 % an hour away; the operator makes warm ten hours away: the next
        shortfall's move from warm lands ten hours later."""
        bus = InProcessBus()
        opened(bus, hot_ratio=0.2, warm_ratio=0.8, warm_delay_hours=1.0)
        change = ev.PolicyChangeRequested(
            venue=VENUE,
            scenario_time=HOUR,
            policy="full-reserve",
            params={"hot_ratio": 0.2, "warm_ratio": 0.8, "warm_delay_hours": 10.0},
            reason="slower_custodian",
        )
        bus.publish(change)
        changed = since(bus, 0, ev.PolicyChanged)
        assert [(c.policy, c.previous) for c in changed] == [("full-reserve", "full-reserve")]
        config = bus.services["custody"][0].get(custody.venue_key(VENUE))
        assert config["params"]["warm_delay_hours"] == 10.0

        mark = len(bus.log)
        ask(bus, "w-1", 500, at=2 * HOUR)  # more than the 200 hot
        moves = since(bus, mark, ev.MobilizationStarted)
        assert moves and {m.source for m in moves} == {"warm"}
        assert all(m.lands_at == 12 * HOUR for m in moves)

    def test_another_policy_takes_over_the_label_of_the_saga(self, bus):
        change = ev.PolicyChangeRequested(
            venue=VENUE, scenario_time=HOUR, policy="fractional", reason="cheaper"
        )
        bus.publish(change)
        saga_config = bus.services["withdrawal"][0].get(f"venue/{VENUE}")
        assert saga_config["policy"] == "fractional"

    def test_params_the_policy_refuses_are_refused(self, bus):
        bad = ev.PolicyChangeRequested(
            venue=VENUE,
            scenario_time=HOUR,
            policy="fractional",
            params={"liquid_ratio": 2},
            reason="typo",
        )
        with pytest.raises(ValueError, match="liquid_ratio"):
            bus.publish(bad)  # on the stack: dead-lettered with the reason


def test_the_summary_lists_what_the_operator_did(bus):
    bus.publish(ev.GateRequested(venue=VENUE, scenario_time=HOUR, gated=True, reason="audit"))
    bus.publish(ev.HaltRequested(venue=VENUE, scenario_time=2 * HOUR, reason="regulator"))
    row = summary.summarize(bus.log, {})["venues"][VENUE]
    assert [(a["action"], a["at_hours"], a["reason"]) for a in row["operator_actions"]] == [
        ("gate", 1.0, "audit"),
        ("halt", 2.0, "regulator"),
    ]
    assert (row["gated_at_hours"], row["halted_at_hours"]) == (1.0, 2.0)


def test_verify_recomputes_them_from_the_log(tmp_path, bus):
    """`bankrun verify` holds summary.json's operator_actions to events.jsonl: a command left
    out of the log is a difference it names."""
    bus.publish(ev.GateRequested(venue=VENUE, scenario_time=HOUR, gated=True, reason="audit"))
    bus.publish(ev.HaltRequested(venue=VENUE, scenario_time=2 * HOUR, reason="regulator"))
    (tmp_path / "summary.json").write_text(json.dumps(summary.summarize(bus.log, {})))
    records = [
        {"topic": topic_of(type(e)).name, "value": json.loads(e.to_bytes())} for e in bus.log
    ]
    summary.write_log(tmp_path / "events.jsonl", records)
    assert CliRunner().invoke(app, ["verify", str(tmp_path)]).exit_code == 0

    no_halt = [r for r in records if r["value"]["type"] != "operator.halt"]
    summary.write_log(tmp_path / "events.jsonl", no_halt)
    checked = CliRunner().invoke(app, ["verify", str(tmp_path)])
    assert checked.exit_code == 1 and "operator_actions" in checked.output
