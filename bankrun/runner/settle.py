"""Has the stack settled? Every message written for a service has been handled by it.

Counts, not offsets (Tansu's end offsets are not to be trusted): the runner knows what it sent
to each topic; each service reports on /metrics what it produced and consumed per topic, and
counts a message consumed only after it has sent what the message caused. So equal counts
for every reader mean nothing is in flight: the consequences of the last input — landed cash,
the queue drained, payouts settled, the gateway's read model updated — are all in the log.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bankrun.runner.processes import wait_until
from bankrun.runner.stack import Stack
from bankrun.topics import CATALOGUE

Counts = dict[tuple[str, str, str], float]  # (produced|consumed, service, topic) -> count
Step = Callable[[str, float, float], None]  # (what, done, total)


def message_counts(url: str, client: httpx.Client | None = None) -> Counts:
    """(produced|consumed, service, topic) -> count, from a service's /metrics."""
    counts: Counts = {}
    text = (client or httpx).get(f"{url}/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        if family.name not in ("bankrun_messages_produced", "bankrun_messages_consumed"):
            continue
        kind = family.name.rsplit("_", 1)[1]
        for sample in family.samples:
            if sample.name.endswith("_total"):
                key = (kind, sample.labels["service"], sample.labels["topic"])
                counts[key] = sample.value
    return counts


def stack_counts(stack: Stack, client: httpx.Client | None = None) -> Counts:
    """The counts of every service process, replicas of one service added up."""
    counts: Counts = {}
    for _, url in stack.endpoints():
        for key, n in message_counts(url, client).items():
            counts[key] = counts.get(key, 0) + n
    return counts


def in_flight(stack: Stack, runner_sent: Counter[str], counts: Counts) -> float:
    """Messages written to a topic and not yet consumed by each of its readers in the stack."""
    produced = {topic: float(n) for topic, n in runner_sent.items()}
    for (kind, _, topic), n in counts.items():
        if kind == "produced":
            produced[topic] = produced.get(topic, 0) + n
    readers = {service for service, _ in stack.endpoints()}
    behind = 0.0
    for topic in CATALOGUE:
        for reader in set(topic.readers) & readers:
            got = counts.get(("consumed", reader, topic.name), 0)
            behind += max(0.0, produced.get(topic.name, 0) - got)
    return behind


def wait_until_drained(
    stack: Stack, runner_sent: Counter[str], step: Step, timeout: float = 120
) -> None:
    def drained() -> bool:
        behind = in_flight(stack, runner_sent, stack_counts(stack))
        step("in flight", 0 if behind else 1, 1)
        return behind == 0

    wait_until(drained, timeout, "every service to consume what was written for it", 0.2)
