"""Many seeds: Monte Carlo bands, sweeps and the reverse stress test, on real sims."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest

from bankrun import band_report, montecarlo, params, scenario, sim
from bankrun import events as ev
from bankrun import sweep as sweeps
from bankrun.runner.processes import wait_until
from bankrun.scenario import ScenarioError

FLASH = scenario.load("flash-panic")
FTX = scenario.load("ftx-2022")


def cli(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from bankrun.cli import app; app()", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_parallel_seeds_give_what_each_seed_gives_alone():
    variants = montecarlo.variations(FLASH, 6)
    assert [v.seed for v in variants] == [FLASH.seed + i for i in range(6)]
    finished: list[int] = []
    parallel = montecarlo.run(variants, workers=2, done=lambda i, o: finished.append(o.seed))
    alone = montecarlo.run(variants[:2], workers=1)
    assert sorted(finished) == [v.seed for v in variants]
    assert [o.seed for o in parallel] == [v.seed for v in variants]  # in the order given
    assert [o.venues for o in parallel[:2]] == [o.venues for o in alone]
    assert len({json.dumps(o.venues, sort_keys=True) for o in parallel}) > 1  # seeds differ


SMALL_FTX = FTX.model_copy(
    update={
        "duration_hours": 30,  # attests at hours 0 and 24
        "venues": [v.model_copy(update={"customers": 60}) for v in FTX.venues],
    }
)


def test_seeds_skip_only_the_work_nobody_sees_and_reach_the_same_outcome():
    small = SMALL_FTX
    assert all(v.por is not None and not v.por.published for v in small.venues)
    (seed,) = montecarlo.variations(small, 1)
    assert [v.por for v in seed.venues] == [None] * len(small.venues)
    # BTC/USD prices no holding: it goes; the token's and the less-liquid book's stay
    assert [m.symbol for m in small.markets] == ["PLATFORM/USD", "BTC/USD", "ILLIQ/USD"]
    assert [m.symbol for m in seed.markets] == ["PLATFORM/USD", "ILLIQ/USD"]
    everything, without = montecarlo.outcome(small), montecarlo.outcome(seed)
    assert (without.venues, without.curves) == (everything.venues, everything.curves)
    assert any(row["fire_sale_losses"] for row in everything.venues.values())  # books trade
    shown = scenario.load("por-2022")
    assert [v.por for v in montecarlo.variations(shown, 1)[0].venues] == [
        v.por for v in shown.venues
    ]
    # a scenario whose markets price nothing keeps them (it needs one)
    quoted_only = FLASH.model_copy(update={"markets": (small.markets[1],)})
    assert montecarlo.variations(quoted_only, 1)[0].markets == quoted_only.markets


def _replayable(event: ev.Event) -> dict:
    """An event as any replay of the seed makes it: without the random ids of genesis and
    ticks (and all derived from them) and the wall clock."""
    drop = {"event_id", "correlation_id", "causation_id", "occurred_at", "requested_wall"}
    return {
        k: v for k, v in event.model_dump().items() if k not in drop and not k.endswith("order_id")
    }


def test_a_watched_sim_leaves_out_only_the_events_nothing_reads():
    whole = sim.simulate(SMALL_FTX).log
    watched: list[ev.Event] = []
    wants = frozenset({ev.WithdrawalPaid, ev.AccountFunded})
    bus = sim.simulate(SMALL_FTX, watched.extend, wants)
    # the gateway's balances: no service here reads them, nor does the watcher
    assert ev.BalanceSnapshot in bus.unread
    assert not bus.unread & (wants | {ev.ReserveSnapshot, ev.BookSnapshot, ev.FundsReserved})
    assert sum(isinstance(e, ev.BalanceSnapshot) for e in whole) > len(SMALL_FTX.venues) * 60
    assert not any(type(e) in bus.unread for e in watched)
    # the rest is the whole log, event for event, in its order
    kept = [_replayable(e) for e in whole if type(e) not in bus.unread]
    assert [_replayable(e) for e in watched] == kept
    # exactly once: a seed's tallies take each event as it comes, with no dedupe
    assert len({e.event_id for e in whole}) == len(whole)


def test_curves_go_to_a_file_as_seeds_finish_and_band_as_the_seeds_own_do(tmp_path):
    variants = montecarlo.variations(FLASH, 3)
    own = [montecarlo.outcome(v) for v in variants]  # each seed's curves, held in memory
    store = montecarlo.CurveFile(tmp_path / "curves.npy", FLASH, 3)
    kept = montecarlo.run(variants, workers=2, curves=store)
    assert [o.venues for o in kept] == [o.venues for o in own]
    assert all(o.curves == {} for o in kept)  # the command holds none of them
    rows = np.load(tmp_path / "curves.npy")
    assert rows.shape == (3, len(FLASH.venues) * len(montecarlo.CURVES), len(store.hours))
    bands = store.bands()
    assert set(bands) == set(own[0].curves)
    for venue, curves in own[0].curves.items():
        for name in curves:
            stack = np.array([o.curves[venue][name] for o in own])
            assert bands[venue][name]["median"] == np.median(stack, axis=0).round(6).tolist()
            assert rows[1, store.series.index((venue, name))].tolist() == own[1].curves[venue][name]
    assert montecarlo.run(variants[:1], workers=1)[0].curves == {}  # not drawn unless asked


def test_bands_are_percentiles_of_what_the_seeds_reached():
    assert montecarlo.band([None, None]) is None
    b = montecarlo.band([float(x) for x in range(1, 101)] + [None])
    assert b is not None
    assert (b.n, b.of) == (100, 101)
    assert b.low == pytest.approx(5.95) and b.high == pytest.approx(95.05)
    assert b.median == pytest.approx(50.5)


def test_a_band_knows_its_monte_carlo_error():
    """The median's bootstrap standard error matches the textbook one for a median of normal
    draws (1.2533 sigma / sqrt(n)), halves with four times the seeds, is the same for the same
    values, and is zero where every seed agrees."""
    draws = np.random.default_rng(7)

    def mean_error(n: int) -> float:
        errors = [montecarlo.band(list(draws.normal(10.0, 2.0, n))).error.median for _ in range(20)]
        return float(np.mean(errors))

    few, many = mean_error(100), mean_error(400)
    assert few == pytest.approx(1.2533 * 2.0 / 100**0.5, rel=0.2)
    assert many == pytest.approx(1.2533 * 2.0 / 400**0.5, rel=0.2)
    assert few / many == pytest.approx(2.0, rel=0.25)
    values = list(draws.normal(0.0, 1.0, 50))
    assert montecarlo.band(values).error == montecarlo.band(values).error
    b = montecarlo.band(values)
    assert 0 < b.error.median < b.error.low and b.error.median < b.error.high  # edges: noisier
    assert montecarlo.band([16.0] * 9 + [None]).error == montecarlo.Error(0.0, 0.0, 0.0)
    assert montecarlo.band([3.0, None]).error is None  # one seed: no spread to resample


@pytest.mark.timeout(900)
def test_ftx_bands_are_not_degenerate_and_the_report_draws_them(tmp_path):
    """The commingled venue runs dry at the leak for some seeds and at the rival's
    announcement for others: its band spans them, and its median lies inside."""
    done = cli("sim", "ftx-2022", "--seeds", "12", "--runs-dir", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    (folder,) = tmp_path.iterdir()
    data = json.loads((folder / "montecarlo.json").read_text())
    assert data["seeds"] == list(range(FTX.seed, FTX.seed + 12))
    dry = data["bands"]["ftx"]["dry_at_hours"]
    assert dry["of"] == 12 and dry["n"] == 12
    assert dry["low"] < dry["high"]  # not degenerate
    assert dry["low"] <= dry["median"] <= dry["high"]
    assert data["bands"]["full-reserve"]["paid_fraction"]["low"] == 1.0
    assert data["bands"]["full-reserve"]["paid_fraction"]["error"]["median"] == 0.0
    assert data["bands"]["ftx"]["paid_fraction"]["error"]["median"] > 0  # the seeds differ
    cash = data["curves"]["ftx"]["cash"]
    assert len(cash["median"]) == len(data["hours"]) == 241  # hour 0, every half hour of 120
    assert np.load(folder / "curves.npy").shape == (12, len(FTX.venues) * 3, 241)
    assert all(
        lo <= m <= hi for lo, m, hi in zip(cash["low"], cash["median"], cash["high"], strict=True)
    )
    rows = (folder / "seeds.csv").read_text().splitlines()
    assert len(rows) == 1 + 12 * len(FTX.venues)
    page = (folder / "report.html").read_text()
    assert not re.search(r"https?://|<(script|link|iframe)\b", page)
    assert {"bands", "dry-times"} <= set(re.findall(r'<img alt="([^"]+)"', page))
    assert "ftx" in page and "[" in page and "±" in page
    assert {p.name for p in (folder / "report").iterdir()} == {"bands.png", "dry-times.png"}


#: ftx-2022 as it was before its grain was coarsened (README, "Resolution")
FINER = ("venues.*.customers=2000", "tick_hours=0.25", "markets.2.makers.level_notional=2000000000")


@pytest.mark.timeout(900)
def test_the_shipped_grain_pays_what_the_finer_one_does_within_the_monte_carlo_error():
    """ftx-2022 runs half the customers on half the ticks so that its seeds are cheap; that is
    sound only while money paid and fire-sale losses do not depend on the grain. Each median
    lies within three combined standard errors of the finer grain's (different draws: the
    seeds are the same numbers, the crowds are not). The makers' refill once a tick is what
    this caught: on the half-hour clock alone, a fractional venue's fire sales halved."""
    finer = params.with_values(FTX, [params.setting(s) for s in FINER])
    shipped, fine = (
        montecarlo.bands(montecarlo.run(montecarlo.variations(s, 16), workers=2))
        for s in (FTX, finer)
    )
    for venue in shipped:
        for metric in ("paid_fraction", "fire_sale_losses"):
            a, b = shipped[venue][metric], fine[venue][metric]
            assert a is not None and b is not None and a.error and b.error
            spread = 3 * (a.error.median**2 + b.error.median**2) ** 0.5
            assert abs(a.median - b.median) <= spread, (venue, metric, a, b)


