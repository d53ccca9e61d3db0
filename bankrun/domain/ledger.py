"""A venue's double-entry ledger, in integer minor units.

Balances are signed: debits positive, credits negative. Asset accounts (wallets) carry
debit balances, liability accounts (what customers are owed) credit balances, so the sum
of every balance in a book is always zero. Operations only *decide*: each returns a
balanced `Posting` (or raises a `LedgerError` naming the rejection reason); applying it
is the caller's job, which is how one core serves faust Tables and in-memory sims alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class AccountKind(StrEnum):
    CUSTOMER = "customer"  # liability: what one customer can withdraw
    PENDING = "pending"  # liability: reserved for withdrawals not yet paid out
    WALLET = "wallet"  # asset: the venue's holdings by tier (hot, warm, cold)


class Tier(StrEnum):
    HOT = "hot"
    WARM = "warm"
    COLD = "cold"


@dataclass(frozen=True, order=True)
class LedgerAccount:
    venue: str
    kind: AccountKind
    name: str
    asset: str

    @property
    def key(self) -> str:
        return f"{self.venue}|{self.kind.value}|{self.name}|{self.asset}"

    @classmethod
    def from_key(cls, key: str) -> LedgerAccount:
        venue, kind, name, asset = key.split("|")
        return cls(venue, AccountKind(kind), name, asset)

    @property
    def is_liability(self) -> bool:
        return self.kind in (AccountKind.CUSTOMER, AccountKind.PENDING)


def customer(venue: str, account: str, asset: str) -> LedgerAccount:
    return LedgerAccount(venue, AccountKind.CUSTOMER, account, asset)


def pending(venue: str, asset: str) -> LedgerAccount:
    return LedgerAccount(venue, AccountKind.PENDING, "withdrawals", asset)


def wallet(venue: str, tier: Tier, asset: str) -> LedgerAccount:
    return LedgerAccount(venue, AccountKind.WALLET, tier.value, asset)


class LedgerError(Exception):
    """A movement the ledger refuses; `reason` is the code that goes on the wire."""

    reason = "ledger_error"


class UnknownAccount(LedgerError):
    reason = "unknown_account"


class AccountExists(LedgerError):
    reason = "account_exists"


class InsufficientBalance(LedgerError):
    reason = "insufficient_balance"


class InsufficientLiquidity(LedgerError):
    reason = "insufficient_liquidity"


class InvalidAmount(LedgerError):
    reason = "invalid_amount"


class UnbalancedPosting(LedgerError):
    reason = "unbalanced_posting"


@dataclass(frozen=True)
class Line:
    account: LedgerAccount
    amount: int  # signed: debit > 0, credit < 0


@dataclass(frozen=True)
class Posting:
    """One balanced movement. A zero line opens an account without moving money."""

    lines: tuple[Line, ...]

    def __post_init__(self) -> None:
        if not self.lines:
            raise UnbalancedPosting("a posting needs at least one line")
        total = sum(line.amount for line in self.lines)
        if total != 0:
            raise UnbalancedPosting(f"debits and credits differ by {total}")
        if len({line.account.asset for line in self.lines}) != 1:
            raise UnbalancedPosting("a posting moves one asset")

    @classmethod
    def transfer(cls, debit: LedgerAccount, credit: LedgerAccount, amount: int) -> Posting:
        return cls((Line(debit, amount), Line(credit, -amount)))

    @property
    def accounts(self) -> tuple[LedgerAccount, ...]:
        return tuple(line.account for line in self.lines)


class Book(Protocol):
    """Read side of a ledger: the signed balance of an account, None if never opened."""

    def get(self, key: str, /) -> int | None: ...


def _require_positive(amount: int) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise InvalidAmount(f"amount must be a positive integer of minor units, got {amount!r}")


def _owed_to(book: Book, account: LedgerAccount) -> int:
    balance = book.get(account.key)
    if balance is None:
        raise UnknownAccount(f"no account {account.name!r} for {account.asset} at {account.venue}")
    return -balance


def open_account(book: Book, venue: str, account: str, asset: str) -> Posting:
    acct = customer(venue, account, asset)
    if book.get(acct.key) is not None:
        raise AccountExists(f"account {account!r} already holds {asset} at {venue}")
    return Posting((Line(acct, 0),))


def deposit(book: Book, venue: str, account: str, asset: str, amount: int) -> Posting:
    """Cash arrives in the hot wallet and the venue owes it to the customer."""
    _require_positive(amount)
    acct = customer(venue, account, asset)
    _owed_to(book, acct)
    return Posting.transfer(wallet(venue, Tier.HOT, asset), acct, amount)


def reserve(book: Book, venue: str, account: str, asset: str, amount: int) -> Posting:
    """Earmark a withdrawal: the customer's balance drops, the venue still owes it."""
    _require_positive(amount)
    acct = customer(venue, account, asset)
    available = _owed_to(book, acct)
    if available < amount:
        raise InsufficientBalance(f"{account!r} has {available} {asset}, asked for {amount}")
    return Posting.transfer(acct, pending(venue, asset), amount)


