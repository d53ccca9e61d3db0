"""Scenario files: YAML validated by pydantic, with errors that name the field.

A scenario holds venues side by side (each with a reserve policy, its params, an optional gate,
customers and their deposits), a duration, a news timeline, and a load model. Policy params
are checked by the policy's own model, so `venues.0.params.liquid_ratio` is named when wrong.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bankrun.domain.market import DEFAULT_MARKETS, MarketSpec
from bankrun.domain.money import AssetCode
from bankrun.domain.panic import PanicParams
from bankrun.domain.policies import POLICIES, Gate
from bankrun.events import Claim, MinorUnits, PorConfig, VenueId
from bankrun.validation import named

SCENARIO_DIR = Path(__file__).resolve().parent.parent / "loadtests" / "scenarios"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Balances(_Strict):
    """How total deposits spread over customers: equal, uniform, or Pareto (a few whales)."""

    distribution: Literal["equal", "uniform", "pareto"] = "pareto"
    alpha: float = Field(1.16, gt=0, le=10, description="Pareto shape; 1.16 is the 80/20 rule")


class ClaimSpec(_Strict):
    """Money this venue placed at another (`counterparty`) at genesis, out of its customers'
    deposits: the rest is placed as its policy says. A `deposit` there is liquid (called back
    when the venue is short, it lands after `call_delay_hours`); a `loan` is a term asset. A
    `credit_line` places nothing at genesis: the counterparty draws on it, up to `amount`, when
    it is short, and what it drew lands after `call_delay_hours`. When the counterparty halts,
    the claim (a line: what was drawn) is frozen and marked to `recovery` of it; when this
    venue halts, its lines close."""

    counterparty: VenueId
    kind: Literal["deposit", "loan", "credit_line"]
    amount: MinorUnits
    recovery: float = Field(0.0, ge=0, le=1, description="share kept once the counterparty halts")
    call_delay_hours: float | None = Field(
        None,
        ge=0,
        le=24 * 30,
        description="deposit: from call to cash; credit_line: from draw to cash; default 2 h "
        "(like a warm wallet)",
    )

    @model_validator(mode="after")
    def _supported(self) -> Self:
        if self.kind == "loan" and self.call_delay_hours is not None:
            raise ValueError(
                "call_delay_hours is for deposits and credit lines: a loan cannot be called back"
            )
        return self

    @property
    def placed(self) -> bool:
        """Whether it is money placed at genesis: a credit line is only a promise to lend."""
        return self.kind != "credit_line"

    @property
    def delay_hours(self) -> float:
        """Hours from a call (a deposit) or a draw (a credit line) to cash; a loan has none."""
        if self.kind == "loan":
            return 0.0
        return DEPOSIT_CALL_HOURS if self.call_delay_hours is None else self.call_delay_hours


def policy_params(policy: Any, params: dict[str, Any] | None) -> dict[str, Any]:
    """`params` checked by the policy's own model, with every default filled in; a ValueError
    naming the param (`params.liquid_ratio: ...`) otherwise. Scenario files and the operator's
    policy change at the gateway both go through it."""
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; one of {', '.join(POLICIES)}")
    try:
        return POLICIES[policy].Params.model_validate(params or {}).model_dump()
    except ValidationError as bad:
        raise ValueError(named(bad, prefix="params.")) from None


class VenueSpec(_Strict):
    id: VenueId
    policy: str
    params: dict[str, Any] = Field(default_factory=dict)
    gate: Gate | None = None
    asset: AssetCode = "USD"
    customers: int = Field(gt=0, le=100_000)
    total_deposits: MinorUnits
    balances: Balances = Balances()
    whale_share: float = Field(0.01, ge=0, le=1, description="largest accounts counted as whales")
    watches_token: bool | None = Field(
        None,
        description="its customers fear the platform token's fall (default: commingled venues, "
        "whose solvency rides on it)",
    )
    claims: list[ClaimSpec] = Field(
        default_factory=list, description="what it placed at other venues (contagion)"
    )
    por: PorConfig | None = Field(None, description="proof of reserves; absent: off")
    customers_like: VenueId | None = Field(
        None,
        description="draw its customers (balances, thresholds, who is informed) as that "
        "venue's: a control group, so one change can be compared with everything else equal",
    )

    @property
    def crowd(self) -> str:
        """Whose customers these are drawn as (the seed of their balances and thresholds)."""
        return self.customers_like or self.id

    @property
    def token_exposed(self) -> bool:
        return self.policy == "commingled" if self.watches_token is None else self.watches_token

    @model_validator(mode="before")
    @classmethod
    def _policy_params(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        return {**data, "params": policy_params(data.get("policy"), data.get("params"))}

    @model_validator(mode="after")
    def _enough_money(self) -> Self:
        if self.total_deposits < self.customers:
            raise ValueError("total_deposits must give every customer at least one minor unit")
        placed = sum(c.amount for c in self.claims if c.placed)
        if placed > self.total_deposits:
            raise ValueError(
                f"claims: {placed} placed at other venues is more than the venue's "
                f"total_deposits ({self.total_deposits})"
            )
        return self


class News(_Strict):
    at_hours: float = Field(ge=0)
    headline: str
    severity: float = Field(0.5, ge=0, le=1)
    venues: list[VenueId] | None = Field(None, description="None: every venue")


class ConstantLoad(_Strict):
    """A fixed amount asked for per scenario hour at every venue, spread over its customers."""

    model: Literal["constant"] = "constant"
    amount_per_hour: MinorUnits
    step_hours: float = Field(0.25, gt=0, le=24)
    requests_per_step: int = Field(10, gt=0, le=10_000)
    start_hours: float = Field(0.0, ge=0)


class PanicLoad(_Strict):
    """Customers who run when their fear passes their threshold (`bankrun/domain/panic.py`);
    they decide every clock tick, from what the venue answered them (`bankrun.panic_desk`)."""

    model: Literal["panic"] = "panic"
    params: PanicParams = PanicParams()


LOAD_MODELS = ("constant", "panic")


class Scenario(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    description: str = ""
    seed: int = 0
    duration_hours: float = Field(gt=0, le=24 * 90)
    tick_hours: float = Field(0.25, gt=0, le=24, description="how often reserves are reported")
    speed: float = Field(1440.0, gt=0, description="scenario seconds per wall second, in `run`")
    venues: list[VenueSpec] = Field(min_length=1)
    news: list[News] = Field(default_factory=list)
    news_half_life_hours: float = Field(
        12.0, gt=0, description="how fast a headline's fright fades for market makers"
    )
    markets: tuple[MarketSpec, ...] = Field(
        DEFAULT_MARKETS, min_length=1, description="order books; each prices some holdings"
    )
    load: ConstantLoad | PanicLoad = Field(discriminator="model")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        ids = [v.id for v in self.venues]
        if len(ids) != len(set(ids)):
            raise ValueError(f"venue ids must be unique, got {ids}")
        for item in self.news:
            unknown = set(item.venues or ()) - set(ids)
            if unknown:
                raise ValueError(f"news at {item.at_hours} h names unknown venues {unknown}")
            if item.at_hours > self.duration_hours:
                raise ValueError(f"news at {item.at_hours} h is after the scenario ends")
        self._check_claims()
        self._check_twins()
        symbols = [m.symbol for m in self.markets]
        if len(symbols) != len(set(symbols)):
            raise ValueError(f"market symbols must be unique, got {symbols}")
        backed = [h for m in self.markets for h in m.backs]
        if len(backed) != len(set(backed)):
            raise ValueError(f"each holding is priced by one market, got {backed}")
        unknown_holdings = set(backed) - set(HOLDINGS)
        if unknown_holdings:
            raise ValueError(f"markets back unknown holdings {unknown_holdings}; one of {HOLDINGS}")
        return self

    def _check_claims(self) -> None:
        venues = {v.id: v for v in self.venues}
        for i, venue in enumerate(self.venues):
            seen: set[tuple[str, str]] = set()
            for j, c in enumerate(venue.claims):
                where = f"venues.{i}.claims.{j}"
                other = venues.get(c.counterparty)
                if other is None:
                    raise ValueError(
                        f"{where}.counterparty: no venue {c.counterparty!r}; one of "
                        f"{', '.join(venues)}"
                    )
                if other.id == venue.id:
                    raise ValueError(f"{where}.counterparty: a venue cannot hold a claim on itself")
                if other.asset != venue.asset:
                    raise ValueError(
                        f"{where}.counterparty: {other.id} holds {other.asset}, "
                        f"{venue.id} {venue.asset}; a claim is in one asset"
                    )
                if (c.counterparty, c.kind) in seen:
                    raise ValueError(f"{where}: a second {c.kind} at {c.counterparty}; add them up")
                seen.add((c.counterparty, c.kind))

    def _check_twins(self) -> None:
        venues = {v.id: v for v in self.venues}
        for i, venue in enumerate(self.venues):
            if venue.customers_like is None:
                continue
            where = f"venues.{i}.customers_like"
            other = venues.get(venue.customers_like)
            if other is None:
                raise ValueError(f"{where}: no venue {venue.customers_like!r}")
            if other.id == venue.id:
                raise ValueError(f"{where}: a venue is already like itself")
            for name in ("customers", "total_deposits", "balances", "whale_share", "asset"):
                if getattr(other, name) != getattr(venue, name):
                    raise ValueError(
                        f"{where}: its {name} must equal {other.id}'s for the same customers"
                    )

    def claims(self) -> list[Claim]:
        """Every claim between the scenario's venues, lender first."""
        return [
            Claim(
                lender=v.id,
                borrower=c.counterparty,
                kind=c.kind,
                amount=c.amount,
                recovery=c.recovery,
                call_delay_hours=c.delay_hours,
            )
            for v in self.venues
            for c in v.claims
        ]

    def claims_of(self, venue: str) -> list[Claim]:
        """The claims a venue is party to, as lender or borrower."""
        return [c for c in self.claims() if venue in (c.lender, c.borrower)]

    def market_of(self, holding: str) -> MarketSpec | None:
        return next((m for m in self.markets if holding in m.backs), None)

    def news_severity(self, hours: float, venue: str | None = None) -> float:
        """How frightening the news is at `hours`: the loudest headline so far, fading. For a
        venue, only headlines about it (or about every venue); markets read them all."""
        return max(
            (
                n.severity * 0.5 ** ((hours - n.at_hours) / self.news_half_life_hours)
                for n in self.news
                if n.at_hours <= hours and (venue is None or n.venues is None or venue in n.venues)
            ),
            default=0.0,
        )


