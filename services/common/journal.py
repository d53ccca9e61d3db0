"""Exactly-once effects on an at-least-once log.

The broker redelivers (no transactions; uncommitted offsets replay after a crash), and
clients may send the same event twice. So a handler never writes state directly: it
*decides* `Effects` (state sets, balance increments, events to emit) and the `Journal`

1. writes the decision under the input's event id, marked not done (a write-ahead record);
2. applies it, stamping each state key with the event id that last wrote it;
3. marks the record done.

Redelivered after step 3, the event is a duplicate: nothing is applied again, its outputs are
re-sent (they carry derived ids, so consumers drop them). Redelivered after a crash in step
2, the same record is applied again, skipping keys the event already stamped. Events are
handled one at a time per partition, so no later event can have touched those keys.
The mappings are plain `MutableMapping`s: faust Tables in services, dicts in tests and sims.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from bankrun.domain.ledger import Posting
from bankrun.events import Event
from bankrun.topics import topic_of


@dataclass(frozen=True)
class Output:
    topic: str
    key: str
    value: bytes
    event: Event | None = field(default=None, compare=False)  # in process only, not recorded


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
            self.outputs.append(Output(topic.name, topic.key_of(event), event.to_bytes(), event))

    def over(self, lookup: Callable[[str], Any]) -> View:
        """Reads that see these effects on top of the stored state."""
        return View(self, lookup)

    def to_record(self, done: bool) -> dict[str, Any]:
        return {
            "done": done,
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

    def get(self, key: str, default: Any = None) -> Any:
        if key in self.effects.sets:
            return self.effects.sets[key]
        base = self.lookup(key)
        if key in self.effects.increments:
            return (base or 0) + self.effects.increments[key]
        return default if base is None else base

    def set(self, key: str, value: Any) -> None:
        self.effects.sets[key] = value


Dispatch = dict[type, Callable[[Any, View, Effects], None]]


def dispatch(handlers: Dispatch, event: Event, lookup: Callable[[str], Any]) -> Effects:
    """Run the handler for `event`'s type against the stored state; unknown types do nothing."""
    effects = Effects()
    handler = handlers.get(type(event))
    if handler is not None:
        handler(event, effects.over(lookup), effects)
    return effects


class Journal:
    """State as `key -> [value, writer_event_id]`, plus a record per input event."""

    def __init__(self, state: MutableMapping[str, Any], records: MutableMapping[str, Any]):
        self.state = state
        self.records = records

    def get(self, key: str, default: Any = None) -> Any:
        entry = self.state.get(key)
        return default if entry is None else entry[0]

    def is_done(self, event_id: str) -> bool:
        record = self.records.get(event_id)
        return bool(record and record["done"])

    def commit(self, event_id: str, decide: Callable[[], Effects]) -> tuple[Effects, bool]:
        """Apply the effects `decide()` returns, once per `event_id`.

        Returns what to emit and whether the event was new. `decide` runs only for an event
        never seen before: a half-applied one resumes its recorded decision.
        """
        record = self.records.get(event_id)
        if record is not None and record["done"]:
            return Effects.from_record(record), False
        if record is None:
            effects = decide()
            if not (effects.sets or effects.increments or effects.outputs):
                return effects, True  # nothing to apply: no record needed either
            record = effects.to_record(done=False)
            self.records[event_id] = record
        else:
            effects = Effects.from_record(record)
        for key, value in effects.sets.items():
            if self._writer(key) != event_id:
                self.state[key] = [value, event_id]
        for key, amount in effects.increments.items():  # a zero change to a known key: no write
            if (amount or key not in self.state) and self._writer(key) != event_id:
                self.state[key] = [self.get(key, 0) + amount, event_id]
        self.records[event_id] = {**record, "done": True}
        return effects, True

    def _writer(self, key: str) -> str | None:
        entry = self.state.get(key)
        return None if entry is None else entry[1]


class JournalBook:
    """The ledger's read side over a journal's state, as `bankrun.domain.ledger.Book`."""

    def __init__(self, journal: Journal):
        self.journal = journal

    def get(self, key: str, /) -> int | None:
        return self.journal.get(key)
