"""`sim` mode: the same custody and saga handlers as the services, on an in-process bus.

No Kafka, no HTTP, no clock: events are delivered in scenario-time order and each service
consumes what it handles of what the topics catalogue says it reads, through its own journal.
Deterministic for a seed, and fast enough for sweeps.
"""

from __future__ import annotations

import functools
import gc
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

from bankrun import events as ev
from bankrun import workload
from bankrun.domain import ledger
from bankrun.panic_desk import Answer, PanicDesk, Proof
from bankrun.scenario import PanicLoad, Scenario
from bankrun.topics import CATALOGUE, topic_of
from services.common.journal import Effects, Partition
from services.custody import handlers as custody
from services.custody import proofs
from services.matching import handlers as matching
from services.withdrawal import handlers as saga

Handler = Callable[[ev.Event, Callable[[str], Any]], Effects]
#: the event types each service has a handler for (by `type`). A service is handed no other,
#: as on the broker, where `faust_app.decode` drops them unread: no journal records them (they
#: were a third of a sim's deliveries: the saga reads the topics of genesis' funding and of
#: customers' requests, and handles neither)
HANDLED = {"custody": custody.HANDLED, "withdrawal": saga.HANDLED, "matching": matching.HANDLED}


@functools.cache
def handlers_of(kind: type[ev.Event]) -> tuple[str, ...]:
    """The services that handle `kind`: those that read its topic and have a handler for it
    (a service not listed in `HANDLED` is handed every event it reads)."""
    name = ev.type_of(kind)
    return tuple(r for r in topic_of(kind).readers if r not in HANDLED or name in HANDLED[r])


@dataclass
class InProcessBus:
    services: dict[str, tuple[Partition, Handler]] = field(
        default_factory=lambda: {
            "custody": (Partition({}, durable=False), custody.handle),
            "withdrawal": (Partition({}, durable=False), saga.handle),
            "matching": (
                Partition({}, restore=matching.restore, durable=False).rebuild(),
                matching.handle,
            ),
        }
    )
    log: list[ev.Event] = field(default_factory=list)
    desk: PanicDesk | None = None  # a panic's customers, after the run
    #: if given, takes the log a batch at a time (`hand_over`), and the log keeps none of it
    watch: Callable[[list[ev.Event]], None] | None = None
    #: event types nothing here looks at (see `unread_by`): never logged, nor even built when
    #: emitted lazily
    unread: frozenset[type[ev.Event]] = frozenset()

    def publish(self, event: ev.Event) -> None:
        """Deliver `event` and everything it causes, breadth first. Journals are keyed by the
        events' ids as ints: nothing here reads them back as text."""
        queue = deque([event])
        log, services, unread = self.log, self.services, self.unread
        while queue:
            current = queue.popleft()
            log.append(current)
            for name in handlers_of(type(current)):
                if name not in services:
                    continue
                journal, handle = services[name]
                effects, _ = journal.commit(
                    current.event_id.int, functools.partial(handle, current, journal.lookup)
                )
                queue.extend(
                    o.event or ev.decode(o.value) for o in effects.outputs if o.kind not in unread
                )

    def unread_by(self, wants: frozenset[type[ev.Event]]) -> frozenset[type[ev.Event]]:
        """The event types no service of this bus handles, but for those in `wants` (the
        watcher's, and what customers see): the gateway's balance snapshots, say."""
        return frozenset(
            kind
            for topic in CATALOGUE
            for kind in topic.event_types
            if kind not in wants and not set(handlers_of(kind)) & set(self.services)
        )

    def hand_over(self) -> int:
        """Give what the log holds to `watch` and empty it; how many events left the log."""
        if self.watch is None or not self.log:
            return 0
        self.watch(self.log)
        count, self.log = len(self.log), []
        return count

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


@contextmanager
def no_cycle_collection() -> Iterator[None]:
    """A sim allocates ~100k events and their effects and makes no cyclic garbage (a
    `gc.collect()` after one finds nothing): reference counting frees it all. The cycle
    collector would only walk the growing log again and again — a tenth of a seed, and a
    full pass over it (~0.3 s) as soon as collection resumed with the log still alive."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def simulate(
    scenario: Scenario,
    watch: Callable[[list[ev.Event]], None] | None = None,
    wants: frozenset[type[ev.Event]] | None = None,
) -> InProcessBus:
    """The whole run, its log kept on the bus — or, given `watch`, handed to it as the run
    goes (a Monte Carlo seed tallies each event while it is fresh and keeps no log); given
    `wants` too, the event types `watch` looks at, the others that no service here reads are
    left out."""
    bus = InProcessBus(watch=watch)
    if watch is not None and wants is not None:
        bus.unread = bus.unread_by(wants | _LogReader.SEEN)
    proofs.use_secret(proofs.sim_secret(scenario.seed))
    with no_cycle_collection():
        if isinstance(scenario.load, PanicLoad):
            _panic(bus, scenario, scenario.load)
        else:
            for event in timeline(scenario):
                bus.publish(event)
                bus.hand_over()
    problems = ledger.invariant_violations(bus.ledger_balances())
    if problems:
        raise AssertionError(f"ledger invariants broken in sim: {problems}")
    return bus


@dataclass
class _LogReader:
    """What customers can observe, read off the log since the last step."""

    token_market: str | None
    cursor: int = 0
    #: the event types `read` looks at (a test holds this to its cases); most of a step's
    #: events are none of them
    SEEN: ClassVar[frozenset[type[ev.Event]]] = frozenset(
        {
            ev.WithdrawalPaid,
            ev.WithdrawalQueued,
            ev.WithdrawalRejected,
            ev.BookSnapshot,
            ev.VenueHalted,
            ev.PorAttested,
        }
    )

    def read(self, log: list[ev.Event]) -> dict[str, Any]:
        answers, token, halted, published = [], None, [], []
        seen = self.SEEN
        for event in log[self.cursor :]:
            if type(event) not in seen:
                continue
            match event:
                case ev.WithdrawalPaid() | ev.WithdrawalQueued() | ev.WithdrawalRejected():
                    outcome = event.type.removeprefix("withdrawal.")
                    answers.append(Answer(event.venue, event.request_id, outcome))
                case ev.BookSnapshot() if event.market == self.token_market:
                    token = (event.last, event.peak)
                case ev.VenueHalted():
                    halted.append(event.venue)
                case ev.PorAttested() if event.published:
                    hours = event.scenario_time / workload.HOUR
                    published.append(Proof(event.venue, hours, event.ratio))
        self.cursor = len(log)
        return {"answers": answers, "token": token, "halted": halted, "proofs": published}


def _panic(bus: InProcessBus, scenario: Scenario, load: PanicLoad) -> None:
    """Genesis, then a step per tick: the clock moves and the system settles, each venue's
    customers are told what they could see, and they decide. What the venues answer feeds the
    next step, exactly as `run` does it through the gateway."""
    for event in workload.genesis(scenario, started_at=0.0, speed=scenario.speed):
        bus.publish(event)
    desk = bus.desk = PanicDesk(scenario, load.params)
    reader = _LogReader(desk.token_market)
    for t in [0.0, *workload.tick_times(scenario)]:
        for tick in workload.ticks_at(scenario, t) if t > 0 else ():
            bus.publish(tick)
        desk.see(t / workload.HOUR, **reader.read(bus.log))
        reader.cursor -= bus.hand_over()  # what was read may go
        for request in desk.decide(t):
            bus.publish(workload.request_event(request))
    bus.hand_over()
