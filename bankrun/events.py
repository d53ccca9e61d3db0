"""Event contracts: one envelope for every event on every topic.

Every event names its `venue`, carries `scenario_time` (scenario seconds, the only time
the core reasons about) and `occurred_at` (wall clock, for ops only), and links to the
request that started its chain (`correlation_id`) and the event that caused it
(`causation_id`). An event made *because of* another gets a deterministic id derived from
its cause, so a replayed handler re-emits the same ids and consumers can drop duplicates.

Adding an event type: subclass `Event` with a `type` literal, add it to `AnyEvent`, list it
in a topic in `bankrun.topics`, and run `bankrun schemas`.
"""

from __future__ import annotations

import functools
import hashlib
import os
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, Field, StrictInt, TypeAdapter

from bankrun.domain.market import MarketSpec
from bankrun.domain.money import AssetCode

ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
REQUEST_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
VenueId = Annotated[str, Field(pattern=ID_PATTERN, description="venue (exchange) id")]
AccountId = Annotated[str, Field(pattern=ID_PATTERN, description="customer account id")]
RequestId = Annotated[
    str,
    Field(pattern=REQUEST_ID_PATTERN, description="idempotency key"),
]
MinorUnits = Annotated[StrictInt, Field(gt=0, description="integer minor units of the asset")]
Balance = Annotated[StrictInt, Field(ge=0, description="integer minor units of the asset")]
Reason = Annotated[str, Field(pattern=r"^[a-z_]+$", description="machine-readable reason code")]

_NAMESPACE = uuid.UUID("6f1d1c2e-5b7a-4e44-9d1c-0b2a4b616e6b")
_NAMESPACE_BYTES = _NAMESPACE.bytes


_VARIANT_KEEP = ~(0xC000 << 48) & ~(0xF000 << 64)  # what `UUID(int=, version=)` keeps
_VERSION_TAG = {version: (0x8000 << 48) | (version << 76) for version in (4, 5)}  # RFC 4122
#: `UUID`'s two slots, set as its own `__init__` sets them (it is immutable to everyone else)
_SET_INT = uuid.UUID.__dict__["int"].__set__
_SET_SAFE = uuid.UUID.__dict__["is_safe"].__set__
_UNKNOWN_SAFETY = uuid.SafeUUID.unknown  # read once: an enum member's look-up runs Python code


def derived_id(cause: uuid.UUID, label: str) -> uuid.UUID:
    """The id of the event `label` caused by `cause`: the same on every replay. A name-based
    (version 5) UUID of the cause's bytes and the label — made on every event a handler
    emits, so it skips uuid5's round trip through the cause's text."""
    name = _NAMESPACE_BYTES + cause.int.to_bytes(16) + label.encode()
    digest = hashlib.sha1(name, usedforsecurity=False).digest()
    return _uuid(int.from_bytes(digest[:16]), version=5)


def random_id() -> uuid.UUID:
    """`uuid.uuid4()`: the id of an event with no cause (genesis, every clock tick)."""
    return _uuid(int.from_bytes(os.urandom(16)), version=4)


def _uuid(value: int, version: int) -> uuid.UUID:
    """`uuid.UUID(int=value, version=version)` without `UUID.__init__`'s checks of an
    integer that is a 128-bit one by construction, its slots set through their descriptors
    (a third of the time `object.__setattr__` takes)."""
    made = object.__new__(uuid.UUID)
    _SET_INT(made, (value & _VARIANT_KEEP) | _VERSION_TAG[version])
    _SET_SAFE(made, _UNKNOWN_SAFETY)
    return made


_NIL = uuid.UUID(int=0)


def idempotent_id(kind: str, venue: str, key: str) -> uuid.UUID:
    """The event id of a customer request with an idempotency key: retries share it."""
    return derived_id(_NIL, f"{kind}/{venue}/{key}")


E = TypeVar("E", bound="Event")


@functools.cache
def type_of(cls: type[Event]) -> str:
    """An event class's `type` literal (looked up on every event a handler emits)."""
    return cls.model_fields["type"].default


class Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: uuid.UUID = Field(default_factory=random_id)
    type: str
    schema_version: int = 1
    venue: VenueId
    scenario_time: float = Field(ge=0, description="scenario seconds since the run started")
    occurred_at: datetime = Field(
        default_factory=functools.partial(datetime.now, UTC), description="wall clock, ops only"
    )
    correlation_id: uuid.UUID | None = None
    causation_id: uuid.UUID | None = None

    def caused(self, cls: type[E], label: str = "", **fields: Any) -> E:
        """An event of type `cls` caused by this one, at the same scenario time, with a
        replay-stable id (give a `label` when one cause has several effects of a type)."""
        tag = type_of(cls) + (f"/{label}" if label else "")
        fields.setdefault("venue", self.venue)
        fields.setdefault("scenario_time", self.scenario_time)
        fields["event_id"] = derived_id(self.event_id, tag)
        fields["correlation_id"] = self.correlation_id or self.event_id
        fields["causation_id"] = self.event_id
        # validated as `cls(**fields)` would, without BaseModel.__init__'s frame around it
        return cls.__pydantic_validator__.validate_python(fields)

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


# --- control (written by the runner) --------------------------------------------------


class HoldingMarket(BaseModel):
    """Where a non-cash holding trades, and what one base unit was worth at the start."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    market: str
    start_price: int = Field(gt=0)
    base_unit: int = Field(gt=0)
    lot_size: int = Field(gt=0)


ClaimKind = Literal["deposit", "loan", "credit_line"]


class Claim(BaseModel):
    """Money one venue placed at another at genesis: an asset of the lender, which the borrower
    owes. A `deposit` can be called back (it lands after `call_delay_hours`); a `loan` is a term
    asset. When the borrower halts, the claim is frozen and marked to `recovery` of it."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    lender: VenueId
    borrower: VenueId
    kind: ClaimKind
    amount: MinorUnits
    recovery: float = Field(0.0, ge=0, le=1, description="share kept on the book once frozen")
    call_delay_hours: float = Field(0.0, ge=0, description="deposit: hours from call to cash")


class PorConfig(BaseModel):
    """A venue's proof of reserves: how often custody attests, and whether customers see it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    interval_hours: float = Field(24.0, gt=0, le=24 * 90, description="hours between attestations")
    first_at_hours: float = Field(0.0, ge=0, description="scenario hour of the first one")
    published: bool = Field(
        True,
        description="customers see it and their fear reacts; false: an auditor's view only, "
        "kept in the run's records",
    )
    count_less_liquid: bool = Field(
        True, description="less-liquid holdings count at market value (the token never does)"
    )


class VenueOpened(Event):
    """A venue of the run: its reserve policy, the policy's params and an optional gate."""

    type: Literal["venue.opened"] = "venue.opened"
    policy: str = Field(pattern=r"^[a-z][a-z0-9+-]*$")
    params: dict[str, Any] = Field(default_factory=dict)
    gate: dict[str, Any] | None = None
    assets: tuple[AssetCode, ...] = ("USD",)
    markets: dict[str, HoldingMarket] = Field(
        default_factory=dict, description="holding -> the market it is priced and sold in"
    )
    claims: tuple[Claim, ...] = Field(
        (),
        description="claims between this venue and others: as lender, assets it places at "
        "genesis; as borrower, the creditors it tells when it halts",
    )
    por: PorConfig | None = Field(None, description="proof of reserves; None: off")


class AccountFunded(Event):
    """A customer who starts the run with a balance (genesis: opened and deposited at once)."""

    type: Literal["account.funded"] = "account.funded"
    account: AccountId
    asset: AssetCode
    amount: MinorUnits
    segment: Literal["retail", "whale"] = "retail"


class ScenarioStarted(Event):
    """Scenario time zero for a venue: services derive scenario time from it, never guess."""

    type: Literal["scenario.started"] = "scenario.started"
    started_at: float = Field(description="wall clock (epoch seconds) at scenario time zero")
    speed: float = Field(gt=0, description="scenario seconds per wall second")
    duration_hours: float = Field(gt=0)
    paced_by: Literal["wall", "ticks"] = Field(
        "wall",
        description="`ticks`: scenario time stands at the last tick until the next one (a "
        "panic run moves the clock only once the system has settled each step)",
    )


class ClockTick(Event):
    """Scenario time has reached `scenario_time`: due mobilizations land, reserves are reported."""

    type: Literal["clock.tick"] = "clock.tick"


# --- customers (written by the gateway) ------------------------------------------------


class _AccountEvent(Event):
    account: AccountId
    asset: AssetCode


class AccountOpened(_AccountEvent):
    type: Literal["account.opened"] = "account.opened"


