"""The whole embedded stack: broker, custody, withdrawal, gateway, Prometheus — real processes.

A customer story through the gateway, the gateway's refusals, Prometheus' view of the money,
and finally that stopping the stack leaves no process behind.
"""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from bankrun import events as ev
from bankrun.auth import bearer
from bankrun.runner import kafka
from bankrun.runner.processes import group_alive, wait_until
from bankrun.runner.prometheus import scalar
from bankrun.runner.stack import Stack

pytestmark = pytest.mark.e2e

VENUE = "safe-1"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    run_id = f"e2e-{uuid.uuid4().hex[:8]}"
    the_stack = Stack(tmp_path_factory.mktemp("e2e"), run_id)
    with the_stack:
        asyncio.run(
            kafka.publish(
                the_stack.bootstrap,
                [ev.VenueOpened(venue=VENUE, scenario_time=0, policy="full-reserve")],
            )
        )
        yield the_stack
    assert not any(group_alive(pid) for pid in the_stack.pids())


@pytest.fixture(scope="module")
def api(stack):
    """The operator's client: reads every account; a customer's request adds its own token."""
    operator = bearer(stack.auth.operator())
    with httpx.Client(base_url=stack.gateway_url, timeout=10, headers=operator) as client:
        wait_until(lambda: client.get("/venues").json()["venues"], 30, "venue at the gateway")
        yield client


@pytest.fixture(scope="module")
def as_(stack):
    """The headers a customer calls with (the token Locust would make for it)."""
    return lambda account, venue=VENUE: bearer(stack.auth.customer(venue, account))


def eventually(api, path, check, what, timeout=30.0):
    def ok():
        reply = api.get(path)
        return reply.status_code == 200 and check(reply.json())

    wait_until(ok, timeout, what, interval=0.05)
    return api.get(path).json()


def open_funded(api, account: str, amount: int) -> None:
    opened = api.post("/accounts", json={"venue": VENUE, "account": account})
    assert opened.status_code == 202
    token = opened.json()["token"]  # onboarding hands the account its token
    eventually(api, f"/accounts/{VENUE}/{account}", lambda b: True, f"{account} opened")
    body = {"venue": VENUE, "account": account, "asset": "USD", "amount": amount}
    assert api.post("/deposits", json=body, headers=bearer(token)).status_code == 202
    eventually(
        api,
        f"/accounts/{VENUE}/{account}",
        lambda b: b["balances"]["USD"] == amount,
        f"{account} credited",
    )