def test_parameters_by_path_name_what_is_wrong():
    s = params.with_value(FTX, "venues.fractional.policy_params.liquid_ratio", 0.3)
    assert s.venues[2].params["liquid_ratio"] == 0.3
    assert params.with_value(FTX, "venues.2.params.liquid_ratio", 0.4).venues[2].id == "fractional"
    with pytest.raises(ScenarioError, match="no venues item 'nowhere'"):
        params.with_value(FTX, "venues.nowhere.params.liquid_ratio", 0.3)
    with pytest.raises(ScenarioError, match="no field 'liquidity'"):
        params.with_value(FTX, "venues.fractional.params.liquidity", 0.3)
    with pytest.raises(ScenarioError, match=r"liquid_ratio.*less than or equal to 1"):
        params.with_value(FTX, "venues.fractional.params.liquid_ratio", 1.5)
    assert params.grid("a.b=0.05:0.2:0.05") == ("a.b", [0.05, 0.1, 0.15, 0.2])
    for bad in ("a.b=0.2:0.1:0.05", "a.b=1:2", "a.b=x:2:1", "=1:2:1", "a.b=0:1:0"):
        with pytest.raises(ScenarioError):
            params.grid(bad)
    goal = params.target("paid_fraction >= 0.99", montecarlo.METRICS)
    assert goal.check(0.99) and not goal.check(0.98)
    with pytest.raises(ScenarioError, match="unknown metric"):
        params.target("paid>=0.9", montecarlo.METRICS)


