"""Folders and pages for many seeds: Monte Carlo bands, sweeps and reverse stress tests.

Each writes its numbers as JSON (and the seeds' metrics as CSV), and a self-contained
`report.html` in the same style as a run's, with its plots also under `report/`.
"""

from __future__ import annotations

import csv
import html
import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bankrun import montecarlo
from bankrun.montecarlo import CURVES, METRICS, Band, Outcome
from bankrun.report import page, png, pyplot, save_figures
from bankrun.scenario import Scenario
from bankrun.sweep import Point, Reverse


def band_text(metric: str, b: Band | None) -> str:
    """`median ±error [low - high]`, and how many seeds reached it when not all did."""
    return "never" if b is None else _cell(metric, b, _formats.get(metric, "{:.2f}".format))


def delta_text(metric: str, b: Band | None) -> str:
    """A band of differences, signed: shares in points, dollars in millions."""
    return "-" if b is None else _cell(metric, b, _delta(metric))


def _cell(metric: str, b: Band, fmt: Callable[[float], str]) -> str:
    """The median's standard error follows it, in the units of a difference (points of a
    share): what another draw of as many seeds could move it by."""
    error = "" if b.error is None else f" ±{_delta(metric)(b.error.median).removeprefix('+')}"
    text = f"{fmt(b.median)}{error} [{fmt(b.low)} - {fmt(b.high)}]"
    return text if b.n == b.of else f"{text} in {b.n}/{b.of}"


def _delta(metric: str) -> Callable[[float], str]:
    return _deltas.get(metric, "{:+.2f}".format)


_formats: dict[str, Callable[[float], str]] = {
    "paid_fraction": "{:.1%}".format,
    "requests_paid_share": "{:.1%}".format,
    # dollars, in millions: a band of losses in the hundreds of millions, not to the cent
    "fire_sale_losses": lambda dollars: f"${dollars / 1e6:,.1f}M",
}
_deltas: dict[str, Callable[[float], str]] = {
    "paid_fraction": lambda share: f"{share * 100:+.1f} pts",
    "requests_paid_share": lambda share: f"{share * 100:+.1f} pts",
    "fire_sale_losses": lambda dollars: f"{'-' if dollars < 0 else '+'}${abs(dollars) / 1e6:,.1f}M",
}


def _table(table_id: str, rows: dict[str, dict[str, Band | None]], first: str) -> str:
    e = html.escape
    head = "".join(f"<th>{e(title)}</th>" for title in METRICS.values())
    body = "".join(
        f"<tr><td>{e(name)}</td>"
        + "".join(f"<td>{e(band_text(m, bands.get(m)))}</td>" for m in METRICS)
        + "</tr>"
        for name, bands in rows.items()
    )
    return f'<table id="{table_id}"><tr><th>{e(first)}</th>{head}</tr>{body}</table>'


def write_seeds(
    run_dir: Path,
    scenario: Scenario,
    outcomes: list[Outcome],
    curves: montecarlo.CurveFile,
    wall_seconds: float,
    taken: tuple[Path, int] | None = None,
) -> dict[str, dict[str, Band | None]]:
    """`montecarlo.json`, `seeds.csv` and `report.html` for `sim --seeds N` (its seeds' curves
    are in `curves`' file, `curves.npy`); `taken`: the folder a resumed run took how many
    seeds from (their time is not in `wall_seconds`). Returns the bands it wrote (each a
    bootstrap: made once, for the files and for the terminal)."""
    bands = montecarlo.bands(outcomes)
    data = montecarlo.as_json(scenario, outcomes, bands, curves, wall_seconds)
    if taken is not None:
        data["taken"] = {"from": str(taken[0]), "seeds": taken[1]}
    (run_dir / "montecarlo.json").write_text(json.dumps(data, indent=1))
    with (run_dir / "seeds.csv").open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["seed", "venue", *METRICS])
        for o in outcomes:
            for venue, row in o.venues.items():
                writer.writerow([o.seed, venue, *(row[m] for m in METRICS)])
    figures = {
        "bands": _curve_figure(data["hours"], data["curves"], bands),
        "dry-times": _histogram(outcomes, "dry_at_hours", "scenario hour the buffer ran dry"),
    }
    save_figures(run_dir, figures)
    body = (
        f"<h2>Venues over {len(outcomes)} seeds: median ±error [5th - 95th percentile]</h2>"
        + _table("bands", bands, "venue")
        + "<p>A metric a seed never reached (a venue that never ran dry) is left out of its "
        "band; 'in k/N' says how many seeds reached it. ±: the median's Monte Carlo error, "
        "the standard error of " + f"{montecarlo.RESAMPLES:,} bootstrap resamples of the seeds "
        "(in <code>montecarlo.json</code>, the band's edges have theirs). It shrinks as one "
        "over the square root of the seeds: four times the seeds halve it.</p>"
    )
    meta = (
        f"scenario: {html.escape(scenario.name)} · seeds {outcomes[0].seed}-{outcomes[-1].seed}"
        f" · wall seconds: {wall_seconds:.1f}"
    )
    if taken is not None:
        meta += f" · {taken[1]} seeds taken from {html.escape(str(taken[0]))}"
    (run_dir / "report.html").write_text(
        page(f"bankrun — {scenario.name}, Monte Carlo", meta, body, figures)
    )
    return bands


