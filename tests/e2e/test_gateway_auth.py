"""Security at the real gateway (a uvicorn process on the embedded broker): who may call what,
body and rate limits, and that no token reaches a log or the run folder.

Only the gateway runs; the balances it serves are published straight to its topics, as
custody would publish them. Its limits are set small through the environment it inherits.
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
from bankrun.runner.stack import Stack

pytestmark = pytest.mark.e2e

VENUE = "ftx-like"
BURST = 20


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with pytest.MonkeyPatch.context() as env:
        env.setenv("BANKRUN_RATE_BURST", str(BURST))
        env.setenv("BANKRUN_RATE_PER_ACCOUNT", "1")
        env.setenv("BANKRUN_MAX_BODY_BYTES", "2048")
        env.delenv("BANKRUN_AUTH_SECRET", raising=False)  # the stack makes its own
        run_id = f"auth-{uuid.uuid4().hex[:8]}"
        the_stack = Stack(
            tmp_path_factory.mktemp("auth"), run_id, services=("gateway",), prometheus=False
        )
        with the_stack:
            genesis = [ev.VenueOpened(venue=VENUE, scenario_time=0, policy="full-reserve")]
            genesis += [
                ev.BalanceSnapshot(
                    venue=VENUE, scenario_time=0, account=who, asset="USD", available=1_000
                )
                for who in ("whale-1", "minnow-1", "rate-1")
            ]
            asyncio.run(kafka.publish(the_stack.bootstrap, genesis))
            yield the_stack
    assert not any(group_alive(pid) for pid in the_stack.pids())


@pytest.fixture(scope="module")
def api(stack):
    with httpx.Client(base_url=stack.gateway_url, timeout=10) as client:
        operator = bearer(stack.auth.operator())
        wait_until(
            lambda: client.get(f"/accounts/{VENUE}/rate-1", headers=operator).status_code == 200,
            30,
            "balances at the gateway",
        )
        yield client


@pytest.fixture(scope="module")
def as_(stack):
    """The headers a customer calls with."""
    return lambda account, venue=VENUE: bearer(stack.auth.customer(venue, account))


@pytest.fixture(scope="module")
def operator(stack):
    return bearer(stack.auth.operator())


@pytest.fixture(scope="module")
def whale_request(api, as_):
    """A withdrawal of whale-1's, accepted by the gateway."""
    body = {"venue": VENUE, "account": "whale-1", "asset": "USD", "amount": 10}
    reply = api.post("/withdrawals", json=body, headers={**as_("whale-1"), "Idempotency-Key": "w1"})
    assert reply.status_code == 202, reply.text
    return "w1"


def withdrawal(account: str, **more) -> dict:
    return {"venue": VENUE, "account": account, "asset": "USD", "amount": 5, **more}


class TestWithoutAToken:
    @pytest.mark.parametrize(
        ("method", "path", "body"),
        [
            ("GET", f"/accounts/{VENUE}/whale-1", None),
            ("GET", f"/withdrawals/{VENUE}/w1", None),
            ("POST", "/withdrawals", withdrawal("whale-1")),
            ("POST", "/deposits", withdrawal("whale-1")),
            ("POST", f"/withdrawals/{VENUE}/w1/cancel", None),
            ("GET", f"/venues/{VENUE}/outcomes", None),
            ("GET", f"/venues/{VENUE}/withdrawals", None),
        ],
    )
    @pytest.mark.parametrize(
        "authorization",
        [
            None,
            "Bearer",
            "Basic d2hhbGUtMTpwdw==",
            f"Bearer {VENUE}~whale-1~" + "A" * 43,  # forged
            f"Bearer {VENUE}~whale-1",  # no signature
        ],
    )
    def test_is_401_with_a_bearer_challenge(
        self, api, whale_request, method, path, body, authorization
    ):
        headers = {"Authorization": authorization} if authorization else {}
        reply = api.request(method, path, json=body, headers=headers)
        assert reply.status_code == 401, reply.text
        assert reply.headers["www-authenticate"].startswith("Bearer")

    def test_a_token_from_another_secret_is_401(self, api):
        from bankrun.auth import Tokens

        stranger = Tokens.generate().customer(VENUE, "whale-1")
        assert api.get(f"/accounts/{VENUE}/whale-1", headers=bearer(stranger)).status_code == 401

    @pytest.mark.parametrize(
        "path", ["/venues", f"/venues/{VENUE}", "/markets", "/ready", "/metrics", "/openapi.json"]
    )
    def test_public_routes_stay_public(self, api, path):
        assert api.get(path).status_code == 200


