"""`overview.png`: the Grafana overview dashboard's panels, drawn from the same queries against
the run's Prometheus, for people without Grafana (and after Prometheus is gone)."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from pathlib import Path

from bankrun import panels
from bankrun.runner import keep

DASHBOARD = "bankrun-overview"


def charts_of(run_id: str) -> dict[str, list[str]]:
    """Panel title -> its queries, with the dashboard's variables filled in for this run."""
    out: dict[str, list[str]] = defaultdict(list)
    for uid, where, expr in panels.queries():
        if uid != DASHBOARD or where.startswith(("annotation:", "variable:")):
            continue
        title = where.replace(" — $venue", "")
        if "$venue" in where and title in out:
            continue  # a repeated per-venue row: one plot holds every venue
        out[title].append(fill(expr, run_id))
    return dict(out)


def fill(expr: str, run_id: str) -> str:
    """Grafana's variables as the overview sees a whole run: every venue, 1 m rate windows."""
    expr = re.sub(r"\$\{?__rate_interval\}?", "1m", expr)
    expr = re.sub(r"\$\{?run_id\}?", run_id, expr)
    return re.sub(r"\$\{?venue(:\w+)?\}?", ".*", expr)


def render(url: str, run_id: str, start: float, end: float, path: Path) -> int:
    """Draw every overview panel as a small line chart over the run; returns the panel count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    charts = charts_of(run_id)
    cols = 3
    rows = math.ceil(len(charts) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 3.2 * rows), squeeze=False)
    for ax, (title, queries) in zip(axes.flat, charts.items(), strict=False):
        for expr in queries:
            for series in keep.query_range(url, expr, start, end):
                xs = [(float(t) - start) for t, _ in series["values"]]
                ys = [float(v) for _, v in series["values"]]
                label = ",".join(
                    v for k, v in sorted(series["metric"].items()) if k not in ("__name__",)
                )
                ax.plot(xs, ys, label=label or expr[:30], linewidth=1)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("wall seconds into the run", fontsize=7)
        ax.tick_params(labelsize=7)
        if ax.lines and len(ax.lines) <= 12:
            ax.legend(fontsize=6, loc="best")
    for ax in list(axes.flat)[len(charts) :]:
        ax.axis("off")
    fig.suptitle(f"bankrun overview — run {run_id}", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return len(charts)
