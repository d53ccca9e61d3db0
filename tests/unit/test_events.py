import hashlib
import uuid

import pytest
from pydantic import ValidationError

from bankrun import events as ev


def request(**overrides) -> ev.WithdrawalRequested:
    fields = dict(
        venue="ftx-like",
        scenario_time=3600.0,
        account="whale-1",
        asset="USD",
        request_id="r-1",
        amount=1_000_00,
    )
    return ev.WithdrawalRequested(**{**fields, **overrides})


def test_every_event_round_trips_through_json():
    original = request()
    assert ev.decode(original.to_bytes()) == original


def test_the_envelope_is_on_every_event_type():
    for cls in ev.EVENT_TYPES.values():
        for name in (
            "event_id",
            "type",
            "schema_version",
            "venue",
            "scenario_time",
            "occurred_at",
            "correlation_id",
            "causation_id",
        ):
            assert name in cls.model_fields, (cls.__name__, name)


def test_a_caused_event_links_to_its_cause_with_a_stable_id():
    cause = request()
    fields = dict(account="whale-1", asset="USD", request_id="r-1", amount=1, requested_at=3600.0)
    a = cause.caused(ev.FundsReserved, **fields)
    b = cause.caused(ev.FundsReserved, **fields)
    other = cause.caused(ev.FundsReserved, label="second", **fields)
    assert a.event_id == b.event_id != cause.event_id
    assert other.event_id != a.event_id
    assert a.causation_id == cause.event_id == a.correlation_id
    assert a.scenario_time == cause.scenario_time


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"amount": -5}, "amount"),
        ({"amount": 1.5}, "amount"),
        ({"amount": "100"}, "amount"),
        ({"asset": "DOGE"}, "asset"),
        ({"venue": "Bad Venue!"}, "venue"),
        ({"scenario_time": -1}, "scenario_time"),
    ],
)
def test_bad_fields_are_named(overrides, field):
    with pytest.raises(ValidationError) as bad:
        request(**overrides)
    assert field in {e["loc"][0] for e in bad.value.errors()}


def test_garbage_does_not_decode():
    with pytest.raises(ValidationError):
        ev.decode(b"\x00\xffnot json")
    with pytest.raises(ValidationError):
        ev.decode(b'{"type": "no.such.event", "venue": "x", "scenario_time": 0}')


def test_derived_ids_differ_by_label():
    cause = uuid.uuid4()
    assert ev.derived_id(cause, "a") != ev.derived_id(cause, "b")


def test_derived_ids_are_version_5_uuids_of_cause_and_label():
    """What `uuid.uuid5` does (SHA-1 of the namespace and the name, as a version 5 UUID),
    the name being the cause's bytes and the label: every replay derives the same id."""
    cause = uuid.uuid4()
    digest = hashlib.sha1(ev._NAMESPACE_BYTES + cause.bytes + b"withdrawal.paid/r-1").digest()
    expected = uuid.UUID(bytes=digest[:16], version=5)
    made = ev.derived_id(cause, "withdrawal.paid/r-1")
    assert made == expected and made.version == 5 and made.variant == uuid.RFC_4122
    assert hash(made) == hash(expected) and str(made) == str(expected)


def test_an_event_with_no_cause_gets_a_fresh_random_uuid():
    ids = [ev.random_id() for _ in range(1_000)]
    assert len(set(ids)) == len(ids)
    for made in ids[:50]:
        assert made.version == 4 and made.variant == uuid.RFC_4122
        assert uuid.UUID(str(made)) == made and made.is_safe is uuid.SafeUUID.unknown
    tick = ev.ClockTick(venue="v", scenario_time=0.0)
    assert tick.event_id.version == 4
