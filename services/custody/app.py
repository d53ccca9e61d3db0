"""Custody service: owns each venue's ledger and wallets; reports balances and reserves."""

from __future__ import annotations

from bankrun import events as ev
from bankrun import topics
from bankrun.domain.ledger import Tier
from services.common import metrics
from services.common.faust_app import create_app, run_service
from services.common.journal import Effects, Journal, JournalBook
from services.common.settings import ServiceSettings
from services.custody import handlers

SERVICE = "custody"
settings = ServiceSettings.from_env()
app = create_app(SERVICE, settings)


def decide(event: ev.Event, journal: Journal, now: float) -> Effects:
    return handlers.handle(event, JournalBook(journal), now)


def export_metrics(event: ev.Event, effects: Effects, journal: Journal) -> None:
    """Gauges follow the running totals of every venue and asset the event touched."""
    venue = journal.get(handlers.venue_key(event.venue)) or {}
    policy = venue.get("policy", "unknown")
    touched = {key.split("/")[3] for key in effects.increments if key.startswith("total/")}
    for asset in touched:
        owed = journal.get(handlers.total_key(event.venue, "liabilities", asset), 0)
        metrics.CUSTOMER_LIABILITIES.labels(event.venue, policy, asset).set(owed)
        for tier in Tier:
            held = journal.get(handlers.total_key(event.venue, tier.value, asset), 0)
            metrics.RESERVES.labels(event.venue, policy, tier.value, asset).set(held)


run_service(
    app,
    SERVICE,
    settings,
    inputs=(topics.VENUES, topics.CUSTOMER_REQUESTS, topics.WITHDRAWAL_COMMANDS),
    handle=decide,
    after_commit=export_metrics,
)
