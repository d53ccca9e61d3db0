"""`report.html`: one run laid out for a decision — the venues side by side, how each one's
reserves and queue moved through the run, and who got paid (by balance decile, and by when
they asked: the first movers against the late ones). Built from `events.jsonl` and
`summary.json` alone; self-contained (plots inlined as PNG), so it opens offline from the file.
The same plots are saved beside it under `report/`.
"""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bankrun import events as ev
from bankrun import por_report
from bankrun import summary as summaries

HOUR = 3600.0
BUCKETS = 12  # ask-time buckets over the run
FEAR_FILE = "fear.json"  # the panic desk's fear per venue and step (panic load only)


@dataclass
class VenueSeries:
    """A venue's balance sheet and withdrawals over scenario hours, from its snapshots."""

    hours: list[float] = field(default_factory=list)
    tiers: dict[str, list[int]] = field(
        default_factory=lambda: {"hot": [], "transit": [], "warm": [], "cold": []}
    )
    liabilities: list[int] = field(default_factory=list)
    waiting: list[int] = field(default_factory=list)
    deposits_out: list[int] = field(default_factory=list)  # callable deposits at other venues
    flows: dict[str, list[tuple[float, int]]] = field(
        default_factory=lambda: {"requested": [], "paid": []}
    )


_FLOWS: dict[type[ev.Event], str] = {ev.WithdrawalRequested: "requested", ev.WithdrawalPaid: "paid"}


def series(log: list[ev.Event]) -> tuple[dict[str, VenueSeries], dict[str, list[tuple]]]:
    """Per venue: snapshots and cumulative requested/paid; per market: (hour, price)."""
    built = Series()
    for event in summaries.unique(log):
        built.add(event)
    return built.venues, built.prices


class Series:
    """The series, an event at a time: over a log, or as a sim goes. `add` counts what it is
    given: drop redelivered copies first (`summaries.Dedupe`)."""

    #: the event types `add` draws from (a test holds this to its body)
    DRAWN: frozenset[type[ev.Event]] = frozenset(
        {ev.VenueOpened, ev.BookSnapshot, ev.ReserveSnapshot, *_FLOWS}
    )

    def __init__(self) -> None:
        self.venues: dict[str, VenueSeries] = {}
        self.prices: dict[str, list[tuple[float, float]]] = {}
        self._totals: dict[tuple[str, str], int] = {}

    def add(self, event: ev.Event) -> None:
        if type(event) not in self.DRAWN:
            return
        hours = event.scenario_time / HOUR
        if isinstance(event, ev.BookSnapshot):
            self.prices.setdefault(event.market, []).append((hours, event.last))
            return
        if event.venue == ev.MARKET_VENUE:
            return
        v = self.venues.get(event.venue)
        if v is None:  # not setdefault: that would build a VenueSeries for every event
            v = self.venues[event.venue] = VenueSeries()
        # a venue has its series, empty, from its opening: a run stopped before its first
        # snapshot still plots every venue
        if isinstance(event, ev.VenueOpened):
            return
        if isinstance(event, ev.ReserveSnapshot):
            v.hours.append(hours)
            for tier, values in v.tiers.items():
                values.append(getattr(event, tier))
            v.liabilities.append(event.liabilities)
            v.waiting.append(event.waiting)
            v.deposits_out.append(event.claims.get("deposit", 0))
        flow = _FLOWS.get(type(event))
        if flow is not None:
            key = (event.venue, flow)
            total = self._totals[key] = self._totals.get(key, 0) + event.amount  # type: ignore[attr-defined]
            v.flows[flow].append((hours, total))


