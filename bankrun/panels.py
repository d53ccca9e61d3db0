"""The PromQL of the checked-in Grafana dashboards (`ops/grafana/dashboards/*.json`), read
without the generator's SDK: what `bankrun run` draws into `overview.png`, and what the tests
evaluate against a run's Prometheus. `bankrun/dashboards.py` generates the files."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DEFAULT_DIR = Path(__file__).resolve().parent.parent / "ops" / "grafana" / "dashboards"
_LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.+),\s*\w+\)$")


def queries(directory: Path = DEFAULT_DIR) -> list[tuple[str, str, str]]:
    """(dashboard uid, where, PromQL) for every expression of every dashboard file."""
    found = []
    for path in sorted(directory.glob("*.json")):
        board = json.loads(path.read_text())
        found += [(board["uid"], where, expr) for where, expr in expressions(board)]
    return found


def expressions(board: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """Panel targets, annotations, and the selectors inside `label_values(...)` variables."""
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]
    for annotation in board["annotations"]["list"]:
        yield f"annotation: {annotation['name']}", annotation["expr"]
    for variable in board["templating"]["list"]:
        match = _LABEL_VALUES.match(variable["query"])
        if match is None:
            raise ValueError(f"variable {variable['name']}: not label_values(…)")
        yield f"variable: {variable['name']}", match["selector"]