class TestCustomerStory:
    def test_deposit_withdraw_and_read_back(self, api, as_):
        open_funded(api, "whale-1", 1_000_000)
        open_funded(api, "minnow-1", 5_000)
        paid = api.post(
            "/withdrawals",
            json={"venue": VENUE, "account": "whale-1", "asset": "USD", "amount": 400_000},
            headers={"Idempotency-Key": "whale-1-first", **as_("whale-1")},
        )
        assert paid.status_code == 202
        too_much = api.post(
            "/withdrawals",
            json={
                "venue": VENUE,
                "account": "minnow-1",
                "asset": "USD",
                "amount": 5_001,
                "request_id": "minnow-greedy",
            },
            headers=as_("minnow-1"),
        )
        assert too_much.status_code == 202

        done = eventually(
            api,
            f"/withdrawals/{VENUE}/whale-1-first",
            lambda b: b["status"] == "paid",
            "whale paid",
        )
        assert done["amount"] == 400_000
        refused = eventually(
            api,
            f"/withdrawals/{VENUE}/minnow-greedy",
            lambda b: b["status"] == "rejected",
            "minnow refused",
        )
        assert refused["reason"] == "insufficient_balance"

        eventually(  # the balance comes on its own topic: not ordered after the outcome
            api,
            f"/accounts/{VENUE}/whale-1",
            lambda b: b["balances"] == {"USD": 600_000},
            "whale's balance",
        )
        eventually(
            api,
            f"/accounts/{VENUE}/minnow-1",
            lambda b: b["balances"] == {"USD": 5_000},
            "reservation released",
        )

    def test_a_retried_withdrawal_is_paid_once(self, api, as_):
        body = {"venue": VENUE, "account": "whale-1", "asset": "USD", "amount": 100_000}
        headers = {"Idempotency-Key": "whale-1-second", **as_("whale-1")}
        assert api.post("/withdrawals", json=body, headers=headers).status_code == 202
        eventually(
            api,
            f"/withdrawals/{VENUE}/whale-1-second",
            lambda b: b["status"] == "paid",
            "second payment",
        )
        again = api.post("/withdrawals", json=body, headers=headers)
        assert again.status_code == 200 and again.json()["status"] == "paid"
        eventually(  # the balance comes on its own topic: not ordered after the outcome
            api,
            f"/accounts/{VENUE}/whale-1",
            lambda b: b["balances"] == {"USD": 500_000},
            "whale's balance",
        )

    def test_the_outcomes_feed_pages_through_the_answers(self, api):
        wanted = {"whale-1-first": "paid", "minnow-greedy": "rejected", "whale-1-second": "paid"}
        whole = eventually(
            api,
            f"/venues/{VENUE}/outcomes",
            lambda b: (
                {(o["request_id"], o["status"]) for o in b["outcomes"]} >= set(wanted.items())
            ),
            "every answer in the feed",
        )
        first = api.get(f"/venues/{VENUE}/outcomes", params={"limit": 1}).json()
        rest = api.get(f"/venues/{VENUE}/outcomes", params={"after": first["next"]}).json()
        assert first["outcomes"] + rest["outcomes"] == whole["outcomes"]
        assert rest["next"] == whole["next"] == len(whole["outcomes"])
        assert api.get(f"/venues/{VENUE}/outcomes", params={"after": -1}).status_code == 422
        assert api.get("/venues/no-such-venue/outcomes").status_code == 404
        venue = api.get(f"/venues/{VENUE}").json()
        assert venue["status"] == "open" and venue["policy"] == "full-reserve"
        assert venue["gated_at"] is None and venue["halted_at"] is None

    def test_prometheus_sees_what_the_venue_owes(self, stack, api):
        owed = 500_000 + 5_000
        promql = (
            f'bankrun_customer_liabilities{{venue="{VENUE}",run_id="{stack.run_id}",'
            f'policy="full-reserve",asset="USD"}}'
        )
        wait_until(
            lambda: scalar(stack.prometheus_url, promql) == owed,
            30,
            f"{promql} == {owed}",
            interval=0.25,
        )
        paid = f'sum(bankrun_withdrawals_total{{venue="{VENUE}",outcome="paid"}})'
        wait_until(
            lambda: scalar(stack.prometheus_url, paid) == 2, 30, f"{paid} == 2", interval=0.25
        )
        hot = f'bankrun_reserves{{venue="{VENUE}",tier="hot",asset="USD"}}'
        wait_until(
            lambda: scalar(stack.prometheus_url, hot) == owed, 30, f"{hot} == {owed}", interval=0.25
        )

    def test_a_long_poll_returns_once_the_venue_answers(self, api, as_):
        body = {"venue": VENUE, "account": "whale-1", "asset": "USD", "amount": 1}
        headers = {"Idempotency-Key": "whale-1-long-poll", **as_("whale-1")}
        assert api.post("/withdrawals", json=body, headers=headers).status_code == 202
        url = f"/withdrawals/{VENUE}/whale-1-long-poll"
        reply = api.get(url, params={"wait": 20}, timeout=30)
        assert reply.status_code == 200 and reply.json()["status"] == "paid"
        assert api.get(url, params={"wait": 31}).status_code == 422


