"""The `bankrun` command line."""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bankrun import schemas as schema_files
from bankrun.runner.locust import LocustOptions

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks, each against a baseline.")
app.add_typer(bench_app, name="bench")

if TYPE_CHECKING:
    from bankrun.scenario import Scenario

console = Console()

DEFAULT_SCENARIO = "ftx-2022"


def _terminate_as_interrupt() -> None:
    """SIGTERM unwinds like Ctrl-C, so every started process is stopped and logs kept."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)


@app.command()
def schemas(
    check: Annotated[bool, typer.Option("--check", help="fail if files differ from code")] = False,
    directory: Annotated[
        Path, typer.Option(help="where the schemas live")
    ] = schema_files.DEFAULT_DIR,
) -> None:
    """Write (or check) the JSON Schema of every event and the topics catalogue."""
    if check:
        drift = schema_files.drift(directory)
        if drift:
            console.print(f"[red]schemas out of date:[/] {', '.join(drift)}; run `bankrun schemas`")
            raise typer.Exit(1)
        console.print(f"schemas up to date in {directory}")
        return
    written = schema_files.write(directory)
    console.print(f"wrote {len(written)} files under {directory}")


@app.command()
def up(
    bootstrap: Annotated[
        str | None, typer.Option(help="use this Kafka (host:port) instead of the embedded broker")
    ] = None,
    runs_dir: Annotated[Path, typer.Option(help="where run folders go")] = Path("runs"),
    speed: Annotated[float, typer.Option(help="scenario seconds per wall second")] = 1.0,
) -> None:
    """Start the embedded stack and keep it up until Ctrl-C."""
    from bankrun.runner.processes import StartupError
    from bankrun.runner.prometheus import PrometheusMissing
    from bankrun.runner.run import new_run_id
    from bankrun.runner.stack import Stack

    _terminate_as_interrupt()
    run_id = new_run_id("up")
    stack = Stack(
        runs_dir / run_id,
        run_id,
        bootstrap=bootstrap,
        speed=speed,
        progress=lambda m: console.log(m),
    )
    try:
        with stack:
            table = Table("part", "address", title=f"bankrun stack {run_id}")
            for name, url in stack.urls.items():
                table.add_row(name, url)
            console.print(table)
            console.print(f"logs: {stack.log_dir}   (Ctrl-C stops everything)")
            threading.Event().wait()
    except KeyboardInterrupt:
        console.print("stopping…")
    except (StartupError, PrometheusMissing) as failed:
        console.print(f"[red]{failed}[/]")
        raise typer.Exit(1) from None
    console.print(f"stopped; logs kept in {stack.log_dir}")


def _load_scenario(scenario: str) -> tuple[Scenario, str]:
    from bankrun import scenario as scenarios

    try:
        spec = scenarios.load(scenario)
    except scenarios.ScenarioError as bad:
        console.print(f"[red]{bad}[/]")
        raise typer.Exit(2) from None
    return spec, scenarios.resolve(scenario).read_text()


@app.command()
def run(
    scenario: Annotated[str, typer.Argument(help="a shipped scenario name or a YAML path")] = (
        DEFAULT_SCENARIO
    ),
    bootstrap: Annotated[
        str | None, typer.Option(help="use this Kafka (host:port) instead of the embedded broker")
    ] = None,
    runs_dir: Annotated[Path, typer.Option(help="where run folders go")] = Path("runs"),
    speed: Annotated[
        float | None, typer.Option(help="scenario seconds per wall second (default: scenario's)")
    ] = None,
    users: Annotated[
        int, typer.Option(help="the most Locust users; the run's shape grows to it as needed")
    ] = LocustOptions.users,
    locust_workers: Annotated[
        int, typer.Option(min=0, max=64, help="Locust master + N worker processes (0: one)")
    ] = 0,
    ui: Annotated[
        bool, typer.Option(help="keep Locust's web UI open on loopback to watch the run")
    ] = False,
) -> None:
    """Run a scenario end to end on the real stack (Locust load) and write runs/<run-id>/."""
    from bankrun.runner.processes import StartupError
    from bankrun.runner.prometheus import PrometheusMissing
    from bankrun.runner.run import Interrupted
    from bankrun.runner.run import run as run_scenario

    if users < max(1, locust_workers):
        console.print(f"[red]--users {users}: need at least one user per Locust worker[/]")
        raise typer.Exit(2)
    spec, text = _load_scenario(scenario)
    _terminate_as_interrupt()
    with _progress() as (bar, step, status):
        try:
            result = run_scenario(
                spec,
                text,
                runs_dir,
                bootstrap=bootstrap,
                speed=speed,
                locust=LocustOptions(users=users, workers=locust_workers, ui=ui),
                progress=lambda m: bar.console.log(m),
                step=step,
                status=status,
            )
        except Interrupted as stopped:
            console.print(
                f"[yellow]interrupted: every process stopped; the log and summary so far are "
                f"in {stopped.result.run_dir}[/]"
            )
            raise typer.Exit(130) from None
        except KeyboardInterrupt:
            console.print("[yellow]interrupted: every process stopped, logs kept in runs/[/]")
            raise typer.Exit(130) from None
        except (StartupError, PrometheusMissing, TimeoutError) as failed:
            console.print(f"[red]{failed}[/]")
            raise typer.Exit(1) from None
    _report(result)


@app.command()
def sim(
    scenario: Annotated[str, typer.Argument(help="a shipped scenario name or a YAML path")] = (
        DEFAULT_SCENARIO
    ),
    runs_dir: Annotated[Path, typer.Option(help="where run folders go")] = Path("runs"),
) -> None:
    """Run a scenario on the core alone, in process (no Kafka): seconds, deterministic."""
    from bankrun.runner.run import simulate

    spec, text = _load_scenario(scenario)
    _report(simulate(spec, text, runs_dir))


@app.command()
def verify(run_dir: Annotated[Path, typer.Argument(help="a runs/<run-id> folder")]) -> None:
    """Recompute a run's summary from its event log and check the ledger invariants."""
    from bankrun import summary

    recorded = json.loads((run_dir / "summary.json").read_text())
    invalid: list[str] = []
    log = summary.read_log(run_dir / "events.jsonl", invalid)
    again = summary.summarize(log, {})["venues"]
    problems = [f"not a valid event: {line}" for line in invalid] + summary.check(log)
    for venue, row in again.items():
        said = recorded["venues"].get(venue, {})
        for key, value in row.items():
            if said.get(key) != value:
                problems.append(f"{venue}.{key}: summary says {said.get(key)!r}, log {value!r}")
    if set(again) != set(recorded["venues"]):
        problems.append(f"venues differ: {sorted(recorded['venues'])} vs {sorted(again)}")
    if problems:
        for problem in problems:
            console.print(f"[red]✗[/] {problem}")
        raise typer.Exit(1)
    console.print(f"[green]✓[/] {run_dir}: {len(log)} events; summary and invariants hold")