def test_settings_change_fields_by_path_and_every_venue_by_star():
    s = params.with_values(
        FTX,
        [
            params.setting("venues.*.customers=300"),
            params.setting("venues.ftx.gate.halt_after_hours=12"),
        ],
    )
    assert [v.customers for v in s.venues] == [300] * len(FTX.venues)
    assert s.venues[0].gate is not None and s.venues[0].gate.halt_after_hours == 12
    assert params.setting("venues.ftx.policy = full-reserve") == (
        "venues.ftx.policy",
        "full-reserve",
    )
    assert params.setting("load.params.threshold_mean=0.45")[1] == 0.45
    with pytest.raises(ScenarioError, match=r"no field 'liquid_ratio' in venues\.full-reserve"):
        params.with_values(FTX, [params.setting("venues.*.params.liquid_ratio=0.3")])
    with pytest.raises(ScenarioError, match=r"venues\.1\.customers: Input should be greater"):
        params.with_values(FTX, [params.setting("venues.*.customers=0")])
    for bad in ("venues.ftx.customers", "=3", "a=", "a=[1"):
        with pytest.raises(ScenarioError):
            params.setting(bad)
    for name in scenario.shipped():  # what a folder keeps after --set reads back the same
        spec = scenario.load(name)
        assert scenario.parse(scenario.to_yaml(spec, "test"), "test") == spec


def test_a_sim_with_a_setting_runs_it_and_its_folder_keeps_it(tmp_path):
    setting = "venues.fractional.params.liquid_ratio=0.9"
    (tmp_path / "a").mkdir()
    plain = cli("sim", "flash-panic", cwd=tmp_path / "a")
    changed = cli("sim", "flash-panic", "--set", setting, cwd=tmp_path)
    assert plain.returncode == changed.returncode == 0, changed.stdout + changed.stderr
    (kept,) = (tmp_path / "runs").iterdir()
    text = (kept / "scenario.yaml").read_text()
    assert text.startswith(f"# flash-panic with --set {setting}")
    assert scenario.parse(text, "kept") == params.with_value(FLASH, *params.setting(setting))
    (before,) = (tmp_path / "a" / "runs").iterdir()
    paid = [
        json.loads((folder / "summary.json").read_text())["venues"]["fractional"]["paid_fraction"]
        for folder in (before, kept)
    ]
    assert paid[0] < paid[1]


