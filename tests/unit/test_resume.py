"""`sim --seeds N --resume DIR`: the seeds an earlier folder ran are taken, not run again, and
only a folder of the same scenario and code gives any."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bankrun import params, resume
from bankrun.montecarlo import code_version
from bankrun.resume import ResumeError
from tests.unit.test_montecarlo import FLASH, cli


@pytest.fixture(scope="module")
def earlier(tmp_path_factory):
    """A `flash-panic` folder of two seeds, as `sim --seeds 2` leaves it."""
    runs = tmp_path_factory.mktemp("earlier")
    done = cli("sim", "flash-panic", "--seeds", "2", "--runs-dir", str(runs), cwd=runs)
    assert done.returncode == 0, done.stdout + done.stderr
    (folder,) = runs.iterdir()
    return folder


def lines(folder) -> list[dict]:
    return [json.loads(line) for line in (folder / "outcomes.jsonl").read_text().splitlines()]


def test_a_resumed_run_takes_the_earlier_seeds_and_runs_only_the_rest(earlier, tmp_path):
    """Seed 1's line is altered in a copy of the folder: the resumed run reports the altered
    value, so it took the seed rather than running it. Every other seed, and every seed's
    curves, are what a fresh run of four seeds gives."""
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("scenario.yaml", "curves.npy"):
        (copy / name).write_bytes((earlier / name).read_bytes())
    rows = lines(earlier)
    altered = next(r for r in rows if r["seed"] == FLASH.seed + 1)
    altered["venues"]["fractional"]["paid_fraction"] = 0.123456
    (copy / "outcomes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    resumed_runs, fresh_runs = tmp_path / "resumed", tmp_path / "fresh"
    args = ("sim", "flash-panic", "--seeds", "4", "--runs-dir")
    done = cli(*args, str(resumed_runs), "--resume", str(copy), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 of 4 seeds taken from" in " ".join(done.stdout.split())
    assert cli(*args, str(fresh_runs), cwd=tmp_path).returncode == 0
    (resumed,), (fresh,) = resumed_runs.iterdir(), fresh_runs.iterdir()

    got, want = (json.loads((f / "montecarlo.json").read_text()) for f in (resumed, fresh))
    assert got["seeds"] == want["seeds"] == [FLASH.seed + i for i in range(4)]
    assert got["taken"] == {"from": str(copy), "seeds": 2}
    by_seed = {o["seed"]: o for o in want["outcomes"]}
    for o in got["outcomes"]:
        theirs = by_seed[o["seed"]]
        if o["seed"] == FLASH.seed + 1:
            assert o["fractional"]["paid_fraction"] == 0.123456  # taken, not run again
            assert theirs["fractional"]["paid_fraction"] != 0.123456
        else:
            assert {v: o[v] for v in FLASH_VENUES} == {v: theirs[v] for v in FLASH_VENUES}
    assert np.array_equal(
        np.load(resumed / "curves.npy"), np.load(fresh / "curves.npy"), equal_nan=True
    )
    assert got["curves"] == want["curves"]
    assert len(lines(resumed)) == 4
    assert {r["code"] for r in lines(resumed)} == {code_version()}


FLASH_VENUES = [v.id for v in FLASH.venues]


def test_only_the_seeds_in_range_are_taken(earlier):
    taken = resume.earlier(earlier, FLASH, 1)
    assert list(taken.outcomes) == [FLASH.seed]
    (line,) = (r for r in lines(earlier) if r["seed"] == FLASH.seed)
    assert taken.outcomes[FLASH.seed].venues == line["venues"]
    assert taken.outcomes[FLASH.seed].wall_seconds == line["wall_seconds"] > 0
    assert set(resume.earlier(earlier, FLASH, 5).outcomes) == {FLASH.seed, FLASH.seed + 1}


def test_another_scenario_is_refused_naming_the_field(earlier):
    changed = params.with_value(FLASH, "venues.fractional.params.liquid_ratio", 0.3)
    with pytest.raises(ResumeError, match=r"venues\.fractional\.params\.liquid_ratio: 0\.15"):
        resume.earlier(earlier, changed, 2)
    with pytest.raises(ResumeError, match=r"seed: 1212 there, 7 here"):
        resume.earlier(earlier, FLASH.model_copy(update={"seed": 7}), 2)


def test_seeds_of_other_code_are_refused(earlier, tmp_path):
    rows = lines(earlier)
    rows[1]["code"] = "0" * 16
    (tmp_path / "scenario.yaml").write_bytes((earlier / "scenario.yaml").read_bytes())
    (tmp_path / "outcomes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(ResumeError, match="other code than this"):
        resume.earlier(tmp_path, FLASH, 2)
    rows[1].pop("code")  # a folder from before outcome lines named their code
    (tmp_path / "outcomes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(ResumeError, match="version unrecorded"):
        resume.earlier(tmp_path, FLASH, 2)


def test_a_folder_that_is_not_a_seeds_folder_is_refused(tmp_path):
    with pytest.raises(ResumeError, match="no scenario to resume from"):
        resume.earlier(tmp_path, FLASH, 2)
    (tmp_path / "scenario.yaml").write_text(FLASH.model_dump_json())
    with pytest.raises(ResumeError, match=r"no outcomes\.jsonl"):
        resume.earlier(tmp_path, FLASH, 2)


def test_the_cli_refuses_with_exit_2_before_making_a_folder(earlier, tmp_path):
    done = cli(
        "sim", "flash-panic", "--seeds", "3", "--runs-dir", str(tmp_path / "runs"),
        "--resume", str(earlier), "--set", "duration_hours=4", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2
    assert "ran another scenario: duration_hours: 8.0 there, 4.0 here" in " ".join(
        done.stdout.split()
    )
    assert not (tmp_path / "runs").exists()
