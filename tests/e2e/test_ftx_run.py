"""What `make run` does, once: ftx-2022 through Locust and Kafka on the embedded stack. Then
what the run kept: the replay's outcome, the alerts Prometheus raised, and every PromQL
expression of the rules and dashboards evaluated against the run's own Prometheus data."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from bankrun import panels
from bankrun.runner import keep
from bankrun.runner.overview import fill
from bankrun.runner.processes import ManagedProcess, free_port, group_alive, http_ok
from bankrun.runner.prometheus import RULES, prometheus_binary
from tests.conftest import bankrun

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("ftx") / "runs"
    done = subprocess.run(
        bankrun("run", "--runs-dir", str(runs)), capture_output=True, text=True, timeout=1200
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (folder,) = runs.iterdir()
    return folder


@pytest.fixture(scope="module")
def summary(run_dir) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


@pytest.fixture(scope="module")
def replay_prometheus(run_dir):
    """A Prometheus over the run's kept TSDB (no scraping): the run, queryable afterwards."""
    config = run_dir / "replay-prometheus.yml"
    config.write_text(yaml.safe_dump({"global": {"scrape_interval": "1s"}}))
    port = free_port()
    proc = ManagedProcess(
        "replay-prometheus",
        [
            prometheus_binary(),
            f"--config.file={config}",
            f"--storage.tsdb.path={run_dir / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        run_dir / "logs" / "replay-prometheus.log",
    ).start()
    url = f"http://127.0.0.1:{port}"
    try:
        proc.wait_ready(http_ok(f"{url}/-/ready"), timeout=60)
        yield url
    finally:
        proc.stop()
    assert not group_alive(proc.pid)


@pytest.mark.timeout(1500)
def test_the_commingled_venue_runs_dry_and_halts_and_full_reserve_pays_all(run_dir, summary):
    assert summary["scenario"] == "ftx-2022" and summary["problems"] == []
    ftx, full = summary["venues"]["ftx"], summary["venues"]["full-reserve"]
    assert ftx["policy"] == "commingled"
    assert ftx["dry_at_hours"] is not None and ftx["dry_at_hours"] < 72
    assert ftx["halted_at_hours"] is not None and ftx["halted_at_hours"] < 72
    assert full["withdrawals_paid"] == full["withdrawals_requested"] > 0.9 * 1000
    assert full["paid_fraction"] == 1.0
    assert summary["markets"]["PLATFORM/USD"]["drawdown_72h"] >= 0.75
    stats = (run_dir / "locust_stats.csv").read_text()
    assert "withdrawal,paid," in stats and "withdrawal,queued," in stats
    verified = subprocess.run(bankrun("verify", str(run_dir)), capture_output=True, text=True)
    assert verified.returncode == 0, verified.stdout
    pids = json.loads((run_dir / "pids.json").read_text())
    assert [n for n, pid in pids.items() if group_alive(pid)] == []


def test_liquidity_buffer_dry_fires_for_the_commingled_venue_never_for_full_reserve(
    run_dir, summary
):
    alerts = json.loads((run_dir / "alerts.json").read_text())
    firing = {
        a["labels"]["venue"]
        for a in alerts["active_at_end"]  # the alerts API, before the services stopped
        if a["labels"]["alertname"] == "LiquidityBufferDry" and a["state"] == "firing"
    }
    assert "ftx" in firing and "full-reserve" not in firing
    ever = summary["prometheus_alerts_fired"]
    assert "ftx" in ever["LiquidityBufferDry"]
    assert "full-reserve" not in ever["LiquidityBufferDry"]
    assert "ftx" in ever["VenueHalted"] and "full-reserve" not in ever.get("VenueHalted", [])


def expressions() -> list[tuple[str, str]]:
    """(where, PromQL) for every rule and every dashboard query, variables filled in."""
    out = []
    for path in sorted(RULES.glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                out.append((rule.get("record") or rule["alert"], rule["expr"]))
    for uid, where, expr in panels.queries():
        out.append((f"{uid}: {where}", expr))
    return out


@pytest.mark.parametrize(("where", "expr"), expressions(), ids=[w for w, _ in expressions()])
def test_every_rule_and_panel_query_returns_data_for_the_runs_venues(
    where, expr, run_dir, summary, replay_prometheus
):
    run_id = summary["run_id"]
    config = json.loads((run_dir / "config.json").read_text())
    start, end = config["started_at"] - 30, config["started_at"] + summary["wall_seconds"]
    result = keep.query_range(replay_prometheus, fill(expr, run_id), start, end)
    assert result, f"{where}: no data for {expr}"
    venues = {r["metric"]["venue"] for r in result if "venue" in r["metric"]}
    assert venues <= set(summary["venues"]), venues


def test_the_run_kept_its_series_for_after_prometheus(run_dir, summary):
    kept = {p.stem for p in (run_dir / "prometheus").glob("*.json")}
    for name in ("bankrun_reserves", "bankrun_buffer_dry", "venue_bankrun_reserve_ratio_cash"):
        assert name in kept, name
    reserves = json.loads((run_dir / "prometheus" / "bankrun_reserves.json").read_text())
    assert {r["metric"]["venue"] for r in reserves["result"]} == set(summary["venues"])
    png = (run_dir / "overview.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 20_000  # a drawing, not an empty canvas
