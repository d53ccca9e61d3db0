"""Has the stack settled? Every message written for a service has been handled by it.

Counts and read positions, never end offsets (Tansu's are not to be trusted): the runner knows
what it sent to each topic; each service reports on /metrics what it produced per topic and
the next offset it will read per partition, set only after it has sent what the message
caused (`bankrun.runner.tally` keeps both across restarts). So every reader past as many
records as were written means nothing is in flight: the consequences of the last input —
landed cash, the queue drained, payouts settled, the gateway's read model updated — are all
in the log.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable

import httpx

from bankrun.runner.stack import Stack
from bankrun.runner.tally import Counts, Unreachable, read_metrics
from bankrun.topics import CATALOGUE

Step = Callable[[str, float, float], None]  # (what, done, total)


def message_counts(url: str, client: httpx.Client | None = None) -> Counts:
    """(produced|consumed, service, topic) -> count, from one process's /metrics."""
    return read_metrics(url, client)[0]


def stack_counts(stack: Stack, client: httpx.Client | None = None) -> Counts | None:
    """The counts of every service, across replicas and restarts (`Tally`); None while a
    service does not answer (killed, restarting or paused), which is never settled."""
    try:
        return stack.tally.read(stack.endpoints(), client)
    except Unreachable:
        return None


def in_flight(stack: Stack, runner_sent: Counter[str], counts: Counts) -> float:
    """Messages written to a topic and not yet consumed by each of its readers in the stack."""
    produced = written(runner_sent, counts)
    readers = {service for service, _ in stack.endpoints()}
    behind = 0.0
    for topic in CATALOGUE:
        for reader in set(topic.readers) & readers:
            got = counts.get(("consumed", reader, topic.name), 0)
            behind += max(0.0, produced.get(topic.name, 0) - got)
    return behind


def written(runner_sent: Counter[str], counts: Counts) -> dict[str, float]:
    """Records written to each topic so far: by the runner and by every service."""
    out = {topic: float(n) for topic, n in runner_sent.items()}
    for (kind, _, topic), n in counts.items():
        if kind == "produced":
            out[topic] = out.get(topic, 0) + n
    return out


def settled_counts(stack: Stack, runner_sent: Counter[str], stall_s: float = 120) -> Counts:
    """Wait until nothing is in flight; the counts at that point."""
    seen: dict[str, Counts] = {}

    def probe() -> tuple[bool, float | None]:
        counts = stack_counts(stack)
        if counts is None:
            return False, None
        seen["counts"] = counts
        return in_flight(stack, runner_sent, counts) == 0, moved(counts)

    until_settled(probe, "the stack to settle", stall_s, stack.stopping)
    return seen["counts"]


def moved(counts: Counts) -> float:
    """How much the stack has done: changes while it is working through what is in flight."""
    return sum(counts.values())


class StackStopped(RuntimeError):
    """The stack was stopped (Ctrl-C, a violation) while a thread still waited on it."""


def until_settled(
    probe: Callable[[], tuple[bool, float | None]],
    what: str,
    stall_s: float,
    stopping: threading.Event | None = None,
) -> None:
    """Poll `probe` (settled?, progress) until settled. Give up only after `stall_s` seconds
    in which the progress did not change: a stack working through a burst on a loaded machine
    is slow, not broken; one that consumes nothing while something is in flight is stuck.
    Stop at once once `stopping` is set: a wait in a worker thread outlives the run's
    cancelled task, and the process cannot exit before it ends."""
    last, deadline = None, time.monotonic() + stall_s
    while True:
        if stopping is not None and stopping.is_set():
            raise StackStopped(f"the stack was stopped while waiting for {what}")
        done, progress = probe()
        if done:
            return
        if progress is not None and progress != last:
            last, deadline = progress, time.monotonic() + stall_s
        elif time.monotonic() >= deadline:
            raise TimeoutError(f"no progress for {stall_s:.0f}s waiting for {what}")
        time.sleep(0.02)


def wait_until_drained(
    stack: Stack, runner_sent: Counter[str], step: Step, stall_s: float = 120
) -> None:
    def probe() -> tuple[bool, float | None]:
        counts = stack_counts(stack)
        behind = 1.0 if counts is None else in_flight(stack, runner_sent, counts)
        step("in flight", 0 if behind else 1, 1)
        return behind == 0, None if counts is None else moved(counts)

    until_settled(
        probe, "every service to consume what was written for it", stall_s, stack.stopping
    )
