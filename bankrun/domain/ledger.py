"""A venue's double-entry ledger, in integer minor units.

Balances are signed: debits positive, credits negative. Asset accounts (wallets) carry
debit balances, liability accounts (what customers are owed) credit balances, so the sum
of every balance in a book is always zero. Operations only *decide*: each returns a
balanced `Posting` (or raises a `LedgerError` naming the rejection reason); applying it
is the caller's job, which is how one core serves faust Tables and in-memory sims alike.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class AccountKind(StrEnum):
    CUSTOMER = "customer"  # liability: what one customer can withdraw
    PENDING = "pending"  # liability: reserved for withdrawals not yet paid out
    WALLET = "wallet"  # asset: the venue's cash by tier (hot, warm, cold)
    HOLDING = "holding"  # asset: non-cash (platform_token, affiliate_loan, less_liquid), at book
    TRANSIT = "transit"  # asset: cash on its way to the hot wallet (a mobilization)
    CLAIM = "claim"  # asset: money placed at another venue (`deposit:<venue>`, `loan:<venue>`),
    #                  drawn on a line it extended (`credit_line:<venue>`), or what is left of
    #                  it once that venue halted (`frozen:<venue>`)
    BORROWED = "borrowed"  # liability: drawn on another venue's credit line (`<lender>`)
    EQUITY = "equity"  # the owners' stake: capital, losses from fire sales and frozen claims


class Holding(StrEnum):
    PLATFORM_TOKEN = "platform_token"
    AFFILIATE_LOAN = "affiliate_loan"
    LESS_LIQUID = "less_liquid"


class Tier(StrEnum):
    HOT = "hot"
    WARM = "warm"
    COLD = "cold"


class ClaimState(StrEnum):
    DEPOSIT = "deposit"  # callable: lands in the hot wallet after a delay, counted as liquid
    LOAN = "loan"  # a term asset: not callable, not liquid
    CREDIT_LINE = "credit_line"  # what the borrower drew on the line: a term asset, like a loan
    FROZEN = "frozen"  # the counterparty halted: marked down to its recovery; not callable


@dataclass(frozen=True, order=True)
class LedgerAccount:
    venue: str
    kind: AccountKind
    name: str
    asset: str

    @functools.cached_property
    def key(self) -> str:
        """Made once per account: every line of every posting is applied by it."""
        return f"{self.venue}|{self.kind.value}|{self.name}|{self.asset}"

    @classmethod
    def from_key(cls, key: str) -> LedgerAccount:
        venue, kind, name, asset = key.split("|")
        return cls(venue, AccountKind(kind), name, asset)

    @functools.cached_property
    def is_liability(self) -> bool:
        return self.kind in (AccountKind.CUSTOMER, AccountKind.PENDING, AccountKind.BORROWED)


#: Accounts are values, remembered by the functions below that name them: every posting names
#: two or more, so each is made (and its key computed) once instead of on every line.
_remembered = functools.lru_cache(maxsize=1 << 10)


@functools.lru_cache(maxsize=1 << 16)
def customer(venue: str, account: str, asset: str) -> LedgerAccount:
    return LedgerAccount(venue, AccountKind.CUSTOMER, account, asset)


@_remembered
def pending(venue: str, asset: str) -> LedgerAccount:
    return LedgerAccount(venue, AccountKind.PENDING, "withdrawals", asset)


@_remembered
def wallet(venue: str, tier: Tier, asset: str) -> LedgerAccount:
    return LedgerAccount(venue, AccountKind.WALLET, tier.value, asset)


@_remembered
def holding(venue: str, what: Holding, asset: str) -> LedgerAccount:
    return LedgerAccount(venue, AccountKind.HOLDING, what.value, asset)


@_remembered
def transit(venue: str, asset: str) -> LedgerAccount:
    return LedgerAccount(venue, AccountKind.TRANSIT, "to_hot", asset)


@_remembered
def equity(venue: str, asset: str, name: str = "losses") -> LedgerAccount:
    return LedgerAccount(venue, AccountKind.EQUITY, name, asset)


@_remembered
def claim(venue: str, state: ClaimState | str, counterparty: str, asset: str) -> LedgerAccount:
    """The lender's account for what `counterparty` owes it, by the claim's state."""
    return LedgerAccount(
        venue, AccountKind.CLAIM, f"{ClaimState(state).value}:{counterparty}", asset
    )


@_remembered
def borrowed(venue: str, lender: str, asset: str) -> LedgerAccount:
    """What the venue owes `lender` for what it drew on its credit line."""
    return LedgerAccount(venue, AccountKind.BORROWED, lender, asset)


def source_account(venue: str, source: str, asset: str) -> LedgerAccount:
    """The account a mobilization draws on: a cash tier, a non-cash holding, or a deposit at
    another venue (`deposit:<venue>`)."""
    if source in Tier.__members__.values():
        return wallet(venue, Tier(source), asset)
    if ":" in source:
        state, counterparty = source.split(":", 1)
        return claim(venue, state, counterparty, asset)
    return holding(venue, Holding(source), asset)


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


def move(venue: str, source: str, asset: str, amount: int) -> Posting:
    """Place cash from the hot wallet into a tier or holding (the policy's initial allocation)."""
    _require_positive(amount)
    return Posting.transfer(
        source_account(venue, source, asset), wallet(venue, Tier.HOT, asset), amount
    )


def place_claim(
    venue: str, state: ClaimState, counterparty: str, asset: str, amount: int
) -> Posting:
    """Cash from the hot wallet deposited at, or lent to, another venue: at genesis, or when it
    draws on a credit line this venue extended."""
    _require_positive(amount)
    return Posting.transfer(
        claim(venue, state, counterparty, asset), wallet(venue, Tier.HOT, asset), amount
    )


def draw(venue: str, lender: str, asset: str, amount: int) -> Posting:
    """The borrower's side of a draw on a credit line: the cash is on its way to the hot wallet
    (it lands as any mobilization does), and the venue owes it to `lender`. The lender's side
    is `place_claim` with `ClaimState.CREDIT_LINE`: cash out of its hot wallet, a claim in."""
    _require_positive(amount)
    return Posting.transfer(transit(venue, asset), borrowed(venue, lender, asset), amount)


def freeze_claim(
    venue: str,
    state: ClaimState,
    counterparty: str,
    asset: str,
    held: int,
    in_transit: int,
    kept: int,
) -> Posting:
    """The counterparty halted: the open claim (`held`) and any of it called back and still on
    its way (`in_transit`) become one frozen claim worth `kept`; the rest is a loss to equity."""
    face = held + in_transit
    if held < 0 or in_transit < 0 or face <= 0:
        raise InvalidAmount(f"nothing to freeze: held {held}, in transit {in_transit}")
    if not 0 <= kept <= face:
        raise InvalidAmount(f"a frozen claim keeps between 0 and its face {face}, not {kept}")
    lines = [Line(claim(venue, ClaimState.FROZEN, counterparty, asset), kept)]
    if held:
        lines.append(Line(claim(venue, state, counterparty, asset), -held))
    if in_transit:
        lines.append(Line(transit(venue, asset), -in_transit))
    if face - kept:
        lines.append(Line(equity(venue, asset), face - kept))
    return Posting(tuple(lines))


def start_mobilization(book: Book, venue: str, source: str, asset: str, amount: int) -> Posting:
    """Take `amount` (book value) out of a tier or holding; it is in transit until it lands."""
    _require_positive(amount)
    acct = source_account(venue, source, asset)
    held = book.get(acct.key) or 0
    if held < amount:
        raise InsufficientLiquidity(f"{source} holds {held} {asset} at {venue}, needs {amount}")
    return Posting.transfer(transit(venue, asset), acct, amount)


def land_mobilization(venue: str, asset: str, amount: int, proceeds: int) -> Posting:
    """Transit lands in the hot wallet; what a fire sale lost is booked against equity."""
    _require_positive(amount)
    if not 0 <= proceeds <= amount:
        raise InvalidAmount(f"proceeds {proceeds} must be between 0 and the amount {amount}")
    lines = [Line(transit(venue, asset), -amount)]
    if proceeds:
        lines.append(Line(wallet(venue, Tier.HOT, asset), proceeds))
    if amount - proceeds:
        lines.append(Line(equity(venue, asset), amount - proceeds))
    return Posting(tuple(lines))


def revalue(venue: str, what: Holding, asset: str, delta: int) -> Posting:
    """Mark a holding to market: its book value moves by `delta`, and so does equity."""
    if delta == 0:
        raise InvalidAmount("a revaluation moves something")
    return Posting((Line(holding(venue, what, asset), delta), Line(equity(venue, asset), -delta)))


def realize(venue: str, asset: str, book: int, proceeds: int) -> Posting:
    """A sale's fills are known: the cash in transit is what it fetched, not its book value;
    the difference is a loss (or gain) booked against equity now."""
    if book < 0 or proceeds < 0 or book == proceeds:
        raise InvalidAmount(f"nothing to realize: book {book}, proceeds {proceeds}")
    return Posting(
        (Line(transit(venue, asset), proceeds - book), Line(equity(venue, asset), book - proceeds))
    )


def unwind(venue: str, what: Holding, asset: str, amount: int) -> Posting:
    """What a sale did not sell goes back to the holding it came from."""
    _require_positive(amount)
    return Posting.transfer(holding(venue, what, asset), transit(venue, asset), amount)


def apply(balances: MutableMapping[str, int], posting: Posting) -> None:
    for line in posting.lines:
        balances[line.account.key] = balances.get(line.account.key, 0) + line.amount


class InMemoryBook(dict[str, int]):
    """A whole ledger in a dict: for sims and tests."""

    def post(self, posting: Posting) -> None:
        apply(self, posting)


@dataclass(frozen=True)
class Totals:
    """A venue's balance sheet in one asset; liabilities (to customers), borrowed (from other
    venues) and equity as positive amounts owed."""

    liabilities: int = 0
    hot: int = 0
    warm: int = 0
    cold: int = 0
    transit: int = 0
    platform_token: int = 0
    affiliate_loan: int = 0
    less_liquid: int = 0
    claim_deposit: int = 0  # deposits at other venues, callable
    claim_loan: int = 0  # loans to other venues
    claim_credit_line: int = 0  # drawn by other venues on lines this one extended
    claim_frozen: int = 0  # claims on halted venues, at what they were marked down to
    borrowed: int = 0  # drawn on other venues' credit lines: owed, but not to customers
    equity: int = 0

    @property
    def assets(self) -> int:
        return (
            self.hot
            + self.warm
            + self.cold
            + self.transit
            + self.platform_token
            + self.affiliate_loan
            + self.less_liquid
            + self.claim_deposit
            + self.claim_loan
            + self.claim_credit_line
            + self.claim_frozen
        )


def bucket(acct: LedgerAccount) -> str:
    """Which `Totals` field an account adds to."""
    if acct.kind is AccountKind.BORROWED:
        return "borrowed"
    if acct.is_liability:
        return "liabilities"
    if acct.kind is AccountKind.EQUITY:
        return "equity"
    if acct.kind is AccountKind.TRANSIT:
        return "transit"
    if acct.kind is AccountKind.CLAIM:
        return f"claim_{acct.name.split(':', 1)[0]}"
    return acct.name


def totals(balances: Mapping[str, int], venue: str, asset: str) -> Totals:
    sums: dict[str, int] = {}
    for key, balance in balances.items():
        if key.count("|") != 3:
            continue
        acct = LedgerAccount.from_key(key)
        if acct.venue != venue or acct.asset != asset:
            continue
        sign = -1 if acct.is_liability or acct.kind is AccountKind.EQUITY else 1
        sums[bucket(acct)] = sums.get(bucket(acct), 0) + sign * balance
    return Totals(**sums)


_ASSETS = (AccountKind.WALLET, AccountKind.HOLDING, AccountKind.TRANSIT, AccountKind.CLAIM)


def invariant_violations(balances: Mapping[str, int]) -> list[str]:
    """What is wrong with a book, if anything: the checks every run ends with."""
    problems: list[str] = []
    by_asset: dict[str, int] = {}
    for key, balance in balances.items():
        if key.count("|") != 3:
            continue
        acct = LedgerAccount.from_key(key)
        by_asset[acct.asset] = by_asset.get(acct.asset, 0) + balance
        if acct.is_liability and balance > 0:
            problems.append(f"{key}: negative liability {-balance}")
        if acct.kind in _ASSETS and balance < 0:
            problems.append(f"{key}: negative asset {balance}")
    problems.extend(
        f"{asset}: debits and credits differ by {total}"
        for asset, total in sorted(by_asset.items())
        if total != 0
    )
    return problems