class DepositMade(_AccountEvent):
    type: Literal["deposit.made"] = "deposit.made"
    amount: MinorUnits


class WithdrawalRequested(_AccountEvent):
    type: Literal["withdrawal.requested"] = "withdrawal.requested"
    request_id: RequestId
    amount: MinorUnits


class WithdrawalCancelRequested(_AccountEvent):
    """The customer takes back a withdrawal still waiting in the queue."""

    type: Literal["withdrawal.cancel_requested"] = "withdrawal.cancel_requested"
    request_id: RequestId


# --- custody (owns the ledger) ---------------------------------------------------------


class _WithdrawalStep(_AccountEvent):
    request_id: RequestId
    amount: MinorUnits
    requested_at: float = Field(ge=0, description="scenario seconds when the customer asked")
    requested_wall: float | None = Field(
        None, description="wall clock (epoch seconds) when the gateway took the request; ops only"
    )


class FundsReserved(_WithdrawalStep):
    type: Literal["funds.reserved"] = "funds.reserved"


class FundsRejected(_WithdrawalStep):
    type: Literal["funds.rejected"] = "funds.rejected"
    reason: Reason


class PayoutSettled(_WithdrawalStep):
    type: Literal["payout.settled"] = "payout.settled"


class PayoutFailed(_WithdrawalStep):
    type: Literal["payout.failed"] = "payout.failed"
    reason: Reason


class BalanceSnapshot(_AccountEvent):
    """A customer's balance after a change: the read model the gateway serves."""

    type: Literal["balance.snapshot"] = "balance.snapshot"
    available: Balance


class MobilizationStarted(Event):
    """Cash is on its way to the hot wallet: taken from a tier or sold from a holding."""

    type: Literal["mobilization.started"] = "mobilization.started"
    asset: AssetCode
    source: str
    amount: MinorUnits
    proceeds: Balance
    lands_at: float = Field(ge=0, description="scenario seconds")


class MobilizationLanded(Event):
    type: Literal["mobilization.landed"] = "mobilization.landed"
    asset: AssetCode
    source: str
    amount: MinorUnits
    proceeds: Balance


class BufferDry(Event):
    """The first time a valid withdrawal could not be paid from liquid reserves."""

    type: Literal["buffer.dry"] = "buffer.dry"
    asset: AssetCode
    request_id: RequestId


class ReserveSnapshot(Event):
    """A venue's balance sheet in one asset, reported on every clock tick."""

    type: Literal["reserve.snapshot"] = "reserve.snapshot"
    asset: AssetCode
    liabilities: int
    hot: int
    warm: int
    cold: int
    transit: int
    holdings: dict[str, int]
    claims: dict[str, int] = Field(
        default_factory=dict,
        description="a lender's claims on other venues: deposit (callable, liquid), loan, "
        "credit_line (drawn on lines it extended, if any), frozen (on halted venues, marked "
        "down); empty for a venue that placed none",
    )
    borrowed: int = Field(0, ge=0, description="drawn on other venues' credit lines, owed")
    equity: int
    waiting: int = Field(description="reserved for withdrawals not yet paid")
    lcr: float | None = None
    dry: bool
    collateral_value: int = Field(
        0, ge=0, description="market value of the collateral behind the affiliate loan"
    )


class ClaimWrittenDown(Event):
    """The lender booked a frozen claim: what was still owed (called cash in flight included)
    is off its liquid books, and only `value` of it is left as an asset; the rest is a loss."""

    type: Literal["claim.written_down"] = "claim.written_down"
    asset: AssetCode
    counterparty: VenueId
    frozen: Balance = Field(description="what the counterparty still owed, at face")
    value: Balance = Field(description="what the frozen claim is marked to (recovery x face)")
    loss: Balance = Field(description="face - value, booked against equity")


class PorLeaves(Event):
    """One part of the balances an attestation's tree was built from, for the gateway to
    rebuild the same tree and serve inclusion proofs (parts keep each event small)."""

    type: Literal["por.leaves"] = "por.leaves"
    asset: AssetCode
    seq: int = Field(ge=0, description="the attestation's number at this venue")
    part: int = Field(ge=0)
    parts: int = Field(gt=0)
    balances: tuple[tuple[AccountId, Balance], ...]