def test_compare_pairs_two_seed_folders_and_sees_a_setting_lift_every_seed_that_ran(tmp_path):
    folders = []
    for name, extra in (("a", ()), ("b", ("--set", "venues.fractional.params.liquid_ratio=0.5"))):
        (tmp_path / name).mkdir()
        done = cli("sim", "flash-panic", "--seeds", "4", *extra, cwd=tmp_path / name)
        assert done.returncode == 0, done.stdout + done.stderr
        (made,) = (tmp_path / name / "runs").iterdir()
        folders.append(str(made))
    out = tmp_path / "compare.json"
    done = cli("compare", *folders, "--output", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "fractional: B - A over 4 paired seeds" in done.stdout
    venues = json.loads(out.read_text())["venues"]
    # every seed in which 15 % ran dry pays more at 50 %, which never does; the others paid all
    lifted, dried = venues["fractional"]["paid_fraction"], venues["fractional"]["dry_at_hours"]
    assert (dried["only_a"], dried["only_b"]) == (lifted["higher"], 0)
    assert lifted["higher"] > 0 and lifted["lower"] == 0 and lifted["delta"]["high"] > 0.3
    untouched = venues["full-reserve"]["paid_fraction"]
    assert (untouched["higher"], untouched["lower"]) == (0, 0)
    refused = cli("compare", folders[0], str(tmp_path), cwd=tmp_path)
    assert refused.returncode == 2 and "no outcomes.jsonl" in refused.stdout


def test_a_sweep_pays_more_as_the_liquid_reserve_grows():
    points = sweeps.sweep(
        FLASH, "venues.fractional.params.liquid_ratio", [0.05, 0.15, 0.5, 0.9], seeds=3
    )
    medians = [p.band("fractional", "paid_fraction").median for p in points]
    assert medians == sorted(medians)
    assert medians[0] < 0.5 < medians[-1]
    others = {p.band("full-reserve", "paid_fraction").median for p in points}
    assert others == {1.0}  # the neighbour's policy is untouched


@pytest.mark.parametrize(
    "args, message",
    [
        (("sweep", "--param", "venues.fractional.params.nope=0:1:0.5"), "no field 'nope'"),
        (("sweep", "--param", "venues.fractional.params.liquid_ratio=0:2:1"), "less than or eq"),
        (
            ("reverse", "--venue", "fractional", "--param", "nope", "--target", "paid_fraction>=1"),
            "no field 'nope'",
        ),
        (
            (
                "reverse",
                "--venue",
                "nowhere",
                "--param",
                "liquid_ratio",
                "--target",
                "paid_fraction>=1",
            ),
            "no venue 'nowhere'",
        ),
        (
            ("reverse", "--venue", "fractional", "--param", "liquid_ratio", "--target", "paid>=1"),
            "unknown metric 'paid'",
        ),
        (("sim", "--set", "venues.*.params.liquid_ratio=0.3"), "in venues.full-reserve.params"),
        (("sim", "--seeds", "3", "--set", "duration_hours"), "expected PATH=VALUE"),
        (("run", "--set", "venues.lcr.customers=0"), "customers: Input should be greater"),
    ],
)
def test_bad_many_seeds_input_is_refused_before_any_sim(tmp_path, args, message):
    done = cli(args[0], "flash-panic", *args[1:], cwd=tmp_path)
    assert done.returncode == 2, done.stdout
    assert message in " ".join(done.stdout.split())
    assert not (tmp_path / "runs").exists()


@pytest.mark.timeout(900)
def test_reverse_finds_the_smallest_liquid_ratio_that_pays_ftx_2022_customers(tmp_path):
    """The fractional venue of ftx-2022: the value found meets the target in every seed,
    one grid step below does not."""
    _, values = params.grid("x=0.05:1.0:0.05")
    goal = params.target("paid_fraction>=0.99", montecarlo.METRICS)
    result = sweeps.reverse(FTX, "fractional", "liquid_ratio", goal, values, seeds=2)
    assert result.answer is not None and result.below is not None, result.verdict
    assert result.answer.value - result.below.value == pytest.approx(0.05)
    assert result.answer.share_meeting("fractional", goal) == 1.0
    assert result.below.share_meeting("fractional", goal) < 1.0
    assert len(result.tried) <= 2 + len(values).bit_length()  # bisection, not a scan
    # what was tried is what a sim gives: one seed below the answer, again from scratch
    below = params.with_value(FTX, result.path, result.below.value)
    again = montecarlo.outcome(below.model_copy(update={"seed": FTX.seed}))
    assert again.venues == result.below.outcomes[0].venues
    assert again.venues["fractional"]["paid_fraction"] < 0.99
    page = band_report.write_reverse(tmp_path, FTX, result, 1.0).read_text()
    assert f"{result.answer.value:g}" in re.search(r'<p id="verdict">(.*?)</p>', page).group(1)


@pytest.mark.timeout(300)
def test_ctrl_c_stops_every_worker_and_keeps_the_seeds_that_finished(tmp_path):
    """...and `--resume` finishes the folder: it takes the seeds kept (their metrics and
    curves) and runs only those missing below the last of them."""
    command = [sys.executable, "-c", "from bankrun.cli import app; app()"]
    runs = tmp_path / "runs"
    args = ["sim", "ftx-2022", "--seeds", "40", "--workers", "2", "--runs-dir", str(runs)]
    proc = subprocess.Popen(
        [*command, *args],
        start_new_session=True,
        cwd=tmp_path,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )

    def finished() -> int:
        found = list(runs.glob("*/outcomes.jsonl"))
        return len(found[0].read_text().splitlines()) if found else 0

    def group() -> list[str]:
        pgrep = subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True, text=True)
        return pgrep.stdout.split()

    wait_until(lambda: finished() >= 1, 240, "a first seed to finish")
    assert len(group()) == 3  # the command and its two workers
    os.killpg(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    wait_until(lambda: not group(), 10, "every worker to be gone")
    (folder,) = runs.iterdir()
    kept = finished()
    assert 1 <= kept < 40
    data = json.loads((folder / "montecarlo.json").read_text())
    assert len(data["seeds"]) == kept  # the partial bands are of exactly the seeds kept
    assert (folder / "report.html").exists()
    assert f"{kept} of 40 sims finished" in " ".join(out.split())

    seeds = max(data["seeds"]) - FTX.seed + 2  # the seeds kept, those between, and one more
    resumed_runs = tmp_path / "resumed"
    done = cli(
        "sim", "ftx-2022", "--seeds", str(seeds), "--runs-dir", str(resumed_runs),
        "--resume", str(folder), cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{kept} of {seeds} seeds taken" in " ".join(done.stdout.split())
    (resumed,) = resumed_runs.iterdir()
    after = json.loads((resumed / "montecarlo.json").read_text())
    assert after["seeds"] == list(range(FTX.seed, FTX.seed + seeds))
    before = {o["seed"]: o for o in data["outcomes"]}
    assert all(o == before[o["seed"]] for o in after["outcomes"] if o["seed"] in before)
    old, new = np.load(folder / "curves.npy"), np.load(resumed / "curves.npy")
    for seed in before:
        row = seed - FTX.seed
        assert np.array_equal(new[row], old[row], equal_nan=True) and np.any(new[row] != 0)
    assert np.all(np.any(new != 0, axis=(1, 2)))  # every seed's row drawn, none left zeros


def test_band_text_reads_as_a_table_cell():
    """Shares as percentages, fire-sale losses in millions of dollars (not to the cent), and
    how many seeds reached a metric when not all did."""
    losses = montecarlo.Band(
        median=132_499_344.52, low=102_936_057.0, high=143_666_101.0, n=9, of=9
    )
    assert band_report.band_text("fire_sale_losses", losses) == "$132.5M [$102.9M - $143.7M]"
    paid = montecarlo.Band(median=0.257, low=0.116, high=0.288, n=9, of=9)
    assert band_report.band_text("paid_fraction", paid) == "25.7% [11.6% - 28.8%]"
    dry = montecarlo.Band(median=16.0, low=0.0, high=16.0, n=7, of=9)
    assert band_report.band_text("dry_at_hours", dry) == "16.00 [0.00 - 16.00] in 7/9"
    assert band_report.band_text("halted_at_hours", None) == "never"
    err = montecarlo.Error(median=0.0042, low=0.01, high=0.008)
    paid_with = montecarlo.Band(median=0.257, low=0.116, high=0.288, n=9, of=9, error=err)
    assert band_report.band_text("paid_fraction", paid_with) == "25.7% ±0.4 pts [11.6% - 28.8%]"
    assert (
        band_report.delta_text("paid_fraction", paid_with)
        == "+25.7 pts ±0.4 pts [+11.6 pts - +28.8 pts]"
    )