def pay_out(book: Book, venue: str, asset: str, amount: int) -> Posting:
    """Send a reserved withdrawal from the hot wallet; only liquid cash can pay."""
    _require_positive(amount)
    hot = book.get(wallet(venue, Tier.HOT, asset).key) or 0
    reserved = -(book.get(pending(venue, asset).key) or 0)
    if reserved < amount:
        raise InsufficientBalance(f"only {reserved} {asset} reserved for withdrawals at {venue}")
    if hot < amount:
        raise InsufficientLiquidity(f"hot wallet holds {hot} {asset} at {venue}, needs {amount}")
    return Posting.transfer(pending(venue, asset), wallet(venue, Tier.HOT, asset), amount)


def release(venue: str, account: str, asset: str, amount: int) -> Posting:
    """Undo a reservation: the request was refused after funds were earmarked."""
    _require_positive(amount)
    return Posting.transfer(pending(venue, asset), customer(venue, account, asset), amount)


def apply(balances: MutableMapping[str, int], posting: Posting) -> None:
    for line in posting.lines:
        balances[line.account.key] = balances.get(line.account.key, 0) + line.amount


class InMemoryBook(dict[str, int]):
    """A whole ledger in a dict: for sims and tests."""

    def post(self, posting: Posting) -> None:
        apply(self, posting)


@dataclass(frozen=True)
class Totals:
    liabilities: int
    hot: int
    warm: int
    cold: int


def totals(balances: Mapping[str, int], venue: str, asset: str) -> Totals:
    owed = 0
    tiers = dict.fromkeys(Tier, 0)
    for key, balance in balances.items():
        acct = LedgerAccount.from_key(key)
        if acct.venue != venue or acct.asset != asset:
            continue
        if acct.is_liability:
            owed -= balance
        else:
            tiers[Tier(acct.name)] += balance
    return Totals(owed, tiers[Tier.HOT], tiers[Tier.WARM], tiers[Tier.COLD])


def invariant_violations(balances: Mapping[str, int]) -> list[str]:
    """What is wrong with a book, if anything: the checks every run ends with."""
    problems: list[str] = []
    by_asset: dict[str, int] = {}
    for key, balance in balances.items():
        acct = LedgerAccount.from_key(key)
        by_asset[acct.asset] = by_asset.get(acct.asset, 0) + balance
        if acct.is_liability and balance > 0:
            problems.append(f"{key}: negative liability {-balance}")
        if acct.kind is AccountKind.WALLET and balance < 0:
            problems.append(f"{key}: negative wallet {balance}")
    problems.extend(
        f"{asset}: debits and credits differ by {total}"
        for asset, total in sorted(by_asset.items())
        if total != 0
    )
    return problems


def accounts_of(postings: Iterable[Posting]) -> set[LedgerAccount]:
    return {acct for posting in postings for acct in posting.accounts}