def who_got_paid(t: summaries.VenueTally, duration_hours: float) -> dict[str, list[dict]]:
    """Paid share of what was claimed, by starting-balance decile (1 = smallest) and by the
    time of each customer's first ask."""
    claimed = t.claimed_by_account()
    ranked = sorted(t.funded, key=lambda a: (t.funded[a], a))
    deciles: list[list[str]] = [[] for _ in range(10)]
    for i, account in enumerate(ranked):
        deciles[i * 10 // len(ranked)].append(account)
    width = max(duration_hours, 1e-9) / BUCKETS
    buckets: list[list[str]] = [[] for _ in range(BUCKETS)]
    for account, at in t.first_ask_at.items():
        buckets[min(BUCKETS - 1, int(at / HOUR / width))].append(account)
    by_decile = [_share(f"D{d + 1}", accounts) for d, accounts in enumerate(deciles)]
    by_time = [
        _share(f"{b * width:.0f}-{(b + 1) * width:.0f} h", accounts)
        for b, accounts in enumerate(buckets)
    ]

    def fill(row: dict[str, Any]) -> dict[str, Any]:
        accounts = row.pop("accounts")
        row["claimed"] = sum(claimed.get(a, 0) for a in accounts)
        row["paid"] = sum(t.paid_to.get(a, 0) for a in accounts)
        row["customers"] = sum(1 for a in accounts if claimed.get(a))
        row["paid_share"] = row["paid"] / row["claimed"] if row["claimed"] else None
        return row

    return {"by_decile": [fill(r) for r in by_decile], "by_ask_time": [fill(r) for r in by_time]}


def _share(label: str, accounts: list[str]) -> dict[str, Any]:
    return {"group": label, "accounts": accounts}


def build(
    run_dir: Path, result: dict[str, Any] | None = None, log: list[ev.Event] | None = None
) -> Path:
    """Write `report.html` (and `report/*.png`) for a run folder; returns the HTML's path.
    `result` and `log` are the folder's summary and event log, when the caller has them."""
    if result is None:
        result = json.loads((run_dir / "summary.json").read_text())
    if log is None:
        log = summaries.read_log(run_dir / "events.jsonl")
    tallies, _ = summaries.tally(log)
    venues, prices = series(log)
    duration = max((e.scenario_time for e in log), default=0.0) / HOUR
    paid = {v: who_got_paid(tallies[v], duration) for v in result["venues"]}
    figures = {
        "reserves": _venue_figure(venues, result["venues"]),
        "who-got-paid": _paid_figure(paid),
    }
    if any(len(p) > 1 for p in prices.values()):
        figures["prices"] = _price_figure(prices)
    if (run_dir / FEAR_FILE).exists():
        figures["fear"] = _fear_figure(json.loads((run_dir / FEAR_FILE).read_text()), result)
    attested = {v: t.proofs for v, t in tallies.items() if t.proofs}
    proof_html = ""
    if attested:
        figures["proof-of-reserves"] = por_report.figure(attested)
        pairs = por_report.twins(por_report.scenario_of(run_dir), result["venues"])
        proof_html = por_report.section(result, pairs)
        por_report.write_verifier(run_dir)
    save_figures(run_dir, figures)
    out = run_dir / "report.html"
    out.write_text(_html(result, paid, figures, proof_html))
    return out


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=80)
    pyplot().close(fig)
    return buffer.getvalue()


