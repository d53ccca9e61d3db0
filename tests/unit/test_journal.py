"""Exactly-once effects over at-least-once delivery, and the saga told end to end in memory."""

import contextlib

from bankrun import events as ev
from bankrun.domain import ledger
from bankrun.sim import InProcessBus
from services.common.journal import Effects, Journal
from services.custody import handlers as custody

VENUE = "safe-1"


class Crash(Exception):
    pass


class Disk:
    """Writes left before the worker is killed, shared by every store of that worker."""

    def __init__(self, writes: int):
        self.left = writes


class CrashingStore(dict):
    def __init__(self, disk: Disk):
        super().__init__()
        self.disk = disk

    def __setitem__(self, key, value):
        if self.disk.left == 0:
            raise Crash
        self.disk.left -= 1
        super().__setitem__(key, value)


def deposit_effects(amount: int) -> Effects:
    effects = Effects()
    effects.increments = {"hot": amount, "alice": -amount}
    return effects


def test_a_duplicate_is_applied_once_and_re_emits_its_outputs():
    journal = Journal({}, {})
    first, new = journal.commit("e1", lambda: deposit_effects(5))
    again, new_again = journal.commit("e1", lambda: deposit_effects(999))
    assert (new, new_again) == (True, False)
    assert journal.get("hot") == 5
    assert again.increments == first.increments


def test_a_crash_mid_event_resumes_without_double_applying():
    # one event writes 4 times: its record, two balances, the record marked done
    for writes in range(4):
        disk = Disk(writes)
        journal = Journal(CrashingStore(disk), CrashingStore(disk))
        with contextlib.suppress(Crash):
            journal.commit("e1", lambda: deposit_effects(5))
        disk.left = 10**6  # the worker restarts with whatever was written
        journal.commit("e1", lambda: deposit_effects(7))
        journal.commit("e1", lambda: deposit_effects(9))
        # killed before its record was written, the event is decided afresh (7); after, the
        # recorded decision (5) is finished; either way it is applied exactly once
        once = 7 if writes == 0 else 5
        assert (journal.get("hot"), journal.get("alice")) == (once, -once), writes


def test_the_withdrawal_story():
    bus = InProcessBus()
    bus.publish(ev.VenueOpened(venue=VENUE, scenario_time=0, policy="full-reserve"))
    bus.publish(ev.AccountOpened(venue=VENUE, scenario_time=0, account="whale-1", asset="USD"))
    bus.publish(
        ev.DepositMade(venue=VENUE, scenario_time=0, account="whale-1", asset="USD", amount=1_000)
    )
    ask = ev.WithdrawalRequested(
        venue=VENUE, scenario_time=60, account="whale-1", asset="USD", request_id="w-1", amount=600
    )
    bus.publish(ask)
    bus.publish(ask)  # the customer's retry reaches the log twice
    greedy = ev.WithdrawalRequested(
        venue=VENUE, scenario_time=70, account="whale-1", asset="USD", request_id="w-2", amount=600
    )
    bus.publish(greedy)

    def outcome(request_id):
        done = (ev.WithdrawalPaid, ev.WithdrawalRejected)
        return next(e for e in bus.log if isinstance(e, done) and e.request_id == request_id)

    assert isinstance(outcome("w-1"), ev.WithdrawalPaid)
    refused = outcome("w-2")
    assert isinstance(refused, ev.WithdrawalRejected)
    assert refused.reason == "insufficient_balance"
    custody_state = bus.services["custody"][0]
    owed = custody_state.get(custody.total_key(VENUE, "liabilities", "USD"))
    hot = custody_state.get(custody.total_key(VENUE, "hot", "USD"))
    assert (owed, hot) == (400, 400)  # paid once, not twice
    assert ledger.invariant_violations(bus.ledger_balances()) == []
    paid = [e for e in bus.log if isinstance(e, ev.WithdrawalPaid)]
    assert len({e.event_id for e in paid}) == 1
