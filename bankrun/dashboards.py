"""Grafana dashboards as code: generated JSON under ops/grafana/dashboards/, checked for drift.

Built with grafana-foundation-sdk, Grafana's official typed builders, pinned to its Grafana 11.6
build (`1769699379!11.6.0`). It installs and runs on Python 3.11, its models parse the JSON back
(the tests use that), and its panels follow Grafana's own schema, which grafanalib only mirrors by
hand. The pin is exact because every build carries its own epoch: a plain `>=` would pick whichever
Grafana version was built last, not the newest one.

Every query filters `run_id="$run_id"` (and `venue=~"$venue"` where the metric has a venue) so one
Prometheus can hold many runs; range vectors use `$__rate_interval` or `[1m]` only, so the queries
stay valid PromQL once Grafana (or a test) substitutes the variables. The recording rules
(`venue:…`) live in ops/prometheus/rules/.
"""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.builders import heatmap as heatmap_b
from grafana_foundation_sdk.builders import prometheus as prom_b
from grafana_foundation_sdk.builders import stat as stat_b
from grafana_foundation_sdk.builders import timeseries as ts_b
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as common_m
from grafana_foundation_sdk.models import dashboard as dash_m
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from bankrun import panels
from bankrun.generated import GeneratedFiles, dump_json
from bankrun.panels import DEFAULT_DIR

DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
RATE = "[$__rate_interval]"
TOKEN_MARKET = "PLATFORM/USD"

# Grafana units
DOLLARS = "currencyUSD"
RATIO = "percentunit"
HOURS = "h"
SECONDS = "s"
PER_SECOND = "reqps"
COUNT = "short"

PanelBuilder = ts_b.Panel | stat_b.Panel | heatmap_b.Panel
Item = dash_b.Row | PanelBuilder


def _ds() -> dash_m.DataSourceRef:
    """A fresh reference each time: the SDK's models are mutable and shared ones would alias."""
    return dash_m.DataSourceRef(type_val=DATASOURCE["type"], uid=DATASOURCE["uid"])


def sel(metric: str, *, venue: bool = True, **labels: str) -> str:
    """`metric{run_id="$run_id",venue=~"$venue",…}`: every selector is scoped to the run."""
    matchers = ['run_id="$run_id"'] + (['venue=~"$venue"'] if venue else [])
    matchers += [f'{k}="{v}"' for k, v in labels.items()]
    return f"{metric}{{{','.join(matchers)}}}"


def dollars(expr: str) -> str:
    """Money metrics are quote minor units (cents)."""
    return f"{expr} / 100"


# --- panel helpers -------------------------------------------------------------------------------


def _target(
    expr: str, legend: str, ref: str, fmt: PromQueryFormat = PromQueryFormat.TIME_SERIES
) -> prom_b.Dataquery:
    return (
        prom_b.Dataquery()
        .expr(expr)
        .legend_format(legend)
        .ref_id(ref)
        .format(fmt)
        .range()
        .datasource(_ds())
    )


def _place(panel: PanelBuilder, pid: int, title: str, width: int, height: int) -> PanelBuilder:
    return panel.id(pid).title(title).datasource(_ds()).span(width).height(height)


def timeseries(
    pid: int,
    title: str,
    unit: str,
    *queries: tuple[str, str],
    stack: bool = False,
    width: int = 12,
    description: str = "",
) -> ts_b.Panel:
    """A time series of (expr, legend) queries; `stack` for parts of a whole (tiers, holdings)."""
    panel = ts_b.Panel().unit(unit).fill_opacity(40 if stack else 10).line_width(1)
    if stack:
        panel.stacking(common_b.StackingConfig().mode(common_m.StackingMode.NORMAL))
    if unit == RATIO:
        panel.min(0)
    if description:
        panel.description(description)
    for n, (expr, legend) in enumerate(queries):
        panel.with_target(_target(expr, legend, chr(ord("A") + n)))
    return _place(panel, pid, title, width, 8)


