"""Every Prometheus metric bankrun exports, declared once (the README catalogue lists them).

Labels: `venue`, `policy`, `asset`, `tier`, `outcome`, `reason`; the run id is added by the
scrape config as a target label, and there are never per-account labels.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from bankrun import events as ev
from bankrun.domain.ledger import Totals

V = ["venue", "policy"]

CUSTOMER_LIABILITIES = Gauge(
    "bankrun_customer_liabilities",
    "What the venue owes its customers (available + reserved for withdrawal), minor units",
    [*V, "asset"],
)
RESERVES = Gauge(
    "bankrun_reserves",
    "The venue's cash by wallet tier (hot, warm, cold, transit), minor units",
    [*V, "tier", "asset"],
)
HOLDINGS = Gauge(
    "bankrun_holdings",
    "Non-cash assets at book value (platform_token, affiliate_loan, less_liquid), minor units",
    [*V, "holding", "asset"],
)
CLAIMS = Gauge(
    "bankrun_claims",
    "Money placed at other venues, by state: deposit (callable), loan, credit_line (drawn on "
    "lines it extended), frozen (on halted venues, at its recovery value), minor units",
    [*V, "state", "asset"],
)
BORROWED = Gauge(
    "bankrun_borrowed",
    "Drawn on other venues' credit lines and owed to them (not to customers), minor units",
    [*V, "asset"],
)
CLAIM_LOSSES = Counter(
    "bankrun_claim_losses_minor_units",
    "What claims on a halted venue (`counterparty`) lost when they were marked down",
    [*V, "counterparty"],
)
RESERVE_RATIO = Gauge(
    "bankrun_reserve_ratio", "Hot (liquid) reserves / customer liabilities", [*V, "asset"]
)
LCR = Gauge("bankrun_lcr", "Liquidity coverage ratio (lcr policy only)", V)
POLICY_TARGET = Gauge(
    "bankrun_policy_target",
    "What the venue's reserve policy promises to keep: `measure` reserve_ratio or lcr",
    [*V, "measure"],
)
BUFFER_DRY = Gauge(
    "bankrun_buffer_dry", "1 once a valid withdrawal could not be paid from liquid reserves", V
)
BUFFER_DRY_AT = Gauge(
    "bankrun_buffer_dry_at_hours", "Scenario hour when the buffer first ran dry", V
)
POR_RATIO = Gauge(
    "bankrun_por_solvency_ratio",
    "The last proof of reserves: reserves that count / liabilities the sum tree commits to",
    [*V, "asset"],
)
POR_LIABILITIES = Gauge(
    "bankrun_por_liabilities",
    "The last proof of reserves' liabilities (the sum tree's root total), minor units",
    [*V, "asset"],
)
POR_RESERVES = Gauge(
    "bankrun_por_reserves",
    "The last proof of reserves' reserves that count, minor units",
    [*V, "asset"],
)
POR_ATTESTED_AT = Gauge(
    "bankrun_por_last_attestation_hours", "Scenario hour of the last proof of reserves", V
)
POR_ATTESTATIONS = Counter(
    "bankrun_por_attestations",
    "Proofs of reserves attested, by whether they were solvent",
    [*V, "solvent"],
)
POR_PROOFS = Counter(
    "bankrun_por_proof_requests",
    "Inclusion proofs asked of the gateway, by outcome (served, no_attestation, not_in_tree, "
    "unavailable)",
    ["venue", "outcome"],
)
SCENARIO_HOURS = Gauge(
    "bankrun_scenario_time_hours", "Scenario time of the last event a service handled", ["venue"]
)
MOBILIZED = Counter(
    "bankrun_mobilized_minor_units",
    "Book value taken from a tier or holding towards the hot wallet",
    [*V, "source"],
)
WITHDRAWALS = Counter(
    "bankrun_withdrawals",
    "Withdrawal requests by outcome (paid, queued, rejected) and reason",
    [*V, "outcome", "reason"],
)
WITHDRAWN = Counter(
    "bankrun_withdrawn_minor_units",
    "Money in withdrawal requests by outcome, minor units",
    [*V, "asset", "outcome"],
)
WITHDRAWAL_LATENCY = Histogram(
    "bankrun_withdrawal_latency_scenario_seconds",
    "Scenario seconds from withdrawal request to payment",
    V,
    buckets=(1, 60, 900, 3600, 4 * 3600, 12 * 3600, 24 * 3600, 48 * 3600, 72 * 3600, 168 * 3600),
)
WITHDRAWAL_WALL_LATENCY = Histogram(
    "bankrun_withdrawal_latency_wall_seconds",
    "Wall seconds from the gateway taking a withdrawal to its payment (system latency)",
    V,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
QUEUE_DEPTH = Gauge("bankrun_withdrawal_queue_depth", "Withdrawals waiting for liquidity", V)
QUEUE_OLDEST = Gauge(
    "bankrun_withdrawal_queue_oldest_hours", "Scenario hours the oldest queued request waited", V
)
GATED = Gauge(
    "bankrun_venue_gated", "1 once the venue's gate tripped, or while the operator's gate stands", V
)
HALTED = Gauge("bankrun_venue_halted", "1 once the venue halted withdrawals", V)
HALTED_AT = Gauge("bankrun_venue_halted_at_hours", "Scenario hour of the halt", V)
EVENTS = Counter(
    "bankrun_events_processed",
    "Events a service consumed, by type",
    ["service", "type"],
)
IGNORED = Counter(
    "bankrun_events_ignored",
    "Events on a service's input topics that it has no handler for (not decoded)",
    ["service"],
)
GAP_RECORDS = Counter(
    "bankrun_gap_records",
    "Records the stream skipped (a jump in offsets), read again from the broker and handled",
    ["service", "topic"],
)
DUPLICATES = Counter(
    "bankrun_duplicate_events",
    "Events seen again (same event_id) and not re-applied",
    ["service"],
)
JOURNAL_FOLDED = Counter(
    "bankrun_journal_folded_records",
    "Journal records folded in memory (their effects live on in the state; the changelog"
    " keeps them whole)",
    ["service"],
)
DEAD_LETTERS = Counter(
    "bankrun_dead_letters",
    "Messages sent to the dead-letter topic, by consumer and source topic",
    ["service", "source_topic"],
)
PRODUCED = Counter(
    "bankrun_messages_produced",
    "Messages a service wrote, by topic (with CONSUMED: has everything sent been handled?)",
    ["service", "topic"],
)
CONSUMED = Counter(
    "bankrun_messages_consumed",
    "Messages a service took off a topic, whatever became of them",
    ["service", "topic"],
)
CONSUMED_OFFSET = Gauge(
    "bankrun_consumed_offset",
    "Next offset a service will read in a topic partition (last handled + 1). Unlike the "
    "counters it survives a restart: offsets belong to the log, not to the process",
    ["service", "topic", "partition"],
)
MARKET_PRICE = Gauge("bankrun_market_price", "Last trade price, quote minor units", ["market"])
MARKET_DRAWDOWN = Gauge(
    "bankrun_market_drawdown",
    "1 - last price / highest price so far (0 calm .. 1 wiped out)",
    ["market"],
)
MARKET_SPREAD = Gauge(
    "bankrun_market_spread_bps", "Best ask - best bid, in basis points of the mid", ["market"]
)
MARKET_DEPTH = Gauge(
    "bankrun_market_depth_2pct",
    "Quote minor units resting within 2 % of the mid, by side (bid, ask)",
    ["market", "side"],
)
MARKET_STRESS = Gauge(
    "bankrun_market_maker_stress", "How frightened the market makers are, 0..1", ["market"]
)
TRADED = Counter("bankrun_traded_base_minor_units", "Base minor units traded", ["market"])
TRADED_NOTIONAL = Counter(
    "bankrun_traded_notional_minor_units", "Quote minor units traded", ["market"]
)
ORDERS = Counter(
    "bankrun_orders",
    "Order commands by outcome (accepted, rejected) and reason",
    ["market", "outcome", "reason"],
)
FIRE_SALE_PROCEEDS = Counter(
    "bankrun_fire_sale_proceeds_minor_units",
    "Cash a venue's sales of non-cash holdings fetched",
    [*V, "market"],
)
FIRE_SALE_MARK = Counter(
    "bankrun_fire_sale_mark_value_minor_units",
    "What the same sold units were worth at the last price before the sale",
    [*V, "market"],
)
FIRE_SALE_SLIPPAGE = Gauge(
    "bankrun_fire_sale_slippage",
    "1 - proceeds / mark value of the venue's last fire sale",
    [*V, "market"],
)
OPERATOR_COMMANDS = Counter(
    "bankrun_operator_commands",
    "Operator commands the gateway published (gate, ungate, halt, policy)",
    ["venue", "action"],
)
HTTP_REQUESTS = Counter(
    "bankrun_gateway_requests",
    "Gateway HTTP requests by route and status code",
    ["route", "status"],
)


def export_totals(venue: str, policy: str, asset: str, t: Totals) -> None:
    CUSTOMER_LIABILITIES.labels(venue, policy, asset).set(t.liabilities)
    for tier in ("hot", "warm", "cold", "transit"):
        RESERVES.labels(venue, policy, tier, asset).set(getattr(t, tier))
    for holding in ("platform_token", "affiliate_loan", "less_liquid"):
        HOLDINGS.labels(venue, policy, holding, asset).set(getattr(t, holding))
    for state in ("deposit", "loan", "credit_line", "frozen"):
        CLAIMS.labels(venue, policy, state, asset).set(getattr(t, f"claim_{state}"))
    BORROWED.labels(venue, policy, asset).set(t.borrowed)
    if t.liabilities:
        RESERVE_RATIO.labels(venue, policy, asset).set(t.hot / t.liabilities)


def export_outcome(event: ev.Event, policy: str) -> None:
    """Count a saga outcome once (callers only pass newly emitted events)."""
    match event:
        case ev.WithdrawalPaid():
            WITHDRAWALS.labels(event.venue, policy, "paid", "none").inc()
            WITHDRAWN.labels(event.venue, policy, event.asset, "paid").inc(event.amount)
            WITHDRAWAL_LATENCY.labels(event.venue, policy).observe(event.latency_s)
            if event.requested_wall is not None:
                wall = event.occurred_at.timestamp() - event.requested_wall
                WITHDRAWAL_WALL_LATENCY.labels(event.venue, policy).observe(max(0.0, wall))
        case ev.WithdrawalQueued():
            WITHDRAWALS.labels(event.venue, policy, "queued", "insufficient_liquidity").inc()
        case ev.WithdrawalRejected():
            WITHDRAWALS.labels(event.venue, policy, "rejected", event.reason).inc()
            WITHDRAWN.labels(event.venue, policy, event.asset, "rejected").inc(event.amount)
        case ev.WithdrawalCancelled():
            WITHDRAWALS.labels(event.venue, policy, "cancelled", "customer").inc()
            WITHDRAWN.labels(event.venue, policy, event.asset, "cancelled").inc(event.amount)
        case ev.VenueGated():
            GATED.labels(event.venue, policy).set(1)
        case ev.VenueUngated():
            GATED.labels(event.venue, policy).set(0)
        case ev.VenueHalted():
            HALTED.labels(event.venue, policy).set(1)
            HALTED_AT.labels(event.venue, policy).set(event.scenario_time / 3600)


def export_market(event: ev.Event) -> None:
    """Market gauges and counters from what the matching service emitted (new events only)."""
    match event:
        case ev.BookSnapshot():
            MARKET_PRICE.labels(event.market).set(event.last)
            MARKET_DRAWDOWN.labels(event.market).set(1 - event.last / event.peak)
            if event.spread_bps is not None:
                MARKET_SPREAD.labels(event.market).set(event.spread_bps)
            MARKET_DEPTH.labels(event.market, "bid").set(event.bid_depth_2pct)
            MARKET_DEPTH.labels(event.market, "ask").set(event.ask_depth_2pct)
            MARKET_STRESS.labels(event.market).set(event.stress)
        case ev.TradeExecuted():
            TRADED.labels(event.market).inc(event.quantity)
            TRADED_NOTIONAL.labels(event.market).inc(event.notional)
        case ev.OrderAccepted():
            ORDERS.labels(event.market, "accepted", "none").inc()
        case ev.OrderRejected():
            ORDERS.labels(event.market, "rejected", event.reason).inc()


def export_fire_sale(event: ev.FireSaleFilled, policy: str) -> None:
    FIRE_SALE_PROCEEDS.labels(event.venue, policy, event.market).inc(event.proceeds)
    FIRE_SALE_MARK.labels(event.venue, policy, event.market).inc(event.mark_value)
    if event.mark_value:
        FIRE_SALE_SLIPPAGE.labels(event.venue, policy, event.market).set(
            1 - event.proceeds / event.mark_value
        )


def export_attestation(attested: ev.PorAttested, policy: str) -> None:
    labels = (attested.venue, policy)
    if attested.ratio is not None:
        POR_RATIO.labels(*labels, attested.asset).set(attested.ratio)
    POR_LIABILITIES.labels(*labels, attested.asset).set(attested.liabilities)
    POR_RESERVES.labels(*labels, attested.asset).set(attested.reserves)
    POR_ATTESTED_AT.labels(*labels).set(attested.scenario_time / 3600)
    POR_ATTESTATIONS.labels(*labels, str(attested.solvent).lower()).inc()
