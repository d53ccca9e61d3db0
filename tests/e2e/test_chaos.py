"""Chaos on the real stack: flash-panic with every service killed twice, duplicated and
reordered deliveries and a slow consumer ends as the same run without chaos — nothing paid
twice, every ask answered, balances conserved, `paid_fraction` within 2 points. A forged
balance stops a run; a short soak reports memory."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from bankrun.runner.processes import group_alive, wait_until
from tests.conftest import bankrun, in_background

pytestmark = pytest.mark.e2e


def one_run(runs: Path) -> Path:
    (run_dir,) = runs.iterdir()
    return run_dir


def assert_all_stopped(run_dir: Path) -> None:
    """Every process the run started (the restarted ones are in pids.json too) is gone."""
    pids = json.loads((run_dir / "pids.json").read_text())
    chaos = run_dir / "chaos.json"
    if chaos.exists():
        applied = json.loads(chaos.read_text())["applied"]
        pids |= {f"pid-{a['pid']}": a["pid"] for a in applied if "pid" in a}
    alive = {name: pid for name, pid in pids.items() if group_alive(pid)}
    assert not alive, f"left running: {alive}"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """flash-panic twice: without chaos, and with `flash-kills`. One Locust user, as in the
    parity test: it delivers a step's asks in the desk's order, so what a nearly dry buffer
    still pays does not depend on which of 100 users got there first (that alone moves the
    fractional venue's paid_fraction by up to 4 points). The chaos run keeps only 16 whole
    journal records per partition, so most of what is redelivered or sent again meets a
    folded record, and only 64 state keys per partition (and gateway table) in memory, so
    most requests' state is read back from disk."""
    out = {}
    for label, extra in (("calm", ()), ("chaos", ("--chaos", "flash-kills"))):
        runs_dir = tmp_path_factory.mktemp(label)
        keep = {"BANKRUN_JOURNAL_KEEP": "16", "BANKRUN_HOT_KEYS": "64"} if label == "chaos" else {}
        done = subprocess.run(
            bankrun("run", "flash-panic", "--runs-dir", str(runs_dir), "--users", "1", *extra),
            capture_output=True,
            text=True,
            timeout=900,
            env={**os.environ, **keep},
        )
        run_dir = one_run(runs_dir)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert_all_stopped(run_dir)
        out[label] = run_dir
    return out


@pytest.mark.timeout(1900)
def test_every_service_was_killed_twice_and_came_back(runs):
    chaos = json.loads((runs["chaos"] / "chaos.json").read_text())
    killed = [a for a in chaos["applied"] if a.get("signal") == "SIGKILL"]
    restarted = [a for a in chaos["applied"] if a.get("event") == "restarted"]
    for service in ("custody", "withdrawal", "matching", "gateway"):
        assert sum(a["service"] == service for a in killed) >= 2
    assert len(restarted) == len(killed)
    assert len({a["pid"] for a in restarted}) == len(restarted)  # a new process each time
    for kill in killed:  # ... never the one just killed
        assert not any(
            r["pid"] == kill["pid"]
            for r in restarted
            if (r["service"], r["scenario_hours"]) == (kill["service"], kill["scenario_hours"])
        )
    actions = {a["action"] for a in chaos["applied"]}
    assert {"kill", "pause", "duplicate"} <= actions
    assert not chaos["pending"]
    summary = json.loads((runs["chaos"] / "summary.json").read_text())
    assert summary["chaos"]["restarts"] == len(killed)


@pytest.mark.timeout(600)
def test_the_chaos_run_folded_its_journals_and_spilled_its_state(runs):
    """The stream services held only their last records whole, and only their hottest state
    keys in memory (see the fixture)."""
    for service in ("custody", "withdrawal", "matching"):
        log = (runs["chaos"] / "logs" / f"{service}.log").read_text()
        assert "folding records past the last 16" in log, service
    for service in ("custody", "withdrawal"):  # matching's state is a few books
        log = (runs["chaos"] / "logs" / f"{service}.log").read_text()
        assert "state past the 64 hottest keys waits on disk" in log, service


@pytest.mark.timeout(600)
def test_the_chaos_run_passes_verify(runs):
    done = subprocess.run(
        bankrun("verify", str(runs["chaos"])), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout


@pytest.mark.timeout(600)
def test_every_ask_is_answered_and_none_paid_twice(runs):
    summary = json.loads((runs["chaos"] / "summary.json").read_text())
    assert summary["problems"] == []
    asked = summary["asked_requests"]
    answered = sum(
        v["withdrawals_paid"] + v["withdrawals_queued"] + v["withdrawals_rejected"]
        for v in summary["venues"].values()
    )
    assert answered == asked == sum(v["withdrawals_requested"] for v in summary["venues"].values())
    assert summary["invariants"]["violations"] == 0
    assert summary["invariants"]["checks"] > 50


@pytest.mark.timeout(600)
def test_paid_fraction_is_within_two_points_of_the_calm_run(runs):
    calm = json.loads((runs["calm"] / "summary.json").read_text())["venues"]
    chaos = json.loads((runs["chaos"] / "summary.json").read_text())["venues"]
    assert set(calm) == set(chaos)
    for venue in calm:
        assert abs(calm[venue]["paid_fraction"] - chaos[venue]["paid_fraction"]) <= 0.02, venue


@pytest.mark.timeout(900)
def test_a_forged_balance_stops_the_run_with_a_report(tmp_path):
    plan = tmp_path / "forge.yaml"
    plan.write_text("actions: [{do: forge, at_hours: 1.0, amount: 1000}]\n")
    runs_dir = tmp_path / "runs"
    done = subprocess.run(
        bankrun("run", "flash-panic", "--runs-dir", str(runs_dir), "--chaos", str(plan)),
        capture_output=True,
        text=True,
        timeout=600,
    )
    run_dir = one_run(runs_dir)
    assert done.returncode == 1, done.stdout[-3000:]
    report = json.loads((run_dir / "invariant_violation.json").read_text())
    assert report["violations"][0]["check"] == "conservation"
    assert 1.0 <= report["scenario_hours"] <= 1.2
    assert "invariant violated" in done.stdout
    summary = json.loads((run_dir / "summary.json").read_text())
    assert any("invariant violated" in p for p in summary["problems"])
    assert_all_stopped(run_dir)


def test_ctrl_c_while_a_service_is_down_abandons_its_restart_and_stops_all(tmp_path):
    """The runner does not sit out a two-minute outage (nor the restart's readiness wait)
    before it stops: the restart is abandoned, the log and summary kept, nothing left."""
    plan = tmp_path / "down.yaml"
    plan.write_text("actions: [{do: kill, service: withdrawal, at_hours: 0.5, down_s: 120}]\n")
    runs_dir = tmp_path / "runs"
    proc = in_background(
        bankrun("run", "flash-panic", "--runs-dir", str(runs_dir), "--chaos", str(plan)),
        tmp_path / "run.out",
    )

    def killed() -> bool:
        found = list(runs_dir.glob("*/chaos.json")) if runs_dir.exists() else []
        return bool(found) and '"SIGKILL"' in found[0].read_text()

    try:
        wait_until(
            killed,
            300,
            "the planned kill",
            alive=lambda: None if proc.poll() is None else pytest.fail("run ended early"),
        )
        proc.send_signal(signal.SIGINT)
        assert proc.wait(300) == 130, (tmp_path / "run.out").read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    run_dir = one_run(runs_dir)
    events = [a.get("event") for a in json.loads((run_dir / "chaos.json").read_text())["applied"]]
    assert "restart abandoned" in events and "restarted" not in events
    summary = json.loads((run_dir / "summary.json").read_text())
    assert any("interrupted" in p for p in summary["problems"])
    assert (run_dir / "events.jsonl").stat().st_size > 0
    assert_all_stopped(run_dir)


@pytest.mark.timeout(900)
def test_a_stack_that_stops_making_progress_stops_the_run_and_keeps_the_log(tmp_path):
    """custody frozen for good (SIGSTOP, from outside the runner): after 120 s without
    progress the run stops like an interrupted one — log, summary, nothing left — exit 1."""
    runs_dir = tmp_path / "runs"
    proc = in_background(
        bankrun("run", "flash-panic", "--runs-dir", str(runs_dir)), tmp_path / "run.out"
    )
    try:
        wait_until(  # config.json is written once Locust runs: the load is on
            lambda: runs_dir.exists() and any(runs_dir.glob("*/config.json")),
            300,
            "the load to start",
            alive=lambda: None if proc.poll() is None else pytest.fail("run ended early"),
        )
        run_dir = one_run(runs_dir)
        os.kill(json.loads((run_dir / "pids.json").read_text())["custody"], signal.SIGSTOP)
        assert proc.wait(600) == 1, (tmp_path / "run.out").read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["problems"][0].startswith("stopped: no progress for 120s"), summary["problems"]
    assert (run_dir / "events.jsonl").stat().st_size > 0
    assert (run_dir / "report.html").exists()
    assert_all_stopped(run_dir)


def test_an_invalid_plan_names_the_field_and_starts_nothing(tmp_path):
    plan = tmp_path / "bad.yaml"
    plan.write_text("actions: [{do: kill, service: custody, at_hours: 1, down: 3}]\n")
    done = subprocess.run(
        bankrun("run", "flash-panic", "--runs-dir", str(tmp_path / "runs"), "--chaos", str(plan)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "actions.0.kill.down" in done.stdout
    assert not (tmp_path / "runs").exists()


@pytest.mark.timeout(900)
def test_a_short_soak_reports_memory_and_no_violation(tmp_path):
    done = subprocess.run(
        bankrun(
            "soak", "--minutes", "1", "--kill-every", "0.4", "--runs-dir", str(tmp_path / "runs")
        ),
        capture_output=True,
        text=True,
        timeout=800,
    )
    run_dir = one_run(tmp_path / "runs")
    soak = json.loads((run_dir / "soak.json").read_text())
    assert done.returncode in (0, 1), done.stdout[-3000:]
    assert soak["problems"] == [], soak["problems"]
    assert soak["invariants"]["violations"] == 0
    assert soak["chaos"]["restarts"] >= 1
    assert {"runner", "broker", "custody", "withdrawal", "gateway"} <= set(soak["rss"])
    assert soak["samples"] > 10
    assert soak["flat"] == (not soak["not_flat"])
    assert set(soak["not_flat"]) == {n for n, row in soak["rss"].items() if row["growth"] > 0.2}
    assert ("memory flat: True" if soak["flat"] else "not flat") in done.stdout
    assert (run_dir / "soak.csv").read_text().startswith("t_s,process,pid,rss_mb")
    assert_all_stopped(run_dir)
