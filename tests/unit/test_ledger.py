"""The ledger's rules: balanced postings, named refusals, invariants."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bankrun.domain import ledger
from bankrun.domain.ledger import InMemoryBook, Line, Posting, Tier

VENUE = "safe-1"


def funded(*balances: tuple[str, int]) -> InMemoryBook:
    book = InMemoryBook()
    for account, amount in balances:
        book.post(ledger.open_account(book, VENUE, account, "USD"))
        book.post(ledger.deposit(book, VENUE, account, "USD", amount))
    return book


class TestPostings:
    def test_a_posting_must_balance(self):
        with pytest.raises(ledger.UnbalancedPosting):
            Posting((Line(ledger.wallet(VENUE, Tier.HOT, "USD"), 5),))

    def test_a_posting_moves_one_asset(self):
        with pytest.raises(ledger.UnbalancedPosting):
            Posting(
                (
                    Line(ledger.wallet(VENUE, Tier.HOT, "USD"), 5),
                    Line(ledger.customer(VENUE, "whale-1", "BTC"), -5),
                )
            )


class TestDeposits:
    def test_a_deposit_is_owed_to_the_customer_and_held_hot(self):
        book = funded(("whale-1", 10_000))
        totals = ledger.totals(book, VENUE, "USD")
        assert (totals.liabilities, totals.hot) == (10_000, 10_000)
        assert -book[ledger.customer(VENUE, "whale-1", "USD").key] == 10_000

    def test_unknown_account_is_refused(self):
        with pytest.raises(ledger.UnknownAccount):
            ledger.deposit(InMemoryBook(), VENUE, "nobody", "USD", 5)

    @pytest.mark.parametrize("amount", [0, -1, 1.5, True])
    def test_amount_must_be_a_positive_integer(self, amount):
        book = funded(("whale-1", 1))
        with pytest.raises(ledger.InvalidAmount):
            ledger.deposit(book, VENUE, "whale-1", "USD", amount)

    def test_opening_twice_is_refused(self):
        book = funded(("whale-1", 1))
        with pytest.raises(ledger.AccountExists):
            ledger.open_account(book, VENUE, "whale-1", "USD")


class TestWithdrawals:
    def test_reserve_then_pay_leaves_nothing_owed(self):
        book = funded(("whale-1", 10_000))
        book.post(ledger.reserve(book, VENUE, "whale-1", "USD", 10_000))
        assert ledger.totals(book, VENUE, "USD").liabilities == 10_000  # still owed while pending
        book.post(ledger.pay_out(book, VENUE, "USD", 10_000))
        totals = ledger.totals(book, VENUE, "USD")
        assert (totals.liabilities, totals.hot) == (0, 0)
        assert ledger.invariant_violations(book) == []

    def test_more_than_the_balance_is_refused(self):
        book = funded(("whale-1", 100))
        with pytest.raises(ledger.InsufficientBalance) as refused:
            ledger.reserve(book, VENUE, "whale-1", "USD", 101)
        assert refused.value.reason == "insufficient_balance"

    def test_payout_needs_liquid_cash(self):
        book = funded(("whale-1", 100))
        book.post(ledger.reserve(book, VENUE, "whale-1", "USD", 100))
        # the venue moved its hot cash to cold storage: the buffer is dry
        cold = ledger.wallet(VENUE, Tier.COLD, "USD")
        book.post(Posting.transfer(cold, ledger.wallet(VENUE, Tier.HOT, "USD"), 100))
        with pytest.raises(ledger.InsufficientLiquidity):
            ledger.pay_out(book, VENUE, "USD", 100)

    def test_release_gives_reserved_funds_back(self):
        book = funded(("whale-1", 100))
        book.post(ledger.reserve(book, VENUE, "whale-1", "USD", 60))
        book.post(ledger.release(VENUE, "whale-1", "USD", 60))
        assert -book[ledger.customer(VENUE, "whale-1", "USD").key] == 100


class TestInvariants:
    def test_a_negative_customer_balance_is_reported(self):
        book = InMemoryBook(
            {
                ledger.customer(VENUE, "a", "USD").key: 5,
                ledger.wallet(VENUE, Tier.HOT, "USD").key: -5,
            }
        )
        problems = ledger.invariant_violations(book)
        assert any("negative liability" in p for p in problems)
        assert any("negative asset" in p for p in problems)

    def test_an_unbalanced_book_is_reported(self):
        book = InMemoryBook({ledger.wallet(VENUE, Tier.HOT, "USD").key: 5})
        assert ledger.invariant_violations(book) == ["USD: debits and credits differ by 5"]

    @given(
        deposits=st.lists(st.integers(1, 10**12), min_size=1, max_size=20),
        asks=st.lists(st.tuples(st.integers(0, 19), st.integers(1, 10**12)), max_size=40),
    )
    def test_any_sequence_keeps_the_books(self, deposits, asks):
        book = funded(*((f"c-{i}", d) for i, d in enumerate(deposits)))
        paid = 0
        for who, amount in asks:
            account = f"c-{who % len(deposits)}"
            try:
                book.post(ledger.reserve(book, VENUE, account, "USD", amount))
                book.post(ledger.pay_out(book, VENUE, "USD", amount))
                paid += amount
            except ledger.LedgerError:
                pass
        assert ledger.invariant_violations(book) == []
        totals = ledger.totals(book, VENUE, "USD")
        assert totals.liabilities + paid == sum(deposits)  # paid + still owed = deposited
        assert totals.hot == totals.liabilities  # full reserve: every unit owed is held
