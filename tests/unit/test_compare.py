"""Two Monte Carlo folders compared seed by seed (`bankrun compare`), on folders written here."""

from __future__ import annotations

import json

import pytest

from bankrun import compare
from bankrun.compare import CompareError


def folder(tmp_path, name: str, rows: dict[int, dict], value: float | None = None):
    path = tmp_path / name
    path.mkdir()
    lines = [json.dumps({"seed": s, "value": value, "venues": v}) for s, v in rows.items()]
    (path / "outcomes.jsonl").write_text("\n".join(lines) + "\n")
    return path


def venue(paid: float, dry: float | None) -> dict:
    return {
        "v": {
            "dry_at_hours": dry,
            "halted_at_hours": None,
            "paid_fraction": paid,
            "requests_paid_share": paid,
            "fire_sale_losses": 0.0,
            "latency_p99_hours": 1.0,
        }
    }


def test_the_difference_is_taken_within_each_seed_both_ran(tmp_path):
    a = folder(tmp_path, "a", {1: venue(0.2, 5.0), 2: venue(0.4, 6.0), 3: venue(0.6, None)})
    b = folder(tmp_path, "b", {2: venue(0.5, None), 3: venue(0.7, 8.0), 4: venue(0.9, 1.0)})
    seeds, diffs = compare.compare(compare.read(a), compare.read(b))
    assert seeds == [2, 3]
    paid = diffs["v"]["paid_fraction"]
    assert paid.delta is not None and paid.delta.median == pytest.approx(0.1)
    assert (paid.higher, paid.lower) == (2, 0)
    assert paid.a is not None and paid.a.median == pytest.approx(0.5)  # of the paired seeds
    dry = diffs["v"]["dry_at_hours"]
    assert dry.delta is None  # no seed ran dry in both
    assert (dry.only_a, dry.only_b) == (1, 1)
    halted = diffs["v"]["halted_at_hours"]
    assert (halted.a, halted.b, halted.delta) == (None, None, None)
    written = json.loads(compare.to_json(a, b, seeds, diffs))
    assert written["venues"]["v"]["paid_fraction"]["higher"] == 2


def test_what_cannot_be_compared_says_why(tmp_path):
    with pytest.raises(CompareError, match=r"no outcomes\.jsonl"):
        compare.read(tmp_path)
    swept = folder(tmp_path, "swept", {1: venue(0.2, 1.0)}, value=0.3)
    with pytest.raises(CompareError, match="sweep"):
        compare.read(swept)
    broken = tmp_path / "broken"
    broken.mkdir()
    for line in ('{"seed": 1}', "[1, 2]", '{"seed": 1, "venues": 3}'):
        (broken / "outcomes.jsonl").write_text(line + "\n")
        with pytest.raises(CompareError, match=r"outcomes\.jsonl:1: not an outcome line"):
            compare.read(broken)
    a = folder(tmp_path, "a", {1: venue(0.2, 1.0)})
    b = folder(tmp_path, "b", {7: venue(0.2, 1.0)})
    with pytest.raises(CompareError, match="no seed in common"):
        compare.compare(compare.read(a), compare.read(b))