class PorAttested(Event):
    """A proof-of-reserves attestation: the root of the customer-liabilities sum tree, the
    reserves that count against it, and their ratio (`bankrun.domain.attestation`)."""

    type: Literal["por.attested"] = "por.attested"
    asset: AssetCode
    seq: int = Field(ge=0)
    root: str = Field(pattern=r"^[0-9a-f]{64}$", description="the tree's root hash")
    height: int = Field(ge=1, le=32)
    accounts: int = Field(ge=0, description="customer leaves (the pending leaf not counted)")
    liabilities: Balance = Field(description="the tree's total")
    ledger_liabilities: int
    pending: Balance = Field(description="reserved for withdrawals not yet paid: one leaf")
    eligible: dict[str, int] = Field(description="reserves counted, by source")
    excluded: dict[str, int] = Field(description="the rest of the asset side, by source")
    reserves: int
    ratio: float | None = Field(description="reserves / liabilities; None when nothing is owed")
    solvent: bool
    problems: tuple[str, ...] = ()
    published: bool
    parts: int = Field(ge=0, description="PorLeaves events sent before this one")


class DepositRejected(_AccountEvent):
    type: Literal["deposit.rejected"] = "deposit.rejected"
    amount: MinorUnits
    reason: Reason


# --- withdrawal saga -------------------------------------------------------------------


class PayoutRequested(_WithdrawalStep):
    """The saga asks custody to send a reserved withdrawal from liquid reserves."""

    type: Literal["payout.requested"] = "payout.requested"


class ReleaseRequested(_WithdrawalStep):
    """The saga gives reserved funds back to the customer: the withdrawal will not be paid."""

    type: Literal["release.requested"] = "release.requested"
    reason: Reason


class WithdrawalPaid(_WithdrawalStep):
    type: Literal["withdrawal.paid"] = "withdrawal.paid"
    latency_s: float = Field(ge=0, description="scenario seconds from request to payment")


class WithdrawalQueued(_WithdrawalStep):
    """No cash to pay it now: it waits, first in first out, for liquidity."""

    type: Literal["withdrawal.queued"] = "withdrawal.queued"
    position: int = Field(ge=0)


class WithdrawalCancelled(_WithdrawalStep):
    type: Literal["withdrawal.cancelled"] = "withdrawal.cancelled"


class VenueHalted(Event):
    type: Literal["venue.halted"] = "venue.halted"
    reason: Reason


class ClaimFrozen(Event):
    """A venue halted: told to each of its creditors (the envelope's venue is the creditor), whose
    claim on it can no longer be called or counted as liquid."""

    type: Literal["claim.frozen"] = "claim.frozen"
    counterparty: VenueId = Field(description="the venue that halted")
    kind: ClaimKind
    amount: MinorUnits = Field(
        description="the claim as placed at genesis (a credit line: its limit)"
    )
    recovery: float = Field(ge=0, le=1)
    reason: Reason


class CreditDrawRequested(Event):
    """A borrower short of cash draws on a line another venue extended it: told to the lender
    (the envelope's venue), whose custody alone can fund it from its own books."""

    type: Literal["credit.draw_requested"] = "credit.draw_requested"
    borrower: VenueId
    asset: AssetCode
    amount: MinorUnits


class CreditDrawn(Event):
    """The lender's answer to a draw, told to the borrower (the envelope's venue): `amount` is
    what it sent, which lands in the borrower's hot wallet after the line's delay; 0 with a
    `reason` if it sent nothing (`line_closed`: either venue halted, or there is no such line;
    `line_used`: the limit is drawn; `no_cash`: its own customers' withdrawals need its hot
    wallet)."""

    type: Literal["credit.drawn"] = "credit.drawn"
    lender: VenueId
    asset: AssetCode
    requested: MinorUnits
    amount: Balance
    reason: Reason | None = None


class CreditLineClosed(Event):
    """The venue halted: told to its own custody, which funds no more draws on the lines it
    extended."""

    type: Literal["credit.line_closed"] = "credit.line_closed"
    reason: Reason


class VenueGated(Event):
    """The venue's gate tripped: from now on it caps (or will halt) withdrawals."""

    type: Literal["venue.gated"] = "venue.gated"
    reason: Reason


class WithdrawalRejected(_WithdrawalStep):
    type: Literal["withdrawal.rejected"] = "withdrawal.rejected"
    reason: Reason


class VenueUngated(Event):
    """The operator lifted its gate: queued withdrawals are paid again as cash allows."""

    type: Literal["venue.ungated"] = "venue.ungated"
    reason: Reason


