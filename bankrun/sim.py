"""`sim` mode: the same custody and saga handlers as the services, on an in-process bus.

No Kafka, no HTTP, no clock: events are delivered in scenario-time order and each service
consumes what the topics catalogue says it reads, through its own journal. Deterministic for
a seed, and fast enough for sweeps.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bankrun import events as ev
from bankrun import workload
from bankrun.domain import ledger
from bankrun.domain.panic import Crowd, Signals
from bankrun.scenario import PanicLoad, Scenario
from bankrun.topics import topic_of
from services.common.journal import Effects, Partition
from services.custody import handlers as custody
from services.matching import handlers as matching
from services.withdrawal import handlers as saga

TOKEN_MARKET = "PLATFORM/USD"  # the price customers watch
Handler = Callable[[ev.Event, Callable[[str], Any]], Effects]


@dataclass
class InProcessBus:
    services: dict[str, tuple[Partition, Handler]] = field(
        default_factory=lambda: {
            "custody": (Partition({}), custody.handle),
            "withdrawal": (Partition({}), saga.handle),
            "matching": (Partition({}, restore=matching.restore).rebuild(), matching.handle),
        }
    )
    log: list[ev.Event] = field(default_factory=list)

    def publish(self, event: ev.Event) -> None:
        queue = deque([event])
        while queue:
            current = queue.popleft()
            self.log.append(current)
            for name in topic_of(type(current)).readers:
                if name not in self.services:
                    continue
                journal, handle = self.services[name]
                effects, _ = journal.commit(
                    str(current.event_id), lambda h=handle, e=current, j=journal: h(e, j.get)
                )
                queue.extend(o.event or ev.decode(o.value) for o in effects.outputs)

    def ledger_balances(self) -> dict[str, int]:
        state = self.services["custody"][0].state
        return {k: v for k, v in state.items() if k.count("|") == 3}


def timeline(scenario: Scenario) -> list[ev.Event]:
    """Every input of a sim, in the order it happens: genesis, then ticks and requests by time
    (a tick first when both fall on the same second, so landed cash can pay)."""
    timed = [(t.scenario_time, 0, i, t) for i, t in enumerate(workload.ticks(scenario))]
    timed += [
        (r.at, 1, i, workload.request_event(r)) for i, r in enumerate(workload.requests(scenario))
    ]
    timed.sort(key=lambda x: x[:3])
    return [
        *workload.genesis(scenario, started_at=0.0, speed=scenario.speed),
        *(e for *_, e in timed),
    ]


def simulate(scenario: Scenario) -> InProcessBus:
    bus = InProcessBus()
    if isinstance(scenario.load, PanicLoad):
        _panic(bus, scenario, scenario.load)
    else:
        for event in timeline(scenario):
            bus.publish(event)
    problems = ledger.invariant_violations(bus.ledger_balances())
    if problems:
        raise AssertionError(f"ledger invariants broken in sim: {problems}")
    return bus


@dataclass
class _Seen:
    """What customers can observe, read off the log as it grows."""

    asked: dict[str, tuple[str, str, int]] = field(default_factory=dict)  # request -> who
    drawdown: float = 0.0
    halted: set[str] = field(default_factory=set)
    cursor: int = 0

    def catch_up(self, log: list[ev.Event], crowds: dict[str, Crowd], now_hours: float) -> None:
        for event in log[self.cursor :]:
            match event:
                case ev.WithdrawalPaid() | ev.WithdrawalQueued() | ev.WithdrawalRejected():
                    who = self.asked.get(event.request_id)
                    if who is not None:
                        venue, account, amount = who
                        outcome = event.type.removeprefix("withdrawal.")
                        crowds[venue].answered(account, outcome, amount, now_hours)
                case ev.BookSnapshot() if event.market == TOKEN_MARKET:
                    self.drawdown = 1 - event.last / event.peak
                case ev.VenueHalted():
                    self.halted.add(event.venue)
        self.cursor = len(log)


def _panic(bus: InProcessBus, scenario: Scenario, load: PanicLoad) -> None:
    """Genesis, then on every tick: the clock moves, and each venue's customers decide on what
    they can see — the news, the token, their venue's answers, the herd. What the venue answers
    feeds the next decision: the run is not planned, it unfolds."""
    for event in workload.genesis(scenario, started_at=0.0, speed=scenario.speed):
        bus.publish(event)
    crowds = {
        v.id: Crowd(
            [(c.account, c.balance, c.segment) for c in workload.customers(scenario, v)],
            load.params,
            seed=f"{scenario.seed}/{v.id}",
        )
        for v in scenario.venues
    }
    seen = _Seen()
    for k, t in enumerate([0.0, *workload.tick_times(scenario)]):
        if t > 0:
            for tick in workload.ticks_at(scenario, t):
                bus.publish(tick)
        hours = t / workload.HOUR
        seen.catch_up(bus.log, crowds, hours)
        for venue in scenario.venues:
            signals = Signals(
                news=scenario.news_severity(hours, venue.id),
                drawdown=seen.drawdown if venue.token_exposed else 0.0,
                halted=venue.id in seen.halted,
            )
            for j, ask in enumerate(crowds[venue.id].decide(hours, signals)):
                request_id = f"{venue.id}-p{k:05d}-{j:05d}"
                seen.asked[request_id] = (venue.id, ask.account, ask.amount)
                plan = workload.Request(
                    t, venue.id, ask.account, venue.asset, ask.amount, request_id
                )
                bus.publish(workload.request_event(plan))
                seen.catch_up(bus.log, crowds, hours)
