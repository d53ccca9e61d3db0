"""Random stories of one venue through the custody and withdrawal handlers (hypothesis).

Customers open accounts, deposit, ask for withdrawals (some too large), cancel them; the clock
moves and mobilizations land; and any event already in the log — a customer's request, a
command, an answer, a snapshot — is delivered again, alone or as the replay of a restarted
worker. After every step the ledger balances with no customer owed a negative amount, no
request is paid twice, every account's money is paid out or still owed, and a duplicate
changes nothing at all.

The services run over durable journals (their records serialized, as on the broker), so a
restart rebuilds each one's state from its records alone.
"""

from __future__ import annotations

import copy
import uuid
from collections import Counter

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from pydantic import ValidationError

from bankrun import events as ev
from bankrun.domain import ledger
from bankrun.domain.withdrawal import Status
from bankrun.sim import InProcessBus
from services.common.journal import Partition
from services.custody import handlers as custody
from services.withdrawal import handlers as saga

VENUE = "prop-venue"
ASSET = "USD"
ACCOUNTS = ("whale-1", "retail-1", "retail-2")
HOUR = 3600.0
OWED = (Status.RESERVED, Status.QUEUED)  # reserved at custody, not yet paid or given back
FULL_RESERVE = {"hot_ratio": 0.2, "warm_ratio": 0.3, "warm_delay_hours": 1, "cold_delay_hours": 6}
VENUES = {
    "full-reserve": {"policy": "full-reserve", "params": FULL_RESERVE},
    "capped": {
        "policy": "full-reserve",
        "params": FULL_RESERVE,
        "gate": {"trigger": "always", "max_per_account_per_day": 3_000},
    },
    "halting": {
        "policy": "full-reserve",
        "params": FULL_RESERVE,
        "gate": {"trigger": "dry", "halt": True, "halt_after_hours": 1},
    },
}
AMOUNTS = st.integers(1, 4_000) | st.integers(4_000, 25_000)  # many fit, some are too large
HANDLERS = {"custody": custody.handle, "withdrawal": saga.handle}


