"""Withdrawal service: runs the saga for every request and counts outcomes."""

from __future__ import annotations

from bankrun import events as ev
from bankrun import topics
from bankrun.domain.withdrawal import FINAL, Status, Withdrawal
from services.common import metrics
from services.common.faust_app import create_app, run_service
from services.common.journal import Effects, Journal
from services.common.settings import ServiceSettings
from services.withdrawal import handlers

SERVICE = "withdrawal"
settings = ServiceSettings.from_env()
app = create_app(SERVICE, settings)


def decide(event: ev.Event, journal: Journal, now: float) -> Effects:
    effects, _ = handlers.handle(event, journal.get, now)
    return effects


def export_metrics(event: ev.Event, effects: Effects, journal: Journal) -> None:
    request_id = getattr(event, "request_id", None)
    if request_id is None:
        return
    stored = effects.sets.get(handlers.withdrawal_key(request_id))
    if stored is None:
        return
    done = Withdrawal.from_dict(stored)
    if done.status not in FINAL:
        return
    policy = (journal.get(handlers.venue_key(done.venue)) or {}).get("policy", "unknown")
    outcome = done.status.value
    metrics.WITHDRAWALS.labels(done.venue, policy, outcome, done.reason or "none").inc()
    metrics.WITHDRAWN.labels(done.venue, policy, done.asset, outcome).inc(done.amount)
    if done.status is Status.PAID and done.latency is not None:
        metrics.WITHDRAWAL_LATENCY.labels(done.venue, policy).observe(done.latency)


run_service(
    app,
    SERVICE,
    settings,
    inputs=(topics.VENUES, topics.CUSTODY_EVENTS),
    handle=decide,
    after_commit=export_metrics,
)