class _progress:
    """A rich progress display, a `step(what, done, total)` callback that feeds it, and a
    `status(line)` callback for the live line."""

    def __enter__(self):  # type: ignore[no-untyped-def]
        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        )
        self.bar.__enter__()
        tasks: dict[str, int] = {}

        def step(what: str, done: float, total: float) -> None:
            if what not in tasks:
                tasks[what] = self.bar.add_task(what, total=total)
            self.bar.update(tasks[what], completed=done)

        def status(line: str) -> None:
            """The run's live line: a task with no bar, only its description."""
            if "status" not in tasks:
                tasks["status"] = self.bar.add_task(line, total=None)
            self.bar.update(tasks["status"], description=line)

        return self.bar, step, status

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(*exc)  # type: ignore[arg-type]


def _report(result) -> None:  # type: ignore[no-untyped-def]
    _print_summary(result.summary)
    console.print(f"run folder: {result.run_dir}")
    if result.problems:
        for problem in result.problems:
            console.print(f"[red]problem:[/] {problem}")
        raise typer.Exit(1)


def _print_summary(summary: dict) -> None:
    headers = (
        "venue",
        "policy",
        "liq",
        "req",
        "paid",
        "queue",
        "rej",
        "paid $",
        "dry h",
        "halt h",
        "p50/p99 h",
    )
    rows = []
    for venue, v in summary["venues"].items():
        start = v["liquid_start"], v["liabilities_start"]
        rows.append(
            (
                venue,
                v["policy"],
                "-" if None in start else f"{start[0] / start[1]:.0%}",
                str(v["withdrawals_requested"]),
                str(v["withdrawals_paid"]),
                str(v["withdrawals_queued"]),
                str(v["withdrawals_rejected"]),
                "-" if v["paid_fraction"] is None else f"{v['paid_fraction']:.1%}",
                _num(v["dry_at_hours"]),
                _num(v["halted_at_hours"]),
                f"{_num(v['latency_p50_hours'])}/{_num(v['latency_p99_hours'])}",
            )
        )
    table = Table(
        title=f"{summary['scenario']} ({summary['mode']}) — {summary['run_id']}",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        padding=(0, 1, 0, 0),
    )
    for n, header in enumerate(headers):
        width = max(len(header), *(len(row[n]) for row in rows)) if rows else len(header)
        table.add_column(header, no_wrap=True, min_width=width)
    for row in rows:
        table.add_row(*row)
    console.print(table)
    for venue, v in summary["venues"].items():
        if v.get("fire_sale_mark_value"):
            start = v.get("collateral_mark_start")
            console.print(
                f"fire sales: {venue} got {_money(v['fire_sale_proceeds'])}, "
                f"{v['fire_sale_proceeds'] / v['fire_sale_mark_value']:.0%} of the last price"
                + (f"; its loan's collateral was {_money(start)} at the start" if start else "")
            )
    for market, m in summary.get("markets", {}).items():
        if m["traded_base"] and m["start_price"]:
            console.print(
                f"market: {market} {_money(m['start_price'])} -> low {_money(m['low'])} "
                f"(-{m['drawdown_max']:.0%}) at {_num(m['low_at_hours'])} h"
            )
    console.print(f"wall time: {summary['wall_seconds']} s")


