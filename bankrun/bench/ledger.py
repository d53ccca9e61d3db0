"""`bankrun bench ledger`: the pure core's speed — raw postings, and whole withdrawals through
the custody and saga handlers on the in-process bus (what `sim` does per request)."""

from __future__ import annotations

import time
from typing import Any

from bankrun import events as ev
from bankrun.domain import ledger
from bankrun.domain.ledger import InMemoryBook
from bankrun.sim import InProcessBus
from bankrun.workload import all_hot_venue

VENUE = "bench"


def run_ledger_bench(postings: int = 200_000, withdrawals: int = 5_000) -> dict[str, Any]:
    accounts = 1_000
    book = InMemoryBook()
    for i in range(accounts):
        book.post(ledger.open_account(book, VENUE, f"c-{i}", "USD"))
        book.post(ledger.deposit(book, VENUE, f"c-{i}", "USD", 10**12))
    start = time.perf_counter()
    for n in range(postings // 2):
        account = f"c-{n % accounts}"
        book.post(ledger.reserve(book, VENUE, account, "USD", 1))
        book.post(ledger.pay_out(book, VENUE, "USD", 1))
    posting_s = time.perf_counter() - start
    assert not ledger.invariant_violations(book)

    bus = InProcessBus()
    for event in all_hot_venue(VENUE, accounts, 10**12):
        bus.publish(event)
    start = time.perf_counter()
    for n in range(withdrawals):
        bus.publish(
            ev.WithdrawalRequested(
                venue=VENUE,
                scenario_time=n,
                account=f"c-{n % accounts}",
                asset="USD",
                amount=1,
                request_id=f"w-{n}",
            )
        )
    saga_s = time.perf_counter() - start
    paid = sum(isinstance(e, ev.WithdrawalPaid) for e in bus.log)
    assert paid == withdrawals, paid
    return {
        "postings": postings,
        "postings_per_s": postings / posting_s,
        "withdrawals": withdrawals,
        "sim_withdrawals_per_s": withdrawals / saga_s,
        "sim_events_per_withdrawal": (len(bus.log) - accounts - 1) / withdrawals,
    }
