"""Hostile input on the real broker: every topic custody, withdrawal and matching read is fed
the malformed-event set, then a venue's story runs through all of them.

Each bad record is dead-lettered, with a reason saying what was wrong, by every service that
reads it — or, for an invalid event of a known type, by every reader that handles that type
(a reader skips the types it does not handle without validating them: not its business). The
story after them still takes effect on every topic, so each consumer kept going.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from bankrun import events as ev
from bankrun.domain.market import MakerParams, MarketSpec
from bankrun.runner import kafka
from bankrun.runner.processes import group_alive
from bankrun.runner.stack import Stack
from bankrun.topics import (
    BALANCES,
    CATALOGUE,
    CLAIMS,
    CONTROL,
    CUSTODY_EVENTS,
    CUSTOMER_REQUESTS,
    DEAD_LETTERS,
    MARKET_DATA,
    MARKET_FILLS,
    MARKET_ORDERS,
    OPERATOR_COMMANDS,
    WITHDRAWAL_COMMANDS,
    WITHDRAWAL_EVENTS,
    Topic,
    topic_of,
)
from services.custody import handlers as custody
from services.matching import handlers as matching
from services.withdrawal import handlers as saga
from tests.conftest import wait_for_events

pytestmark = pytest.mark.integration

HANDLED = {"custody": custody.HANDLED, "withdrawal": saga.HANDLED, "matching": matching.HANDLED}
TAG = uuid.uuid4().hex[:6]
VENUE = f"hostile-{TAG}"
BORROWER = f"borrower-{TAG}"
MARKET = f"H{TAG.upper()}/USD"
ONE_MB_LESS_A_LITTLE = 1_000_000


@pytest.fixture(scope="module")
def stack(broker, tmp_path_factory):
    stack = Stack(
        tmp_path_factory.mktemp("hostile-run"),
        f"it-{uuid.uuid4().hex[:8]}",
        bootstrap=broker,
        prometheus=False,
        services=tuple(HANDLED),
    )
    with stack:
        yield stack
    assert not any(group_alive(pid) for pid in stack.pids())


# --- the malformed-event set ------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """A valid event a reader of the topic handles, and how to spoil it."""

    event: ev.Event
    wrong_type: tuple[str, Any]  # a field and a value of the wrong type
    missing: str  # a required field
    negative: tuple[str, int]  # a field that must not be negative


@dataclass(frozen=True)
class Bad:
    name: str
    value: bytes | None
    reason: str  # what the dead letter's reason must say
    kind: str | None = None  # the event type, when the record is an invalid event of a known type


def step(request_id: str, amount: int = 500) -> dict[str, Any]:
    return {
        "venue": VENUE,
        "scenario_time": 60,
        "account": "ghost-1",
        "asset": "USD",
        "request_id": request_id,
        "amount": amount,
        "requested_at": 60,
    }


SHAPES: dict[str, list[Shape]] = {
    CONTROL.name: [
        Shape(
            ev.AccountFunded(
                venue=VENUE, scenario_time=0, account="ghost-1", asset="USD", amount=500
            ),
            ("amount", "500"),
            "account",
            ("amount", -5),
        ),
        Shape(
            ev.VenueOpened(venue=f"ghost-{TAG}", scenario_time=0, policy="full-reserve"),
            ("gate", "closed"),
            "policy",
            ("scenario_time", -5),
        ),
    ],
    CUSTOMER_REQUESTS.name: [
        Shape(
            ev.DepositMade(
                venue=VENUE, scenario_time=0, account="ghost-1", asset="USD", amount=500
            ),
            ("amount", "500"),
            "account",
            ("amount", -5),
        ),
        Shape(
            ev.WithdrawalCancelRequested(
                venue=VENUE, scenario_time=60, account="ghost-1", asset="USD", request_id="w-x"
            ),
            ("request_id", 12_345),
            "request_id",
            ("scenario_time", -60),
        ),
    ],
    OPERATOR_COMMANDS.name: [
        Shape(
            ev.GateRequested(venue=VENUE, scenario_time=60, gated=True, reason="audit"),
            ("gated", [1]),
            "reason",
            ("scenario_time", -60),
        ),
        Shape(
            ev.PolicyChangeRequested(
                venue=VENUE, scenario_time=60, policy="fractional", reason="cheaper"
            ),
            ("params", "liquid_ratio=2"),
            "policy",
            ("scenario_time", -60),
        ),
    ],
    CUSTODY_EVENTS.name: [
        Shape(ev.FundsReserved(**step("w-x")), ("amount", "500"), "request_id", ("amount", -5))
    ],
    WITHDRAWAL_COMMANDS.name: [
        Shape(ev.PayoutRequested(**step("w-x")), ("amount", "500"), "request_id", ("amount", -5))
    ],
    CLAIMS.name: [
        Shape(
            ev.ClaimFrozen(
                venue=VENUE,
                scenario_time=60,
                counterparty=BORROWER,
                kind="loan",
                amount=1_000,
                recovery=0.5,
                reason="gate_dry",
            ),
            ("amount", "1000"),
            "counterparty",
            ("amount", -5),
        )
    ],
    MARKET_ORDERS.name: [
        Shape(
            ev.OrderPlaced(
                venue=VENUE,
                scenario_time=60,
                market=MARKET,
                order_id="o-x",
                owner=VENUE,
                kind="limit",
                side="buy",
                price=900,
                quantity=10,
            ),
            ("quantity", "10"),
            "order_id",
            ("max_slippage_bps", -5),
        )
    ],
    MARKET_FILLS.name: [
        Shape(
            ev.OrderDone(
                venue=VENUE,
                scenario_time=60,
                market=MARKET,
                order_id="o-x",
                requested=10,
                filled=0,
                proceeds=0,
            ),
            ("filled", "10"),
            "order_id",
            ("proceeds", -5),
        )
    ],
}


def as_dict(event: ev.Event) -> dict[str, Any]:
    return json.loads(event.to_bytes())


def encode(data: Any) -> bytes:
    return json.dumps(data).encode()


def malformed(topic: Topic) -> list[Bad]:
    """The set for one topic: garbage any reader must refuse, then each shape spoiled."""
    first = SHAPES[topic.name][0].event
    foreign = ev.PayoutRequested if topic is not WITHDRAWAL_COMMANDS else ev.FundsReserved
    padded = as_dict(first) | {"padding": "x" * (ONE_MB_LESS_A_LITTLE - 1_000)}
    out = [
        Bad("not JSON", b"\x00\xff this is not an event {", "not JSON"),
        Bad("truncated JSON", first.to_bytes()[:60], "not JSON"),
        Bad("JSON, not an object", b"[1, 2, 3]", "not a JSON object but an array"),
        Bad(
            "unknown type",
            encode(as_dict(first) | {"type": "venue.exploded"}),
            "unknown type 'venue.exploded'",
        ),
        Bad(
            "type not a string",
            encode(as_dict(first) | {"type": ["deposit.made"]}),
            "type: missing or not a string",
        ),
        Bad("nested too deep", b"[" * 20_000 + b"]" * 20_000, "not JSON"),
        Bad(
            "on the wrong topic",
            foreign(**step("w-forged")).to_bytes(),
            f"wrong_topic: {ev.type_of(foreign)} is carried by {topic_of(foreign).name}",
        ),
        Bad("oversized", encode(padded), "oversized: "),
        Bad("null value", None, "no value"),
        Bad("empty bytes", b"", "no value"),
    ]
    for shape in SHAPES[topic.name]:
        kind, valid = shape.event.type, as_dict(shape.event)
        field, value = shape.wrong_type
        out.append(
            Bad(
                f"{kind} with a wrong-type {field}",
                encode(valid | {field: value}),
                f"{kind}.{field}: Input should be a valid",
                kind,
            )
        )
        missing = {k: v for k, v in valid.items() if k != shape.missing}
        out.append(
            Bad(
                f"{kind} without {shape.missing}",
                encode(missing),
                f"{kind}.{shape.missing}: Field required",
                kind,
            )
        )
        field, value = shape.negative
        out.append(
            Bad(
                f"{kind} with a negative {field}",
                encode(valid | {field: value}),
                f"{kind}.{field}: Input should be greater than",
                kind,
            )
        )
    if topic is MARKET_ORDERS:  # valid, but its journal record could never be written
        venues = tuple(f"v-{i:07d}" for i in range(ONE_MB_LESS_A_LITTLE // 12))
        tick = ev.MarketTick(scenario_time=60, market=MARKET, mark_venues=venues)
        out.append(Bad("a valid market.tick of 1 MB", tick.to_bytes(), "oversized: "))
    return out


def readers_of(topic: Topic, bad: Bad) -> set[str]:
    readers = {r for r in topic.readers if r in HANDLED}
    return readers if bad.kind is None else {r for r in readers if bad.kind in HANDLED[r]}


INPUTS = [t for t in CATALOGUE if set(t.readers) & set(HANDLED)]


def publish_raw(bootstrap: str, topic: Topic, key: str, bads: list[Bad]) -> list[tuple[int, int]]:
    """Send each value as it is; the (partition, offset) each landed at."""

    async def send() -> list[tuple[int, int]]:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=1_048_576)
        await producer.start()
        try:
            offsets = []
            for bad in bads:
                sent = await producer.send_and_wait(topic.name, bad.value, key=key.encode())
                offsets.append((sent.partition, sent.offset))
            return offsets
        finally:
            await producer.stop()

    return asyncio.run(send())


def read(bootstrap: str, topic: Topic) -> list[dict[str, Any]]:
    return asyncio.run(kafka.read_topic(bootstrap, topic))


def publish(bootstrap: str, *events: ev.Event) -> None:
    asyncio.run(kafka.publish(bootstrap, events))


def first(bootstrap: str, topic: Topic, match) -> Any:
    """The first event on `topic` that `match`es, waited for with a deadline."""
    seen = wait_for_events(bootstrap, topic, lambda s: any(match(e) for e in s))
    return next(e for e in seen if match(e))


def of(cls: type[ev.Event], **fields: Any):
    def match(e: Any) -> bool:
        return isinstance(e, cls) and all(getattr(e, k) == v for k, v in fields.items())

    return match


def test_every_input_topic_survives_the_malformed_event_set(broker, stack):
    assert {t.name for t in INPUTS} == set(SHAPES)  # every topic a service reads is covered
    sent: dict[tuple[str, int, int], tuple[Topic, Bad]] = {}
    for topic in INPUTS:
        key = MARKET if topic is MARKET_ORDERS else VENUE
        bads = malformed(topic)
        for (partition, offset), bad in zip(
            publish_raw(broker, topic, key, bads), bads, strict=True
        ):
            sent[(topic.name, partition, offset)] = (topic, bad)

    # --- then a venue's story, through every one of those topics -------------------------
    spec = MarketSpec(
        symbol=MARKET,
        start_price=1_000,
        tick_size=5,
        lot_size=10,
        base_unit=10,
        makers=MakerParams(levels=3, level_notional=50_000),
        backs=("less_liquid",),
    )
    publish(
        broker,
        ev.MarketOpened(scenario_time=0, market=MARKET, spec=spec),
        ev.MarketTick(scenario_time=0, market=MARKET),
        ev.VenueOpened(
            venue=VENUE,
            scenario_time=0,
            policy="fractional",
            params={"liquid_ratio": 0.5, "haircut": 0.1},
            gate={"trigger": "always", "max_per_account_per_day": 10**9},
            markets={
                "less_liquid": ev.HoldingMarket(
                    market=MARKET, start_price=1_000, base_unit=10, lot_size=10
                )
            },
            claims=(
                ev.Claim(lender=VENUE, borrower=BORROWER, kind="loan", amount=1_000),
                ev.Claim(lender=VENUE, borrower=BORROWER, kind="credit_line", amount=2_000),
            ),
        ),
        ev.AccountFunded(
            venue=VENUE, scenario_time=0, account="whale-1", asset="USD", amount=10_000
        ),
        ev.ScenarioStarted(venue=VENUE, scenario_time=0, started_at=0, speed=1, duration_hours=24),
    )
    # control, read by custody and the saga; custody-events, read by the saga; market-orders
    assert first(broker, BALANCES, of(ev.BalanceSnapshot, venue=VENUE, account="whale-1"))
    assert first(broker, WITHDRAWAL_EVENTS, of(ev.VenueGated, venue=VENUE))
    assert first(broker, MARKET_DATA, of(ev.BookSnapshot, market=MARKET))
    # claims, read by custody
    publish(broker, SHAPES[CLAIMS.name][0].event)
    written = first(broker, CUSTODY_EVENTS, of(ev.ClaimWrittenDown, venue=VENUE))
    assert (written.frozen, written.value) == (1_000, 500)
    # customer-requests (custody) -> custody-events (saga) -> withdrawal-commands (custody):
    # the hot wallet holds 4,500 of 9,000, so the payout fails and the request queues, and
    # custody sells less-liquid assets: market-orders (matching) -> market-fills (custody)
    ask = ev.WithdrawalRequested(
        venue=VENUE,
        scenario_time=60,
        account="whale-1",
        asset="USD",
        request_id="w-1",
        amount=8_000,
    )
    publish(broker, ask)
    assert first(broker, CUSTODY_EVENTS, of(ev.FundsReserved, venue=VENUE, request_id="w-1"))
    failed = first(broker, CUSTODY_EVENTS, of(ev.PayoutFailed, venue=VENUE, request_id="w-1"))
    assert failed.reason == "insufficient_liquidity"
    assert first(broker, WITHDRAWAL_EVENTS, of(ev.WithdrawalQueued, venue=VENUE, request_id="w-1"))
    sale = first(broker, CUSTODY_EVENTS, of(ev.FireSaleFilled, venue=VENUE))
    assert sale.market == MARKET and sale.filled > 0
    # customer-requests, read by the saga: the cancel gives the money back
    cancel = ev.WithdrawalCancelRequested(
        venue=VENUE, scenario_time=90, account="whale-1", asset="USD", request_id="w-1"
    )
    publish(broker, cancel)
    assert first(
        broker, WITHDRAWAL_EVENTS, of(ev.WithdrawalCancelled, venue=VENUE, request_id="w-1")
    )
    release = ev.derived_id(cancel.event_id, "release.requested")
    back = first(broker, BALANCES, of(ev.BalanceSnapshot, causation_id=release))
    assert back.available == 10_000
    # claims, custody to custody: the borrower draws on the line the venue extended it, and
    # the venue's custody sends the cash out of its hot wallet and tells the borrower
    draw = ev.CreditDrawRequested(
        venue=VENUE, scenario_time=95, borrower=BORROWER, asset="USD", amount=500
    )
    publish(broker, draw)
    answer = first(broker, CLAIMS, of(ev.CreditDrawn, venue=BORROWER, causation_id=draw.event_id))
    assert (answer.lender, answer.requested, answer.amount, answer.reason) == (
        VENUE,
        500,
        500,
        None,
    )
    lent = first(
        broker, CUSTODY_EVENTS, of(ev.ReserveSnapshot, venue=VENUE, causation_id=draw.event_id)
    )
    assert lent.claims["credit_line"] == 500

    # --- and the dead letters: each bad record once per reader that had to refuse it ------
    expected = {
        (reader, *where): bad
        for where, (topic, bad) in sent.items()
        for reader in readers_of(topic, bad)
    }

    def mine(seen: list) -> list[ev.DeadLetter]:
        return [
            e
            for e in seen
            if isinstance(e, ev.DeadLetter) and (e.source_topic, e.partition, e.offset) in sent
        ]

    try:
        seen = wait_for_events(broker, DEAD_LETTERS, lambda s: len(mine(s)) >= len(expected))
    except AssertionError:  # say which are missing below, not the 1 MB payloads seen last
        seen = [ev.decode(json.dumps(r["value"])) for r in read(broker, DEAD_LETTERS)]
    letters = mine(seen)
    got = {(d.consumer, d.source_topic, d.partition, d.offset): d for d in letters}
    assert len(got) == len(letters), "a bad record was dead-lettered twice by one reader"
    missing = {k: v.name for k, v in expected.items() if k not in got}
    extra = {k: sent[k[1:]][1].name for k in got if k not in expected}
    assert (missing, extra) == ({}, {})
    wrong = {
        (k[0], k[1], bad.name): got[k].reason
        for k, bad in expected.items()
        if bad.reason not in got[k].reason
    }
    assert wrong == {}
