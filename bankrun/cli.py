"""The `bankrun` command line."""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bankrun import schemas as schema_files
from bankrun.domain.money import format_amount

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks, each against a baseline.")
app.add_typer(bench_app, name="bench")
console = Console()

DEFAULT_SCENARIO = "slice"


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


@app.command()
def run(
    scenario: Annotated[str, typer.Argument(help="a shipped scenario name or a YAML path")] = (
        DEFAULT_SCENARIO
    ),
    bootstrap: Annotated[
        str | None, typer.Option(help="use this Kafka (host:port) instead of the embedded broker")
    ] = None,
    runs_dir: Annotated[Path, typer.Option(help="where run folders go")] = Path("runs"),
    speed: Annotated[float, typer.Option(help="scenario seconds per wall second")] = 1.0,
) -> None:
    """Run a scenario end to end on the real stack and write runs/<run-id>/."""
    from bankrun import scenario as scenarios
    from bankrun.runner.processes import StartupError
    from bankrun.runner.prometheus import PrometheusMissing
    from bankrun.runner.run import run as run_scenario

    try:
        spec = scenarios.load(scenario)
    except scenarios.ScenarioError as bad:
        console.print(f"[red]{bad}[/]")
        raise typer.Exit(2) from None
    _terminate_as_interrupt()
    text = scenarios.resolve(scenario).read_text()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        tasks: dict[str, int] = {}

        def step(what: str, done: int, total: int) -> None:
            if what not in tasks:
                tasks[what] = bar.add_task(what, total=total)
            bar.update(tasks[what], completed=done)

        try:
            result = run_scenario(
                spec,
                text,
                runs_dir,
                bootstrap=bootstrap,
                speed=speed,
                progress=lambda m: bar.console.log(m),
                step=step,
            )
        except KeyboardInterrupt:
            console.print("[yellow]interrupted: every process stopped, logs kept in runs/[/]")
            raise typer.Exit(130) from None
        except (StartupError, PrometheusMissing) as failed:
            console.print(f"[red]{failed}[/]")
            raise typer.Exit(1) from None
    _print_summary(result.summary)
    console.print(f"run folder: {result.run_dir}")
    if result.problems:
        for problem in result.problems:
            console.print(f"[red]problem:[/] {problem}")
        raise typer.Exit(1)


def _print_summary(summary: dict) -> None:
    table = Table(title=f"{summary['scenario']} — {summary['run_id']}")
    for col in (
        "venue",
        "policy",
        "liabilities at start",
        "requested",
        "paid",
        "rejected",
        "paid fraction",
        "latency p50 / p99 (scn s)",
    ):
        table.add_column(col)
    for venue, v in summary["venues"].items():
        w = v["withdrawals"]
        lat = v["latency_scenario_seconds"]
        table.add_row(
            venue,
            v["policy"],
            format_amount(v["asset"], v["liabilities_start"]),
            str(w["requested"]),
            f"{w['paid']} ({format_amount(v['asset'], w['paid_amount'])})",
            f"{w['rejected']} {json.dumps(w['rejected_by_reason'])}",
            "-" if v["paid_fraction"] is None else f"{v['paid_fraction']:.1%}",
            f"{_num(lat['p50'])} / {_num(lat['p99'])}",
        )
    console.print(table)
    prom = summary["prometheus"]["customer_liabilities"]
    console.print(
        f"events exported: {summary['events_exported']}   "
        f"Prometheus sum(bankrun_customer_liabilities): {prom}   "
        f"wall time: {summary['wall_seconds']} s"
    )


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


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
    table = Table("measure", "value", title="broker baseline (aiokafka, one partition)")
    for key, value in figures.items():
        table.add_row(key, f"{value:,.1f}" if isinstance(value, float) else str(value))
    console.print(table)
    if output:
        output.write_text(json.dumps(figures, indent=2))


def main() -> None:  # pragma: no cover
    sys.exit(app())
