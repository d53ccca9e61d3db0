"""Exactly-once effects over at-least-once delivery, and the saga told end to end in memory."""

from bankrun import events as ev
from bankrun.domain import ledger
from bankrun.sim import InProcessBus
from services.common.journal import Effects, Journal, Partition
from services.custody import handlers as custody

VENUE = "safe-1"


def deposit_effects(amount: int) -> Effects:
    effects = Effects()
    effects.increments = {"hot": amount, "alice": -amount}
    return effects


def test_a_duplicate_is_applied_once_and_re_emits_its_outputs():
    part = Partition({})
    first, new = part.commit("e1", lambda: deposit_effects(5))
    again, new_again = part.commit("e1", lambda: deposit_effects(999))
    assert (new, new_again) == (True, False)
    assert part.get("hot") == 5
    assert again.increments == first.increments


def test_a_restarted_worker_rebuilds_the_same_state_from_the_records():
    records: dict = {}
    before = Journal(records)
    for n, amount in enumerate((5, 7, 11)):
        before.at(n % 2).commit(f"e{n}", lambda a=amount: deposit_effects(a))
    set_later = Effects(sets={"venue/x": {"policy": "lcr"}})
    before.at(0).commit("e9", lambda: set_later)
    after = Journal(records)  # the worker died; its records survived in the changelog
    assert (
        after.at(0).state
        == before.at(0).state
        == {"hot": 16, "alice": -16, "venue/x": {"policy": "lcr"}}
    )
    assert after.at(1).state == {"hot": 7, "alice": -7}
    _, new = after.at(1).commit("e1", lambda: deposit_effects(7))
    assert not new  # redelivered after the restart: a duplicate, not a second deposit


def test_sets_replay_in_the_order_they_were_made():
    records: dict = {}
    part = Partition(records)
    for n, policy in enumerate(("a", "b", "c")):
        part.commit(f"e{n}", lambda p=policy: Effects(sets={"k": p}))
    assert Partition(records).rebuild().get("k") == "c"


def test_a_forgotten_partition_is_rebuilt_when_it_comes_back():
    records: dict = {}
    journal = Journal(records)
    journal.at(2).commit("e1", lambda: deposit_effects(3))
    Journal(records).at(2).commit("e2", lambda: deposit_effects(4))  # another worker had it
    journal.forget({2})
    assert journal.at(2).get("hot") == 7


def test_a_decision_to_do_nothing_is_recorded_and_not_taken_again():
    records: dict = {}
    part = Partition(records)
    part.commit("noop", Effects)
    _, new = part.commit("noop", lambda: deposit_effects(5))  # redelivered when state moved on
    assert not new
    assert part.get("hot") is None
    assert Partition(records).rebuild().state == {}


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