def _money(minor: int) -> str:
    """Quote minor units (cents) as dollars."""
    return f"${minor / 100:,.2f}"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


@bench_app.command("broker")
def bench_broker(
    messages: Annotated[int, typer.Option(help="messages per throughput test")] = 100_000,
    size: Annotated[int, typer.Option(help="message size in bytes")] = 200,
    samples: Annotated[int, typer.Option(help="round trips for the latency test")] = 1_000,
    bootstrap: Annotated[
        str | None, typer.Option(help="measure this Kafka instead of the embedded broker")
    ] = None,
    output: Annotated[Path | None, typer.Option(help="also write the figures as JSON")] = None,
) -> None:
    """Raw produce/consume throughput and round-trip latency: the baseline for every benchmark."""
    from bankrun.bench.broker import run_broker_bench

    _terminate_as_interrupt()
    figures = run_broker_bench(messages, size, samples, bootstrap, console)
    _print_figures("broker baseline (aiokafka, one partition)", figures)
    if output:
        output.write_text(json.dumps(figures, indent=2))


@bench_app.command("ledger")
def bench_ledger(
    postings: Annotated[int, typer.Option(help="postings to apply")] = 200_000,
    withdrawals: Annotated[int, typer.Option(help="withdrawals through the sim bus")] = 5_000,
) -> None:
    """Postings per second in the pure ledger, and withdrawals per second in `sim`."""
    from bankrun.bench.ledger import run_ledger_bench

    _print_figures("ledger (pure core, in process)", run_ledger_bench(postings, withdrawals))


@bench_app.command("matching")
def bench_matching(
    orders: Annotated[int, typer.Option(help="orders in the timed mix of the pure core")] = 200_000,
    e2e: Annotated[
        bool, typer.Option("--e2e/--no-e2e", help="also run the mix through the matching service")
    ] = True,
    e2e_orders: Annotated[
        int, typer.Option(help="orders through the matching service on the embedded broker")
    ] = 20_000,
    markets: Annotated[int, typer.Option(min=1, help="markets (spread over partitions)")] = 4,
    output: Annotated[Path | None, typer.Option(help="also write the figures as JSON")] = None,
) -> None:
    """Orders per second of the pure order book at 10^5 and 10^6 resting orders, and end to end
    through the matching service vs. the raw broker in the same run."""
    from bankrun.bench.matching import run_matching_bench

    if e2e:
        _terminate_as_interrupt()
    figures = run_matching_bench(
        orders=orders, e2e_orders=e2e_orders if e2e else 0, markets=markets, console=console
    )
    # ratios well under 1 (the service vs. the raw broker) keep three significant digits
    shown = {
        part: {k: f"{v:.3g}" if isinstance(v, float) and abs(v) < 1 else v for k, v in f.items()}
        for part, f in figures.items()
    }
    _print_figures("order book (pure core, one core)", shown["core"])
    if "e2e" in shown:
        _print_figures("orders through the matching service (embedded stack)", shown["e2e"])
    if output:
        output.write_text(json.dumps(figures, indent=2))


