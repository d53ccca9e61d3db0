"""Duplicates and commands sent again: a request's money moves once, and a decision taken
once (doing nothing included) is not taken again."""

from __future__ import annotations

import uuid

from bankrun import events as ev
from bankrun.domain import ledger
from bankrun.domain.withdrawal import Status
from services.common.journal import Partition
from services.custody import handlers as custody
from services.withdrawal import handlers as saga

VENUE = "prop-venue"
ASSET = "USD"
ACCOUNTS = ("whale-1", "retail-1", "retail-2")


def feed(part: Partition, handle, *events: ev.Event) -> list[ev.Event]:
    """Deliver `events` to one service's journal; what it emitted."""
    out: list[ev.Event] = []
    for event in events:
        effects, _ = part.commit(str(event.event_id), lambda e=event: handle(e, part.get))
        out += [o.event or ev.decode(o.value) for o in effects.outputs]
    return out


def ask(request_id: str, amount: int, **fields) -> ev.WithdrawalRequested:
    return ev.WithdrawalRequested(
        venue=VENUE,
        scenario_time=60,
        account="whale-1",
        asset=ASSET,
        request_id=request_id,
        amount=amount,
        **fields,
    )


def command(kind: type[ev.Event], request: ev.WithdrawalRequested, **fields) -> ev.Event:
    step = request.model_dump(include={"account", "asset", "request_id", "amount"})
    return kind(venue=VENUE, scenario_time=120, requested_at=60, **step, **fields)


class TestCustodyMovesARequestsMoneyOnce:
    def setup_method(self):
        self.part = Partition({})
        self.first, self.second = ask("w-1", 300), ask("w-2", 500)
        feed(
            self.part,
            custody.handle,
            ev.VenueOpened(venue=VENUE, scenario_time=0, policy="full-reserve"),
            ev.AccountFunded(
                venue=VENUE, scenario_time=0, account="whale-1", asset=ASSET, amount=1_000
            ),
            self.first,
            self.second,
        )

    def balances(self) -> tuple[int, int]:
        """(the customer's available balance, reserved for withdrawals)"""
        get = self.part.get
        customer = ledger.customer(VENUE, "whale-1", ASSET).key
        return -(get(customer) or 0), -(get(ledger.pending(VENUE, ASSET).key) or 0)

    def test_a_payout_sent_again_under_a_new_id_pays_nothing(self):
        paid = feed(self.part, custody.handle, command(ev.PayoutRequested, self.first))
        again = feed(self.part, custody.handle, command(ev.PayoutRequested, self.first))
        assert [type(e) for e in paid] == [ev.PayoutSettled]
        assert again == []  # it used to be paid twice, out of w-2's reservation
        assert self.balances() == (200, 500)
        assert ledger.invariant_violations(self.part.state) == []

    def test_a_request_paid_or_given_back_is_not_given_back_or_paid_again(self):
        feed(self.part, custody.handle, command(ev.PayoutRequested, self.first))
        feed(self.part, custody.handle, command(ev.ReleaseRequested, self.second, reason="gated"))
        assert self.balances() == (700, 0)
        late = [
            command(ev.ReleaseRequested, self.first, reason="cancelled"),
            command(ev.ReleaseRequested, self.second, reason="cancelled"),
            command(ev.PayoutRequested, self.second),
        ]
        assert feed(self.part, custody.handle, *late) == []
        assert self.balances() == (700, 0)
        assert ledger.invariant_violations(self.part.state) == []

    def test_a_request_id_asked_again_under_a_new_event_id_reserves_nothing_more(self):
        again = self.first.model_copy(update={"event_id": uuid.uuid4()})
        assert feed(self.part, custody.handle, again) == []
        assert self.balances() == (200, 800)  # the saga would never have paid or released it


def test_a_cancel_refused_while_its_payout_was_in_flight_stays_refused_when_redelivered():
    """Decided again once the payout had failed, the redelivered cancel used to cancel."""
    part = Partition({})
    reserved = command(ev.FundsReserved, ask("w-1", 300))
    dry = ev.ReserveSnapshot(
        venue=VENUE,
        scenario_time=60,
        asset=ASSET,
        liabilities=1_000,
        hot=0,
        warm=0,
        cold=1_000,
        transit=0,
        holdings={},
        equity=0,
        waiting=300,
        dry=True,
    )
    feed(part, saga.handle, ev.VenueOpened(venue=VENUE, scenario_time=0, policy="full-reserve"))
    feed(part, saga.handle, reserved)  # no queue: paid at once, a payout in flight
    cancel = ev.WithdrawalCancelRequested(
        venue=VENUE, scenario_time=90, account="whale-1", asset=ASSET, request_id="w-1"
    )
    assert feed(part, saga.handle, cancel) == []  # too late: the payout is on its way
    failed = command(ev.PayoutFailed, ask("w-1", 300), reason="insufficient_liquidity")
    assert [e.type for e in feed(part, saga.handle, failed, dry)] == ["withdrawal.queued"]
    assert feed(part, saga.handle, cancel) == []
    assert part.get(saga.withdrawal_key("w-1"))["status"] == Status.QUEUED