class TestBadRequests:
    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"venue": VENUE, "account": "whale-1", "asset": "USD"}, "amount"),
            ({"venue": VENUE, "account": "whale-1", "asset": "USD", "amount": -5}, "amount"),
            ({"venue": VENUE, "account": "whale-1", "asset": "USD", "amount": 1.5}, "amount"),
            ({"venue": VENUE, "account": "whale-1", "asset": "USD", "amount": "5"}, "amount"),
            ({"venue": VENUE, "account": "whale-1", "asset": "DOGE", "amount": 5}, "asset"),
            ({"venue": VENUE, "account": "Whale 1!", "asset": "USD", "amount": 5}, "account"),
            ({"venue": VENUE, "account": "whale-1", "asset": "USD", "amount": 5, "x": 1}, "x"),
        ],
    )
    @pytest.mark.parametrize("path", ["/deposits", "/withdrawals"])
    def test_invalid_fields_are_named(self, api, as_, path, body, field):
        reply = api.post(path, json=body, headers=as_("whale-1"))
        assert reply.status_code == 422
        assert field in [e["field"] for e in reply.json()["errors"]]
        assert field in reply.json()["detail"]

    @pytest.mark.parametrize("path", ["/deposits", "/withdrawals"])
    def test_unknown_account_and_venue_are_404(self, api, as_, path):
        body = {"venue": VENUE, "account": "nobody", "asset": "USD", "amount": 5}
        reply = api.post(path, json=body, headers=as_("nobody"))
        assert reply.status_code == 404 and "nobody" in reply.json()["detail"]
        reply = api.post(
            path, json={**body, "venue": "no-such-venue"}, headers=as_("nobody", "no-such-venue")
        )
        assert reply.status_code == 404 and "no-such-venue" in reply.json()["detail"]

    def test_not_json_is_422(self, api, as_):
        reply = api.post(
            "/deposits",
            content=b"\x00garbage",
            headers={"content-type": "application/json", **as_("whale-1")},
        )
        assert reply.status_code == 422

    def test_an_idempotency_key_reused_for_another_amount_is_409(self, api, as_):
        body = {"venue": VENUE, "account": "whale-1", "asset": "USD", "amount": 1}
        whale = as_("whale-1")
        first = api.post("/withdrawals", json={**body, "request_id": "k-1"}, headers=whale)
        assert first.status_code == 202
        reply = api.post(
            "/withdrawals", json={**body, "amount": 2, "request_id": "k-1"}, headers=whale
        )
        assert reply.status_code == 409

    def test_only_a_queued_withdrawal_can_be_cancelled(self, api, as_):
        whale = as_("whale-1")
        cancel = f"/withdrawals/{VENUE}/whale-1-first/cancel"
        assert api.post(cancel, headers=whale).status_code == 409
        unknown = f"/withdrawals/{VENUE}/no-such-request/cancel"
        assert api.post(unknown, headers=whale).status_code == 404

    def test_opening_an_existing_account_is_409(self, api):
        reply = api.post("/accounts", json={"venue": VENUE, "account": "minnow-1"})
        assert reply.status_code == 409


def test_the_gateway_serves_the_token_price_from_the_matching_service(stack, api):
    """A market opened and ticked through Kafka: the matching service quotes it, the gateway
    folds its book snapshots, and a customer can read the price; an unknown market is 404."""
    from bankrun.domain.market import DEFAULT_MARKETS

    token = DEFAULT_MARKETS[0]
    asyncio.run(
        kafka.publish(
            stack.bootstrap,
            [
                ev.MarketOpened(scenario_time=0, market=token.symbol, spec=token),
                ev.MarketTick(scenario_time=0, market=token.symbol, news_severity=0.5),
            ],
        )
    )
    body = eventually(
        api, "/markets/PLATFORM/USD", lambda b: b["best_bid"] is not None, "token quoted"
    )
    assert body["price"] == token.start_price
    assert body["best_bid"] < token.start_price < body["best_ask"]
    assert body["stress"] >= 0.5
    assert [m["market"] for m in api.get("/markets").json()["markets"]] == ["PLATFORM/USD"]
    assert api.get("/markets/NOPE/USD").status_code == 404


def test_stopping_the_stack_leaves_no_process(stack):
    pids = stack.pids()
    assert len(pids) == 6  # broker, custody, withdrawal, matching, gateway, prometheus
    stack.stop()
    assert [pid for pid in pids if group_alive(pid)] == []