def _venue_figure(venues: dict[str, VenueSeries], rows: dict[str, dict]) -> bytes:
    plt = pyplot()
    names = [v for v in rows if v in venues]
    fig, axes = plt.subplots(len(names), 3, figsize=(16, 3.2 * len(names)), squeeze=False)
    for (ax_tiers, ax_flows, ax_ratio), name in zip(axes, names, strict=True):
        v, row = venues[name], rows[name]
        title = f"{name} ({row['policy']})"
        layers = dict(v.tiers)
        if any(v.deposits_out):
            layers["deposits at other venues"] = v.deposits_out
        ax_tiers.stackplot(v.hours, *(_dollars(x) for x in layers.values()), labels=layers)
        ax_tiers.plot(v.hours, _dollars(v.liabilities), "k-", linewidth=1, label="liabilities")
        ax_tiers.plot(v.hours, _dollars(v.waiting), "r--", linewidth=1, label="waiting")
        ax_tiers.set_title(f"{title}: cash by tier, $", fontsize=9)
        ax_tiers.legend(fontsize=6, loc="upper right")
        for flow, points in v.flows.items():
            if points:
                xs, ys = zip(*points, strict=True)
                ax_flows.step(xs, _dollars(list(ys)), where="post", label=flow)
        ax_flows.set_title(f"{title}: cumulative requested vs. paid, $", fontsize=9)
        if any(v.flows.values()):
            ax_flows.legend(fontsize=6)
        hot = v.tiers["hot"]
        ratio = [h / lia if lia else 0.0 for h, lia in zip(hot, v.liabilities, strict=True)]
        ax_ratio.plot(v.hours, ratio)
        ax_ratio.set_title(f"{title}: hot reserve ratio", fontsize=9)
        for ax in (ax_tiers, ax_flows, ax_ratio):
            ax.tick_params(labelsize=7)
            ax.set_xlabel("scenario hours", fontsize=7)
            for key, style in (
                ("dry_at_hours", "orange"),
                ("halted_at_hours", "red"),
                ("claims_frozen_at_hours", "purple"),
            ):
                if row.get(key) is not None:
                    ax.axvline(row[key], color=style, linestyle=":", linewidth=1)
    return png(fig)


def _paid_figure(paid: dict[str, dict[str, list[dict]]]) -> bytes:
    plt = pyplot()
    fig, (by_decile, by_time) = plt.subplots(1, 2, figsize=(16, 4))
    width = 0.8 / max(1, len(paid))
    for i, (venue, groups) in enumerate(paid.items()):
        for ax, key in ((by_decile, "by_decile"), (by_time, "by_ask_time")):
            rows = groups[key]
            xs = [j + i * width for j in range(len(rows))]
            ax.bar(xs, [r["paid_share"] or 0 for r in rows], width, label=venue)
            ax.set_xticks([j + 0.4 - width / 2 for j in range(len(rows))])
            ax.set_xticklabels([r["group"] for r in rows], fontsize=7, rotation=30)
    by_decile.set_title("paid share of what was claimed, by starting-balance decile", fontsize=9)
    by_time.set_title("paid share of what was claimed, by when customers first asked", fontsize=9)
    for ax in (by_decile, by_time):
        ax.legend(fontsize=7)
        ax.set_ylim(0, 1.05)
    return png(fig)


def _price_figure(prices: dict[str, list[tuple]]) -> bytes:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(16, 3))
    for market, points in prices.items():
        xs, ys = zip(*points, strict=True)
        start = ys[0] or 1
        ax.plot(xs, [y / start for y in ys], label=market)
    ax.set_title("market prices, relative to their start", fontsize=9)
    ax.set_xlabel("scenario hours", fontsize=7)
    ax.legend(fontsize=7)
    return png(fig)


