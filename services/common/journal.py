"""Exactly-once effects on an at-least-once log, with state rebuilt from one record per event.

The broker redelivers (no transactions; uncommitted offsets replay after a crash), and clients
may send the same event twice. So a handler never writes state directly: it *decides*
`Effects` (state sets, balance increments, events to emit), and a `Partition` of the journal

1. writes that decision as ONE record under the input's event id (the only durable write: a
   changelogged faust Table in services, a dict in sims), numbered in its partition;
2. applies it to the partition's state, which lives in the worker (its least recently used
   keys on local disk, see `Folding`).

A worker that starts, or is given a partition, rebuilds that partition's state by applying its
records in order — event sourcing, with the journal as the log. A redelivered event finds its
record: nothing is applied again and its outputs are re-sent (they carry derived ids, so
consumers drop them). A crash can lose a record only together with its effects, since both
are the same write. One write per event instead of one per state key: the broker and faust's
changelog carry a fraction of the traffic.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from bankrun.domain.ledger import Posting
from bankrun.events import Event
from bankrun.topics import topic_of
from services.common.spill import HOT_KEYS, Spill


class Output:
    """An event to send: its bytes are made when first asked for, so an in-process bus that
    hands `event` straight to the next handler never serializes it. An event emitted lazily
    (`make`) is not even built until asked for: a bus on which nobody reads it never is."""

    __slots__ = ("_event", "_key", "_make", "_value", "kind", "topic")

    def __init__(
        self,
        topic: str,
        key: str | None,
        value: bytes | None = None,
        event: Event | None = None,
        make: Callable[[], Event] | None = None,
        kind: type[Event] | None = None,
    ):
        if value is None and event is None and make is None:
            raise ValueError("an output needs its bytes, its event or how to make it")
        self.topic, self._key, self._value, self._event, self._make = topic, key, value, event, make
        self.kind = type(event) if event is not None else kind  # None: known only as bytes

    @property
    def event(self) -> Event | None:
        if self._event is None and self._make is not None:
            self._event, self._make = self._make(), None
        return self._event

    @property
    def key(self) -> str:
        if self._key is None:
            event = self._made()
            self._key = topic_of(type(event)).key_of(event)
        return self._key

    @property
    def value(self) -> bytes:
        if self._value is None:
            self._value = self._made().to_bytes()
        return self._value

    def _made(self) -> Event:
        """The event, for an output that has it or can make it (a key is None only then)."""
        event = self.event
        assert event is not None
        return event

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Output):
            return NotImplemented
        return (self.topic, self.key, self.value) == (other.topic, other.key, other.value)

    def __repr__(self) -> str:
        return f"Output({self.topic!r}, {self.key!r}, {self.value!r})"


@dataclass
class Effects:
    sets: dict[str, Any] = field(default_factory=dict)
    increments: dict[str, int] = field(default_factory=dict)
    outputs: list[Output] = field(default_factory=list)

    def post(self, posting: Posting) -> None:
        for line in posting.lines:
            key = line.account.key
            self.increments[key] = self.increments.get(key, 0) + line.amount

    def emit(self, *events: Event) -> None:
        for event in events:
            topic = topic_of(type(event))
            self.outputs.append(Output(topic.name, topic.key_of(event), event=event))

    def emit_lazily(self, kind: type[Event], make: Callable[[], Event]) -> None:
        """Emit the `kind` event that `make()` returns, made only when something reads it:
        always on the broker (its record holds the bytes), never on an in-process bus where
        nobody reads its topic (custody's balance snapshots, for the gateway: a fifth of a
        Monte Carlo seed's events). `make` must not read state that may change."""
        self.outputs.append(Output(topic_of(kind).name, None, make=make, kind=kind))

    def over(self, lookup: Callable[[str], Any]) -> View:
        """Reads that see these effects on top of the stored state."""
        return View(self, lookup)

    def to_record(self, partition: int, seq: int) -> dict[str, Any]:
        return {
            "partition": partition,
            "seq": seq,
            "sets": self.sets,
            "increments": self.increments,
            "outputs": [[o.topic, o.key, o.value.decode()] for o in self.outputs],
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Effects:
        return cls(
            sets=dict(record["sets"]),
            increments=dict(record["increments"]),
            outputs=[Output(t, k, v.encode()) for t, k, v in record["outputs"]],
        )


class View:
    """State as it will be once `effects` are applied: sets win, increments add up."""

    def __init__(self, effects: Effects, lookup: Callable[[str], Any]):
        self.effects = effects
        self.lookup = lookup
        self._sets, self._increments = effects.sets, effects.increments  # read on every get

    def get(self, key: str, default: Any = None) -> Any:
        if key in self._sets:
            return self._sets[key]
        base = self.lookup(key)
        if key in self._increments:
            return (base or 0) + self._increments[key]
        return default if base is None else base

    def set(self, key: str, value: Any) -> None:
        self._sets[key] = value


Dispatch = dict[type, Callable[[Any, View, Effects], None]]


def dispatch(handlers: Dispatch, event: Event, lookup: Callable[[str], Any]) -> Effects:
    """Run the handler for `event`'s type against the stored state; unknown types do nothing."""
    effects = Effects()
    handler = handlers.get(type(event))
    if handler is not None:
        handler(event, effects.over(lookup), effects)
    return effects


Restore = Callable[["Partition", list[dict[str, Any]]], None]
#: a record that sets this key holds all a `Restore` needs up to it (matching's book snapshot)
SNAPSHOT = "snapshot"


@dataclass(frozen=True)
class Folding:
    """Bounded memory for a long-lived worker: only a partition's last `keep` records stay
    whole in memory; older ones are folded: dropped from `store()`, the records' local copy
    (a faust Table's store, asked for once the worker runs), never from the changelog, which
    keeps every record whole, and their event ids written to `spill`'s file.

    A folded record still marks its event as seen, so a duplicate of it is dropped; its effects
    live on in the state, and its outputs are not sent again. That is safe once its input's
    offset is committed (`committed(partition, topic)`: the next offset, -1 if unknown), since
    the producer is flushed before a commit: so a record that says where its input was (`at`)
    is folded only then, however many are whole. A folded partition cannot rebuild from memory:
    `Journal.forget` drops its records from `store`, so they are read again whole from the
    changelog when the partition comes back.

    The state itself keeps its `hot` most recently used keys in memory and the rest in
    `spill` (a finished request's status is read again only by a late duplicate).
    """

    store: Callable[[], MutableMapping[Any, Any]]
    keep: int = 64
    folded: Callable[[int], None] = lambda partition: None  # told each fold
    committed: Callable[[int, str], int] = lambda partition, topic: -1
    spill: Spill = field(default_factory=Spill)
    hot: int = HOT_KEYS
    spilled: Callable[[int], None] = lambda partition: None  # told when state first goes out


def _spilled(partition: int) -> tuple[str, str]:
    """The spill's namespaces of a partition: its state, and the ids of its folded records."""
    return f"state/{partition}", f"seen/{partition}"


class Partition:
    """One partition's state (in the worker) and its committed records (durable).

    `restore`, when given, runs after a rebuild or a load with the partition's records in
    order from the last `SNAPSHOT` on: for state that is not a dict of values (the matching
    service's order books), rebuilt from a snapshot and the commands recorded after it.
    """

    def __init__(
        self,
        records: MutableMapping[Any, Any],
        number: int = 0,
        restore: Restore | None = None,
        durable: bool = True,
        fold: Folding | None = None,
    ):
        """`durable=False` (an in-process bus, which never rebuilds or redelivers) keeps only
        each event's id: a duplicate is still dropped, its outputs not sent again, and the
        events and effects of a long sim are freed as soon as the bus is done with them."""
        self.records = records
        self.number = number
        self.restore = restore
        self.durable = durable
        self.fold = fold
        self.state: MutableMapping[str, Any] = {}
        self._seen: MutableMapping[Any, Any] = {}  # folded records' ids
        if fold is not None:
            state, seen = _spilled(number)
            self.state = fold.spill.tier(state, fold.hot, lambda: fold.spilled(number))
            self._seen = fold.spill.tier(seen, 1)
            self.state.clear()  # whatever a former owner of the number left
            self._seen.clear()
        self.seq = 0
        self._whole: deque[tuple[Any, list[Any] | None]] = deque()  # (key, at), oldest first
        self._since_snapshot: list[dict[str, Any]] = []  # for `restore`, while loading

    def rebuild(self) -> Partition:
        """The state from the records in memory, replayed in the order they were made."""
        if not self.durable and self.records:
            raise ValueError("an in-process partition keeps no records to rebuild from")
        mine = [(k, r) for k, r in self.records.items() if r and r.get("partition") == self.number]
        if mine and min(r["seq"] for _, r in mine) != 1:  # the first records were folded
            raise ValueError(
                f"partition {self.number} has folded records: read it again from its changelog"
            )
        self.state.clear()
        self._whole.clear()
        self._since_snapshot = []
        self.seq = 0
        for key, record in sorted(mine, key=lambda item: item[1]["seq"]):
            self._replay(key, record)
        return self.loaded()

    def load(self, key: Any, record: dict[str, Any]) -> None:
        """One record read back from the changelog, in the order it was written (one writer
        per partition numbers them in that order): applied at once and, folding, kept whole
        only while among the last — a reload never holds them all. Call `loaded()` after the
        last. A key seen already (a zombie writer's second copy) is skipped: the first wins."""
        local = self.fold.store() if self.fold is not None else self.records  # not the changelog
        if key in local or key in self._seen:
            return
        if record["seq"] <= self.seq:
            raise ValueError(f"partition {self.number}: record {record['seq']} after {self.seq}")
        local[key] = record
        self._replay(key, record)

    def _replay(self, key: Any, record: dict[str, Any]) -> None:
        self._apply(Effects.from_record(record))
        self.seq = record["seq"]
        if self.restore is not None:
            if SNAPSHOT in record["sets"]:
                self._since_snapshot.clear()
            self._since_snapshot.append(record)
        self._keep_whole(key, record.get("at"))

    def loaded(self) -> Partition:
        """Hand `restore` what it needs (the records from the last snapshot on)."""
        if self.restore is not None:
            self.restore(self, self._since_snapshot)
        self._since_snapshot = []
        return self

    def get(self, key: str, default: Any = None) -> Any:
        value = self.state.get(key)
        return default if value is None else value

    @property
    def lookup(self) -> Callable[[str], Any]:
        """What a handler reads the state through (a missing key is None): the state's own
        `get`, with no frame of ours around each of a handler's many reads."""
        return self.state.get

    def commit(
        self,
        event_id: str | int,
        decide: Callable[[], Effects],
        at: tuple[str, int] | None = None,
    ) -> tuple[Effects, bool]:
        """Apply what `decide()` returns, once per `event_id` (its text in a Table, which
        keeps str keys; an in-memory bus may use the UUID's int); `at`: the input's topic and
        offset, recorded for `Folding`.

        Returns what to emit and whether the event was new; for a duplicate, `decide` does not
        run and the recorded outputs come back. A decision to do nothing is recorded too: decided
        again later, against later state, a redelivered event could do something (a cancel
        refused while its payout was in flight would cancel once the request is queued again).
        """
        record = self.records.get(event_id)
        if record is not None:
            return (Effects.from_record(record) if self.durable else Effects()), False
        if self._seen and event_id in self._seen:  # folded
            return Effects(), False
        effects = decide()
        self.seq += 1
        where = None if at is None else list(at)
        if self.durable:
            record = effects.to_record(self.number, self.seq)
            if where is not None:
                record["at"] = where
            self.records[event_id] = record
        else:
            self.records[event_id] = True
        self._apply(effects)
        self._keep_whole(event_id, where)
        return effects, True

    def _keep_whole(self, key: Any, at: list[Any] | None) -> None:
        """Fold the oldest whole records while more than `fold.keep` are, each only once its
        input is committed (see `Folding`)."""
        fold = self.fold
        if fold is None:
            return
        whole = self._whole
        whole.append((key, at))
        while len(whole) > fold.keep:
            oldest, where = whole[0]
            if where is not None and where[1] >= fold.committed(self.number, where[0]):
                return
            whole.popleft()
            fold.store().pop(oldest, None)
            self._seen[oldest] = True
            fold.folded(self.number)

    def _apply(self, effects: Effects) -> None:
        state = self.state
        for key, value in effects.sets.items():
            state[key] = value
        for key, amount in effects.increments.items():
            state[key] = state.get(key, 0) + amount


class Journal:
    """The partitions a worker owns, each rebuilt from the shared records when first used."""

    def __init__(
        self,
        records: MutableMapping[str, Any],
        restore: Restore | None = None,
        fold: Folding | None = None,
    ):
        self.records = records
        self.restore = restore
        self.fold = fold
        self._partitions: dict[int, Partition] = {}

    def at(self, partition: int) -> Partition:
        part = self._partitions.get(partition)
        if part is None:
            part = self._partitions[partition] = self._new(partition).rebuild()
        return part

    def loading(self, partition: int) -> Partition:
        """An empty partition to `load` records into, then `adopt`."""
        return self._new(partition)

    def adopt(self, part: Partition) -> Partition:
        self._partitions[part.number] = part.loaded()
        return part

    def _new(self, partition: int) -> Partition:
        return Partition(self.records, partition, self.restore, fold=self.fold)

    def loaded(self, partition: int) -> bool:
        return partition in self._partitions

    def forget(self, partitions: set[int]) -> None:
        """Drop partitions this worker no longer owns; if they come back, they are rebuilt.
        Folding, their records leave memory too, to be read again whole from the changelog
        (another worker may have added to them meanwhile)."""
        for number in partitions:
            self._partitions.pop(number, None)
        if self.fold is not None and partitions:
            store = self.fold.store()
            for key in [k for k, r in store.items() if r and r.get("partition") in partitions]:
                del store[key]
            for number in partitions:
                for ns in _spilled(number):
                    self.fold.spill.drop(ns)
