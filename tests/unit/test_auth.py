"""Bearer tokens made from the run's secret, and the gateway's request limits."""

from __future__ import annotations

import asyncio
import hmac

import pytest

from bankrun import auth
from bankrun.auth import Caller, SecretMissing, Tokens
from services.gateway.limits import BodyLimit, RateLimit

SECRET = "correct-horse-battery-staple-0123456789"


@pytest.fixture
def tokens() -> Tokens:
    return Tokens(SECRET)


class TestTokens:
    def test_a_customer_token_names_its_account(self, tokens):
        token = tokens.customer("ftx-like", "whale-1")
        assert token.startswith("ftx-like~whale-1~")
        assert tokens.check(token) == Caller("ftx-like", "whale-1")
        assert not tokens.check(token).operator

    def test_ids_with_dots_and_dashes_split_one_way(self, tokens):
        token = tokens.customer("v.1-a", "c.2_b")
        assert tokens.check(token) == Caller("v.1-a", "c.2_b")

    def test_the_operator_token_is_the_operator(self, tokens):
        assert tokens.check(tokens.operator()) == Caller()
        assert tokens.check(tokens.operator()).operator

    def test_a_token_made_with_another_secret_is_refused(self, tokens):
        other = Tokens("another-secret-another-secret")
        assert tokens.check(other.customer("ftx-like", "whale-1")) is None
        assert tokens.check(other.operator()) is None

    def test_a_signature_moved_to_another_account_is_refused(self, tokens):
        signature = tokens.customer("ftx-like", "whale-1").rsplit("~", 1)[1]
        assert tokens.check(f"ftx-like~minnow-1~{signature}") is None
        assert tokens.check(f"other~whale-1~{signature}") is None
        assert tokens.check(f"operator~{signature}") is None

    @pytest.mark.parametrize(
        "mangle",
        [
            lambda t: t[:-1],  # truncated
            lambda t: t + "A",  # extended
            lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # one character changed
            lambda t: t.rsplit("~", 1)[0],  # no signature
            lambda t: t.rsplit("~", 1)[0] + "~",  # empty signature
            lambda t: t.replace("~", ".", 1),  # one separator less
            lambda t: "x~" + t,  # one separator more
            lambda t: t.upper(),
            lambda t: "",
        ],
    )
    def test_a_mangled_token_is_refused(self, tokens, mangle):
        assert tokens.check(mangle(tokens.customer("ftx-like", "whale-1"))) is None
        assert tokens.check(mangle(tokens.operator())) is None

    def test_tokens_are_compared_in_constant_time(self, tokens, monkeypatch):
        compared = []
        real = hmac.compare_digest

        def spy(a, b):
            compared.append((a, b))
            return real(a, b)

        monkeypatch.setattr(auth.hmac, "compare_digest", spy)
        token = tokens.customer("ftx-like", "whale-1")
        assert tokens.check(token) is not None
        assert tokens.check(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
        assert len(compared) == 2

    def test_a_token_for_a_non_id_cannot_be_made(self, tokens):
        with pytest.raises(ValueError):
            tokens.customer("FTX", "whale 1")

    def test_the_header(self, tokens):
        assert auth.bearer("abc") == {"Authorization": "Bearer abc"}


class TestSecret:
    def test_from_the_environment(self):
        made = Tokens.from_env({auth.SECRET_ENV: SECRET})
        assert made.check(Tokens(SECRET).operator()) is not None

    def test_from_a_file(self, tmp_path):
        path = tmp_path / "secret"
        path.write_text(SECRET + "\n")
        made = Tokens.from_env({auth.SECRET_FILE_ENV: str(path)})
        assert made.check(Tokens(SECRET).operator()) is not None

    @pytest.mark.parametrize(
        "environ",
        [{}, {auth.SECRET_ENV: ""}, {auth.SECRET_ENV: "short"}, {auth.SECRET_FILE_ENV: "/nope"}],
    )
    def test_none_or_a_weak_one_is_refused(self, environ):
        with pytest.raises(SecretMissing):
            Tokens.from_env(environ)

    def test_the_child_environment_carries_it(self):
        assert Tokens(SECRET).env() == {auth.SECRET_ENV: SECRET}

    def test_each_run_gets_its_own(self):
        assert Tokens.generate().operator() != Tokens.generate().operator()


class TestRateLimit:
    def test_a_burst_then_the_rate(self):
        limit = RateLimit(rate=2.0, burst=3)
        assert [limit.take("a", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
        assert limit.take("a", 0.0) == pytest.approx(0.5)  # one token comes in half a second
        assert limit.take("a", 0.5) == 0.0
        assert limit.take("a", 0.5) > 0

    def test_accounts_have_their_own_buckets(self):
        limit = RateLimit(rate=1.0, burst=1)
        assert limit.take("a", 0.0) == 0.0
        assert limit.take("a", 0.0) > 0
        assert limit.take("b", 0.0) == 0.0

    def test_an_idle_bucket_refills_only_to_the_burst(self):
        limit = RateLimit(rate=10.0, burst=2)
        limit.take("a", 0.0)
        assert [limit.take("a", 100.0) for _ in range(3)][-1] > 0


class TestBodyLimit:
    @staticmethod
    def call(limit: int, headers: list, chunks: list[bytes]) -> tuple[int, bytes]:
        seen = {}

        async def app(scope, receive, send):
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            seen["body"] = body
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b""})

        messages = [
            {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
            for i, c in enumerate(chunks)
        ]
        sent = []

        async def receive():
            return messages.pop(0)

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "headers": headers}
        asyncio.run(BodyLimit(app, limit)(scope, receive, send))
        return sent[0]["status"], seen.get("body", b"")

    def test_a_declared_length_over_the_limit_is_413_without_reading(self):
        status, body = self.call(10, [(b"content-length", b"11")], [b"x" * 11])
        assert (status, body) == (413, b"")

    def test_within_the_limit_passes(self):
        assert self.call(10, [(b"content-length", b"10")], [b"x" * 10]) == (200, b"x" * 10)

    def test_a_chunked_body_is_counted_as_it_comes(self):
        assert self.call(10, [], [b"x" * 6, b"x" * 6])[0] == 413
        assert self.call(10, [], [b"x" * 5, b"x" * 5]) == (200, b"x" * 10)

    def test_a_nonsense_length_is_refused(self):
        assert self.call(10, [(b"content-length", b"-1")], [b""])[0] == 413
