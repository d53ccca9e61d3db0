r"""The withdrawal saga as a state machine, idempotent by request id.

requested -> reserved -> paid
    |            |-> queued -> paid        (waited, first in first out, for liquidity)
    |            |          |-> rejected  (released back to the customer)
    |            |          \-> cancelled (by the customer, while it waits)
    |            \-> rejected
    \-> rejected (insufficient balance, unknown account)

Repeating a transition that already happened is a no-op, so redelivered events change
nothing; a transition that contradicts the current state raises `InvalidTransition`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    REQUESTED = "requested"
    RESERVED = "reserved"
    QUEUED = "queued"
    PAID = "paid"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


FINAL = frozenset({Status.PAID, Status.REJECTED, Status.CANCELLED})
#: a stored status's text to its member: `Status(text)` runs the enum's look-up in Python
#: (0.27 µs, against 0.03 µs here) on every withdrawal read back from state
_STATUS_OF = {status.value: status for status in Status}

_ALLOWED: dict[Status, frozenset[Status]] = {
    Status.REQUESTED: frozenset({Status.RESERVED, Status.REJECTED}),
    Status.RESERVED: frozenset({Status.PAID, Status.QUEUED, Status.REJECTED}),
    Status.QUEUED: frozenset({Status.PAID, Status.REJECTED, Status.CANCELLED}),
    Status.PAID: frozenset(),
    Status.REJECTED: frozenset(),
    Status.CANCELLED: frozenset(),
}


class InvalidTransition(Exception):
    pass


@dataclass(frozen=True)
class Withdrawal:
    request_id: str
    venue: str
    account: str
    asset: str
    amount: int
    status: Status = Status.REQUESTED
    reason: str | None = None
    requested_at: float = 0.0  # scenario seconds
    finished_at: float | None = None
    requested_wall: float | None = None  # ops only: wall latency for metrics, never decisions

    def to(self, status: Status, at: float, reason: str | None = None) -> Withdrawal | None:
        """The withdrawal after moving to `status`, or None when it is already there."""
        if status == self.status:
            return None
        if status not in _ALLOWED[self.status]:
            raise InvalidTransition(f"{self.request_id}: {self.status} -> {status}")
        return Withdrawal(  # not `dataclasses.replace`, which costs twice this on every move
            request_id=self.request_id,
            venue=self.venue,
            account=self.account,
            asset=self.asset,
            amount=self.amount,
            status=status,
            reason=reason,
            requested_at=self.requested_at,
            finished_at=at if status in FINAL else self.finished_at,
            requested_wall=self.requested_wall,
        )

    @property
    def latency(self) -> float | None:
        """Scenario seconds from request to final outcome."""
        return None if self.finished_at is None else self.finished_at - self.requested_at

    def to_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "venue": self.venue,
            "account": self.account,
            "asset": self.asset,
            "amount": self.amount,
            "status": self.status._value_,  # `.value` is a Python-level property
            "reason": self.reason,
            "requested_at": self.requested_at,
            "finished_at": self.finished_at,
            "requested_wall": self.requested_wall,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Withdrawal:
        return cls(**{**data, "status": _STATUS_OF[data["status"]]})
