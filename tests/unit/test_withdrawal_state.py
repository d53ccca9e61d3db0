import pytest

from bankrun.domain.withdrawal import InvalidTransition, Status, Withdrawal


def request() -> Withdrawal:
    return Withdrawal("r-1", "safe-1", "whale-1", "USD", 500, requested_at=10.0)


def test_the_happy_path_ends_paid_with_a_latency():
    paid = request().to(Status.RESERVED, 11.0).to(Status.PAID, 12.5)
    assert paid.status is Status.PAID
    assert paid.latency == 2.5


def test_repeating_a_transition_is_a_no_op():
    reserved = request().to(Status.RESERVED, 11.0)
    assert reserved.to(Status.RESERVED, 11.0) is None


def test_a_final_state_never_moves():
    rejected = request().to(Status.REJECTED, 11.0, "insufficient_balance")
    assert rejected.reason == "insufficient_balance"
    with pytest.raises(InvalidTransition):
        rejected.to(Status.PAID, 12.0)


def test_paid_needs_a_reservation_first():
    with pytest.raises(InvalidTransition):
        request().to(Status.PAID, 11.0)


def test_round_trips_through_a_dict():
    w = request().to(Status.RESERVED, 11.0)
    assert Withdrawal.from_dict(w.to_dict()) == w
