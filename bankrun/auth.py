"""Bearer tokens for the gateway, derived from one per-run secret so the gateway checks them
without storing any.

A customer's token is `<venue>~<account>~<signature>`, the signature being the base64url
HMAC-SHA256 of `customer/<venue>/<account>` under the secret: it says who calls, and only the
holder of the secret could have made it. The operator's token is `operator~<signature>` of
`operator`. `~` is not in the id alphabet, so a token splits one way only, and every character
is one RFC 6750 allows in a bearer token.

The secret comes from `BANKRUN_AUTH_SECRET`, or the file `BANKRUN_AUTH_SECRET_FILE` names; never
from the repository, never written into a run folder. Whoever holds it can make every token:
the gateway, the runner (its desk reads as the operator) and Locust (it acts for every
customer) do.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

SECRET_ENV = "BANKRUN_AUTH_SECRET"
SECRET_FILE_ENV = "BANKRUN_AUTH_SECRET_FILE"
#: The proof-of-reserves leaf salts' secret, which custody and the gateway share; the runner
#: derives it from the auth secret, so custody never holds what makes tokens.
POR_SECRET_ENV = "BANKRUN_POR_SECRET"
VARIABLES = frozenset({SECRET_ENV, SECRET_FILE_ENV, POR_SECRET_ENV})
MIN_SECRET_CHARS = 16
OPERATOR = "operator"
_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")  # events.ID_PATTERN
_SIGNATURE = re.compile(r"^[A-Za-z0-9_-]{43}$")  # 32 bytes, base64url without padding


class SecretMissing(RuntimeError):
    """No secret configured, or one too short to be one."""


@dataclass(frozen=True)
class Caller:
    """Who a valid token says is calling: the operator, or one customer account."""

    venue: str | None = None
    account: str | None = None

    @property
    def operator(self) -> bool:
        return self.account is None


class Tokens:
    """Makes and checks tokens under one secret."""

    def __init__(self, secret: str):
        if len(secret) < MIN_SECRET_CHARS:
            raise SecretMissing(f"the auth secret must have at least {MIN_SECRET_CHARS} chars")
        self._key = secret.encode()

    @classmethod
    def generate(cls) -> Tokens:
        """A fresh secret, for one run."""
        return cls(secrets.token_urlsafe(32))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Tokens:
        """From BANKRUN_AUTH_SECRET, or the file BANKRUN_AUTH_SECRET_FILE names."""
        env = os.environ if environ is None else environ
        secret = env.get(SECRET_ENV)
        if not secret and env.get(SECRET_FILE_ENV):
            path = Path(env[SECRET_FILE_ENV])
            try:
                secret = path.read_text().strip()
            except OSError as unreadable:
                raise SecretMissing(
                    f"cannot read {SECRET_FILE_ENV} ({path}): {unreadable}"
                ) from None
        if not secret:
            raise SecretMissing(f"set {SECRET_ENV}, or {SECRET_FILE_ENV} to a file holding it")
        return cls(secret)

    def env(self) -> dict[str, str]:
        """The environment a child process (gateway, Locust) takes the secret from."""
        return {SECRET_ENV: self._key.decode()}

    def por_secret(self) -> bytes:
        """The run's proof-of-reserves salt secret: one-way from this one."""
        return hmac.new(self._key, b"proof-of-reserves leaf salts", hashlib.sha256).digest()

    def por_env(self) -> dict[str, str]:
        """The environment custody and the gateway take the salt secret from."""
        return {POR_SECRET_ENV: self.por_secret().hex()}

    def _sign(self, message: str) -> str:
        digest = hmac.new(self._key, message.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def customer(self, venue: str, account: str) -> str:
        if not (_ID.match(venue) and _ID.match(account)):
            raise ValueError(f"not an id: {venue!r} / {account!r}")
        return f"{venue}~{account}~{self._sign(f'customer/{venue}/{account}')}"

    def operator(self) -> str:
        return f"{OPERATOR}~{self._sign(OPERATOR)}"

    def check(self, token: str) -> Caller | None:
        """Who the token names, if this secret made it; None for anything else."""
        parts = token.split("~")
        if len(parts) == 2 and parts[0] == OPERATOR:
            expected, caller = self.operator(), Caller()
        elif len(parts) == 3 and _ID.match(parts[0]) and _ID.match(parts[1]):
            expected, caller = self.customer(parts[0], parts[1]), Caller(parts[0], parts[1])
        else:
            return None
        if not _SIGNATURE.match(parts[-1]):
            return None
        return caller if hmac.compare_digest(token.encode(), expected.encode()) else None


def por_secret_from_env(environ: Mapping[str, str] | None = None) -> bytes | None:
    """BANKRUN_POR_SECRET (hex, or any text of at least 16 characters); None when unset."""
    value = (os.environ if environ is None else environ).get(POR_SECRET_ENV, "").strip()
    if not value:
        return None
    if len(value) < MIN_SECRET_CHARS:
        raise SecretMissing(f"{POR_SECRET_ENV} must have at least {MIN_SECRET_CHARS} characters")
    try:
        return bytes.fromhex(value)
    except ValueError:
        return value.encode()


def bearer(token: str) -> dict[str, str]:
    """The request header that carries `token`."""
    return {"Authorization": f"Bearer {token}"}