def write_sweep(
    run_dir: Path, scenario: Scenario, path: str, points: list[Point], wall_seconds: float
) -> Path:
    venues = list(points[0].outcomes[0].venues)
    data = {
        "scenario": scenario.name,
        "param": path,
        "seeds": [o.seed for o in points[0].outcomes],
        "wall_seconds": round(wall_seconds, 2),
        "points": [
            {
                "value": p.value,
                "bands": {v: {m: _asdict(p.band(v, m)) for m in METRICS} for v in venues},
            }
            for p in points
        ],
    }
    (run_dir / "sweep.json").write_text(json.dumps(data, indent=1))
    figures = {"sweep": _sweep_figure(path, points, venues)}
    save_figures(run_dir, figures)
    swept = venue_of(path, venues)
    shown = [swept] if swept else venues
    body = "".join(
        f"<h2>{html.escape(v)}: each value of {html.escape(path)} over "
        f"{len(points[0].outcomes)} seeds</h2>"
        + _table(
            f"sweep-{v}",
            {f"{p.value:g}": {m: p.band(v, m) for m in METRICS} for p in points},
            "value",
        )
        for v in shown
    )
    meta = f"scenario: {html.escape(scenario.name)} · wall seconds: {wall_seconds:.1f}"
    out = run_dir / "report.html"
    out.write_text(page(f"bankrun — {scenario.name}, sweep of {path}", meta, body, figures))
    return out


def write_reverse(run_dir: Path, scenario: Scenario, result: Reverse, wall_seconds: float) -> Path:
    venue, target = result.venue, result.target
    tried = sorted(result.tried, key=lambda p: p.value)
    data: dict[str, Any] = {
        "scenario": scenario.name,
        "param": result.path,
        "venue": venue,
        "target": str(target),
        "coverage": result.coverage,
        "verdict": result.verdict,
        "answer": result.answer.value if result.answer else None,
        "below": result.below.value if result.below else None,
        "wall_seconds": round(wall_seconds, 2),
        "tried": [
            {
                "value": p.value,
                "share_meeting": p.share_meeting(venue, target),
                "band": _asdict(p.band(venue, target.metric)),
                "seeds": [o.seed for o in p.outcomes],
            }
            for p in result.tried
        ],
    }
    (run_dir / "reverse.json").write_text(json.dumps(data, indent=1))
    figures = {"reverse": _reverse_figure(result, tried)}
    save_figures(run_dir, figures)
    e = html.escape
    rows = "".join(
        f"<tr><td>{p.value:g}</td><td>{p.share_meeting(venue, target):.0%}</td>"
        f"<td>{e(band_text(target.metric, p.band(venue, target.metric)))}</td></tr>"
        for p in tried
    )
    body = (
        f'<h2>Answer</h2><p id="verdict">{e(result.verdict)}</p>'
        f'<h2>Values tried (bisection)</h2><table id="tried"><tr><th>{e(result.path)}</th>'
        f"<th>seeds meeting {e(str(target))}</th><th>{e(target.metric)} band</th></tr>{rows}"
        "</table>"
    )
    meta = f"scenario: {e(scenario.name)} · wall seconds: {wall_seconds:.1f}"
    out = run_dir / "report.html"
    out.write_text(page(f"bankrun — {scenario.name}, reverse stress test", meta, body, figures))
    return out


