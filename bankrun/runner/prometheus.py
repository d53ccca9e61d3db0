"""A local Prometheus (Debian's package) scraping every service of the run."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import yaml

from bankrun.runner.processes import ManagedProcess, free_port, http_ok

OPS_DIR = Path(__file__).resolve().parents[2] / "ops" / "prometheus"


class PrometheusMissing(RuntimeError):
    pass


def prometheus_binary(install: bool = True) -> str:
    """Path of `prometheus`; installs Debian's package when missing and we are root."""
    found = shutil.which("prometheus")
    if found:
        return found
    if install and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "prometheus"], check=False, env=env)
        found = shutil.which("prometheus")
        if found:
            return found
    raise PrometheusMissing(
        "Prometheus is not installed. On Debian/Ubuntu: `sudo apt-get install -y prometheus` "
        "(bankrun installs it by itself when run as root); elsewhere put a `prometheus` "
        "binary (2.x) on PATH."
    )


def scrape_config(targets: dict[str, str], run_id: str, interval: str = "1s") -> dict[str, Any]:
    """One job per service; `run_id` becomes a label on every series."""
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "scrape_configs": [
            {
                "job_name": service,
                "static_configs": [{"targets": [target], "labels": {"run_id": run_id}}],
            }
            for service, target in sorted(targets.items())
        ],
    }


def start_prometheus(
    run_dir: Path, targets: dict[str, str], run_id: str, port: int | None = None
) -> tuple[ManagedProcess, str]:
    binary = prometheus_binary()
    port = port or free_port()
    config_path = run_dir / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(scrape_config(targets, run_id), sort_keys=False))
    url = f"http://127.0.0.1:{port}"
    proc = ManagedProcess(
        "prometheus",
        [
            binary,
            f"--config.file={config_path}",
            f"--storage.tsdb.path={run_dir / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-lifecycle",
        ],
        run_dir / "logs" / "prometheus.log",
    ).start()
    proc.wait_ready(http_ok(f"{url}/-/ready"), timeout=60)
    return proc, url


def query(url: str, promql: str) -> list[dict[str, Any]]:
    """Instant query; returns the result vector (raises on an API error)."""
    reply = httpx.get(f"{url}/api/v1/query", params={"query": promql}, timeout=5.0)
    reply.raise_for_status()
    body = reply.json()
    if body.get("status") != "success":
        raise RuntimeError(f"prometheus query {promql!r} failed: {body}")
    return body["data"]["result"]


def scalar(url: str, promql: str) -> float | None:
    """The single value of an instant query, or None when it has no result yet."""
    result = query(url, promql)
    return float(result[0]["value"][1]) if result else None
