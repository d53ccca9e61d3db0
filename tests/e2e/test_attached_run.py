"""`bankrun run` attached to a stack someone else runs — here an embedded stack started by the
test, standing in for docker compose — with that stack's own Locust following the asks file:
the run uses it all, starts nothing, and leaves it running."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bankrun.runner.locust import LOCUSTFILE
from bankrun.runner.processes import ManagedProcess, wait_until
from bankrun.runner.stack import Stack
from tests.conftest import bankrun

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(900)
def test_an_attached_run_drives_the_stack_and_its_locust_and_leaves_them_running(tmp_path):
    asks = tmp_path / "shared" / "asks.jsonl"  # the compose stack's `asks` volume
    with Stack(tmp_path / "stack", "compose-like") as stack:
        argv = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless"]
        argv += ["--host", stack.gateway_url, "--only-summary"]
        locust = ManagedProcess(
            "locust",
            argv,
            tmp_path / "locust.log",
            env={"BANKRUN_ASKS": str(asks), "BANKRUN_MAX_USERS": "50", **stack.auth.env()},
        ).start()
        try:
            runs = tmp_path / "runs"
            attach = ["--bootstrap", str(stack.bootstrap), "--gateway-url", stack.gateway_url]
            attach += ["--prometheus-url", stack.prometheus_url, "--asks-file", str(asks)]
            done = subprocess.run(
                [*bankrun("run", "flash-panic", "--runs-dir", str(runs)), *attach],
                capture_output=True,
                text=True,
                timeout=600,
                env={**os.environ, **stack.auth.env()},  # the stack's secret, as compose gives it
            )
            assert done.returncode == 0, done.stdout + done.stderr
            # the stack's Locust delivered every ask and ended by itself when the file closed
            wait_until(lambda: not locust.running(), 60, "the stack's Locust to finish")
            assert all(p.running() for p in stack.processes.values())  # nothing stopped
        finally:
            locust.stop()
    (run_dir,) = runs.iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["problems"] == [], summary["problems"]
    assert set(summary["venues"]) == {"full-reserve", "fractional", "lcr"}
    asked = sum(v["withdrawals_requested"] for v in summary["venues"].values())
    assert asked == summary["asked_requests"] > 100
    assert summary["venues"]["fractional"]["dry_at_hours"] is not None
    assert "fractional" in summary["prometheus_alerts_fired"]["LiquidityBufferDry"]
    assert json.loads((run_dir / "pids.json").read_text()) == {}  # it started nothing
    kept = (run_dir / "asks.jsonl").read_text().splitlines()
    assert len(kept) == asked + 2 and kept[-1] == '{"end": true}'  # header, asks, end
    assert not asks.exists()  # the stack's Locust will wait for the next run's file
    assert json.loads((run_dir / "config.json").read_text())["urls"]["gateway"] == (
        stack.gateway_url
    )
