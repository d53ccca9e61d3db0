"""The topics catalogue: every topic, its one writer, its key and the events it carries.

Venue-keyed topics share one partition count so a venue's events land on the same
partition number everywhere (faust tables need their sources co-partitioned), and all
events of one venue are processed in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from bankrun import events as ev

PARTITIONS = 4

#: How long a consumer's fetch may wait for data. Tansu does not answer a parked fetch when
#: data arrives, so every hop waits for this timeout (faust's own is 1.5 s): keep it short.
FETCH_MAX_WAIT_MS = 5

#: Every producer compresses its batches. The embedded broker keeps every record in memory
#: for the whole run (`memory://` storage, no retention), and JSON events compress well:
#: 17.6 MB of a run's events took 32.3 MB of the broker's memory plain, 11.6 MB as zstd
#: (lz4: 14.9 MB), at the same produce time (measured here).
COMPRESSION = "zstd"

#: The largest event a service takes (larger ones are dead-lettered unread). Its journal
#: record, which may repeat it beside its outputs, must fit the broker's 1 MB message limit;
#: measured, a valid 1 MB event crashed the matching service's changelog producer. The run's
#: own events are a few kilobytes.
MAX_EVENT_BYTES = 128 * 1024


@dataclass(frozen=True)
class Topic:
    name: str
    writer: str
    readers: tuple[str, ...]
    key: str
    event_types: tuple[type[ev.Event], ...]
    description: str
    partitions: int = PARTITIONS
    cleanup_policy: Literal["delete", "compact"] = "delete"
    config: dict[str, str] = field(default_factory=dict)

    @property
    def type_names(self) -> tuple[str, ...]:
        return tuple(t.model_fields["type"].default for t in self.event_types)

    def key_of(self, event: ev.Event) -> str:
        """The message key: the venue, unless the topic says otherwise."""
        if isinstance(event, ev.BalanceSnapshot):
            return f"{event.venue}/{event.account}/{event.asset}"
        if isinstance(event, ev.DeadLetter):
            return event.source_topic
        if self.key == "market":
            return event.market  # type: ignore[attr-defined]
        return event.venue

    def describe(self) -> dict[str, object]:
        return {
            "topic": self.name,
            "writer": self.writer,
            "readers": list(self.readers),
            "key": self.key,
            "partitions": self.partitions,
            "cleanup_policy": self.cleanup_policy,
            "event_types": list(self.type_names),
            "description": self.description,
        }


CONTROL = Topic(
    "bankrun.control",
    writer="runner",
    readers=("custody", "withdrawal", "gateway"),
    key="venue",
    event_types=(ev.VenueOpened, ev.AccountFunded, ev.ScenarioStarted, ev.ClockTick),
    description="The run itself: venues and policies, genesis balances, scenario clock.",
)
CUSTOMER_REQUESTS = Topic(
    "bankrun.customer-requests",
    writer="gateway",
    readers=("custody", "withdrawal"),
    key="venue",
    event_types=(
        ev.AccountOpened,
        ev.DepositMade,
        ev.WithdrawalRequested,
        ev.WithdrawalCancelRequested,
    ),
    description="What customers asked for, in the order the gateway accepted it.",
)
OPERATOR_COMMANDS = Topic(
    "bankrun.operator-commands",
    writer="gateway",
    readers=("custody", "withdrawal"),
    key="venue",
    event_types=(ev.GateRequested, ev.HaltRequested, ev.PolicyChangeRequested),
    description="The operator's orders to a venue (gate, halt, policy change), taken by the "
    "gateway with the operator's token.",
)
CUSTODY_EVENTS = Topic(
    "bankrun.custody-events",
    writer="custody",
    readers=("withdrawal", "gateway"),
    key="venue",
    event_types=(
        ev.FundsReserved,
        ev.FundsRejected,
        ev.PayoutSettled,
        ev.PayoutFailed,
        ev.DepositRejected,
        ev.MobilizationStarted,
        ev.MobilizationLanded,
        ev.BufferDry,
        ev.ReserveSnapshot,
        ev.FireSaleFilled,
        ev.ClaimWrittenDown,
        ev.PolicyChanged,
    ),
    description="Ledger outcomes: reservations, payouts, mobilizations, fire sales, dry "
    "buffer, reserves, claims on halted venues written down, policy changes taken.",
)
WITHDRAWAL_COMMANDS = Topic(
    "bankrun.withdrawal-commands",
    writer="withdrawal",
    readers=("custody",),
    key="venue",
    event_types=(ev.PayoutRequested, ev.ReleaseRequested),
    description="The withdrawal saga's orders to custody: pay a reserved amount, or release it.",
)
WITHDRAWAL_EVENTS = Topic(
    "bankrun.withdrawal-events",
    writer="withdrawal",
    readers=("gateway",),
    key="venue",
    event_types=(
        ev.WithdrawalPaid,
        ev.WithdrawalQueued,
        ev.WithdrawalRejected,
        ev.WithdrawalCancelled,
        ev.VenueGated,
        ev.VenueUngated,
        ev.VenueHalted,
    ),
    description="Withdrawal outcomes (paid, queued, rejected with reason, cancelled), gates "
    "tripped or lifted, halts.",
)
CLAIMS = Topic(
    "bankrun.claims",
    writer="withdrawal (halts), custody (credit draws)",
    readers=("custody",),
    key="venue",
    event_types=(ev.ClaimFrozen, ev.CreditLineClosed, ev.CreditDrawRequested, ev.CreditDrawn),
    description="What crosses venue partitions, keyed by the venue that books it: a halted "
    "venue's word to each creditor that its claim is frozen, and to its own custody that its "
    "credit lines are closed; a borrower's draw on a line, and the lender's answer.",
)
BALANCES = Topic(
    "bankrun.balances",
    writer="custody",
    readers=("gateway",),
    key="venue/account/asset",
    event_types=(ev.BalanceSnapshot,),
    description="Each customer's latest balance; compacted, it is the gateway's read model.",
    cleanup_policy="compact",
)
MARKET_ORDERS = Topic(
    "bankrun.market-orders",
    writer="custody (sales), runner (markets, ticks)",
    readers=("matching",),
    key="market",
    event_types=(ev.MarketOpened, ev.OrderPlaced, ev.MarketTick),
    description="Commands to the order books, one market per key, in the order they apply.",
)
MARKET_DATA = Topic(
    "bankrun.market-data",
    writer="matching",
    readers=("gateway", "operators"),
    key="market",
    event_types=(
        ev.OrderAccepted,
        ev.OrderRejected,
        ev.OrderCancelled,
        ev.TradeExecuted,
        ev.BookSnapshot,
    ),
    description="What every book did: orders accepted, rejected with a reason, cancelled; "
    "trades; top of book and depth.",
)
MARKET_FILLS = Topic(
    "bankrun.market-fills",
    writer="matching",
    readers=("custody",),
    key="venue",
    event_types=(ev.OrderDone, ev.PriceMarked),
    description="To each venue: how its orders ended, and the prices to mark holdings to.",
)
POR = Topic(
    "bankrun.por",
    writer="custody",
    readers=("gateway", "operators"),
    key="venue",
    event_types=(ev.PorLeaves, ev.PorAttested),
    description="Proof of reserves: each attestation's balances in parts, then the attestation "
    "(root, total, reserves counted, ratio).",
)
DEAD_LETTERS = Topic(
    "bankrun.dead-letters",
    writer="any consumer",
    readers=("operators",),
    key="source topic",
    event_types=(ev.DeadLetter,),
    description="Messages a consumer could not decode or apply, with the reason.",
    partitions=1,
)

CATALOGUE: tuple[Topic, ...] = (
    CONTROL,
    CUSTOMER_REQUESTS,
    OPERATOR_COMMANDS,
    CUSTODY_EVENTS,
    WITHDRAWAL_COMMANDS,
    WITHDRAWAL_EVENTS,
    CLAIMS,
    BALANCES,
    MARKET_ORDERS,
    MARKET_DATA,
    MARKET_FILLS,
    POR,
    DEAD_LETTERS,
)
BY_NAME = {t.name: t for t in CATALOGUE}


_TOPIC_OF = {t: topic for topic in reversed(CATALOGUE) for t in topic.event_types}  # first wins


def topic_of(event_type: type[ev.Event]) -> Topic:
    """The one topic an event type is written to (asked for every event a handler emits)."""
    topic = _TOPIC_OF.get(event_type)
    if topic is None:
        raise KeyError(f"{event_type.__name__} is on no topic")
    return topic


def partition_of(key: str, partitions: int = PARTITIONS) -> int:
    """The partition Kafka's default partitioner gives `key`."""
    from aiokafka.partitioner import murmur2

    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def spread_keys(n: int, template: str, partitions: int = PARTITIONS) -> list[str]:
    """`n` keys made from `template` (with `{}` for a counter) that land on different partitions,
    as far as there are any: the benchmarks spread their venues and markets with it."""
    names: list[str] = []
    used: set[int] = set()
    k = 0
    while len(names) < n:
        name = template.format(k)
        part = partition_of(name, partitions)
        if part not in used or len(used) == partitions:
            names.append(name)
            used.add(part)
        k += 1
    return names
