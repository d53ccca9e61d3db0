"""What a user types: `bankrun run` writes a run folder; Ctrl-C on `bankrun up` stops all."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from bankrun.auth import Tokens, bearer
from bankrun.runner.processes import group_alive, wait_until
from bankrun.scenario import SCENARIO_DIR as SCENARIOS
from tests.conftest import bankrun, in_background

pytestmark = pytest.mark.e2e

ARITHMETIC = (
    (SCENARIOS / "dry-arithmetic.yaml")
    .read_text()
    .replace("duration_hours: 16", "duration_hours: 11")
)


def started_pids(run_dir: Path) -> dict[str, int]:
    return json.loads((run_dir / "pids.json").read_text())


def test_run_on_the_stack_meets_the_arithmetic_and_prometheus_agrees(tmp_path):
    """The acceptance run: 10 % of 1e9 liquid, 1e7 asked per hour, through Locust and Kafka."""
    scenario = tmp_path / "arithmetic.yaml"
    scenario.write_text(ARITHMETIC)
    runs = tmp_path / "runs"
    done = subprocess.run(
        bankrun("run", str(scenario), "--runs-dir", str(runs)),
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (run_dir,) = runs.iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["problems"] == [] and summary["mode"] == "run"
    frac, full = summary["venues"]["frac-10"], summary["venues"]["full-1"]
    assert frac["dry_at_hours"] == pytest.approx(10.0, rel=0.05)
    assert full["withdrawals_paid"] == full["withdrawals_requested"] > 0
    assert frac["withdrawals_requested"] == summary["asked_requests"] // 2

    # Prometheus read bankrun_buffer_dry = 1 within one scrape interval (1 s) of the event
    lags = summary["prometheus_buffer_dry"]
    went_dry = {v for v, row in summary["venues"].items() if row["dry_at_hours"] is not None}
    assert "frac-10" in went_dry
    assert set(lags) == went_dry
    for venue, lag in lags.items():
        assert -0.05 <= lag["lag_s"] <= 1.0 + 0.1, (venue, lag)

    # the matching service ran: every market's last price, as scraped, is the log's
    markets = summary["markets"]
    assert set(markets) == {"PLATFORM/USD", "BTC/USD", "ILLIQ/USD"}
    assert summary["prometheus_market_price"] == {m: row["last"] for m, row in markets.items()}

    verified = subprocess.run(bankrun("verify", str(run_dir)), capture_output=True, text=True)
    assert verified.returncode == 0, verified.stdout
    for name in (
        "scenario.yaml",
        "config.json",
        "prometheus.yml",
        "asks.jsonl",
        "events.jsonl",
        "locust_stats.csv",
        "logs/custody.log",
        "logs/locust.log",
        "logs/broker.log",
    ):
        assert (run_dir / name).exists(), name
    assert [n for n, pid in started_pids(run_dir).items() if group_alive(pid)] == []


def test_sim_writes_the_same_kind_of_run_folder(tmp_path):
    scenario = tmp_path / "arithmetic.yaml"
    scenario.write_text(ARITHMETIC)
    done = subprocess.run(
        bankrun("sim", str(scenario), "--runs-dir", str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (run_dir,) = tmp_path.glob("*-sim-*")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["mode"] == "sim"
    assert summary["venues"]["frac-10"]["dry_at_hours"] == 10.0
    verified = subprocess.run(bankrun("verify", str(run_dir)), capture_output=True, text=True)
    assert verified.returncode == 0, verified.stdout

    # a log that owes someone a negative balance, or pays twice, does not verify
    log = run_dir / "events.jsonl"
    lines = log.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if '"balance.snapshot"' in line)
    record = json.loads(lines[at])
    record["value"]["available"] = -5
    paid = next(line for line in lines if '"withdrawal.paid"' in line)
    twice = json.loads(paid)
    twice["value"]["event_id"] = "00000000-0000-4000-8000-000000000001"
    log.write_text(
        "\n".join([*lines[:at], json.dumps(record), *lines[at + 1 :], json.dumps(twice)]) + "\n"
    )
    tampered = subprocess.run(bankrun("verify", str(run_dir)), capture_output=True, text=True)
    assert tampered.returncode == 1
    assert "not a valid event" in tampered.stdout and "paid 2 times" in tampered.stdout


def test_an_invalid_scenario_names_the_field_and_starts_nothing(tmp_path):
    scenario = tmp_path / "bad.yaml"
    scenario.write_text(ARITHMETIC.replace("liquid_ratio: 0.1", "liquid_ratio: 10"))
    done = subprocess.run(
        bankrun("run", str(scenario), "--runs-dir", str(tmp_path / "runs")),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "venues.0" in done.stdout and "params.liquid_ratio" in done.stdout
    assert not (tmp_path / "runs").exists()


@pytest.mark.timeout(900)
def test_a_panic_run_on_the_stack_agrees_with_its_sim(tmp_path):
    """flash-panic through a Locust master and a worker, with the UI open: the desk decides
    the same asks as in `sim`, the venues answer alike, and Locust ends by itself. One user
    delivers the asks in the desk's order, as `sim` does: with many, which asks a nearly dry
    buffer still pays depends on arrival order (see "Panic order within a step" in README). The run
    takes its auth secret from the environment here, so the test can look for every token in
    the run folder afterwards: none is there."""
    runs = tmp_path / "runs"
    tokens = Tokens.generate()
    proc = in_background(
        bankrun(
            "run",
            "flash-panic",
            "--runs-dir",
            str(runs),
            "--locust-workers",
            "1",
            "--ui",
            "--users",
            "1",
        ),
        tmp_path / "run.out",
        **tokens.env(),
    )
    try:
        wait_until(
            lambda: runs.exists() and any(runs.glob("*/config.json")),
            180,
            "the run to start Locust",
            alive=lambda: None if proc.poll() is None else pytest.fail("run ended early"),
        )
        ui = json.loads(next(runs.glob("*/config.json")).read_text())["urls"]["locust"]
        assert ui.startswith("http://127.0.0.1:")
        assert httpx.get(ui, timeout=10).status_code == 200  # the web UI, while it runs
        assert proc.wait(600) == 0, (tmp_path / "run.out").read_text()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.wait(60)
    done = subprocess.run(
        bankrun("sim", "flash-panic", "--runs-dir", str(tmp_path / "sims")),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (run_dir,) = runs.iterdir()
    (sim_dir,) = (tmp_path / "sims").iterdir()
    ran = json.loads((run_dir / "summary.json").read_text())
    simmed = json.loads((sim_dir / "summary.json").read_text())
    assert ran["problems"] == [], ran["problems"]
    assert ran["asked_requests"] == sum(v["withdrawals_requested"] for v in ran["venues"].values())
    went_dry = 0
    for venue, want in simmed["venues"].items():
        got = ran["venues"][venue]
        assert got["withdrawals_requested"] == want["withdrawals_requested"], venue
        assert got["amount_requested"] == pytest.approx(want["amount_requested"], rel=0.02)
        if want["dry_at_hours"] is None:
            assert got["dry_at_hours"] is None, venue
        else:
            went_dry += 1
            assert got["dry_at_hours"] == pytest.approx(want["dry_at_hours"], rel=0.05), venue
        assert abs(got["paid_fraction"] - want["paid_fraction"]) <= 0.02, venue
    assert went_dry >= 1
    stats = (run_dir / "locust_stats.csv").read_text()
    assert "withdrawal,paid," in stats and "withdrawal,queued," in stats
    assert (run_dir / "logs" / "locust-worker-0.log").exists()
    assert [n for n, pid in started_pids(run_dir).items() if group_alive(pid)] == []
    # no secret and no token (the operator's, any asking customer's) in any file of the run
    asks = [json.loads(line) for line in (run_dir / "asks.jsonl").read_text().splitlines()]
    customers = {(a["venue"], a["account"]) for a in asks if "account" in a}
    secrets = [tokens.env()["BANKRUN_AUTH_SECRET"], tokens.operator().rsplit("~", 1)[1]]
    secrets += [tokens.customer(v, a).rsplit("~", 1)[1] for v, a in customers]
    for path in run_dir.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert not [s for s in secrets if s in text], path


def requested_at_gateway(runs: Path, tokens: Tokens) -> int:
    """Withdrawals the run's gateway has accepted (it counts one once the broker has it), 0
    before the run is up: an ask in asks.jsonl is only the desk's decision, which Locust may
    not have sent yet."""
    configs = list(runs.glob("*/config.json"))
    if not configs:
        return 0
    gateway = json.loads(configs[0].read_text())["urls"]["gateway"]
    with httpx.Client(base_url=gateway, headers=bearer(tokens.operator()), timeout=10) as api:
        venues = [v["venue"] for v in api.get("/venues").json()["venues"]]
        return sum(api.get(f"/venues/{v}/withdrawals").json()["total"] for v in venues)


def test_ctrl_c_during_a_run_stops_everything_and_keeps_the_log_so_far(tmp_path):
    runs = tmp_path / "runs"
    tokens = Tokens.generate()
    proc = in_background(
        bankrun("run", "flash-panic", "--runs-dir", str(runs)),
        tmp_path / "run.out",
        COLUMNS="200",
        **tokens.env(),
    )
    try:
        wait_until(
            lambda: requested_at_gateway(runs, tokens) > 0,
            180,
            "the first withdrawal at the gateway",
            alive=lambda: None if proc.poll() is None else pytest.fail("run ended early"),
        )
        proc.send_signal(signal.SIGINT)
        assert proc.wait(120) == 130, (tmp_path / "run.out").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    (run_dir,) = runs.iterdir()
    assert str(run_dir) in (tmp_path / "run.out").read_text().replace("\n", "")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert any(p.startswith("interrupted") for p in summary["problems"])
    assert sum(v["withdrawals_requested"] for v in summary["venues"].values()) > 0
    assert (run_dir / "logs" / "locust.log").exists()
    assert [n for n, pid in started_pids(run_dir).items() if group_alive(pid)] == []


def test_ctrl_c_on_up_stops_every_process_and_keeps_the_logs(tmp_path):
    out = tmp_path / "up.out"
    up = in_background(bankrun("up", "--runs-dir", str(tmp_path / "runs")), out, COLUMNS="200")
    pids: dict[str, int] = {}
    try:
        wait_until(
            lambda: "Ctrl-C stops everything" in out.read_text(),
            180,
            "stack up",
            alive=lambda: None if up.poll() is None else pytest.fail(out.read_text()),
        )
        (run_dir,) = (tmp_path / "runs").iterdir()
        pids = started_pids(run_dir)
        assert set(pids) == {"broker", "custody", "withdrawal", "matching", "gateway", "prometheus"}
        up.send_signal(signal.SIGINT)
        assert up.wait(60) == 0, out.read_text()
    finally:  # whatever failed above, leave nothing running
        if up.poll() is None:
            up.send_signal(signal.SIGINT)
            try:
                up.wait(60)
            except subprocess.TimeoutExpired:
                up.kill()
        left = [n for n, pid in pids.items() if group_alive(pid)]
        for name in left:
            os.killpg(pids[name], signal.SIGKILL)
    assert left == []
    assert (run_dir / "logs" / "custody.log").stat().st_size > 0
    assert "stopped; logs kept" in out.read_text()
