"""Message counts that outlive the processes reporting them.

A service's counters start from zero when it is restarted (a chaos kill), but what it wrote
before is still in the log. So the runner keeps, per service, what its dead generations
produced (read just before each kill), and takes consumption from `bankrun_consumed_offset`
— the next offset per partition, a position in the log rather than a count in the process.
Offsets are contiguous from 0 (checked on Tansu), so the offsets summed over partitions are
the number of records a reader is past; a restarted reader replaying uncommitted records does
not count them twice, and a gateway re-reading the log from the start does not either.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families

Counts = dict[tuple[str, str, str], float]  # (produced|consumed, service, topic) -> count
Offsets = dict[tuple[str, str, str], float]  # (service, topic, partition) -> next offset


def read_metrics(url: str, client: httpx.Client | None = None) -> tuple[Counts, Offsets]:
    """A process's counters and consumer offsets, from its /metrics."""
    counts: Counts = {}
    offsets: Offsets = {}
    text = (client or httpx).get(f"{url}/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        if family.name in ("bankrun_messages_produced", "bankrun_messages_consumed"):
            kind = family.name.rsplit("_", 1)[1]
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    key = (kind, sample.labels["service"], sample.labels["topic"])
                    counts[key] = sample.value
        elif family.name == "bankrun_consumed_offset":
            for sample in family.samples:
                labels = sample.labels
                offsets[(labels["service"], labels["topic"], labels["partition"])] = sample.value
    return counts, offsets


class Unreachable(RuntimeError):
    """A service did not answer /metrics (killed, restarting or paused): not settled."""


@dataclass
class Tally:
    """Counts across every generation of every service process."""

    retired: Counts = field(default_factory=dict)  # produced by processes no longer running
    furthest: Offsets = field(default_factory=dict)  # the highest offset any generation read
    #: one pool for the polls (a bare httpx.get builds an SSL context per call)
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=5))

    def read(self, endpoints: list[tuple[str, str]], client: httpx.Client | None = None) -> Counts:
        """Produced: live counters plus retired ones. Consumed: from offsets where a service
        reports them, else its counters (an older service without the gauge)."""
        live: Counts = {}
        for service, url in endpoints:
            try:
                counts, offsets = read_metrics(url, client or self.client)
            except httpx.HTTPError as down:
                raise Unreachable(f"{service} at {url}: {down!r}") from None
            for key, n in counts.items():
                live[key] = live.get(key, 0) + n
            for key, offset in offsets.items():
                self.furthest[key] = max(self.furthest.get(key, 0), offset)
        out = dict(live)
        for key, n in self.retired.items():
            out[key] = out.get(key, 0) + n
        by_offsets: Counts = {}
        for (service, topic, _), offset in self.furthest.items():
            key = ("consumed", service, topic)
            by_offsets[key] = by_offsets.get(key, 0) + offset
        out.update(by_offsets)
        return out

    def retire(self, service: str, url: str, client: httpx.Client | None = None) -> None:
        """Keep what a process produced before it is killed (read while it still answers)."""
        counts, offsets = read_metrics(url, client or self.client)
        for key, n in counts.items():
            if key[0] == "produced" and key[1] == service:
                self.retired[key] = self.retired.get(key, 0) + n
        for key, offset in offsets.items():
            self.furthest[key] = max(self.furthest.get(key, 0), offset)
