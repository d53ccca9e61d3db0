"""Every Prometheus metric bankrun exports, declared once (the README catalogue lists them).

Labels: `venue`, `policy`, `asset`, `tier`, `outcome`, `reason`; the run id is added by the
scrape config as a target label, and there are never per-account labels.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CUSTOMER_LIABILITIES = Gauge(
    "bankrun_customer_liabilities",
    "What the venue owes its customers (available + reserved for withdrawal), minor units",
    ["venue", "policy", "asset"],
)
RESERVES = Gauge(
    "bankrun_reserves",
    "The venue's holdings by wallet tier, minor units",
    ["venue", "policy", "tier", "asset"],
)
WITHDRAWALS = Counter(
    "bankrun_withdrawals",
    "Withdrawal requests by final outcome and reason",
    ["venue", "policy", "outcome", "reason"],
)
WITHDRAWN = Counter(
    "bankrun_withdrawn_minor_units",
    "Money requested for withdrawal by final outcome, minor units",
    ["venue", "policy", "asset", "outcome"],
)
WITHDRAWAL_LATENCY = Histogram(
    "bankrun_withdrawal_latency_scenario_seconds",
    "Scenario seconds from withdrawal request to payment",
    ["venue", "policy"],
    buckets=(1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 24 * 3600, 72 * 3600),
)
EVENTS = Counter(
    "bankrun_events_processed",
    "Events a service consumed, by type",
    ["service", "type"],
)
DUPLICATES = Counter(
    "bankrun_duplicate_events",
    "Events seen again (same event_id) and not re-applied",
    ["service"],
)
DEAD_LETTERS = Counter(
    "bankrun_dead_letters",
    "Messages sent to the dead-letter topic, by consumer and source topic",
    ["service", "source_topic"],
)
HTTP_REQUESTS = Counter(
    "bankrun_gateway_requests",
    "Gateway HTTP requests by route and status code",
    ["route", "status"],
)
