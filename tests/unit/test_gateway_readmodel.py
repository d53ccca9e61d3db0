"""What the gateway tells customers, folded from events: venue status, the outcomes feed, time."""

from __future__ import annotations

from bankrun import events as ev
from bankrun.clock import ScenarioClock
from services.gateway.readmodel import ReadModel

VENUE = "thin"


def step(cls: type, request_id: str, t: float, **extra: object) -> ev.Event:
    return cls(
        venue=VENUE,
        scenario_time=t,
        account="c-1",
        asset="USD",
        request_id=request_id,
        amount=10,
        requested_at=0.0,
        **extra,
    )


def opened() -> ReadModel:
    model = ReadModel()
    model.apply(ev.VenueOpened(venue=VENUE, scenario_time=0, policy="fractional"))
    return model


def test_a_venue_is_open_then_gated_then_halted():
    model = opened()
    assert model.status(VENUE) == "open"
    model.apply(ev.VenueGated(venue=VENUE, scenario_time=3600, reason="buffer_dry"))
    assert model.status(VENUE) == "gated" and model.gated[VENUE] == 3600
    model.apply(ev.VenueHalted(venue=VENUE, scenario_time=7200, reason="gate_halt"))
    assert model.status(VENUE) == "halted" and model.halted[VENUE] == 7200


def test_the_outcomes_feed_lists_each_change_once_in_arrival_order():
    model = opened()
    queued = step(ev.WithdrawalQueued, "r-1", 60, position=0)
    model.apply(queued)
    model.apply(step(ev.WithdrawalPaid, "r-2", 60, latency_s=0))
    model.apply(queued)  # redelivered: not news
    model.apply(step(ev.WithdrawalPaid, "r-1", 900, latency_s=840))
    assert model.outcome_page(VENUE, 0, 10) == [("r-1", "queued"), ("r-2", "paid"), ("r-1", "paid")]
    assert model.outcome_page(VENUE, 1, 1) == [("r-2", "paid")]
    assert model.withdrawals[(VENUE, "r-1")]["status"] == "paid"
    assert model.withdrawals[(VENUE, "r-1")]["finished_at"] == 900
    assert model.counts[VENUE] == {"paid": 2, "queued": 0}


def test_requests_past_the_hot_ones_wait_on_disk_and_are_still_known():
    """A long run's requests do not all stay in memory; each is still answered."""
    model = ReadModel(hot=3)
    model.apply(ev.VenueOpened(venue=VENUE, scenario_time=0, policy="fractional"))
    for n in range(20):
        model.accepted(
            ev.WithdrawalRequested(
                venue=VENUE,
                scenario_time=60,
                account="c-1",
                asset="USD",
                request_id=f"r-{n}",
                amount=10,
            )
        )
        if n % 2:
            model.apply(step(ev.WithdrawalPaid, f"r-{n}", 90, latency_s=30))
    assert model.withdrawals.in_memory == 3
    assert model.withdrawals[(VENUE, "r-0")]["status"] == "requested"  # read back from disk
    assert model.withdrawals[(VENUE, "r-19")]["status"] == "paid"
    assert (VENUE, "r-20") not in model.withdrawals
    assert model.counts[VENUE] == {"requested": 10, "paid": 10}
    assert len(model.outcome_page(VENUE, 0, 100)) == 10


def test_time_is_the_last_tick_when_ticks_pace_the_run_and_the_wall_clock_otherwise():
    model = opened()
    fallback = ScenarioClock(0.0, 1.0)
    model.apply(
        ev.ScenarioStarted(
            venue=VENUE, scenario_time=0, started_at=1000.0, speed=60, duration_hours=1
        )
    )
    assert model.scenario_time(VENUE, 1010.0, fallback) == 600.0
    model = opened()
    model.apply(
        ev.ScenarioStarted(
            venue=VENUE,
            scenario_time=0,
            started_at=1000.0,
            speed=60,
            duration_hours=1,
            paced_by="ticks",
        )
    )
    assert model.scenario_time(VENUE, 1010.0, fallback) == 0.0
    model.apply(ev.ClockTick(venue=VENUE, scenario_time=900))
    assert model.scenario_time(VENUE, 5000.0, fallback) == 900
