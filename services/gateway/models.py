"""The gateway's bodies and replies: what its OpenAPI description promises, in one place.

Requests are strict (unknown fields refused); every refusal has a body (`Problem`, or `Invalid`
for a 422), declared per route with `errors(...)` so the description tells the truth.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model

from bankrun import events as ev
from bankrun.domain.money import AssetCode
from bankrun.domain.policies import POLICIES, ReservePolicy


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OpenAccountBody(_Body):
    venue: ev.VenueId
    account: ev.AccountId
    asset: AssetCode = "USD"


def _whole(value: Any) -> Any:
    """JSON has one number type, and JSON Schema's `integer` takes 5.0 as 5: so does the
    gateway. A fraction stays refused, and so does a float past 2**53, where a double no
    longer holds every integer (send those as integers)."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53:
        return int(value)
    return value


Amount = Annotated[ev.MinorUnits, BeforeValidator(_whole)]


class DepositBody(OpenAccountBody):
    amount: Amount


class WithdrawalBody(DepositBody):
    request_id: ev.RequestId | None = None


class Accepted(BaseModel):
    event_id: uuid.UUID
    status: str = "accepted"


class Onboarded(Accepted):
    token: str  # the account's bearer token: handed out here, once, and never logged


class GateBody(_Body):
    gated: bool = Field(True, description="true: gate the venue; false: lift the gate")
    max_per_account_per_day: Amount | None = Field(
        None,
        description="cap what each account may take out per scenario day (minor units); "
        "without it, the gate holds every payment (requests queue)",
    )
    reason: ev.Reason


class HaltBody(_Body):
    reason: ev.Reason


def _policy_change(policy: type[ReservePolicy]) -> type[_Body]:
    """The body that switches a venue to `policy`: its params are the policy's own model (the
    one a scenario's venue is checked by), so the OpenAPI description shows every bound."""
    return create_model(
        f"{policy.__name__}Change",
        __base__=_Body,
        __doc__=f"Switch to `{policy.name}`. {policy.__doc__ or ''}".strip(),
        policy=(Literal[policy.name], ...),  # type: ignore[valid-type]
        params=(policy.Params, Field(default_factory=policy.Params)),
        reason=(ev.Reason, ...),
    )


PolicyBody = Annotated[
    Union[tuple(_policy_change(p) for p in POLICIES.values())],  # type: ignore[valid-type]  # noqa: UP007
    Field(discriminator="policy"),
]


class Problem(BaseModel):
    """Every refusal: what was wrong, in one line."""

    detail: str


class FieldProblem(BaseModel):
    field: str
    message: str


class Invalid(Problem):
    """A 422: the summary line, and each bad field."""

    errors: list[FieldProblem]


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The refusals a route can answer, for its OpenAPI description."""
    meaning = {
        400: "the body is not readable JSON",
        401: "no valid bearer token",
        403: "not this caller's to see or do",
        404: "unknown venue, account or withdrawal",
        409: "conflicts with what the venue already has",
        413: "request body too large",
        422: "invalid request",
        429: "over the account's request budget",
    }
    return {
        code: {"model": Invalid if code == 422 else Problem, "description": meaning[code]}
        for code in codes
    }


class Ready(BaseModel):
    service: str
    ready: bool
    events_applied: int


# --- replies -------------------------------------------------------------------------------


class WithdrawalRecord(BaseModel):
    """A withdrawal as the gateway knows it: `requested` until the venue answers."""

    request_id: str
    venue: str
    account: str
    asset: AssetCode
    amount: int
    status: Literal["requested", "queued", "paid", "rejected", "cancelled"]
    reason: str | None
    requested_at: float = Field(description="scenario seconds")
    finished_at: float | None = Field(description="scenario seconds; null while not finished")


class CancelAccepted(WithdrawalRecord):
    cancel: Literal["accepted"] = "accepted"


class WithdrawalCounts(BaseModel):
    venue: str
    counts: dict[str, int] = Field(description="status -> withdrawals this gateway knows")
    total: int


class Balances(BaseModel):
    venue: str
    account: str
    balances: dict[str, int] = Field(description="asset -> available minor units")


class VenueStatus(BaseModel):
    venue: str
    policy: str
    status: Literal["open", "gated", "halted"]
    gated_at: float | None
    halted_at: float | None
    scenario_time: float = Field(description="now at the venue, scenario seconds")
    accounts: int


class Venues(BaseModel):
    venues: list[VenueStatus]


class Outcome(BaseModel):
    request_id: str
    status: Literal["queued", "paid", "rejected", "cancelled"]


class Outcomes(BaseModel):
    venue: str
    outcomes: list[Outcome]
    next: int = Field(description="pass as `after` to read on")


class Market(BaseModel):
    """A market's last price and top of book (quote minor units per whole base unit)."""

    market: str
    price: int
    peak: int
    drawdown: float
    best_bid: int | None
    best_ask: int | None
    spread_bps: float | None
    bid_depth_2pct: int
    ask_depth_2pct: int
    stress: float
    scenario_time: float


class Markets(BaseModel):
    markets: list[Market]