class TestAnotherCustomersAccount:
    """minnow-1, with a valid token of its own, reaches for whale-1's account: 403."""

    def test_balance(self, api, as_):
        assert api.get(f"/accounts/{VENUE}/whale-1", headers=as_("minnow-1")).status_code == 403
        mine = api.get(f"/accounts/{VENUE}/minnow-1", headers=as_("minnow-1"))
        assert mine.status_code == 200 and mine.json()["balances"] == {"USD": 1_000}

    def test_withdrawal_status(self, api, as_, whale_request):
        path = f"/withdrawals/{VENUE}/{whale_request}"
        assert api.get(path, headers=as_("minnow-1")).status_code == 403
        assert api.get(path, headers=as_("whale-1")).status_code == 200

    def test_withdraw(self, api, as_):
        reply = api.post("/withdrawals", json=withdrawal("whale-1"), headers=as_("minnow-1"))
        assert reply.status_code == 403

    def test_deposit(self, api, as_):
        reply = api.post("/deposits", json=withdrawal("whale-1"), headers=as_("minnow-1"))
        assert reply.status_code == 403

    def test_cancel(self, api, as_, whale_request):
        path = f"/withdrawals/{VENUE}/{whale_request}/cancel"
        assert api.post(path, headers=as_("minnow-1")).status_code == 403
        assert api.post(path, headers=as_("whale-1")).status_code == 409  # its own: not queued

    def test_a_token_for_the_same_account_at_another_venue(self, api, as_):
        reply = api.get(f"/accounts/{VENUE}/whale-1", headers=as_("whale-1", "other-venue"))
        assert reply.status_code == 403

    def test_the_operator_reads_but_does_not_move_a_customers_money(self, api, operator):
        assert api.get(f"/accounts/{VENUE}/whale-1", headers=operator).status_code == 200
        reply = api.post("/withdrawals", json=withdrawal("whale-1"), headers=operator)
        assert reply.status_code == 403


class TestOperatorRoutes:
    @pytest.mark.parametrize("path", [f"/venues/{VENUE}/outcomes", f"/venues/{VENUE}/withdrawals"])
    def test_a_customer_token_is_403_the_operator_token_200(self, api, as_, operator, path):
        assert api.get(path, headers=as_("whale-1")).status_code == 403
        assert api.get(path, headers=operator).status_code == 200
        assert api.get(path).status_code == 401


class TestOnboarding:
    def test_a_new_account_gets_its_token_once(self, api):
        reply = api.post("/accounts", json={"venue": VENUE, "account": "newbie-1"})
        assert reply.status_code == 202, reply.text
        token = reply.json()["token"]
        assert token.startswith(f"{VENUE}~newbie-1~")
        again = api.post("/accounts", json={"venue": VENUE, "account": "newbie-1"})
        assert again.status_code == 409 and "token" not in again.text
        # the token works at once (the account is not in the read model yet: 404, not 401/403)
        assert api.get(f"/accounts/{VENUE}/newbie-1", headers=bearer(token)).status_code == 404

    def test_an_existing_account_cannot_be_signed_up_again_in_another_asset(self, api, as_):
        body = {"venue": VENUE, "account": "whale-1", "asset": "BTC"}
        assert api.post("/accounts", json=body).status_code == 409
        assert api.post("/accounts", json=body, headers=as_("minnow-1")).status_code == 409
        mine = api.post("/accounts", json=body, headers=as_("whale-1"))
        assert mine.status_code == 202


class TestValidation:
    @pytest.mark.parametrize(
        "path",
        [
            f"/accounts/{VENUE}/Whale%201",
            "/accounts/FTX/whale-1",
            f"/withdrawals/{VENUE}/bad%20id",
        ],
    )
    def test_identifiers_in_the_path_are_validated(self, api, operator, path):
        assert api.get(path, headers=operator).status_code == 422

    def test_a_body_over_the_limit_is_413(self, api, as_):
        big = withdrawal("whale-1", request_id="x" * 100) | {"pad": "y" * 4000}
        reply = api.post("/withdrawals", json=big, headers=as_("whale-1"))
        assert reply.status_code == 413

    def test_a_chunked_body_over_the_limit_is_413(self, api, as_):
        def chunks():
            for _ in range(10):
                yield b"x" * 512

        reply = api.post(
            "/withdrawals",
            content=chunks(),
            headers={**as_("whale-1"), "content-type": "application/json"},
        )
        assert reply.status_code == 413


def test_a_burst_beyond_the_rate_is_429_for_that_account_only(api, as_):
    path = f"/accounts/{VENUE}/rate-1"
    codes = [api.get(path, headers=as_("rate-1")).status_code for _ in range(BURST + 5)]
    assert codes[:BURST] == [200] * BURST
    assert 429 in codes[BURST:]
    limited = api.get(path, headers=as_("rate-1"))
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert api.get(f"/accounts/{VENUE}/minnow-1", headers=as_("minnow-1")).status_code == 200


def test_no_token_or_secret_is_in_the_log_or_the_run_folder(stack, api, as_, operator):
    """After every request above: the gateway's log and every file of the run folder."""
    api.get(f"/accounts/{VENUE}/whale-1", headers=as_("whale-1"))
    secrets = [
        stack.auth.env()["BANKRUN_AUTH_SECRET"],
        stack.auth.operator(),
        *(stack.auth.customer(VENUE, a) for a in ("whale-1", "minnow-1", "rate-1", "newbie-1")),
    ]
    signatures = [s.rsplit("~", 1)[-1] for s in secrets]
    log = (stack.log_dir / "gateway.log").read_text()
    assert "GET /accounts/ftx-like/whale-1" in log  # the access log is there, without headers
    for path in stack.run_dir.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert not [s for s in secrets + signatures if s in text], path
