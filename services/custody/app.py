"""Custody service: owns each venue's ledger and wallets; reports balances and reserves."""

from __future__ import annotations

from bankrun import events as ev
from bankrun import topics
from bankrun.auth import por_secret_from_env
from services.common import metrics
from services.common.faust_app import create_app, run_service
from services.common.journal import Effects, Partition
from services.common.settings import ServiceSettings
from services.custody import handlers, proofs

SERVICE = "custody"
settings = ServiceSettings.from_env()
app = create_app(SERVICE, settings)
_por_secret = por_secret_from_env()
if _por_secret:
    proofs.use_secret(_por_secret)  # without it, a venue that attests stops custody, loudly


def export_metrics(event: ev.Event, effects: Effects, journal: Partition) -> None:
    """Gauges follow the running totals of every venue and asset the event touched."""
    config = journal.get(handlers.venue_key(event.venue)) or {}
    policy = config.get("policy", "unknown")
    touched = {
        key.split("/")[3] for key in effects.increments if key.startswith(f"total/{event.venue}/")
    }
    for asset in touched:
        metrics.export_totals(
            event.venue, policy, asset, handlers.read_totals(journal, event.venue, asset)
        )
    metrics.SCENARIO_HOURS.labels(event.venue).set(event.scenario_time / 3600)
    for out in effects.outputs:
        if out.topic not in (topics.CUSTODY_EVENTS.name, topics.POR.name):
            continue
        produced = out.event or ev.decode(out.value)
        if isinstance(produced, ev.ReserveSnapshot):
            metrics.BUFFER_DRY.labels(event.venue, policy).set(int(produced.dry))
            if config:
                measure, level = handlers.policy_of(config).target()
                metrics.POLICY_TARGET.labels(event.venue, policy, measure).set(level)
            if produced.lcr is not None:
                metrics.LCR.labels(event.venue, policy).set(produced.lcr)
        elif isinstance(produced, ev.BufferDry):
            metrics.BUFFER_DRY.labels(event.venue, policy).set(1)
            metrics.BUFFER_DRY_AT.labels(event.venue, policy).set(produced.scenario_time / 3600)
        elif isinstance(produced, ev.MobilizationStarted):
            metrics.MOBILIZED.labels(event.venue, policy, produced.source).inc(produced.amount)
        elif isinstance(produced, ev.FireSaleFilled):
            metrics.export_fire_sale(produced, policy)
        elif isinstance(produced, ev.PorAttested):
            metrics.export_attestation(produced, policy)
        elif isinstance(produced, ev.ClaimWrittenDown):
            metrics.CLAIM_LOSSES.labels(event.venue, policy, produced.counterparty).inc(
                produced.loss
            )


run_service(
    app,
    SERVICE,
    settings,
    inputs=(
        topics.CONTROL,
        topics.CUSTOMER_REQUESTS,
        topics.OPERATOR_COMMANDS,
        topics.WITHDRAWAL_COMMANDS,
        topics.MARKET_FILLS,
        topics.CLAIMS,
    ),
    handle=handlers.handle,
    handled=handlers.HANDLED,
    after_commit=export_metrics,
)
