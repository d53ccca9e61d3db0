"""State larger than memory: the recently used part in memory, the rest in a local SQLite file.

A long-lived worker's state grows with every request it has seen: a finished withdrawal's
status, a folded record's id, an outcome in the gateway's feed. Each is read rarely (a late
duplicate, a customer asking) but must stay findable, so it cannot simply be dropped. Kafka
Streams and faust keep such state in a local RocksDB; here SQLite, from the standard library,
holds the cold part. The file is only a cache of what the changelog (or the log) rebuilds: it
is created empty when the worker starts and keeps no journal, so nothing in it needs to
survive a crash.
"""

from __future__ import annotations

import pickle
import sqlite3
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

_MISSING = object()
#: keys a tiered mapping keeps in memory unless told otherwise: a partition's working set
#: (its venues' settings, queues and totals, the requests in flight) and then some
HOT_KEYS = 2048
_BLOOM_BITS = 1 << 23  # 1 MB: under 1 % false positives up to ~500k keys on disk


class Spill:
    """One process's cold store: rows under a namespace (a partition's state, a feed), and a
    bloom filter over every key written out, made when the first one is."""

    def __init__(self, path: Path | str = ":memory:"):
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).unlink(missing_ok=True)  # a cache of the changelog: start empty
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=OFF")
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.execute(
            "CREATE TABLE cold (ns TEXT, key BLOB, value BLOB, PRIMARY KEY (ns, key)) WITHOUT ROWID"
        )
        self.db.execute(
            "CREATE TABLE feed (ns TEXT, seq INTEGER, value BLOB, PRIMARY KEY (ns, seq))"
            " WITHOUT ROWID"
        )
        self._bloom: bytearray | None = None

    def tier(self, ns: str, hot: int, first_out: Callable[[], None] = lambda: None) -> Tiered:
        return Tiered(self, ns, hot, first_out)

    def feed(self, ns: str) -> Feed:
        return Feed(self, ns)

    def drop(self, ns: str) -> None:
        """Forget everything under `ns`."""
        self.db.execute("DELETE FROM cold WHERE ns = ?", (ns,))
        self.db.execute("DELETE FROM feed WHERE ns = ?", (ns,))

    def close(self) -> None:
        self.db.close()

    def mark(self, ns: str, blob: bytes) -> None:
        """`blob` (a pickled key) was written out under `ns`."""
        if self._bloom is None:
            self._bloom = bytearray(_BLOOM_BITS // 8)
        for bit in _bits(ns, blob):
            self._bloom[bit >> 3] |= 1 << (bit & 7)

    def maybe(self, ns: str, blob: bytes) -> bool:
        """False: `blob` was never written out under `ns`; True: it may have been."""
        bloom = self._bloom
        if bloom is None:
            return False
        return all(bloom[bit >> 3] & (1 << (bit & 7)) for bit in _bits(ns, blob))


def _bits(ns: str, blob: bytes) -> tuple[int, int]:
    h = hash((ns, blob))  # salted per process, like the filter itself
    return h % _BLOOM_BITS, (h >> 32) % _BLOOM_BITS


class Tiered(MutableMapping[Hashable, Any]):
    """A mapping whose `hot` most recently used keys stay in memory; the least recently used
    go to the spill's SQLite file as they are pushed out, and come back when read. The spill's
    bloom filter answers most reads of a key that was never written out (a new request's id,
    a venue never halted) without asking SQLite."""

    def __init__(
        self, spill: Spill, ns: str, hot: int, first_out: Callable[[], None] = lambda: None
    ):
        """`first_out` is told when a key first goes to disk."""
        if hot < 1:
            raise ValueError("a tiered mapping keeps at least one key in memory")
        self.spill, self.ns, self.hot, self.first_out = spill, ns, hot, first_out
        self._mem: OrderedDict[Hashable, Any] = OrderedDict()
        self.spilled = 0  # keys written out, ever (a key written twice counts twice)

    # -- the mapping ----------------------------------------------------------------------

    def __getitem__(self, key: Hashable) -> Any:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def get(self, key: Hashable, default: Any = None) -> Any:
        mem = self._mem
        if key in mem:
            mem.move_to_end(key)
            return mem[key]
        if not self.spilled:
            return default
        blob = pickle.dumps(key)
        if not self.spill.maybe(self.ns, blob):
            return default
        row = self.spill.db.execute(
            "SELECT value FROM cold WHERE ns = ? AND key = ?", (self.ns, blob)
        ).fetchone()
        if row is None:
            return default
        value = pickle.loads(row[0])
        self._keep(key, value)  # read again soon, most likely
        return value

    def __setitem__(self, key: Hashable, value: Any) -> None:
        self._keep(key, value)

    def __delitem__(self, key: Hashable) -> None:
        found = self._mem.pop(key, _MISSING) is not _MISSING
        if self.spilled:
            cursor = self.spill.db.execute(
                "DELETE FROM cold WHERE ns = ? AND key = ?", (self.ns, pickle.dumps(key))
            )
            found = found or cursor.rowcount > 0
        if not found:
            raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return self.get(key, _MISSING) is not _MISSING  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[Hashable]:
        yield from list(self._mem)
        for (blob,) in self.spill.db.execute("SELECT key FROM cold WHERE ns = ?", (self.ns,)):
            key = pickle.loads(blob)
            if key not in self._mem:
                yield key

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __bool__(self) -> bool:  # without counting the file's rows
        return bool(self._mem) or self.spilled > 0

    def clear(self) -> None:
        self._mem.clear()
        self.spill.db.execute("DELETE FROM cold WHERE ns = ?", (self.ns,))
        self.spilled = 0  # the filter keeps its marks: a false positive costs one query

    @property
    def in_memory(self) -> int:
        return len(self._mem)

    # -- the tiers ------------------------------------------------------------------------

    def _keep(self, key: Hashable, value: Any) -> None:
        """Into memory as the most recent; the least recent out to SQLite, past `hot` keys.
        Memory always wins over a stale copy in the file: a key leaves memory only by being
        written out."""
        mem = self._mem
        mem[key] = value
        mem.move_to_end(key)
        while len(mem) > self.hot:
            old, old_value = mem.popitem(last=False)
            blob = pickle.dumps(old)
            self.spill.db.execute(
                "INSERT OR REPLACE INTO cold VALUES (?, ?, ?)",
                (self.ns, blob, pickle.dumps(old_value)),
            )
            self.spill.mark(self.ns, blob)
            self.spilled += 1
            if self.spilled == 1:
                self.first_out()


class Feed:
    """An append-only list kept in SQLite: what the gateway's outcome feed holds, read a page
    at a time from a position."""

    def __init__(self, spill: Spill, ns: str):
        self.spill, self.ns = spill, ns
        self._len = 0

    def append(self, value: Any) -> None:
        self.spill.db.execute(
            "INSERT INTO feed VALUES (?, ?, ?)", (self.ns, self._len, pickle.dumps(value))
        )
        self._len += 1

    def __len__(self) -> int:
        return self._len

    def page(self, start: int, limit: int) -> list[Any]:
        rows = self.spill.db.execute(
            "SELECT value FROM feed WHERE ns = ? AND seq >= ? ORDER BY seq LIMIT ?",
            (self.ns, start, limit),
        )
        return [pickle.loads(value) for (value,) in rows]