class VenueStory(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.records: dict[str, dict] = {name: {} for name in HANDLERS}
        self.bus = InProcessBus(
            services={name: (Partition(self.records[name]), h) for name, h in HANDLERS.items()}
        )
        self.now = 0.0
        self.history: list[ev.Event] = []  # every distinct event in the log, in order
        self.ids: set[uuid.UUID] = set()
        self.read = 0  # how far into bus.log `history` has been brought
        self.settled: dict[str, set[uuid.UUID]] = {}  # request id -> payout.settled event ids
        self.opened: set[str] = set()
        self.deposited: Counter[str] = Counter()
        self.requests: dict[str, ev.WithdrawalRequested] = {}

    # --- helpers -----------------------------------------------------------------------

    def publish(self, event: ev.Event) -> None:
        self.bus.publish(event)
        for logged in self.bus.log[self.read :]:
            if logged.event_id in self.ids:
                continue
            self.ids.add(logged.event_id)
            self.history.append(logged)
            if isinstance(logged, ev.PayoutSettled):
                self.settled.setdefault(logged.request_id, set()).add(logged.event_id)
        self.read = len(self.bus.log)

    def part(self, service: str) -> Partition:
        return self.bus.services[service][0]

    def states(self) -> dict[str, dict]:
        return {name: copy.deepcopy(self.part(name).state) for name in HANDLERS}

    def withdrawals(self) -> dict[str, dict]:
        state = self.part("withdrawal").state
        prefix = saga.withdrawal_key("")
        return {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}

    def available(self, account: str) -> int:
        return -(self.part("custody").get(ledger.customer(VENUE, account, ASSET).key) or 0)

    def deliver_again(self, events: list[ev.Event]) -> None:
        """Redeliver `events`: nothing may change, and nothing new may be said."""
        before, ids = self.states(), set(self.ids)
        for event in events:
            self.publish(event)
        assert self.states() == before
        assert self.ids == ids

    # --- the story ---------------------------------------------------------------------

    @initialize(
        venue=st.sampled_from(sorted(VENUES)),
        balances=st.lists(st.integers(1, 20_000), min_size=1, max_size=len(ACCOUNTS)),
    )
    def genesis(self, venue: str, balances: list[int]) -> None:
        self.publish(ev.VenueOpened(venue=VENUE, scenario_time=0, **VENUES[venue]))
        for account, amount in zip(ACCOUNTS, balances, strict=False):
            self.publish(
                ev.AccountFunded(
                    venue=VENUE, scenario_time=0, account=account, asset=ASSET, amount=amount
                )
            )
            self.opened.add(account)
            self.deposited[account] += amount
        self.publish(
            ev.ScenarioStarted(
                venue=VENUE, scenario_time=0, started_at=0, speed=1, duration_hours=240
            )
        )

    @rule(account=st.sampled_from(ACCOUNTS))
    def open_account(self, account: str) -> None:
        self.publish(
            ev.AccountOpened(
                event_id=ev.idempotent_id("account", VENUE, f"{account}/{ASSET}"),
                venue=VENUE,
                scenario_time=self.now,
                account=account,
                asset=ASSET,
            )
        )
        self.opened.add(account)

    @rule(account=st.sampled_from(ACCOUNTS), amount=st.integers(1, 10_000))
    def deposit(self, account: str, amount: int) -> None:
        self.publish(
            ev.DepositMade(
                venue=VENUE, scenario_time=self.now, account=account, asset=ASSET, amount=amount
            )
        )
        if account in self.opened:  # an unknown account's deposit is refused
            self.deposited[account] += amount

    @rule(
        kind=st.sampled_from([ev.DepositMade, ev.WithdrawalRequested]),
        amount=st.integers(-10_000, 0) | st.just(1.5) | st.just("100"),
    )
    def refused_at_the_edge(self, kind: type[ev.Event], amount: object) -> None:
        """Zero, negative and non-integer amounts never become events."""
        fields = {"venue": VENUE, "scenario_time": self.now, "account": ACCOUNTS[0]}
        fields |= {"asset": ASSET, "amount": amount, "request_id": "never"}
        if kind is ev.DepositMade:
            del fields["request_id"]
        with pytest.raises(ValidationError, match="amount"):
            kind(**fields)
        with pytest.raises(ValidationError, match="amount"):
            ev.from_dict({"type": ev.type_of(kind), **fields})

    @rule(account=st.sampled_from(ACCOUNTS), amount=AMOUNTS)
    def request_withdrawal(self, account: str, amount: int) -> None:
        request_id = f"w-{len(self.requests)}"
        event = ev.WithdrawalRequested(
            event_id=ev.idempotent_id("withdrawal", VENUE, request_id),  # as the gateway does
            venue=VENUE,
            scenario_time=self.now,
            account=account,
            asset=ASSET,
            request_id=request_id,
            amount=amount,
        )
        self.requests[request_id] = event
        self.publish(event)

    @precondition(lambda self: self.requests)
    @rule(data=st.data(), amount=AMOUNTS)
    def retry_with_another_amount(self, data: st.DataObject, amount: int) -> None:
        """The same request id, so the same event id: the first decision stands."""
        first = self.requests[data.draw(st.sampled_from(sorted(self.requests)))]
        self.deliver_again([first.model_copy(update={"amount": amount})])

    @precondition(lambda self: self.requests)
    @rule(data=st.data())
    def request_id_reused_under_a_new_event_id(self, data: st.DataObject) -> None:
        """A client that bypasses the gateway's ids asks again for a request already made."""
        first = self.requests[data.draw(st.sampled_from(sorted(self.requests)))]
        self.publish(first.model_copy(update={"event_id": uuid.uuid4()}))

    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        request_id = data.draw(st.sampled_from([*sorted(self.requests), "w-unknown"]))
        account = self.requests[request_id].account if request_id in self.requests else "nobody"
        self.publish(
            ev.WithdrawalCancelRequested(
                event_id=ev.idempotent_id("cancel", VENUE, request_id),
                venue=VENUE,
                scenario_time=self.now,
                account=account,
                asset=ASSET,
                request_id=request_id,
            )
        )

    @rule(hours=st.sampled_from([0.25, 1, 6, 24]))
    def tick(self, hours: float) -> None:
        self.now += hours * HOUR
        self.publish(ev.ClockTick(venue=VENUE, scenario_time=self.now))

    @precondition(lambda self: self.history)
    @rule(data=st.data())
    def duplicate(self, data: st.DataObject) -> None:
        """Any event of the log, delivered again (same event id) to whoever reads it."""
        self.deliver_again([data.draw(st.sampled_from(self.history))])

    @precondition(lambda self: self.history)
    @rule(back=st.integers(1, 8))
    def restart_and_replay(self, back: int) -> None:
        """Both workers restart: state rebuilt from the records alone; then the events they had
        not committed are delivered again, in order."""
        for name, handle in HANDLERS.items():
            before = self.part(name)
            rebuilt = Partition(self.records[name]).rebuild()
            assert rebuilt.state == before.state
            assert rebuilt.seq == before.seq
            self.bus.services[name] = (rebuilt, handle)
        self.deliver_again(self.history[-back:])

    @precondition(lambda self: self.withdrawals())
    @rule(data=st.data(), kind=st.sampled_from([ev.PayoutRequested, ev.ReleaseRequested]))
    def command_reissued(self, data: st.DataObject, kind: type[ev.Event]) -> None:
        """A command for a request already paid, given back or refused, sent again under a new
        id (a saga re-deciding after a crash): custody must neither pay nor give back twice."""
        finished = {r: w for r, w in self.withdrawals().items() if w["status"] not in OWED}
        if not finished:
            return
        w = finished[data.draw(st.sampled_from(sorted(finished)))]
        fields = {k: w[k] for k in ("account", "asset", "request_id", "amount", "requested_at")}
        extra = {"reason": "cancelled"} if kind is ev.ReleaseRequested else {}
        before = self.states()["withdrawal"]
        self.publish(kind(venue=VENUE, scenario_time=self.now, **fields, **extra))
        assert self.states()["withdrawal"] == before

    # --- what must always hold ---------------------------------------------------------

    @invariant()
    def the_ledger_balances_and_no_customer_is_owed_less_than_nothing(self) -> None:
        assert ledger.invariant_violations(self.bus.ledger_balances()) == []

    @invariant()
    def nothing_is_paid_twice(self) -> None:
        assert all(len(ids) == 1 for ids in self.settled.values()), self.settled
        paid = {r for r, w in self.withdrawals().items() if w["status"] == Status.PAID}
        assert paid == set(self.settled)

    @invariant()
    def paid_plus_still_owed_is_what_was_deposited(self) -> None:
        paid: Counter[str] = Counter()
        owed: Counter[str] = Counter()
        for w in self.withdrawals().values():
            if w["status"] == Status.PAID:
                paid[w["account"]] += w["amount"]
            elif w["status"] in OWED:
                owed[w["account"]] += w["amount"]
        for account in ACCOUNTS:
            still_owed = self.available(account) + owed[account]
            assert paid[account] + still_owed == self.deposited[account], account
        pending = -(self.part("custody").get(ledger.pending(VENUE, ASSET).key) or 0)
        assert pending == sum(owed.values())


VenueStory.TestCase.settings = settings(
    max_examples=300,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestVenueStory = VenueStory.TestCase


# --- what the story found, kept as plain examples ----------------------------------------


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
