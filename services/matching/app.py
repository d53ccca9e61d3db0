"""Matching service: the order books, their market makers, trades and prices.

One book per market; the market-orders topic is keyed by market, so a market's commands are
processed in order by whichever worker owns its partition, and a worker given a partition
rebuilds its books from the journal (latest snapshot + the commands after it).
"""

from __future__ import annotations

from bankrun import events as ev
from bankrun import topics
from services.common import metrics
from services.common.faust_app import create_app, run_service
from services.common.journal import Effects, Partition
from services.common.settings import ServiceSettings
from services.matching import handlers

SERVICE = "matching"
settings = ServiceSettings.from_env()
app = create_app(SERVICE, settings)


def export_metrics(event: ev.Event, effects: Effects, journal: Partition) -> None:
    for out in effects.outputs:
        if out.topic == topics.MARKET_DATA.name:
            metrics.export_market(out.event or ev.decode(out.value))


run_service(
    app,
    SERVICE,
    settings,
    inputs=(topics.MARKET_ORDERS,),
    handle=handlers.handle,
    handled=handlers.HANDLED,
    after_commit=export_metrics,
    restore=handlers.restore,
)
