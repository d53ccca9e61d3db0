"""Reserve policies: how a venue holds its customers' money, and how it finds cash when the hot
wallet runs short. Each is a small class behind one interface; its params are a pydantic model
so a scenario file with a bad param fails before anything starts, naming the param.

A policy only *decides*: `allocate` says where deposits sit at the start, `on_shortfall` and
`rebalance` return `Move`s (take this much from that tier or holding; this much cash lands in
the hot wallet after this many scenario hours). Custody books them; the clock lands them.
A move from a non-cash holding is a *sale*: custody sends it to the order book as a market
order (never below `max_slippage_bps` under the last price), and what lands is what it fetched.
A policy's haircut is only its guess of the discount, used to size the sale.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bankrun.domain.ledger import Totals

Ratio = Field(ge=0, le=1)
Hours = Field(ge=0, le=24 * 365)


def _slippage() -> Any:
    return Field(1_000.0, gt=0, le=10_000, description="a sale's floor, bps under the last price")


@dataclass(frozen=True)
class Move:
    source: str  # a cash tier ("warm", "cold") or a holding ("less_liquid", "affiliate_loan")
    amount: int  # book value taken from the source
    proceeds: int  # cash that lands in the hot wallet
    delay_hours: float


@dataclass(frozen=True)
class Sheet:
    """What a policy sees of a venue: its balance sheet and who is owed."""

    totals: Totals
    owed_by_segment: dict[str, int]  # liabilities by customer segment ("retail", "whale")
    waiting: int = 0  # reserved for withdrawals not yet paid

    @property
    def liquid(self) -> int:
        return self.totals.hot

    @property
    def uncovered(self) -> int:
        """Reserved withdrawals that neither the hot wallet nor incoming cash will pay."""
        return max(0, self.waiting - self.totals.hot - self.totals.transit)


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReservePolicy(ABC):
    name: ClassVar[str]
    Params: ClassVar[type[Params]]

    def __init__(self, params: Params):
        self.params = params

    @abstractmethod
    def allocate(self, liabilities: int, segments: dict[str, int]) -> dict[str, int]:
        """Where deposits sit at the start: source -> amount moved out of the hot wallet."""

    def on_shortfall(self, sheet: Sheet) -> list[Move]:
        """Called when a payout failed for want of cash."""
        return self.rebalance(sheet)

    def rebalance(self, sheet: Sheet) -> list[Move]:
        """Called on every clock tick; by default, nothing."""
        return []

    def lcr(self, sheet: Sheet) -> float | None:
        return None

    @abstractmethod
    def target(self) -> tuple[str, float]:
        """What the policy promises to keep, as (measure, level): `reserve_ratio` (hot cash /
        liabilities) or `lcr`. Alerts compare the venue against it."""


def _draw(sheet: Sheet, need: int, sources: list[tuple[str, int, float, float]]) -> list[Move]:
    """Take cash from `sources` in order — (source, held, haircut, delay) — until `need` lands."""
    moves = []
    for source, held, haircut, delay in sources:
        if need <= 0:
            break
        if held <= 0 or haircut >= 1:
            continue
        amount = min(held, -(-need * 10**6 // round((1 - haircut) * 10**6)))
        proceeds = amount * round((1 - haircut) * 10**6) // 10**6
        moves.append(Move(source, amount, proceeds, delay))
        need -= proceeds
    return moves


class FullReserve(ReservePolicy):
    """Every unit owed is held, split across hot, warm and cold; warm and cold take time."""

    name = "full-reserve"

    class Params(Params):
        hot_ratio: float = Field(0.2, ge=0, le=1)
        warm_ratio: float = Field(0.3, ge=0, le=1)
        warm_delay_hours: float = Field(1.0, ge=0)
        cold_delay_hours: float = Field(24.0, ge=0)

        @model_validator(mode="after")
        def _fits(self) -> Self:
            if self.hot_ratio + self.warm_ratio > 1:
                raise ValueError("hot_ratio + warm_ratio must not exceed 1")
            return self

    def allocate(self, liabilities: int, segments: dict[str, int]) -> dict[str, int]:
        warm = int(liabilities * self.params.warm_ratio)
        hot = int(liabilities * self.params.hot_ratio)
        return {"warm": warm, "cold": liabilities - hot - warm}

    def rebalance(self, sheet: Sheet) -> list[Move]:
        p = self.params
        target = int(sheet.totals.liabilities * p.hot_ratio)
        need = sheet.uncovered + max(0, target - sheet.totals.hot - sheet.totals.transit)
        if need <= 0 or (sheet.uncovered == 0 and need < target // 100):
            return []  # topped up (or within 1 % of it: no dust transfers)
        return _draw(
            sheet,
            need,
            [
                ("warm", sheet.totals.warm, 0.0, p.warm_delay_hours),
                ("cold", sheet.totals.cold, 0.0, p.cold_delay_hours),
            ],
        )

    def on_shortfall(self, sheet: Sheet) -> list[Move]:
        return self.rebalance(sheet)

    def target(self) -> tuple[str, float]:
        return ("reserve_ratio", self.params.hot_ratio)


class Fractional(ReservePolicy):
    """Only `liquid_ratio` of liabilities is cash; the rest is less-liquid assets, sold slowly
    and at a haircut when customers want their money."""

    name = "fractional"

    class Params(Params):
        liquid_ratio: float = Field(0.1, ge=0, le=1)
        cold_delay_hours: float = Field(72.0, ge=0)
        haircut: float = Field(0.1, ge=0, lt=1, description="expected discount, sizes sales")
        max_slippage_bps: float = _slippage()

    def allocate(self, liabilities: int, segments: dict[str, int]) -> dict[str, int]:
        return {"less_liquid": liabilities - int(liabilities * self.params.liquid_ratio)}

    def target(self) -> tuple[str, float]:
        return ("reserve_ratio", self.params.liquid_ratio)

    def rebalance(self, sheet: Sheet) -> list[Move]:
        """Sell enough less-liquid assets to cover every withdrawal waiting for cash."""
        p = self.params
        return _draw(
            sheet,
            sheet.uncovered,
            [("less_liquid", sheet.totals.less_liquid, p.haircut, p.cold_delay_hours)],
        )


class RunOffRates(Params):
    retail: float = Field(0.10, ge=0, le=1)
    whale: float = Field(0.40, ge=0, le=1)


class HqlaHaircuts(Params):
    level1: float = Field(0.0, ge=0, lt=1)
    level2b: float = Field(0.5, ge=0, lt=1)


class Lcr(ReservePolicy):
    """Basel III style: high-quality liquid assets must cover 30 days of stressed outflows
    (run-off rate x what each customer segment is owed); below target, cold cash is moved up."""

    name = "lcr"

    class Params(Params):
        run_off_rates: RunOffRates = RunOffRates()
        hqla_haircuts: HqlaHaircuts = HqlaHaircuts()
        target_lcr: float = Field(1.0, gt=0, le=10)
        level2b_share: float = Field(0.2, ge=0, le=1, description="share of HQLA in level 2B")
        cold_delay_hours: float = Field(24.0, ge=0)
        max_slippage_bps: float = _slippage()

    def outflows(self, owed_by_segment: dict[str, int]) -> int:
        rates = self.params.run_off_rates
        return int(
            owed_by_segment.get("retail", 0) * rates.retail
            + owed_by_segment.get("whale", 0) * rates.whale
        )

    def hqla(self, t: Totals) -> int:
        cuts = self.params.hqla_haircuts
        return int((t.hot + t.warm) * (1 - cuts.level1) + t.less_liquid * (1 - cuts.level2b))

    def lcr(self, sheet: Sheet) -> float | None:
        out = self.outflows(sheet.owed_by_segment)
        return None if out == 0 else self.hqla(sheet.totals) / out

    def target(self) -> tuple[str, float]:
        return ("lcr", self.params.target_lcr)

    def allocate(self, liabilities: int, segments: dict[str, int]) -> dict[str, int]:
        p = self.params
        need = int(self.outflows(segments) * p.target_lcr)
        l2b_value = int(need * p.level2b_share)
        l2b = min(liabilities, int(l2b_value / (1 - p.hqla_haircuts.level2b)))
        hot = min(liabilities - l2b, need - l2b_value)
        return {"less_liquid": l2b, "cold": liabilities - l2b - hot}

    def rebalance(self, sheet: Sheet) -> list[Move]:
        p = self.params
        target = int(self.outflows(sheet.owed_by_segment) * p.target_lcr)
        short = target - self.hqla(sheet.totals) - sheet.totals.transit
        need = sheet.uncovered + max(0, short)
        if need <= 0:
            return []
        return _draw(
            sheet,
            need,
            [
                ("cold", sheet.totals.cold, 0.0, p.cold_delay_hours),
                ("less_liquid", sheet.totals.less_liquid, p.hqla_haircuts.level2b, 0.0),
            ],
        )


class Commingled(ReservePolicy):
    """FTX style: a share of customer money is lent to an affiliate that posted the venue's own
    token as collateral; getting it back means selling that token into a market that falls."""

    name = "commingled"

    class Params(Params):
        liquid_ratio: float = Field(0.1, ge=0, le=1)
        affiliate_loan_ratio: float = Field(0.6, ge=0, le=1)
        token_collateral_ratio: float = Field(1.0, ge=0, le=10, description="collateral / loan")
        token_haircut: float = Field(
            0.2, ge=0, lt=1, description="expected fire-sale discount, sizes sales"
        )
        cold_delay_hours: float = Field(24.0, ge=0)
        recall_delay_hours: float = Field(24.0, ge=0)
        max_slippage_bps: float = _slippage()

        @model_validator(mode="after")
        def _fits(self) -> Self:
            if self.liquid_ratio + self.affiliate_loan_ratio > 1:
                raise ValueError("liquid_ratio + affiliate_loan_ratio must not exceed 1")
            return self

    def target(self) -> tuple[str, float]:
        return ("reserve_ratio", self.params.liquid_ratio)

    def allocate(self, liabilities: int, segments: dict[str, int]) -> dict[str, int]:
        p = self.params
        loan = int(liabilities * p.affiliate_loan_ratio)
        hot = int(liabilities * p.liquid_ratio)
        return {"affiliate_loan": loan, "cold": liabilities - loan - hot}

    def rebalance(self, sheet: Sheet) -> list[Move]:
        """Cold cash first; then recall the affiliate loan, which can only repay by selling
        its collateral — the venue's own token — into the market."""
        p = self.params
        return _draw(
            sheet,
            sheet.uncovered,
            [
                ("cold", sheet.totals.cold, 0.0, p.cold_delay_hours),
                (
                    "affiliate_loan",
                    sheet.totals.affiliate_loan,
                    p.token_haircut,
                    p.recall_delay_hours,
                ),
            ],
        )


