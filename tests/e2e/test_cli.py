"""What a user types: `bankrun run` writes a run folder; Ctrl-C on `bankrun up` stops all."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bankrun.runner.processes import group_alive, wait_until

pytestmark = pytest.mark.e2e

TINY = """
name: tiny
seed: 3
venues:
  - {id: safe-1, policy: full-reserve, customers: 4, balance_min: 1000, balance_max: 9000}
workload: {withdrawals_per_customer: 2, overdraw_share: 0.3}
"""


def bankrun(*args: str) -> list[str]:
    return [sys.executable, "-c", "from bankrun.cli import app; app()", *args]


def started_pids(run_dir: Path) -> dict[str, int]:
    return json.loads((run_dir / "pids.json").read_text())


def test_run_writes_a_run_folder_and_leaves_nothing_running(tmp_path):
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(TINY)
    done = subprocess.run(
        bankrun("run", str(scenario), "--runs-dir", str(tmp_path / "runs")),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    venue = summary["venues"]["safe-1"]
    assert summary["problems"] == []
    assert venue["withdrawals"]["requested"] == 8
    assert venue["withdrawals"]["paid"] + venue["withdrawals"]["rejected"] == 8
    want = summary["expected_by_core"]["safe-1"]
    assert venue["withdrawals"]["paid_amount"] == want["paid_amount"]
    assert summary["prometheus"]["customer_liabilities"] == want["liabilities_end"]
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    assert len(events) == summary["events_exported"] > 0
    paid = [e for e in events if e["value"].get("type") == "withdrawal.paid"]
    assert len(paid) == venue["withdrawals"]["paid"]
    for name in (
        "scenario.yaml",
        "config.json",
        "prometheus.yml",
        "logs/custody.log",
        "logs/gateway.log",
        "logs/broker.log",
    ):
        assert (run_dir / name).exists(), name
    assert [n for n, pid in started_pids(run_dir).items() if group_alive(pid)] == []


def test_an_invalid_scenario_names_the_field_and_starts_nothing(tmp_path):
    scenario = tmp_path / "bad.yaml"
    scenario.write_text(TINY.replace("customers: 4", "customers: zero"))
    done = subprocess.run(
        bankrun("run", str(scenario), "--runs-dir", str(tmp_path / "runs")),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "venues.0.customers" in done.stdout
    assert not (tmp_path / "runs").exists()


def test_ctrl_c_on_up_stops_every_process_and_keeps_the_logs(tmp_path):
    out = tmp_path / "up.out"
    with out.open("w") as sink:
        up = subprocess.Popen(
            bankrun("up", "--runs-dir", str(tmp_path / "runs")),
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**os.environ, "COLUMNS": "200"},
        )
    try:
        wait_until(
            lambda: "Ctrl-C stops everything" in out.read_text(),
            180,
            "stack up",
            alive=lambda: None if up.poll() is None else pytest.fail(out.read_text()),
        )
        (run_dir,) = (tmp_path / "runs").iterdir()
        pids = started_pids(run_dir)
        assert set(pids) == {"broker", "custody", "withdrawal", "gateway", "prometheus"}
        up.send_signal(signal.SIGINT)
        assert up.wait(60) == 0, out.read_text()
    finally:
        if up.poll() is None:
            up.kill()
    assert [n for n, pid in pids.items() if group_alive(pid)] == []
    assert (run_dir / "logs" / "custody.log").stat().st_size > 0
    assert "stopped; logs kept" in out.read_text()