@bench_app.command("withdrawals")
def bench_withdrawals(
    withdrawals: Annotated[int, typer.Option(help="withdrawals to send")] = 3_000,
    concurrency: Annotated[int, typer.Option(help="concurrent HTTP clients")] = 32,
    venues: Annotated[int, typer.Option(help="venues (spread over partitions)")] = 4,
) -> None:
    """End-to-end withdrawals per second through the stack, vs. the raw broker in the same run."""
    from bankrun.bench.withdrawals import run_withdrawals_bench

    _terminate_as_interrupt()
    figures = run_withdrawals_bench(withdrawals, concurrency, venues, console)
    _print_figures("withdrawals through the embedded stack", figures)


@bench_app.command("locust")
def bench_locust(
    withdrawals: Annotated[int, typer.Option(help="withdrawals in the burst")] = 5_000,
    users: Annotated[int, typer.Option(min=1, help="Locust users")] = LocustOptions.users,
    locust_workers: Annotated[int, typer.Option(min=0, help="Locust worker processes")] = 0,
    venues: Annotated[int, typer.Option(help="venues (spread over partitions)")] = 4,
    capacity: Annotated[
        str, typer.Option(help="customers per venue for the capacity runs, comma-separated")
    ] = "200,500,1000,2000",
    hours: Annotated[float, typer.Option(help="scenario hours of ftx-2022 per capacity run")] = 24,
    output: Annotated[Path | None, typer.Option(help="also write the figures as JSON")] = None,
) -> None:
    """Locust withdrawals/s through the gateway vs. the raw broker, and the most customers a
    `run` of ftx-2022 carries at its speed before scenario time falls behind (the lag)."""
    from bankrun.bench.locust import run_capacity_bench, run_locust_bench

    _terminate_as_interrupt()
    figures = run_locust_bench(withdrawals, users, locust_workers, venues, console)
    _print_figures("withdrawals delivered by Locust (embedded stack)", figures)
    sizes = [int(n) for n in capacity.split(",") if n.strip()]
    rows = run_capacity_bench(sizes, hours, users, console) if sizes else []
    if rows:
        _print_capacity(rows, hours)
    if output:
        output.write_text(json.dumps({"locust": figures, "capacity": rows}, indent=2))


def _print_capacity(rows: list[dict], hours: float) -> None:
    first = rows[0]
    table = Table(
        "customers",
        "asks",
        "lag p50 s",
        "lag p99 s",
        "lag max s",
        "wall s",
        "problems",
        title=f"capacity: the first {hours:g} h of ftx-2022 at speed {first['speed']:g} "
        f"(one tick = {first['tick_wall_s']:.3f} wall s)",
    )
    for r in rows:
        table.add_row(
            *(str(r[k]) for k in ("customers", "asks")),
            *(f"{r[k]:.3f}" for k in ("lag_p50_s", "lag_p99_s", "lag_max_s")),
            f"{r['wall_s']:.0f}",
            str(r["problems"]),
        )
    console.print(table)
    for what, key in (
        ("never late by more than a tick", "lag_max_s"),
        ("a median lag within a tick", "lag_p50_s"),
    ):
        fits = [r["customers"] for r in rows if r[key] <= r["tick_wall_s"]]
        console.print(f"largest run with {what}: {max(fits) if fits else 'none of these'}")


def _print_figures(title: str, figures: dict) -> None:
    table = Table("measure", "value", title=title)
    for key, value in figures.items():
        table.add_row(key, f"{value:,.3f}" if isinstance(value, float) else str(value))
    console.print(table)


def main() -> None:  # pragma: no cover
    sys.exit(app())
