"""The withdrawal saga: custody's answers move each request along its state machine.

reserved -> pay now, unless the venue is halted or a gate caps the customer (then rejected and
the funds released), or the operator has gated it (then queued until the gate is lifted); a
payout that fails for want of cash joins a strict FIFO queue, drained whenever custody reports
cash in the hot wallet. Nobody jumps the queue: while it is not empty, new requests join its
tail (the sequential service that makes runs rational).
Pure: reads the saga's state through a lookup, returns `Effects`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from bankrun import events as ev
from bankrun.domain.policies import Gate
from bankrun.domain.withdrawal import Status, Withdrawal
from services.common.journal import Dispatch, Effects, View, dispatch

Lookup = Callable[[str], Any]
DAY = 86_400.0
LIQUIDITY = "insufficient_liquidity"


def withdrawal_key(request_id: str) -> str:
    return f"withdrawal/{request_id}"


def venue_key(venue: str) -> str:
    return f"venue/{venue}"


def queue_key(venue: str, what: str) -> str:
    return f"queue/{venue}/{what}"


def halted_key(venue: str) -> str:
    return f"halted/{venue}"


def operator_gate_key(venue: str) -> str:
    """The operator's gate while it stands: `{"at": scenario time, "cap": per account per
    day, or None to hold every payment}`."""
    return f"operator-gate/{venue}"


def handle(event: ev.Event, lookup: Lookup) -> Effects:
    return dispatch(_HANDLERS, event, lookup)


class Saga:
    """One event's work on one venue's withdrawals."""

    def __init__(self, event: ev.Event, state: View, effects: Effects):
        self.event = event
        self.venue = event.venue
        self.state = state
        self.effects = effects
        self.now = event.scenario_time

    @property
    def config(self) -> dict[str, Any]:
        return self.state.get(venue_key(self.venue)) or {}

    @property
    def gate(self) -> Gate | None:
        raw = self.config.get("gate")
        return _gate(frozenset(raw.items())) if raw else None

    @property
    def halted(self) -> bool:
        return self.state.get(halted_key(self.venue)) is not None

    @property
    def paused(self) -> bool:
        """The operator's gate without a cap holds every payment."""
        gate = self.state.get(operator_gate_key(self.venue))
        return gate is not None and gate["cap"] is None

    def cap(self) -> int | None:
        """What one account may take out per scenario day: the operator's gate's cap, or a
        tripped scenario gate's."""
        gate = self.state.get(operator_gate_key(self.venue))
        if gate is not None and gate["cap"] is not None:
            return gate["cap"]
        if self.gate is None or self.state.get(f"gate-tripped/{self.venue}") is None:
            return None
        return self.gate.max_per_account_per_day

    def load(self, step: Any) -> Withdrawal:
        stored = self.state.get(withdrawal_key(step.request_id))
        if stored:
            return Withdrawal.from_dict(stored)
        return Withdrawal(
            requested_wall=step.requested_wall,
            request_id=step.request_id,
            venue=step.venue,
            account=step.account,
            asset=step.asset,
            amount=step.amount,
            requested_at=step.requested_at,
        )

    def move(self, w: Withdrawal, status: Status, reason: str | None = None) -> Withdrawal | None:
        moved = w.to(status, self.now, reason)
        if moved is not None:
            self.state.set(withdrawal_key(w.request_id), moved.to_dict())
        return moved

    def fields(self, w: Withdrawal) -> dict[str, Any]:
        return {
            "account": w.account,
            "asset": w.asset,
            "request_id": w.request_id,
            "amount": w.amount,
            "requested_at": w.requested_at,
            "requested_wall": w.requested_wall,
        }

    def reject(self, w: Withdrawal, reason: str, release: bool) -> None:
        was_queued = w.status is Status.QUEUED
        if self.move(w, Status.REJECTED, reason) is None:
            return
        if was_queued:
            self.bump(queue_key(self.venue, "depth"), -1)
        if release:
            self.effects.emit(
                self.event.caused(
                    ev.ReleaseRequested, label=w.request_id, reason=reason, **self.fields(w)
                )
            )
        self.effects.emit(
            self.event.caused(
                ev.WithdrawalRejected, label=w.request_id, reason=reason, **self.fields(w)
            )
        )

    def pay(self, w: Withdrawal) -> None:
        self.state.set(f"inflight/{w.request_id}", True)
        self.effects.emit(
            self.event.caused(ev.PayoutRequested, label=w.request_id, **self.fields(w))
        )

    def enqueue(self, w: Withdrawal) -> None:
        tail = self.state.get(queue_key(self.venue, "tail"), 0)
        if self.move(w, Status.QUEUED) is None:
            return
        self.state.set(queue_key(self.venue, str(tail)), w.request_id)
        self.state.set(queue_key(self.venue, "tail"), tail + 1)
        self.bump(queue_key(self.venue, "depth"), 1)
        head = self.state.get(queue_key(self.venue, "head"), 0)
        self.effects.emit(
            self.event.caused(
                ev.WithdrawalQueued, label=w.request_id, position=tail - head, **self.fields(w)
            )
        )

    def bump(self, key: str, amount: int) -> None:
        self.effects.increments[key] = self.effects.increments.get(key, 0) + amount

    def queue_empty(self) -> bool:
        return self.state.get(queue_key(self.venue, "depth"), 0) <= 0

    def drain(self, cash: int) -> None:
        """Pay queued requests in order while the hot wallet covers them; stop at the first
        that does not fit. Requests already sent to custody count against the cash."""
        head = self.state.get(queue_key(self.venue, "head"), 0)
        tail = self.state.get(queue_key(self.venue, "tail"), 0)
        position, advancing = head, True
        while position < tail:
            w = Withdrawal.from_dict(
                self.state.get(withdrawal_key(self.state.get(queue_key(self.venue, str(position)))))
            )
            if w.status is not Status.QUEUED:
                if advancing:
                    head = position + 1
                position += 1
                continue
            advancing = False
            if w.amount > cash:
                break
            cash -= w.amount
            if not self.state.get(f"inflight/{w.request_id}"):
                self.pay(w)
            position += 1
        self.state.set(queue_key(self.venue, "head"), head)

    def trip_gate(self, dry: bool, liquid_ratio: float | None) -> None:
        gate = self.gate
        if gate is None or not gate.tripped(dry, liquid_ratio):
            return
        tripped_at = self.state.get(f"gate-tripped/{self.venue}")
        if tripped_at is None:
            tripped_at = self.now
            self.state.set(f"gate-tripped/{self.venue}", tripped_at)
            self.effects.emit(self.event.caused(ev.VenueGated, reason=f"gate_{gate.trigger}"))
        if gate.halt and not self.halted and self.now >= tripped_at + gate.halt_after_hours * 3600:
            self.halt(f"gate_{gate.trigger}")

    def halt(self, reason: str) -> None:
        """Stop withdrawals, and tell every venue that placed money here that its claim is
        frozen: an event keyed by the creditor, which only its own custody may book. The
        venue's own custody is told to fund no more draws on the credit lines it extended."""
        self.state.set(halted_key(self.venue), self.now)
        self.effects.emit(self.event.caused(ev.VenueHalted, reason=reason))
        if self.config.get("extends_lines"):
            self.effects.emit(self.event.caused(ev.CreditLineClosed, reason=reason))
        for c in self.config.get("creditors", []):
            self.effects.emit(
                self.event.caused(
                    ev.ClaimFrozen,
                    label=f"{c['lender']}/{c['kind']}",
                    venue=c["lender"],
                    counterparty=self.venue,
                    kind=c["kind"],
                    amount=c["amount"],
                    recovery=c["recovery"],
                    reason=reason,
                )
            )

    def capped(self, w: Withdrawal) -> bool:
        """A tripped gate caps what one account may take out per scenario day."""
        cap = self.cap()
        if cap is None:
            return False
        key = f"day/{self.venue}/{w.account}/{int(self.now // DAY)}"
        used = self.state.get(key, 0)
        if used + w.amount > cap:
            return True
        self.bump(key, w.amount)
        return False


@functools.lru_cache(maxsize=256)
def _gate(fields: frozenset[tuple[str, Any]]) -> Gate:
    """A venue's gate, validated once: the saga asks for it on every request it reserves."""
    return Gate.model_validate(dict(fields))


def _venue_opened(event: ev.VenueOpened, state: View, effects: Effects) -> None:
    if event.gate:
        Gate.model_validate(event.gate)
    creditors = [c.model_dump() for c in event.claims if c.borrower == event.venue]
    extends_lines = any(c.lender == event.venue and c.kind == "credit_line" for c in event.claims)
    state.set(
        venue_key(event.venue),
        {
            "policy": event.policy,
            "gate": event.gate,
            "creditors": creditors,
            "extends_lines": extends_lines,
        },
    )


def _buffer_dry(event: ev.BufferDry, state: View, effects: Effects) -> None:
    Saga(event, state, effects).trip_gate(dry=True, liquid_ratio=None)


def _reserve_snapshot(event: ev.ReserveSnapshot, state: View, effects: Effects) -> None:
    saga = Saga(event, state, effects)
    ratio = event.hot / event.liabilities if event.liabilities else None
    saga.trip_gate(dry=event.dry, liquid_ratio=ratio)
    if not saga.halted and not saga.paused and not saga.queue_empty():
        saga.drain(event.hot)


def _funds_reserved(event: ev.FundsReserved, state: View, effects: Effects) -> None:
    saga = Saga(event, state, effects)
    w = saga.load(event)
    if w.status is not Status.REQUESTED:
        return
    if saga.halted:
        saga.reject(w, "venue_halted", release=True)
    elif saga.capped(w):
        saga.reject(w, "gated", release=True)
    else:
        reserved = saga.move(w, Status.RESERVED)
        assert reserved is not None  # it was requested
        if saga.paused or not saga.queue_empty():
            saga.enqueue(reserved)
        else:
            saga.pay(reserved)


def _funds_rejected(event: ev.FundsRejected, state: View, effects: Effects) -> None:
    saga = Saga(event, state, effects)
    saga.reject(saga.load(event), event.reason, release=False)


def _payout_settled(event: ev.PayoutSettled, state: View, effects: Effects) -> None:
    saga = Saga(event, state, effects)
    w = saga.load(event)
    was_queued = w.status is Status.QUEUED
    if saga.move(w, Status.PAID) is None:
        return
    state.set(f"inflight/{w.request_id}", False)
    if was_queued:
        saga.bump(queue_key(event.venue, "depth"), -1)
    effects.emit(
        event.caused(
            ev.WithdrawalPaid, latency_s=max(0.0, saga.now - w.requested_at), **saga.fields(w)
        )
    )


def _payout_failed(event: ev.PayoutFailed, state: View, effects: Effects) -> None:
    saga = Saga(event, state, effects)
    w = saga.load(event)
    state.set(f"inflight/{w.request_id}", False)
    if event.reason != LIQUIDITY:
        saga.reject(w, event.reason, release=True)
    elif w.status is Status.RESERVED:
        saga.enqueue(w)


def _cancel_requested(event: ev.WithdrawalCancelRequested, state: View, effects: Effects) -> None:
    """Only a request still waiting in the queue, with no payout in flight, can be taken back."""
    saga = Saga(event, state, effects)
    stored = state.get(withdrawal_key(event.request_id))
    if not stored or state.get(f"inflight/{event.request_id}"):
        return
    w = Withdrawal.from_dict(stored)
    if w.status is not Status.QUEUED or saga.move(w, Status.CANCELLED) is None:
        return
    saga.bump(queue_key(event.venue, "depth"), -1)
    effects.emit(
        event.caused(ev.ReleaseRequested, reason="cancelled", **saga.fields(w)),
        event.caused(ev.WithdrawalCancelled, **saga.fields(w)),
    )


def _gate_requested(event: ev.GateRequested, state: View, effects: Effects) -> None:
    """The operator's gate: without a cap, reserved requests queue and the queue is not
    drained; with one, each account may take out that much per scenario day (the rest is
    refused `gated`, as a scenario gate's cap refuses it). Lifted, the next reserve snapshot
    drains the queue as cash allows. The same gate again, or a lift of an open venue, changes
    nothing; a new cap replaces the old."""
    key = operator_gate_key(event.venue)
    standing = state.get(key)
    if event.gated:
        if standing is None or standing["cap"] != event.max_per_account_per_day:
            state.set(key, {"at": event.scenario_time, "cap": event.max_per_account_per_day})
            effects.emit(event.caused(ev.VenueGated, reason=event.reason))
    elif standing is not None:
        state.set(key, None)
        effects.emit(event.caused(ev.VenueUngated, reason=event.reason))


def _halt_requested(event: ev.HaltRequested, state: View, effects: Effects) -> None:
    """The operator's halt is the gate's halt: requests refused, creditors' claims frozen."""
    saga = Saga(event, state, effects)
    if state.get(venue_key(event.venue)) is not None and not saga.halted:
        saga.halt(event.reason)


def _policy_changed(event: ev.PolicyChanged, state: View, effects: Effects) -> None:
    """Custody switched the policy: the saga's metrics are labelled with the new one."""
    config = state.get(venue_key(event.venue))
    if config is not None:
        state.set(venue_key(event.venue), {**config, "policy": event.policy})


_HANDLERS: Dispatch = {
    ev.VenueOpened: _venue_opened,
    ev.BufferDry: _buffer_dry,
    ev.ReserveSnapshot: _reserve_snapshot,
    ev.FundsReserved: _funds_reserved,
    ev.FundsRejected: _funds_rejected,
    ev.PayoutSettled: _payout_settled,
    ev.PayoutFailed: _payout_failed,
    ev.WithdrawalCancelRequested: _cancel_requested,
    ev.GateRequested: _gate_requested,
    ev.HaltRequested: _halt_requested,
    ev.PolicyChanged: _policy_changed,
}
HANDLED = frozenset(cls.model_fields["type"].default for cls in _HANDLERS)