# --- operator commands (written by the gateway for the operator) -----------------------


class _OperatorCommand(Event):
    """An operator's order to a venue, taken by the gateway with the operator's token. The
    command is in the log beside what it caused, so a run's summary shows who did what."""

    reason: Reason


class GateRequested(_OperatorCommand):
    """Gate withdrawals or lift the gate. Gated without a cap, requests queue and nothing is
    paid; with `max_per_account_per_day`, each account may take out that much a day."""

    type: Literal["operator.gate"] = "operator.gate"
    gated: bool
    max_per_account_per_day: MinorUnits | None = None


class HaltRequested(_OperatorCommand):
    """Halt the venue as its gate's halt would: every request is refused from then on."""

    type: Literal["operator.halt"] = "operator.halt"


class PolicyChangeRequested(_OperatorCommand):
    """Switch the venue's reserve policy (or its params): custody finds cash by it from then
    on. Validated by the policy's own params model, as a scenario's is."""

    type: Literal["operator.policy"] = "operator.policy"
    policy: str = Field(pattern=r"^[a-z][a-z0-9+-]*$")
    params: dict[str, Any] = Field(default_factory=dict)


class PolicyChanged(Event):
    """Custody took the operator's new policy: the reserve snapshots that follow use it."""

    type: Literal["policy.changed"] = "policy.changed"
    policy: str = Field(pattern=r"^[a-z][a-z0-9+-]*$")
    params: dict[str, Any] = Field(default_factory=dict)
    previous: str = Field(pattern=r"^[a-z][a-z0-9+-]*$")


# --- market (orders from custody and the runner; book events from matching) -----------

MarketSymbol = Annotated[
    str, Field(pattern=r"^[A-Z0-9]{1,12}/[A-Z]{3,5}$", description="market, e.g. PLATFORM/USD")
]
OrderId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_./:-]{0,127}$")]
MARKET_VENUE = "market"  # the envelope's venue for events of the public market itself


class _MarketEvent(Event):
    market: MarketSymbol


class OrderPlaced(_MarketEvent):
    """A command to a book: a limit or market order, or a cancel. Prices and quantities are
    checked by the book, not here, so a bad one comes back as `order.rejected` with a reason.
    A market order never trades through `protection`; given `max_slippage_bps` instead, the
    book sets it that far below (sells) or above (buys) its last price."""

    type: Literal["order.placed"] = "order.placed"
    order_id: OrderId
    owner: str = Field(pattern=ID_PATTERN)
    kind: Literal["limit", "market", "cancel"]
    side: Literal["buy", "sell"] = "sell"
    price: StrictInt | None = Field(None, description="limit price, quote minor per base unit")
    quantity: StrictInt | None = Field(None, description="base minor units")
    protection: StrictInt | None = None
    max_slippage_bps: float | None = Field(None, gt=0, le=10_000)
    distressed: bool = Field(False, description="a forced seller: makers take fright")


class MarketOpened(Event):
    """A market of the run: its book's units, start price and makers."""

    type: Literal["market.opened"] = "market.opened"
    venue: VenueId = MARKET_VENUE
    market: MarketSymbol
    spec: MarketSpec


class MarketTick(Event):
    """Scenario time for the markets: makers re-quote under the news of the hour, and every
    book tells its price to each venue listed that it last told another."""

    type: Literal["market.tick"] = "market.tick"
    venue: VenueId = MARKET_VENUE
    market: MarketSymbol
    news_severity: float = Field(0.0, ge=0, le=1)
    mark_venues: tuple[VenueId, ...] = ()


class OrderAccepted(_MarketEvent):
    type: Literal["order.accepted"] = "order.accepted"
    order_id: OrderId
    owner: str
    resting: int = Field(ge=0, description="quantity left on the book after matching")


class OrderRejected(_MarketEvent):
    type: Literal["order.rejected"] = "order.rejected"
    order_id: OrderId
    owner: str
    reason: Reason


class OrderCancelled(_MarketEvent):
    type: Literal["order.cancelled"] = "order.cancelled"
    order_id: OrderId
    quantity: int = Field(ge=0)
    reason: Reason


class TradeExecuted(_MarketEvent):
    type: Literal["trade"] = "trade"
    maker_order_id: OrderId
    taker_order_id: OrderId
    maker_owner: str
    taker_owner: str
    taker_side: Literal["buy", "sell"]
    price: int = Field(gt=0)
    quantity: int = Field(gt=0)
    notional: int = Field(ge=0, description="quote minor units")


