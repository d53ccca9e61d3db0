"""What a run keeps from its Prometheus before Prometheus is gone: the alerts, and every series
of the run as range-query results, so the run can be looked at (and plotted) afterwards."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import httpx

MAX_POINTS = 10_000  # Prometheus refuses more than 11,000 points per series in one query


def _get(url: str, path: str, params: dict[str, Any] | None = None) -> Any:
    reply = httpx.get(f"{url}{path}", params=params, timeout=30.0)
    reply.raise_for_status()
    body = reply.json()
    if body.get("status") != "success":
        raise RuntimeError(f"prometheus {path} failed: {body}")
    return body["data"]


def active_alerts(url: str) -> list[dict[str, Any]]:
    """The alerts API (`/api/v1/alerts`): pending and firing alerts right now."""
    return _get(url, "/api/v1/alerts")["alerts"]


def query_range(url: str, promql: str, start: float, end: float) -> list[dict[str, Any]]:
    step = max(1, math.ceil((end - start) / MAX_POINTS))
    params = {"query": promql, "start": start, "end": end, "step": step}
    return _get(url, "/api/v1/query_range", params)["result"]


def fired(url: str, run_id: str, start: float, end: float) -> list[dict[str, Any]]:
    """Every alert that fired during the run, per label set, with when it first fired — from
    the `ALERTS` series Prometheus records, so alerts that resolved before the end count too."""
    rows = query_range(url, f'ALERTS{{alertstate="firing",run_id="{run_id}"}}', start, end)
    out = []
    for row in rows:
        labels = {k: v for k, v in row["metric"].items() if k not in ("__name__", "alertstate")}
        out.append({"labels": labels, "first_fired": float(row["values"][0][0])})
    return sorted(out, key=lambda a: (a["labels"].get("alertname", ""), a["first_fired"]))


def export_series(url: str, run_id: str, start: float, end: float, folder: Path) -> list[str]:
    """One JSON file per metric name (recording rules included) holding the run's range-query
    result; returns the names."""
    folder.mkdir(parents=True, exist_ok=True)
    selector = f'{{run_id="{run_id}"}}'
    names = _get(url, "/api/v1/label/__name__/values", {"match[]": selector})
    for name in names:
        result = query_range(url, f'{{__name__="{name}",run_id="{run_id}"}}', start, end)
        (folder / f"{name.replace(':', '_')}.json").write_text(
            json.dumps({"metric": name, "start": start, "end": end, "result": result})
        )
    return sorted(names)
