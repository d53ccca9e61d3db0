"""Withdrawal service: runs the saga for every request and counts outcomes."""

from __future__ import annotations

from bankrun import events as ev
from bankrun import topics
from services.common import metrics
from services.common.faust_app import create_app, run_service
from services.common.journal import Effects, Partition
from services.common.settings import ServiceSettings
from services.withdrawal import handlers

SERVICE = "withdrawal"
settings = ServiceSettings.from_env()
app = create_app(SERVICE, settings)


def export_metrics(event: ev.Event, effects: Effects, journal: Partition) -> None:
    policy = (journal.get(handlers.venue_key(event.venue)) or {}).get("policy", "unknown")
    for out in effects.outputs:
        if out.topic == topics.WITHDRAWAL_EVENTS.name:
            metrics.export_outcome(out.event or ev.decode(out.value), policy)
    depth = journal.get(handlers.queue_key(event.venue, "depth"), 0)
    metrics.QUEUE_DEPTH.labels(event.venue, policy).set(depth)
    metrics.QUEUE_OLDEST.labels(event.venue, policy).set(
        _oldest_age_hours(journal, event.venue, event.scenario_time) if depth else 0
    )


def _oldest_age_hours(journal: Partition, venue: str, now: float) -> float:
    head = journal.get(handlers.queue_key(venue, "head"), 0)
    tail = journal.get(handlers.queue_key(venue, "tail"), 0)
    for position in range(head, tail):
        stored = journal.get(
            handlers.withdrawal_key(journal.get(handlers.queue_key(venue, str(position))))
        )
        if stored and stored["status"] == "queued":
            return max(0.0, now - stored["requested_at"]) / 3600
    return 0.0


run_service(
    app,
    SERVICE,
    settings,
    inputs=(
        topics.CONTROL,
        topics.CUSTOMER_REQUESTS,
        topics.OPERATOR_COMMANDS,
        topics.CUSTODY_EVENTS,
    ),
    handle=handlers.handle,
    handled=handlers.HANDLED,
    after_commit=export_metrics,
)