def latency_heatmap(pid: int) -> heatmap_b.Panel:
    """Paid withdrawals' scenario latency, the histogram's buckets as Prometheus keeps them."""
    expr = f"sum by (le) (rate({sel('bankrun_withdrawal_latency_scenario_seconds_bucket')}{RATE}))"
    panel = (
        heatmap_b.Panel()
        .calculate(False)
        .y_axis(heatmap_b.YAxisConfig().unit(SECONDS))
        .with_target(_target(expr, "{{le}}", "A", PromQueryFormat.HEATMAP))
    )
    return _place(panel, pid, "withdrawal latency (scenario time)", 12, 8)


def flag(pid: int, title: str, metric: str, word: str) -> stat_b.Panel:
    """A 0/1 gauge as a word: green "no" until it turns 1. Gauges set only to 1 (gated, halted)
    do not exist before, hence "no" for no data too."""
    mapping = dash_m.ValueMap(
        options={
            "0": dash_m.ValueMappingResult(text="no", color="green", index=0),
            "1": dash_m.ValueMappingResult(text=word, color="red", index=1),
        }
    )
    panel = (
        stat_b.Panel()
        .mappings([mapping])
        .no_value("no")
        .color_mode(common_m.BigValueColorMode.BACKGROUND)
        .graph_mode(common_m.BigValueGraphMode.NONE)
        .reduce_options(common_b.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .with_target(_target(f"max by (venue) ({sel(metric)})", "{{venue}}", "A"))
    )
    return _place(panel, pid, title, 8, 4)


def row(pid: int, title: str, repeat: str | None = None) -> dash_b.Row:
    """An open row: its panels follow it in the dashboard (Grafana nests them only if collapsed)."""
    built = dash_b.Row(title).id(pid).collapsed(False)
    return built.repeat(repeat) if repeat else built


# --- the panels both dashboards show -------------------------------------------------------------


def status(first: int, suffix: str = "") -> list[Item]:
    """Has the venue's buffer run dry, its gate tripped, its withdrawals halted?"""
    return [
        flag(first, f"buffer dry{suffix}", "bankrun_buffer_dry", "DRY"),
        flag(first + 1, f"gated{suffix}", "bankrun_venue_gated", "GATED"),
        flag(first + 2, f"halted{suffix}", "bankrun_venue_halted", "HALTED"),
    ]


def reserves_by_tier(pid: int, *, per_venue: bool = False) -> ts_b.Panel:
    """Stacked tiers only add up within one venue: with `per_venue`, one panel per selected
    venue, side by side."""
    expr = dollars(f"sum by (venue, tier) ({sel('bankrun_reserves')})")
    title = "liquid reserves by tier" + (" — $venue" if per_venue else "")
    panel = timeseries(
        pid, title, DOLLARS, (expr, "{{tier}}"), stack=True, width=24 if per_venue else 12
    )
    return panel.repeat("venue").repeat_direction("h").max_per_row(3) if per_venue else panel


def reserve_ratio(pid: int) -> ts_b.Panel:
    hot = f"max by (venue) ({sel('bankrun_reserve_ratio')})"
    cash = f"max by (venue) ({sel('venue:bankrun_reserve_ratio:cash')})"
    return timeseries(
        pid,
        "reserve ratio",
        RATIO,
        (hot, "{{venue}} hot"),
        (cash, "{{venue}} all cash"),
        description="Reserves / customer liabilities: the hot wallet alone, and all cash tiers.",
    )


def runway(pid: int) -> ts_b.Panel:
    expr = f"max by (venue) ({sel('venue:bankrun_runway_hours:hot')})"
    return timeseries(
        pid,
        "runway (hours of withdrawals the hot wallet covers)",
        HOURS,
        (expr, "{{venue}}"),
    )


def withdrawals_by_outcome(pid: int) -> ts_b.Panel:
    expr = f"sum by (venue, outcome) (rate({sel('bankrun_withdrawals_total')}{RATE}))"
    return timeseries(pid, "withdrawals by outcome", PER_SECOND, (expr, "{{venue}} {{outcome}}"))


def latency_quantiles(pid: int) -> ts_b.Panel:
    queries = [
        (
            f"max by (venue) ({sel(f'venue:bankrun_withdrawal_latency_hours:{q}_1m')})",
            f"{{{{venue}}}} {q}",
        )
        for q in ("p50", "p99")
    ]
    return timeseries(pid, "withdrawal latency p50 / p99 (scenario hours)", HOURS, *queries)


def success_ratio(pid: int) -> ts_b.Panel:
    expr = f"max by (venue) ({sel('venue:bankrun_withdrawal_success_ratio:rate1m')})"
    return timeseries(pid, "withdrawal success ratio", RATIO, (expr, "{{venue}}"))


def queue_depth(pid: int) -> ts_b.Panel:
    expr = f"sum by (venue) ({sel('bankrun_withdrawal_queue_depth')})"
    return timeseries(pid, "withdrawals queued for liquidity", COUNT, (expr, "{{venue}}"))


def token_price(pid: int) -> ts_b.Panel:
    expr = dollars(
        f"max by (market) ({sel('bankrun_market_price', venue=False, market=TOKEN_MARKET)})"
    )
    return timeseries(pid, "platform token price", DOLLARS, (expr, "{{market}}"))


# --- the drill-down's own panels -----------------------------------------------------------------


def liabilities(pid: int) -> ts_b.Panel:
    expr = dollars(f"sum by (venue) ({sel('bankrun_customer_liabilities')})")
    return timeseries(pid, "customer liabilities", DOLLARS, (expr, "{{venue}}"))


def holdings(pid: int) -> ts_b.Panel:
    expr = dollars(f"sum by (holding) ({sel('bankrun_holdings')})")
    return timeseries(
        pid, "non-cash holdings (book value)", DOLLARS, (expr, "{{holding}}"), stack=True
    )


def claims(pid: int) -> ts_b.Panel:
    """Contagion on the sheet: what the venue has at other venues, and what it owes them."""
    return timeseries(
        pid,
        "claims on other venues by state, and borrowed from them",
        DOLLARS,
        (dollars(f"sum by (state) ({sel('bankrun_claims')})"), "{{state}}"),
        (dollars(f"sum ({sel('bankrun_borrowed')})"), "borrowed"),
    )


def lcr(pid: int) -> ts_b.Panel:
    expr = f"max by (venue) ({sel('bankrun_lcr')})"
    return timeseries(pid, "liquidity coverage ratio (lcr policy)", RATIO, (expr, "{{venue}}"))


def mobilized(pid: int) -> ts_b.Panel:
    expr = dollars(f"sum by (source) (rate({sel('bankrun_mobilized_minor_units_total')}{RATE}))")
    return timeseries(
        pid,
        "mobilized towards the hot wallet ($ per second) by source",
        DOLLARS,
        (expr, "{{source}}"),
        stack=True,
    )


def fire_sales(pid: int) -> ts_b.Panel:
    """What the holdings sold fetched against what they were marked at: the gap is the haircut."""
    return timeseries(
        pid,
        "fire sales: proceeds vs. mark value (cumulative)",
        DOLLARS,
        (dollars(f"sum ({sel('bankrun_fire_sale_proceeds_minor_units_total')})"), "proceeds"),
        (dollars(f"sum ({sel('bankrun_fire_sale_mark_value_minor_units_total')})"), "mark value"),
    )


def queue_oldest(pid: int) -> ts_b.Panel:
    expr = f"max by (venue) ({sel('bankrun_withdrawal_queue_oldest_hours')})"
    return timeseries(pid, "oldest queued withdrawal (scenario hours)", HOURS, (expr, "{{venue}}"))


# --- variables, annotations, dashboards ----------------------------------------------------------


def _variable(
    name: str, metric: str, *, multi: bool, sort: dash_m.VariableSort
) -> dash_b.QueryVariable:
    return (
        dash_b.QueryVariable(name)
        .label(name)
        .datasource(_ds())
        .query(f"label_values({metric}, {name})")
        .refresh(dash_m.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(sort)
        .multi(multi)
        .include_all(multi)
    )


def variables(*, multi_venue: bool) -> list[dash_b.QueryVariable]:
    """Run ids start with a timestamp: sorted newest first, the default is the latest run."""
    return [
        _variable(
            "run_id", "bankrun_reserves", multi=False, sort=dash_m.VariableSort.ALPHABETICAL_DESC
        ),
        _variable(
            "venue",
            sel("bankrun_reserves", venue=False),
            multi=multi_venue,
            sort=dash_m.VariableSort.ALPHABETICAL_ASC,
        ),
    ]


def _turned_on(metric: str) -> str:
    """Series that are 1 now and were not a minute ago: an event for the minute after it turned
    on. Not `changes()`, which misses gauges born at 1 (halted is only ever set to 1)."""
    return (
        f"max by (venue) ({sel(metric)}) == 1 unless max by (venue) ({sel(metric)} offset 1m) == 1"
    )


def annotations() -> list[dash_b.AnnotationQuery]:
    return [
        dash_b.AnnotationQuery()
        .name(name)
        .datasource(_ds())
        .expr(_turned_on(metric))
        .icon_color(color)
        .enable(True)
        for name, metric, color in (
            ("buffer ran dry", "bankrun_buffer_dry", "orange"),
            ("venue halted", "bankrun_venue_halted", "red"),
        )
    ]


def _dashboard(uid: str, title: str, items: list[Item], *, multi_venue: bool) -> dict[str, Any]:
    board = (
        dash_b.Dashboard(title)
        .uid(uid)
        .tags(["bankrun"])
        .time("now-30m", "now")
        .refresh("10s")
        .tooltip(dash_m.DashboardCursorSync.CROSSHAIR)
        .variables(variables(multi_venue=multi_venue))
        .annotations(annotations())
    )
    for item in items:
        if isinstance(item, dash_b.Row):
            board.with_row(item)
        else:
            board.with_panel(item)
    # through JSON once: the SDK's models become plain data to compare, dump and walk
    return json.loads(json.dumps(board.build(), cls=JSONEncoder))


def overview() -> dict[str, Any]:
    """All venues side by side; one status row per selected venue."""
    items: list[Item] = [
        row(1, "status — $venue", repeat="venue"),
        *status(2, " — $venue"),
        row(10, "reserves"),
        reserves_by_tier(11, per_venue=True),
        reserve_ratio(12),
        runway(13),
        row(20, "withdrawals"),
        withdrawals_by_outcome(21),
        success_ratio(22),
        latency_heatmap(23),
        latency_quantiles(24),
        queue_depth(25),
        row(30, "market"),
        token_price(31),
    ]
    return _dashboard("bankrun-overview", "bankrun — overview", items, multi_venue=True)


def venue() -> dict[str, Any]:
    """One venue in depth: where its liquidity came from and what it cost."""
    items: list[Item] = [
        row(1, "status"),
        *status(2),
        row(10, "balance sheet"),
        reserves_by_tier(11),
        reserve_ratio(12),
        runway(13),
        lcr(14),
        liabilities(15),
        holdings(16),
        claims(17),
        row(20, "raising liquidity"),
        mobilized(21),
        fire_sales(22),
        row(30, "withdrawals"),
        withdrawals_by_outcome(31),
        success_ratio(32),
        latency_heatmap(33),
        latency_quantiles(34),
        queue_depth(35),
        queue_oldest(36),
        row(40, "market"),
        token_price(41),
    ]
    return _dashboard("bankrun-venue", "bankrun — venue", items, multi_venue=False)


DASHBOARDS = {"overview": overview, "venue": venue}


# --- queries, files ------------------------------------------------------------------------------


def queries() -> list[tuple[str, str, str]]:
    """(dashboard uid, where, PromQL) for every expression in both dashboards as generated:
    panel targets, annotations and the selectors inside `label_values(...)` variables."""
    found = []
    for build in DASHBOARDS.values():
        board = build()
        found += [(board["uid"], where, expr) for where, expr in panels.expressions(board)]
    return found


def render() -> dict[str, str]:
    """Relative path -> file text, for every file under ops/grafana/dashboards/."""
    return {f"{name}.json": dump_json(build()) for name, build in DASHBOARDS.items()}


FILES = GeneratedFiles(render, DEFAULT_DIR)
write = FILES.write
drift = FILES.drift
