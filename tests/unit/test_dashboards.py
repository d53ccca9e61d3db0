"""The Grafana dashboards under ops/grafana/dashboards/ are generated from code; drift and broken
queries fail here, without Grafana or Prometheus."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from grafana_foundation_sdk.cog import plugins
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard

from bankrun import dashboards

FILES = {"overview.json": "bankrun-overview", "venue.json": "bankrun-venue"}
RUN_ID = re.compile(r"\d{8}-\d{6}-")
# what the query test against a real Prometheus substitutes
SUBSTITUTIONS = {"$run_id": "r1", "$venue": ".*", "$__rate_interval": "1m"}


def _load(name: str) -> dict[str, Any]:
    return json.loads((dashboards.DEFAULT_DIR / name).read_text())


@pytest.fixture(params=sorted(FILES))
def board(request: pytest.FixtureRequest) -> dict[str, Any]:
    return _load(request.param)


def _walk(node: object) -> Iterator[tuple[str, object]]:
    """Every (key, value) pair in a JSON document, depth first."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def _strings(node: object) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)


def _panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in board["panels"] if p["type"] != "row"]


def _substituted(expr: str) -> str:
    for variable, value in SUBSTITUTIONS.items():
        expr = expr.replace(variable, value)
    return expr


def test_checked_in_dashboards_match_the_code():
    assert dashboards.drift() == [], "run `bankrun dashboards` and commit the result"


def test_a_changed_dashboard_is_detected(tmp_path):
    dashboards.write(tmp_path)
    assert dashboards.drift(tmp_path) == []
    path = tmp_path / "venue.json"
    path.write_text(path.read_text().replace("bankrun-venue", "edited-in-the-ui"))
    (tmp_path / "stale.json").write_text("{}")
    assert dashboards.drift(tmp_path) == ["venue.json", "stale.json"]


def test_each_file_parses_back_into_the_sdk_dashboard_model(board):
    """Anything the model does not know would be lost on the way back."""
    plugins.register_default_plugins()
    model = Dashboard.from_json(board)
    assert json.loads(json.dumps(model, cls=JSONEncoder)) == board


def test_each_file_has_the_dashboard_schema_keys(board):
    assert isinstance(board["uid"], str) and isinstance(board["title"], str)
    assert isinstance(board["schemaVersion"], int)
    assert isinstance(board["templating"]["list"], list)
    assert isinstance(board["annotations"]["list"], list)
    for panel in board["panels"]:
        assert isinstance(panel["id"], int) and isinstance(panel["type"], str)
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"}
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
    for panel in _panels(board):
        assert panel["targets"], panel["title"]


def test_uids_and_titles():
    assert {name: _load(name)["uid"] for name in FILES} == FILES
    assert [_load(name)["title"] for name in sorted(FILES)] == [
        "bankrun — overview",
        "bankrun — venue",
    ]


def test_panel_ids_are_unique(board):
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))


def test_every_datasource_is_the_prometheus_uid(board):
    refs = [value for key, value in _walk(board) if key == "datasource"]
    assert refs and all(ref == dashboards.DATASOURCE for ref in refs)
    holders = (
        _panels(board)
        + [t for p in _panels(board) for t in p["targets"]]
        + board["annotations"]["list"]
        + board["templating"]["list"]
    )
    assert all(h["datasource"] == dashboards.DATASOURCE for h in holders)


def test_no_run_id_is_hard_coded(board):
    assert [s for s in _strings(board) if RUN_ID.search(s)] == []


def test_variables():
    overview, venue = _load("overview.json"), _load("venue.json")
    for board, multi in ((overview, True), (venue, False)):
        run_id, venue_var = board["templating"]["list"]
        assert run_id["name"] == "run_id" and not run_id["multi"]
        assert run_id["query"] == "label_values(bankrun_reserves, run_id)"
        assert venue_var["query"] == 'label_values(bankrun_reserves{run_id="$run_id"}, venue)'
        assert venue_var["multi"] is multi and venue_var["includeAll"] is multi
        assert "current" not in run_id  # the newest run, not one baked in


def test_queries_cover_every_expression_in_the_json():
    listed = {(uid, expr) for uid, _, expr in dashboards.queries()}
    for name, uid in FILES.items():
        board = _load(name)
        exprs = [t["expr"] for p in _panels(board) for t in p["targets"]]
        exprs += [a["expr"] for a in board["annotations"]["list"]]
        assert exprs and {(uid, e) for e in exprs} <= listed
    wheres = {where for _, where, _ in dashboards.queries()}
    assert {"variable: run_id", "variable: venue", "annotation: venue halted"} <= wheres


def test_queries_use_only_the_run_the_venue_and_the_rate_interval():
    for uid, where, expr in dashboards.queries():
        assert set(re.findall(r"\$\w+", expr)) <= set(SUBSTITUTIONS), (uid, where, expr)
        ranges = set(re.findall(r"\[([^\]]*)\]", expr))
        assert ranges <= {"$__rate_interval", "1m"}, (uid, where, expr)


def test_every_selector_is_scoped_to_the_run_and_the_venues():
    for uid, where, expr in dashboards.queries():
        if where == "variable: run_id":
            continue  # lists the runs themselves
        for metric, matchers in re.findall(r"([a-z_:]+)\{([^}]*)\}", expr):
            assert 'run_id="$run_id"' in matchers, (uid, where, metric)
            if not metric.startswith("bankrun_market_") and where != "variable: venue":
                assert 'venue=~"$venue"' in matchers, (uid, where, metric)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_every_query_is_valid_promql(tmp_path: Path):
    """promtool parses each expression (variables substituted) as a recording rule."""
    rules = [
        {"record": f"dashboard:check:{n}", "expr": _substituted(expr)}
        for n, (_, _, expr) in enumerate(dashboards.queries())
    ]
    path = tmp_path / "queries.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    checked = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_annotations_mark_the_minute_after_a_flag_turns_on(tmp_path: Path):
    """Halted is born at 1 (no 0 before it), dry flips from 0: both are marked, then not."""
    annotations = {
        where.removeprefix("annotation: "): _substituted(expr)
        for uid, where, expr in dashboards.queries()
        if uid == "bankrun-venue" and where.startswith("annotation: ")
    }
    on = [{"labels": '{venue="v"}', "value": 1}]
    cases = [
        (annotations["venue halted"], "1m", []),
        (annotations["venue halted"], "2m30s", on),
        (annotations["venue halted"], "4m", []),
        (annotations["buffer ran dry"], "1m", []),
        (annotations["buffer ran dry"], "2m30s", on),
        (annotations["buffer ran dry"], "4m", []),
    ]
    labels = 'run_id="r1",venue="v",policy="p",job="custody"'
    spec = {
        "rule_files": [],
        "tests": [
            {
                "interval": "15s",
                "input_series": [
                    {"series": f"bankrun_venue_halted{{{labels}}}", "values": "_x8 1x20"},
                    {"series": f"bankrun_buffer_dry{{{labels}}}", "values": "0x8 1x20"},
                ],
                "promql_expr_test": [
                    {"expr": expr, "eval_time": at, "exp_samples": samples}
                    for expr, at, samples in cases
                ],
            }
        ],
    }
    path = tmp_path / "annotations.test.yml"
    path.write_text(yaml.safe_dump(spec))
    tested = subprocess.run(
        ["promtool", "test", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
