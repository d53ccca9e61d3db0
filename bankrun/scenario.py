"""Scenario files: YAML validated by pydantic, with errors that name the field.

This first version carries what the end-to-end slice needs (venues, customers, a seeded
deposit-then-withdraw workload); reserve policies other than `full-reserve` and the panic
load model are refused with a clear "not yet".
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bankrun.domain.money import AssetCode
from bankrun.events import MinorUnits, VenueId

SCENARIO_DIR = Path(__file__).resolve().parent.parent / "loadtests" / "scenarios"
KNOWN_POLICIES = ("full-reserve", "fractional", "lcr", "commingled")
IMPLEMENTED_POLICIES = ("full-reserve",)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VenueSpec(_Strict):
    id: VenueId
    policy: str = "full-reserve"
    customers: int = Field(gt=0, le=100_000)
    asset: AssetCode = "USD"
    balance_min: MinorUnits = Field(description="smallest customer deposit, minor units")
    balance_max: MinorUnits = Field(description="largest customer deposit, minor units")

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.policy not in KNOWN_POLICIES:
            raise ValueError(f"unknown policy {self.policy!r}; one of {', '.join(KNOWN_POLICIES)}")
        if self.policy not in IMPLEMENTED_POLICIES:
            raise ValueError(f"policy {self.policy!r} is not implemented yet")
        if self.balance_max < self.balance_min:
            raise ValueError("balance_max must be at least balance_min")
        return self


class Workload(_Strict):
    """Every customer deposits once, then asks for `withdrawals_per_customer` withdrawals."""

    model: Literal["slice"] = "slice"
    withdrawals_per_customer: int = Field(1, ge=0, le=100)
    overdraw_share: float = Field(
        0.1, ge=0, le=1, description="share of requests asking for more than the balance"
    )


class Scenario(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    description: str = ""
    seed: int = 0
    venues: list[VenueSpec] = Field(min_length=1)
    workload: Workload = Workload()

    @model_validator(mode="after")
    def _unique_venues(self) -> Self:
        ids = [v.id for v in self.venues]
        if len(ids) != len(set(ids)):
            raise ValueError(f"venue ids must be unique, got {ids}")
        return self


class ScenarioError(ValueError):
    """A scenario that cannot run; the message names the file and each bad field."""


def load(name_or_path: str | Path) -> Scenario:
    path = resolve(name_or_path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as bad:
        raise ScenarioError(f"{path}: not valid YAML: {bad}") from None
    try:
        return Scenario.model_validate(data)
    except ValidationError as bad:
        lines = [
            f"  {'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}"
            for e in bad.errors()
        ]
        raise ScenarioError(f"{path}: invalid scenario\n" + "\n".join(lines)) from None


def resolve(name_or_path: str | Path) -> Path:
    """A path as given, or the name of a shipped scenario."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.exists():
            raise ScenarioError(f"no scenario file {path}")
        return path
    shipped = SCENARIO_DIR / f"{name_or_path}.yaml"
    if not shipped.exists():
        names = ", ".join(sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml")))
        raise ScenarioError(f"no scenario named {name_or_path!r}; shipped: {names}")
    return shipped
