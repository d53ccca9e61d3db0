"""State larger than memory: a tiered mapping behaves as a dict, whatever sits on disk."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from services.common.journal import Effects, Folding, Journal, Partition
from services.common.spill import Spill


def rows(spill: Spill, ns: str) -> int:
    return spill.db.execute("SELECT count(*) FROM cold WHERE ns = ?", (ns,)).fetchone()[0]


KEYS = st.sampled_from([f"k{n}" for n in range(12)] + [("venue", "r-1"), 7])
OPS = st.lists(
    st.tuples(st.sampled_from(["set", "get", "del", "in"]), KEYS, st.integers(0, 99)),
    max_size=80,
)


@settings(max_examples=150, deadline=None)
@given(ops=OPS, hot=st.integers(1, 4))
def test_a_tiered_mapping_answers_as_a_dict_would(ops, hot):
    spill = Spill()
    tiered, model = spill.tier("t", hot), {}
    for op, key, value in ops:
        if op == "set":
            tiered[key] = model[key] = {"v": value}
        elif op == "get":
            assert tiered.get(key) == model.get(key)
        elif op == "in":
            assert (key in tiered) == (key in model)
        elif key in model:
            del tiered[key], model[key]
        assert tiered.in_memory <= hot
    assert dict(tiered.items()) == model
    assert len(tiered) == len(model)


def test_the_least_recently_used_keys_go_to_disk_and_come_back_when_read():
    spill = Spill()
    tiered = spill.tier("t", hot=2)
    for n in range(5):
        tiered[f"k{n}"] = n
    assert tiered.in_memory == 2 and rows(spill, "t") == 3
    assert tiered["k0"] == 0  # from disk, and now among the hot ones
    tiered["k0"] = 10  # memory wins over the stale copy on disk
    for n in range(5, 8):
        tiered[f"k{n}"] = n  # pushes k0 out again
    assert tiered["k0"] == 10
    tiered.clear()
    assert rows(spill, "t") == 0 and tiered.get("k0") is None and not tiered


def test_a_spill_file_is_a_cache_that_starts_empty(tmp_path):
    path = tmp_path / "worker" / "spill.sqlite"
    first = Spill(path)
    first.tier("t", hot=1).update({"a": 1, "b": 2})
    first.close()
    again = Spill(path)
    assert rows(again, "t") == 0


def test_a_feed_is_read_a_page_at_a_time():
    feed = Spill().feed("outcomes/v")
    for n in range(7):
        feed.append((f"r-{n}", "paid"))
    assert len(feed) == 7
    assert feed.page(5, 10) == [("r-5", "paid"), ("r-6", "paid")]
    assert feed.page(7, 10) == []


def counting(n: int) -> Effects:
    return Effects(sets={f"request/{n}": {"n": n}}, increments={f"account/{n % 5}": n})


def test_a_partition_with_most_of_its_state_on_disk_decides_as_one_in_memory():
    """Folded records' ids and cold state keys live in the spill; duplicates are still
    dropped and every key still reads the same."""
    spill = Spill()
    fold = Folding(lambda: changelog, keep=2, spill=spill, hot=3)
    changelog: dict = {}
    tiered, plain = Partition(changelog, fold=fold), Partition({})
    for n in range(40):
        tiered.commit(f"e{n}", lambda n=n: counting(n))
        plain.commit(f"e{n}", lambda n=n: counting(n))
    assert len(changelog) == 2  # the last two records whole, the rest folded
    assert rows(spill, "seen/0") >= 37 and rows(spill, "state/0") > 0
    for key in plain.state:
        assert tiered.get(key) == plain.get(key), key
    _, new = tiered.commit("e3", lambda: counting(1000))  # long folded
    assert not new and tiered.get("account/0") == plain.get("account/0")


def test_a_forgotten_partition_leaves_the_spill():
    spill = Spill()
    changelog: dict = {}
    journal = Journal(changelog, fold=Folding(lambda: changelog, keep=1, spill=spill, hot=1))
    for n in range(6):
        journal.at(0).commit(f"e{n}", lambda n=n: counting(n))
    assert rows(spill, "state/0") and rows(spill, "seen/0")
    journal.forget({0})
    assert rows(spill, "state/0") == 0 and rows(spill, "seen/0") == 0