class BookSnapshot(_MarketEvent):
    """Top of book and depth, after every tick and every order that traded."""

    type: Literal["book.snapshot"] = "book.snapshot"
    last: int = Field(gt=0, description="mark: the last trade price")
    peak: int = Field(gt=0)
    best_bid: int | None
    best_ask: int | None
    spread_bps: float | None
    bid_depth_2pct: int = Field(ge=0, description="quote minor units bid within 2 % of mid")
    ask_depth_2pct: int = Field(ge=0, description="quote minor units asked within 2 % of mid")
    bids: list[tuple[int, int]] = Field(description="best levels: (price, quantity)")
    asks: list[tuple[int, int]]
    stress: float = Field(ge=0, le=1)
    volume: int = Field(ge=0, description="base minor units traded so far")


class OrderDone(_MarketEvent):
    """What became of a venue's order once nothing more can happen to it (to its owner)."""

    type: Literal["order.done"] = "order.done"
    order_id: OrderId
    requested: StrictInt = Field(ge=0)
    filled: StrictInt = Field(ge=0)
    proceeds: StrictInt = Field(ge=0, description="quote minor units received (sells) or paid")
    mark_before: StrictInt | None = Field(None, description="last price when the order arrived")
    reason: Reason | None = None


class PriceMarked(_MarketEvent):
    """A market's price, told to a venue so it can mark its holdings to it."""

    type: Literal["price.marked"] = "price.marked"
    price: StrictInt = Field(gt=0)


class FireSaleFilled(Event):
    """A venue sold a non-cash holding: what it fetched against what it was marked at."""

    type: Literal["fire_sale.filled"] = "fire_sale.filled"
    asset: AssetCode
    source: str
    market: MarketSymbol
    units: int = Field(ge=0)
    filled: int = Field(ge=0)
    proceeds: int = Field(ge=0)
    mark_value: int = Field(ge=0, description="the filled units at the pre-sale mark")


# --- operations ------------------------------------------------------------------------


class DeadLetter(Event):
    """A message a consumer could not use, kept with the reason so nothing is lost."""

    type: Literal["dead_letter"] = "dead_letter"
    venue: VenueId = "unknown"
    consumer: str
    source_topic: str
    partition: int
    offset: int
    reason: str
    key: str | None = None
    payload: str = Field(description="the original bytes, utf-8 with invalid bytes escaped")


AnyEvent = Annotated[
    VenueOpened
    | AccountFunded
    | ScenarioStarted
    | ClockTick
    | AccountOpened
    | DepositMade
    | WithdrawalRequested
    | WithdrawalCancelRequested
    | FundsReserved
    | FundsRejected
    | PayoutSettled
    | PayoutFailed
    | BalanceSnapshot
    | MobilizationStarted
    | MobilizationLanded
    | BufferDry
    | ReserveSnapshot
    | ClaimWrittenDown
    | PorLeaves
    | PorAttested
    | DepositRejected
    | PayoutRequested
    | ReleaseRequested
    | WithdrawalPaid
    | WithdrawalQueued
    | WithdrawalCancelled
    | VenueHalted
    | VenueGated
    | VenueUngated
    | GateRequested
    | HaltRequested
    | PolicyChangeRequested
    | PolicyChanged
    | ClaimFrozen
    | CreditDrawRequested
    | CreditDrawn
    | CreditLineClosed
    | WithdrawalRejected
    | OrderPlaced
    | MarketOpened
    | MarketTick
    | OrderAccepted
    | OrderRejected
    | OrderCancelled
    | TradeExecuted
    | BookSnapshot
    | OrderDone
    | PriceMarked
    | FireSaleFilled
    | DeadLetter,
    Field(discriminator="type"),
]

EVENT_TYPES: dict[str, type[Event]] = {
    cls.model_fields["type"].default: cls for cls in get_args(get_args(AnyEvent)[0])
}

_ADAPTER: TypeAdapter[Event] = TypeAdapter(AnyEvent)


def decode(raw: bytes | str) -> Event:
    """Parse one event; raises pydantic.ValidationError naming what is wrong."""
    return _ADAPTER.validate_json(raw)


def from_dict(data: Any) -> Event:
    """Validate an already-parsed JSON object as an event."""
    return _ADAPTER.validate_python(data)
