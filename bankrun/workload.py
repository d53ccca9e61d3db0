"""The slice workload as a seeded plan, and what the ledger must say after it.

Pure: the same scenario and seed always give the same requests, and `expected` folds them
through the domain ledger in memory, so a run on the real stack is checked against the core.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from bankrun.domain import ledger
from bankrun.domain.ledger import InMemoryBook, LedgerError, Tier
from bankrun.scenario import Scenario


@dataclass(frozen=True)
class Customer:
    venue: str
    account: str
    asset: str
    deposit: int


@dataclass(frozen=True)
class WithdrawalPlan:
    venue: str
    account: str
    asset: str
    amount: int
    request_id: str


@dataclass(frozen=True)
class Plan:
    customers: tuple[Customer, ...]
    withdrawals: tuple[WithdrawalPlan, ...]


@dataclass
class VenueOutcome:
    liabilities_start: int = 0
    reserves_start: int = 0
    liabilities_end: int = 0
    hot_end: int = 0
    paid: int = 0
    paid_amount: int = 0
    rejected: dict[str, int] = field(default_factory=dict)


def plan(scenario: Scenario) -> Plan:
    rng = random.Random(scenario.seed)
    customers: list[Customer] = []
    withdrawals: list[WithdrawalPlan] = []
    for venue in scenario.venues:
        for i in range(venue.customers):
            amount = rng.randint(venue.balance_min, venue.balance_max)
            customers.append(Customer(venue.id, f"cust-{i:05d}", venue.asset, amount))
    for round_ in range(scenario.workload.withdrawals_per_customer):
        for c in customers:
            if rng.random() < scenario.workload.overdraw_share:
                amount = c.deposit + rng.randint(1, max(1, c.deposit))
            else:
                amount = rng.randint(
                    1, max(1, c.deposit // scenario.workload.withdrawals_per_customer)
                )
            withdrawals.append(
                WithdrawalPlan(c.venue, c.account, c.asset, amount, f"{c.account}-w{round_}")
            )
    return Plan(tuple(customers), tuple(withdrawals))


def expected(scenario: Scenario, the_plan: Plan) -> dict[str, VenueOutcome]:
    """The outcome when requests are handled in plan order, by the in-memory ledger."""
    book = InMemoryBook()
    outcomes = {v.id: VenueOutcome() for v in scenario.venues}
    for c in the_plan.customers:
        book.post(ledger.open_account(book, c.venue, c.account, c.asset))
        book.post(ledger.deposit(book, c.venue, c.account, c.asset, c.deposit))
    for v in scenario.venues:
        t = ledger.totals(book, v.id, v.asset)
        outcomes[v.id].liabilities_start = t.liabilities
        outcomes[v.id].reserves_start = t.hot + t.warm + t.cold
    for w in the_plan.withdrawals:
        out = outcomes[w.venue]
        try:
            book.post(ledger.reserve(book, w.venue, w.account, w.asset, w.amount))
            book.post(ledger.pay_out(book, w.venue, w.asset, w.amount))
        except LedgerError as refused:
            out.rejected[refused.reason] = out.rejected.get(refused.reason, 0) + 1
            continue
        out.paid += 1
        out.paid_amount += w.amount
    for v in scenario.venues:
        t = ledger.totals(book, v.id, v.asset)
        outcomes[v.id].liabilities_end = t.liabilities
        outcomes[v.id].hot_end = book.get(ledger.wallet(v.id, Tier.HOT, v.asset).key, 0)
    assert not ledger.invariant_violations(book), ledger.invariant_violations(book)
    return outcomes