def _asdict(b: Band | None) -> dict | None:
    return asdict(b) if b else None


def venue_of(path: str, venues: list[str]) -> str | None:
    """The venue a parameter path belongs to (by id or index), if any: its table is shown."""
    parts = path.split(".")
    if len(parts) > 1 and parts[0] == "venues":
        key = parts[1]
        if key in venues:
            return key
        if key.isdigit() and int(key) < len(venues):
            return venues[int(key)]
    return None


def _curve_figure(
    hours: list[float], curves: dict[str, dict[str, dict[str, list[float]]]], bands: dict
) -> bytes:
    plt = pyplot()
    names = list(curves)
    fig, axes = plt.subplots(len(names), len(CURVES), figsize=(16, 2.8 * len(names)), squeeze=False)
    for row, venue in zip(axes, names, strict=True):
        for ax, (curve, title) in zip(row, CURVES.items(), strict=True):
            c = curves[venue].get(curve)
            if c is None:
                ax.set_visible(False)
                continue
            ax.fill_between(hours, c["low"], c["high"], alpha=0.3, label="90 % band")
            ax.plot(hours, c["median"], linewidth=1.2, label="median")
            dry = bands[venue]["dry_at_hours"]
            if dry is not None:
                ax.axvspan(dry.low, dry.high, color="orange", alpha=0.12, label="dry, 90 % band")
            ax.set_title(f"{venue}: {title}", fontsize=9)
            ax.tick_params(labelsize=7)
            ax.set_xlabel("scenario hours", fontsize=7)
            ax.legend(fontsize=6)
    return png(fig)


def _histogram(outcomes: list[Outcome], metric: str, title: str) -> bytes:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(16, 3))
    venues = list(outcomes[0].venues)
    data = [
        [o.venues[v][metric] for o in outcomes if o.venues[v][metric] is not None] for v in venues
    ]
    labels = [f"{v} ({len(d)}/{len(outcomes)} seeds)" for v, d in zip(venues, data, strict=True)]
    ax.hist([d for d in data], bins=24, label=labels)
    ax.set_title(f"{title}, over seeds", fontsize=9)
    ax.set_xlabel("scenario hours", fontsize=7)
    ax.legend(fontsize=7)
    return png(fig)


def _sweep_figure(path: str, points: list[Point], venues: list[str]) -> bytes:
    plt = pyplot()
    shown = ("paid_fraction", "requests_paid_share", "dry_at_hours")
    fig, axes = plt.subplots(1, len(shown), figsize=(16, 3.5))
    xs = [p.value for p in points]
    for ax, metric in zip(axes, shown, strict=True):
        for venue in venues:
            bands = [p.band(venue, metric) for p in points]
            if all(b is None for b in bands):
                continue
            med = [b.median if b else float("nan") for b in bands]
            ax.plot(xs, med, marker="o", markersize=3, label=venue)
            ax.fill_between(
                xs,
                [b.low if b else float("nan") for b in bands],
                [b.high if b else float("nan") for b in bands],
                alpha=0.2,
            )
        ax.set_title(f"{METRICS[metric]} against {path}", fontsize=8)
        ax.set_xlabel(path, fontsize=7)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6)
    return png(fig)


def _reverse_figure(result: Reverse, tried: list[Point]) -> bytes:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(12, 3.5))
    metric, venue = result.target.metric, result.venue
    for p in tried:
        b = p.band(venue, metric)
        if b is None:
            continue
        ok = p.share_meeting(venue, result.target) >= result.coverage
        ax.errorbar(
            [p.value],
            [b.median],
            yerr=[[b.median - b.low], [b.high - b.median]],
            fmt="o",
            color="green" if ok else "red",
        )
    ax.axhline(result.target.value, color="grey", linestyle="--", label=str(result.target))
    if result.answer:
        ax.axvline(result.answer.value, color="green", linestyle=":", label="answer")
    ax.set_title(
        f"{venue}: {METRICS[metric]} against {result.path} (green: target met)", fontsize=9
    )
    ax.set_xlabel(result.path, fontsize=7)
    ax.legend(fontsize=7)
    return png(fig)