def _fear_figure(fear: dict[str, list[list[float]]], result: dict[str, Any]) -> bytes:
    """Each venue's fear level: a customer runs once it passes the customer's own threshold,
    so this line is what drives the requests in the plots above."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(16, 3))
    for venue, points in fear.items():
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, label=venue)
            halted = result["venues"].get(venue, {}).get("halted_at_hours")
            if halted is not None:
                ax.axvline(halted, color="red", linestyle=":", linewidth=1)
    ax.set_title("fear level of each venue's customers (panic model)", fontsize=9)
    ax.set_xlabel("scenario hours", fontsize=7)
    ax.legend(fontsize=7)
    return png(fig)


def _dollars(values: list[int]) -> list[float]:
    return [x / 100 for x in values]


COLUMNS = (
    ("policy", "policy"),
    ("liquid at start", "liquid_start"),
    ("dry (h)", "dry_at_hours"),
    ("halted (h)", "halted_at_hours"),
    ("requests paid", "withdrawals_paid"),
    ("money paid", "paid_fraction"),
    ("latency p50 / p99 (h)", "latency_p50_hours"),
    ("fire-sale losses", "fire_sale_losses"),
    ("claims frozen (h)", "claims_frozen_at_hours"),
    ("claim losses", "claim_losses"),
    ("credit drawn / lent", "credit_drawn"),
)


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{share:.0%}"


def _ratio(value: int | None, whole: int | None) -> str:
    return f"{value / whole:.0%}" if value is not None and whole else "-"


def _cell(key: str, row: dict[str, Any]) -> str:
    if key == "withdrawals_paid":
        asked = row["withdrawals_requested"]
        return f"{row['withdrawals_paid']} / {asked}" + (
            f" ({row['withdrawals_paid'] / asked:.0%})" if asked else ""
        )
    if key == "latency_p50_hours":
        p50, p99 = row["latency_p50_hours"], row["latency_p99_hours"]
        return "-" if p50 is None else f"{p50:.2f} / {p99:.2f}"
    if key == "liquid_start":
        return _ratio(row["liquid_start"], row["liabilities_start"])
    if key in ("fire_sale_losses", "claim_losses"):
        return f"${row.get(key, 0) / 100:,.0f}"
    if key == "credit_drawn":
        drawn, lent = row.get("credit_drawn", 0), row.get("credit_lent", 0)
        return f"${drawn / 100:,.0f} / ${lent / 100:,.0f}" if drawn or lent else "-"
    value = row.get(key)
    if key in ("dry_at_hours", "halted_at_hours", "claims_frozen_at_hours"):
        return "-" if value is None else f"{value:.2f}"
    if key == "paid_fraction":
        return "-" if value is None else f"{value:.1%}"
    return str(value)


def _html(
    result: dict[str, Any], paid: dict[str, dict], figures: dict[str, bytes], extra: str = ""
) -> str:
    e = html.escape
    head = "".join(f"<th>{e(title)}</th>" for title, _ in COLUMNS)
    body = "".join(
        f"<tr><td>{e(venue)}</td>"
        + "".join(f"<td>{e(_cell(key, row))}</td>" for _, key in COLUMNS)
        + "</tr>"
        for venue, row in result["venues"].items()
    )
    groups = ""
    for venue, split in paid.items():
        cells = "".join(f"<td>{_percent(r['paid_share'])}</td>" for r in split["by_ask_time"])
        groups += f"<tr><td>{e(venue)}</td>{cells}</tr>"
    first = next(iter(paid.values()), {"by_ask_time": []})
    labels = "".join(f"<th>{e(r['group'])}</th>" for r in first["by_ask_time"])
    meta = " · ".join(
        f"{k}: {e(str(result.get(k)))}" for k in ("run_id", "mode", "seed", "speed", "wall_seconds")
    )
    problems = "".join(f"<li>{e(p)}</li>" for p in result.get("problems", [])) or "<li>none</li>"
    return page(
        f"bankrun — {result.get('scenario')}",
        meta,
        f"""<h2>Venues side by side</h2>
<table id="venues"><tr><th>venue</th>{head}</tr>{body}</table>
<h2>Who got paid, by when they first asked</h2>
<table id="who-got-paid"><tr><th>venue</th>{labels}</tr>{groups}</table>
{extra}
<h2>Problems</h2><ul>{problems}</ul>""",
        figures,
    )


def page(title: str, meta: str, body: str, figures: dict[str, bytes]) -> str:
    """A self-contained page: `body` (HTML), then each figure inlined as a PNG."""
    e = html.escape
    images = "".join(
        f'<h2>{e(name)}</h2><img alt="{e(name)}" src="data:image/png;base64,'
        f'{base64.b64encode(png).decode()}">'
        for name, png in figures.items()
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{e(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }}
th, td {{ border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
img {{ max-width: 100%; }}
</style></head><body>
<h1>{e(title)}</h1>
<p>{meta}</p>
{body}
{images}
</body></html>
"""


def save_figures(run_dir: Path, figures: dict[str, bytes]) -> None:
    folder = run_dir / "report"
    folder.mkdir(exist_ok=True)
    for name, png in figures.items():
        (folder / f"{name}.png").write_bytes(png)