HOLDINGS = ("platform_token", "affiliate_loan", "less_liquid")
DEPOSIT_CALL_HOURS = 2.0


_NAMED = re.compile(r"^[a-z_]+(\.[a-z0-9_]+)+: ")


class ScenarioError(ValueError):
    """A scenario that cannot run; the message names the file and each bad field."""


def parse(text: str, origin: str = "<scenario>") -> Scenario:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as bad:
        raise ScenarioError(f"{origin}: not valid YAML: {bad}") from None
    try:
        return Scenario.model_validate(data)
    except ValidationError as bad:
        lines = []
        for e in bad.errors():
            loc = e["loc"]  # a load model's tag is not a field the user wrote: leave it out
            loc = tuple(
                p
                for i, p in enumerate(loc)
                if not (i and loc[i - 1] == "load" and p in LOAD_MODELS)
            )
            where = ".".join(str(p) for p in loc) or "(top level)"
            message = e["msg"].removeprefix("Value error, ")
            if not loc and _NAMED.match(message):
                where, message = message.split(": ", 1)  # a cross-field check names its field
            lines.append(f"  {where}: {message}")
        raise ScenarioError(f"{origin}: invalid scenario\n" + "\n".join(lines)) from None


def load(name_or_path: str | Path) -> Scenario:
    return load_with_text(name_or_path)[0]


def load_with_text(name_or_path: str | Path) -> tuple[Scenario, str]:
    """The scenario and the file's text, read once (a run folder keeps the text)."""
    path = resolve(name_or_path)
    text = path.read_text()
    return parse(text, str(path)), text


def to_yaml(scenario: Scenario, origin: str) -> str:
    """The scenario as a file that `parse` reads back to it, every field spelled out, headed by
    where it came from (a run folder's `scenario.yaml` after `--set`)."""
    body = yaml.safe_dump(scenario.model_dump(mode="json"), sort_keys=False, width=100)
    return f"# {origin}\n{body}"


def shipped() -> list[str]:
    """The names of the scenarios in `loadtests/scenarios/`."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))


def resolve(name_or_path: str | Path) -> Path:
    """A path as given, or the name of a shipped scenario."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.exists():
            raise ScenarioError(f"no scenario file {path}")
        return path
    named = SCENARIO_DIR / f"{name_or_path}.yaml"
    if not named.exists():
        names = ", ".join(shipped())
        raise ScenarioError(f"no scenario named {name_or_path!r}; shipped: {names}")
    return named
