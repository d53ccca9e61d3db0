"""The run report: self-contained, the venues side by side, and who got paid — first movers
against the late ones — from the log alone."""

from __future__ import annotations

import ast
import inspect
import json
import re
import textwrap

import pytest

from bankrun import events as ev
from bankrun import report, scenario, sim, summary
from bankrun.runner.run import simulate


@pytest.fixture(scope="module")
def ftx(tmp_path_factory):
    spec = scenario.load("ftx-2022")
    return simulate(spec, scenario.resolve("ftx-2022").read_text(), tmp_path_factory.mktemp("r"))


def test_every_sim_folder_has_a_report_that_needs_no_network(ftx):
    page = (ftx.run_dir / "report.html").read_text()
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", page)  # nothing fetched
    assert not re.search(r"<(script|link|iframe)\b", page)
    for venue in ftx.summary["venues"]:
        assert f"<td>{venue}</td>" in page
    images = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    plots = {"reserves", "who-got-paid", "prices", "fear", "proof-of-reserves"}
    assert {name for name, _ in images} == plots
    assert all(len(data) > 10_000 for _, data in images)
    assert {p.name for p in (ftx.run_dir / "report").iterdir()} == {f"{p}.png" for p in plots}


def test_the_fear_level_is_kept_per_venue_and_step(ftx):
    """The commingled venue's customers, who also watch the token, are the most frightened
    once the rival's announcement lands."""
    fear = json.loads((ftx.run_dir / report.FEAR_FILE).read_text())
    assert set(fear) == set(ftx.summary["venues"])
    steps = {len(points) for points in fear.values()}
    assert steps == {241}  # hour 0 and every half-hour tick of 120 h
    after = {venue: dict(map(tuple, points))[20.0] for venue, points in fear.items()}
    assert max(after, key=after.get) == "ftx"
    assert all(f >= 0 for points in fear.values() for _, f in points)


def test_who_got_paid_adds_up_to_the_summary_and_first_movers_fare_best(ftx):
    tallies, _ = summary.tally(summary.read_log(ftx.run_dir / "events.jsonl"))
    for venue, row in ftx.summary["venues"].items():
        split = report.who_got_paid(tallies[venue], 120)
        for groups in split.values():
            assert sum(g["claimed"] for g in groups) == row["amount_claimed"], venue
            assert sum(g["paid"] for g in groups) == row["amount_paid"], venue
    ftx_split = report.who_got_paid(tallies["ftx"], 120)["by_ask_time"]
    asked = [g for g in ftx_split if g["customers"]]
    assert asked[0]["paid_share"] == 1.0  # those who left before the rival's announcement
    assert asked[-1]["paid_share"] < 0.5  # the crowd after it: the run's injustice
    full = report.who_got_paid(tallies["full-reserve"], 120)
    assert all(g["paid_share"] == 1.0 for g in full["by_decile"] if g["customers"])


def _event_classes(function) -> set[type]:
    """The event classes a function's body names (`ev.X` in a pattern, a call or a mapping)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    names = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
        if node.value.id == "ev" and isinstance(getattr(ev, node.attr, None), type)
    }
    return {getattr(ev, n) for n in names if issubclass(getattr(ev, n), ev.Event)} - {ev.Event}


def test_log_readers_pass_over_only_events_they_never_look_at():
    """`Tally.COUNTED`, `Series.DRAWN` and the sim's customers' `_LogReader.SEEN` let most of a
    log through untried: each must name every event type its reader has a case for, or that
    type would silently stop counting."""
    assert _event_classes(summary.Tally.add) == summary.Tally.COUNTED
    assert _event_classes(report.Series.add) | set(report._FLOWS) == report.Series.DRAWN
    assert _event_classes(sim._LogReader.read) == sim._LogReader.SEEN


def test_every_venue_that_opened_has_a_series_before_its_first_snapshot():
    """A run stopped at genesis (custody frozen before any reserve snapshot) still plots each
    venue, as empty axes: its report is written."""
    log = sim.simulate(scenario.load("flash-panic")).log
    genesis = log[: next(i for i, e in enumerate(log) if isinstance(e, ev.ReserveSnapshot))]
    venues, _ = report.series(genesis)
    opened = [e.venue for e in genesis if isinstance(e, ev.VenueOpened)]
    assert opened and sorted(venues) == sorted(opened)
    assert not any(v.hours for v in venues.values())
    assert report._venue_figure(venues, {v: {"policy": "p"} for v in opened})  # a PNG
