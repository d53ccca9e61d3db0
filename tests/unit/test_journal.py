"""Exactly-once effects over at-least-once delivery, and the saga told end to end in memory."""

import pytest

from bankrun import events as ev
from bankrun.domain import ledger
from bankrun.sim import InProcessBus
from services.common.journal import SNAPSHOT, Effects, Folding, Journal, Output, Partition
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


def test_an_in_process_partition_drops_a_duplicate_and_keeps_only_ids():
    records: dict = {}
    part = Partition(records, durable=False)
    first, new = part.commit(
        1, lambda: Effects(increments={"hot": 5}, outputs=[Output("t", "k", b"x")])
    )
    again, new_again = part.commit(1, lambda: deposit_effects(999))
    assert (new, new_again) == (True, False)
    assert part.get("hot") == 5
    assert first.outputs and not again.outputs and not again.increments  # nothing sent twice
    assert records == {1: True}  # no effects, events or bytes held for the rest of the sim


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


def paying(amount: int) -> Effects:
    effects = deposit_effects(amount)
    effects.outputs.append(Output("t", "k", f"paid {amount}".encode()))
    return effects


def test_folding_keeps_the_last_records_whole_and_still_drops_old_duplicates():
    changelog: dict = {}
    part = Partition(changelog, fold=Folding(lambda: changelog, keep=2))
    for n in range(5):
        part.commit(f"e{n}", lambda n=n: paying(n + 1))
    assert [f"e{n}" in changelog for n in range(5)] == [False] * 3 + [True] * 2  # folded: out
    assert part.get("hot") == 15
    old, new_old = part.commit("e0", lambda: paying(100))
    recent, new_recent = part.commit("e4", lambda: paying(100))
    assert (new_old, new_recent) == (False, False)
    assert part.get("hot") == 15  # neither applied twice
    assert old.outputs == []  # sent long ago: not again
    assert [o.value for o in recent.outputs] == [b"paid 5"]  # maybe cut off by a crash: again
    with pytest.raises(ValueError, match="folded"):
        Partition(changelog).rebuild()


def test_a_record_is_folded_only_once_its_input_is_committed():
    """Its outputs are flushed before that commit; before it, a crash could cut them off and
    the redelivered input must find them to send again."""
    changelog: dict = {}
    committed = {"in": 2}  # the next offset of topic "in": offsets 0 and 1 are committed
    fold = Folding(lambda: changelog, keep=1, committed=lambda partition, topic: committed[topic])
    part = Partition(changelog, fold=fold)
    for n in range(5):
        part.commit(f"e{n}", lambda n=n: paying(n + 1), ("in", n))
    folded = [f"e{n}" for n in range(5) if f"e{n}" not in changelog]
    assert folded == ["e0", "e1"]  # not e2, e3: more than `keep` are whole, but uncommitted
    assert changelog["e3"]["at"] == ["in", 3]
    committed["in"] = 5
    part.commit("e5", lambda: paying(6), ("in", 5))
    assert list(changelog) == ["e5"]


def test_a_partition_loaded_whole_is_folded_and_forgotten_records_leave_memory():
    changelog: dict = {}
    writer = Journal(changelog)
    for n in range(6):
        writer.at(n % 2).commit(f"e{n}", lambda n=n: deposit_effects(n + 1))
    memory = dict(changelog)  # what a restarted worker read back from the changelog
    journal = Journal(memory, fold=Folding(lambda: memory, keep=1))
    assert journal.at(0).get("hot") == 1 + 3 + 5  # rebuilt whole, then folded
    assert [k in memory for k in ("e0", "e2", "e4")] == [False, False, True]
    journal.at(1)
    journal.forget({0})
    assert sorted(memory) == ["e5"]  # partition 0 is read again when it returns
    memory.update({k: v for k, v in changelog.items() if k not in memory})
    assert journal.at(0).get("hot") == 9


def test_a_reload_folds_as_it_reads_and_restores_from_the_last_snapshot():
    changelog: dict = {}
    writer = Partition(changelog)
    for n in range(6):
        sets = {SNAPSHOT: n} if n in (1, 3) else {}
        writer.commit(f"e{n}", lambda n=n, sets=sets: Effects(sets=sets, increments={"hot": n}))
    seen: list = []
    memory: dict = {}
    folds: list[int] = []
    journal = Journal(
        memory,
        restore=lambda part, records: seen.extend(r["seq"] for r in records),
        fold=Folding(lambda: memory, keep=2, folded=folds.append),
    )
    loading = journal.loading(0)
    whole_at_most = 0
    for key, record in changelog.items():  # in the order written
        loading.load(key, record)
        loading.load(key, {**record, "seq": 99})  # a second copy of a key: the first wins
        whole_at_most = max(whole_at_most, len(memory))
    part = journal.adopt(loading)
    assert whole_at_most == 2  # never all of them at once
    assert folds == [0] * 4
    assert seen == [4, 5, 6]  # the last snapshot (the 4th record) and what came after
    assert (part.get("hot"), part.seq, part.get(SNAPSHOT)) == (15, 6, 3)
    assert journal.at(0) is part
    _, new = part.commit("e0", lambda: deposit_effects(1))
    assert not new
    with pytest.raises(ValueError, match="record 1 after 6"):
        part.load("late", changelog["e0"])


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


def test_a_lazy_output_is_made_once_when_read_and_a_durable_record_reads_it():
    made: list[ev.Event] = []
    cause = ev.ClockTick(venue=VENUE, scenario_time=60)

    def make() -> ev.Event:
        made.append(cause.caused(ev.BalanceSnapshot, account="alice", asset="USD", available=5))
        return made[-1]

    def decide() -> Effects:
        effects = Effects()
        effects.emit_lazily(ev.BalanceSnapshot, make)
        return effects

    in_memory, _ = Partition({}, durable=False).commit(1, decide)
    (lazy,) = in_memory.outputs
    assert (lazy.topic, lazy.kind, made) == ("bankrun.balances", ev.BalanceSnapshot, [])
    assert lazy.key == f"{VENUE}/alice/USD" and lazy.event is made[0] and len(made) == 1
    assert ev.decode(lazy.value) == made[0] and len(made) == 1

    records: dict = {}
    Partition(records).commit("e1", decide)  # the broker's journal keeps the bytes
    assert len(made) == 2
    ((topic, key, value),) = records["e1"]["outputs"]
    assert (topic, key, ev.decode(value.encode())) == ("bankrun.balances", lazy.key, made[1])