POLICIES: dict[str, type[ReservePolicy]] = {
    cls.name: cls for cls in (FullReserve, Fractional, Lcr, Commingled)
}


class Gate(Params):
    """Celsius-style modifier on any policy: cap withdrawals, or halt them, once triggered."""

    trigger: Literal["always", "dry", "liquid_ratio_below"] = "dry"
    threshold: float | None = Field(None, ge=0, le=1, description="for liquid_ratio_below")
    max_per_account_per_day: int | None = Field(None, gt=0, description="minor units")
    halt: bool = False
    halt_after_hours: float = Field(0.0, ge=0, description="hours after the trigger trips")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.trigger == "liquid_ratio_below" and self.threshold is None:
            raise ValueError("trigger liquid_ratio_below needs a threshold")
        if not self.halt and self.max_per_account_per_day is None:
            raise ValueError("a gate needs halt: true or max_per_account_per_day")
        return self

    def tripped(self, dry: bool, liquid_ratio: float | None) -> bool:
        if self.trigger == "always":
            return True
        if self.trigger == "dry":
            return dry
        assert self.threshold is not None
        return liquid_ratio is not None and liquid_ratio < self.threshold


def make_policy(name: str, params: dict[str, Any] | None = None) -> ReservePolicy:
    """The policy called `name` with validated params (raises KeyError / pydantic errors)."""
    cls = POLICIES[name]
    return cls(cls.Params.model_validate(params or {}))
