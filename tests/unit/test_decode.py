"""What a service makes of a message: an event, nothing (not its business), or the reason it is
dead-lettered. Never an exception: one bad message must not stop the stream."""

import json

import pytest

from bankrun import events as ev
from bankrun.topics import CUSTOMER_REQUESTS, MARKET_FILLS, MAX_EVENT_BYTES
from services.common.faust_app import decode
from services.custody import handlers as custody
from services.withdrawal import handlers as saga

REQUESTS = frozenset(CUSTOMER_REQUESTS.type_names)
DEPOSIT = ev.DepositMade(venue="safe-1", scenario_time=0, account="whale-1", asset="USD", amount=5)


def spoiled(**fields) -> bytes:
    return json.dumps(json.loads(DEPOSIT.to_bytes()) | fields).encode()


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "invalid_event: no value"),
        (b"", "invalid_event: no value"),
        (b"\x00\xff not an event", "invalid_event: not JSON: 'utf-8' codec can't decode"),
        (DEPOSIT.to_bytes()[:40], "invalid_event: not JSON: Unterminated string"),
        (b"[" * 5_000 + b"]" * 5_000, "invalid_event: not JSON: maximum recursion depth"),
        (b'"deposit.made"', "invalid_event: not a JSON object but a string"),
        (b"null", "invalid_event: not a JSON object but null"),
        (spoiled(type=["deposit.made"]), "invalid_event: type: missing or not a string"),
        (spoiled(type="deposit.lost"), "invalid_event: unknown type 'deposit.lost'"),
        (
            ev.PriceMarked(venue="safe-1", scenario_time=0, market="TOKEN/USD", price=1).to_bytes(),
            "wrong_topic: price.marked is carried by bankrun.market-fills",
        ),
        (
            spoiled(amount="5"),
            "invalid_event: deposit.made.amount: Input should be a valid integer",
        ),
        (spoiled(amount=-5), "invalid_event: deposit.made.amount: Input should be greater than 0"),
        (spoiled(padding="x" * MAX_EVENT_BYTES), "oversized: "),
    ],
)
def test_a_bad_message_comes_back_as_its_reason(value, reason):
    assert decode(value, REQUESTS, custody.HANDLED).startswith(reason)


def test_a_good_event_comes_back_and_one_of_someone_elses_types_is_skipped():
    assert decode(DEPOSIT.to_bytes(), REQUESTS, custody.HANDLED) == DEPOSIT
    assert decode(spoiled(amount=-5), REQUESTS, saga.HANDLED) is None  # custody's to refuse


def test_amounts_custody_books_from_the_market_are_strict_integers():
    done = ev.OrderDone(
        venue="safe-1", scenario_time=0, market="TOKEN/USD", order_id="o-1", requested=10,
        filled=10, proceeds=500,
    )  # fmt: skip
    loose = json.dumps(json.loads(done.to_bytes()) | {"proceeds": "500"}).encode()
    fills = frozenset(MARKET_FILLS.type_names)
    assert decode(done.to_bytes(), fills, custody.HANDLED) == done
    assert "order.done.proceeds: Input should be a valid integer" in decode(
        loose, fills, custody.HANDLED
    )
