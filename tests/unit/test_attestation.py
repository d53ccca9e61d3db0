"""The attestation: which reserves count against the liabilities a venue's sum tree commits to."""

from __future__ import annotations

import dataclasses

import pytest

from bankrun.domain import ledger
from bankrun.domain.attestation import attest
from bankrun.domain.ledger import Holding, InMemoryBook, Tier, Totals
from bankrun.domain.por import Root, SumTree

SECRET = b"ftx-like venue secret, 32 bytes."


def root_of(total: int, venue: str = "ftx-like") -> Root:
    return Root(venue, "USD", "ab" * 32, total, 10)


# FTX's sheet, shaped like the leak: $8.9B owed, 10 % liquid, 65 % lent to the affiliate
FTX = Totals(
    liabilities=890_000,
    hot=60_000,
    warm=20_000,
    cold=9_000,
    affiliate_loan=578_500,
    platform_token=50_000,
    less_liquid=172_500,
)


class TestWhatCounts:
    def test_cash_in_every_tier_counts_and_the_token_and_the_affiliate_loan_never(self):
        a = attest(root_of(890_000), FTX)
        assert a.eligible == {"hot": 60_000, "warm": 20_000, "cold": 9_000, "transit": 0}
        assert a.excluded["platform_token"] == 50_000
        assert a.excluded["affiliate_loan"] == 578_500
        assert (a.reserves, a.ratio, a.solvent) == (89_000, 0.1, False)

    def test_less_liquid_counts_at_market_value_only_when_asked(self):
        without = attest(root_of(890_000), FTX)
        counted = attest(root_of(890_000), FTX, count_less_liquid=True)
        assert without.excluded["less_liquid"] == 172_500 and "less_liquid" not in without.eligible
        assert counted.eligible["less_liquid"] == 172_500
        assert counted.reserves == 89_000 + 172_500
        assert round(counted.ratio, 2) == 0.29
        assert "platform_token" in counted.excluded and "affiliate_loan" in counted.excluded

    def test_claims_on_other_venues_do_not_count_and_transit_only_what_lands_as_cash(self):
        sheet = Totals(
            liabilities=1_000,
            hot=500,
            transit=300,
            claim_deposit=400,
            claim_loan=200,
            claim_frozen=50,
        )
        a = attest(root_of(1_000), sheet)
        assert a.reserves == 500
        assert {k: a.excluded[k] for k in ("transit", "claim_deposit", "claim_loan")} == {
            "transit": 300,
            "claim_deposit": 400,
            "claim_loan": 200,
        }
        landing = attest(root_of(1_000), sheet, transit_cash=120)  # e.g. cold cash on its way
        assert (landing.reserves, landing.eligible["transit"]) == (620, 120)
        assert landing.excluded["transit"] == 180

    def test_every_asset_on_the_sheet_is_either_counted_or_left_out(self):
        """A new kind of asset in `Totals` must be placed on one side deliberately. What the
        venue owes other venues (`borrowed`) is not an asset, and no proof shows it: cash drawn
        on a credit line counts as a reserve for customers, as in a real proof of reserves."""
        owed = {"liabilities", "borrowed", "equity"}
        assets = {f.name for f in dataclasses.fields(Totals)} - owed
        for flag in (False, True):
            a = attest(root_of(0), Totals(transit=70), count_less_liquid=flag, transit_cash=30)
            assert set(a.eligible) | set(a.excluded) == assets
            assert set(a.eligible) & set(a.excluded) == {"transit"}  # split: what lands as cash
            assert a.eligible["transit"] + a.excluded["transit"] == 70


class TestTheRatio:
    def test_a_full_reserve_venue_is_solvent_at_one(self):
        a = attest(root_of(1_000), Totals(liabilities=1_000, hot=200, warm=300, cold=500))
        assert (a.ratio, a.solvent, a.problems) == (1.0, True, ())

    def test_nothing_owed_has_no_ratio(self):
        a = attest(root_of(0), Totals(hot=10))
        assert (a.ratio, a.solvent) == (None, True)

    def test_a_tree_that_leaves_money_owed_out_does_not_flatter_the_ratio(self):
        a = attest(root_of(800), Totals(liabilities=1_000, hot=900))
        assert a.owed == 1_000 and a.ratio == 0.9 and not a.solvent
        assert a.problems == ("the tree commits to 800 but the ledger owes 1000",)

    def test_a_negative_asset_is_named_and_not_counted(self):
        a = attest(root_of(100), Totals(liabilities=100, hot=150, warm=-50))
        assert a.eligible["warm"] == 0 and a.reserves == 150
        assert a.problems == ("warm is negative: -50",)

    def test_to_dict_carries_the_figures(self):
        d = attest(root_of(890_000), FTX).to_dict()
        assert d["ratio"] == pytest.approx(0.1)
        assert (d["liabilities_root"], d["reserves"], d["solvent"]) == ("ab" * 32, 89_000, False)


def test_an_attestation_of_a_real_book_and_its_tree():
    """Customers' balances from the ledger go into the tree; the sheet from the same book."""
    book = InMemoryBook()
    for account, amount in (("whale-1", 700_000), ("retail-1", 2_500), ("retail-2", 500)):
        book.post(ledger.open_account(book, "ftx-like", account, "USD"))
        book.post(ledger.deposit(book, "ftx-like", account, "USD", amount))
    venue = "ftx-like"
    book.post(
        ledger.Posting.transfer(
            ledger.holding(venue, Holding.AFFILIATE_LOAN, "USD"),
            ledger.wallet(venue, Tier.HOT, "USD"),
            630_000,
        )
    )
    balances = [
        (acct.name, -balance)
        for key, balance in book.items()
        if (acct := ledger.LedgerAccount.from_key(key)).kind is ledger.AccountKind.CUSTOMER
    ]
    tree = SumTree.build(venue, "USD", balances, SECRET)
    a = attest(tree.root, ledger.totals(book, venue, "USD"))
    assert a.liabilities == a.ledger_liabilities == 703_000 and a.problems == ()
    assert (a.reserves, a.excluded["affiliate_loan"]) == (73_000, 630_000)
    assert a.ratio == pytest.approx(73_000 / 703_000)
