"""Scenario parameters by path, for sweeps and reverse stress tests.

A path names a field of the scenario file: `venues.fractional.params.liquid_ratio` (a venue by
id or index; `policy_params` is accepted for `params`), `load.params.threshold_mean`,
`duration_hours`. Setting one re-validates the whole scenario, so a value the policy refuses
is named as the field it is. `--set PATH=VALUE` on `run`, `sim`, `sweep` and `reverse` uses the
same paths.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import yaml
from pydantic import ValidationError

from bankrun.scenario import Scenario, ScenarioError
from bankrun.validation import named

ALIASES = {"policy_params": "params"}


def with_value(scenario: Scenario, path: str, value: Any) -> Scenario:
    """The scenario with the field at `path` set to `value`."""
    return with_values(scenario, [(path, value)])


def with_values(scenario: Scenario, settings: list[tuple[str, Any]]) -> Scenario:
    """The scenario with each `(path, value)` set in turn, validated once at the end. A `*`
    where a path names a list item means every item: `venues.*.customers`."""
    data = scenario.model_dump(mode="json")
    for path, value in settings:
        _set(data, path, value, [ALIASES.get(p, p) for p in path.split(".")], [])
    try:
        return Scenario.model_validate(data)
    except ValidationError as bad:
        told = ", ".join(f"{path}={value}" for path, value in settings)
        raise ScenarioError(f"{told}: {named(bad)}") from None


def _set(node: Any, path: str, value: Any, parts: list[str], walked: list[str]) -> None:
    part, rest = parts[0], parts[1:]
    if isinstance(node, list):
        if part == "*":
            for i, item in enumerate(node):
                if rest:
                    _set(item, path, value, rest, [*walked, _name(item, walked, i)])
                else:
                    node[i] = value
            return
        index = _venue_index(node, part) if walked == ["venues"] else _index(node, part)
        if index is None:
            raise ScenarioError(f"{path}: no {'.'.join(walked)} item {part!r}")
        key: Any = index
    elif isinstance(node, dict):
        if part not in node:
            where = ".".join(walked) or "the scenario"
            raise ScenarioError(f"{path}: no field {part!r} in {where}")
        key = part
    else:
        raise ScenarioError(f"{path}: {'.'.join(walked)} is a value, not a section")
    if rest:
        _set(node[key], path, value, rest, [*walked, part])
    else:
        node[key] = value


def setting(text: str) -> tuple[str, Any]:
    """`PATH=VALUE` (`--set`) → the path and the value, read as YAML reads a scalar: `0.2`,
    `1000`, `full-reserve`, `null`."""
    path, sep, raw = text.partition("=")
    if not sep or not path.strip() or not raw.strip():
        raise ScenarioError(f"{text!r}: expected PATH=VALUE")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        raise ScenarioError(f"{text!r}: {raw!r} is not a YAML value") from None
    return path.strip(), value


def _name(item: Any, walked: list[str], index: int) -> str:
    """How an error names a list item: a venue by its id."""
    return str(item.get("id", index)) if walked == ["venues"] else str(index)


def _venue_index(venues: list[dict], key: str) -> int | None:
    for i, venue in enumerate(venues):
        if venue.get("id") == key:
            return i
    return _index(venues, key)


def _index(items: list, key: str) -> int | None:
    return int(key) if key.isdigit() and int(key) < len(items) else None


def grid(spec: str) -> tuple[str, list[float]]:
    """`path=low:high:step` → the path and the values from low to high (inclusive)."""
    path, sep, span = spec.partition("=")
    parts = span.split(":")
    if not sep or not path or len(parts) != 3:
        raise ScenarioError(f"{spec!r}: expected PATH=LOW:HIGH:STEP")
    try:
        low, high, step = (Decimal(p) for p in parts)
    except InvalidOperation:
        raise ScenarioError(f"{spec!r}: LOW, HIGH and STEP must be numbers") from None
    if step <= 0 or high < low:
        raise ScenarioError(f"{spec!r}: need STEP > 0 and HIGH >= LOW")
    count = int((high - low) / step) + 1
    if count > 1_000:
        raise ScenarioError(f"{spec!r}: {count} values; at most 1000")
    return path, [float(low + i * step) for i in range(count)]


_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}


@dataclass(frozen=True)
class Target:
    """A condition on one metric of one venue, e.g. `paid_fraction>=0.99`."""

    metric: str
    op: str
    value: float

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.value:g}"

    def check(self, x: float) -> bool:
        return _OPS[self.op](x, self.value)

    @property
    def higher_is_better(self) -> bool:
        return self.op.startswith(">")


def target(text: str, metrics: Any) -> Target:
    match = re.fullmatch(r"\s*([a-z_0-9]+)\s*(>=|<=|>|<)\s*([-+0-9.eE]+)\s*", text)
    if not match:
        raise ScenarioError(f"target {text!r}: expected METRIC>=VALUE (or <=, >, <)")
    metric, op, value = match.groups()
    if metric not in metrics:
        raise ScenarioError(
            f"target {text!r}: unknown metric {metric!r}; one of {', '.join(metrics)}"
        )
    try:
        return Target(metric, op, float(value))
    except ValueError:
        raise ScenarioError(f"target {text!r}: {value!r} is not a number") from None
