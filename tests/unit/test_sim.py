"""`sim`: the core alone against the acceptance arithmetic, and its answers under duplicates."""

import uuid

import pytest

from bankrun import events as ev
from bankrun import scenario, sim, summary, workload
from bankrun.topics import topic_of

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


def test_a_service_journals_only_the_events_it_handles_as_on_the_broker(arithmetic):
    """On the broker, a service drops unread any type on its topics it has no handler for
    (`faust_app.decode`): the bus hands it no other, and its journal records no other."""
    _, bus = arithmetic
    for name, (journal, _) in bus.services.items():
        mine = {
            e.event_id
            for e in bus.log
            if name in topic_of(type(e)).readers and e.type in sim.HANDLED[name]
        }
        assert mine and set(journal.records) == {i.int for i in mine}
    funded = next(e for e in bus.log if isinstance(e, ev.AccountFunded))
    assert "withdrawal" in topic_of(ev.AccountFunded).readers  # read there, never handled
    assert "withdrawal" not in sim.handlers_of(ev.AccountFunded)
    assert funded.event_id.int not in bus.services["withdrawal"][0].records


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


class TestQueueAndCancel:
    """A fractional venue with 10 % liquid: the second big ask waits; its owner takes it back."""

    def venue(self) -> sim.InProcessBus:
        bus = sim.InProcessBus()
        v = "thin-1"
        bus.publish(
            ev.VenueOpened(
                venue=v,
                scenario_time=0,
                policy="fractional",
                params={"liquid_ratio": 0.1, "cold_delay_hours": 1000},
                markets=workload.holding_markets(),
            )
        )
        for who in ("whale-1", "minnow-1"):
            bus.publish(
                ev.AccountFunded(venue=v, scenario_time=0, account=who, asset="USD", amount=1_000)
            )
        bus.publish(
            ev.ScenarioStarted(venue=v, scenario_time=0, started_at=0, speed=1, duration_hours=1)
        )
        return bus

    def ask(self, bus, who, rid, amount, at=60.0):
        bus.publish(
            ev.WithdrawalRequested(
                venue="thin-1",
                scenario_time=at,
                account=who,
                asset="USD",
                request_id=rid,
                amount=amount,
            )
        )

    def outcomes(self, bus, rid):
        """Saga outcomes for `rid`, redelivered copies dropped."""
        kinds = (
            ev.WithdrawalPaid,
            ev.WithdrawalQueued,
            ev.WithdrawalCancelled,
            ev.WithdrawalRejected,
        )
        return [
            type(e).__name__
            for e in summary.unique(bus.log)
            if isinstance(e, kinds) and e.request_id == rid
        ]

    def test_a_queued_withdrawal_can_be_cancelled_and_its_money_comes_back(self):
        bus = self.venue()
        self.ask(bus, "whale-1", "w-1", 150)
        self.ask(bus, "minnow-1", "m-1", 100)
        assert self.outcomes(bus, "w-1") == ["WithdrawalPaid"]
        assert self.outcomes(bus, "m-1") == ["WithdrawalQueued"]
        cancel = ev.WithdrawalCancelRequested(
            venue="thin-1", scenario_time=90, account="minnow-1", asset="USD", request_id="m-1"
        )
        bus.publish(cancel)
        bus.publish(cancel)  # twice: changes nothing more
        assert self.outcomes(bus, "m-1") == ["WithdrawalQueued", "WithdrawalCancelled"]
        last = [
            e for e in bus.log if isinstance(e, ev.BalanceSnapshot) and e.account == "minnow-1"
        ][-1]
        assert last.available == 1_000
        assert summary.check(bus.log) == []
        row = summary.summarize(bus.log, {})["venues"]["thin-1"]
        assert (row["withdrawals_cancelled"], row["withdrawals_queued"]) == (1, 0)

    def test_a_paid_withdrawal_cannot_be_cancelled(self):
        bus = self.venue()
        self.ask(bus, "whale-1", "w-1", 150)
        bus.publish(
            ev.WithdrawalCancelRequested(
                venue="thin-1", scenario_time=90, account="whale-1", asset="USD", request_id="w-1"
            )
        )
        assert self.outcomes(bus, "w-1") == ["WithdrawalPaid"]
