"""Contagion between venues: claims placed at genesis, frozen and marked down when the borrower
halts; the lender's liquid reserve and its customers' fear react (issue 8, part 4)."""

from __future__ import annotations

import re

import pytest

from bankrun import events as ev
from bankrun import scenario, sim, summary
from bankrun.domain import ledger
from bankrun.domain.ledger import ClaimState
from bankrun.domain.panic import PanicParams, Signals
from bankrun.panic_desk import PanicDesk

HOUR = 3600.0

# Two venues on a constant load: `borrower` keeps 10 % liquid, runs dry at 10 h and halts 4 h
# later; `lender` placed money at it (the claims under test are appended to its entry).
PAIR = """
name: pair
seed: 1
duration_hours: 24
venues:
  - id: borrower
    policy: fractional
    params: {liquid_ratio: 0.1, cold_delay_hours: 1000, haircut: 0.1}
    gate: {trigger: dry, halt: true, halt_after_hours: 4}
    customers: 50
    total_deposits: 1000000000
    balances: {distribution: equal}
  - id: lender
    policy: full-reserve
    params: {hot_ratio: 0.02, warm_ratio: 0.0, cold_delay_hours: 1000}
    customers: 50
    total_deposits: 1000000000
    balances: {distribution: equal}
    claims:
"""
LOAD = "load: {model: constant, amount_per_hour: 10000000, requests_per_step: 2}\n"


def pair(*claims: str) -> scenario.Scenario:
    return scenario.parse(PAIR + "".join(f"      - {c}\n" for c in claims) + LOAD)


def snapshots(log: list[ev.Event], venue: str) -> list[ev.ReserveSnapshot]:
    return [e for e in log if isinstance(e, ev.ReserveSnapshot) and e.venue == venue]


def liquid(snap: ev.ReserveSnapshot) -> int:
    """Cash at hand or within hours: hot, warm, and deposits callable at open venues."""
    return snap.hot + snap.warm + snap.claims.get("deposit", 0)


def around(log: list[ev.Event], venue: str, hours: float) -> tuple[int, int]:
    """A venue's liquid reserve just before `hours` and once everything at `hours` is booked."""
    snaps = snapshots(log, venue)
    before = [s for s in snaps if s.scenario_time < hours * HOUR][-1]
    at = [s for s in snaps if s.scenario_time == hours * HOUR][-1]
    return liquid(before), liquid(at)


def written_down(log: list[ev.Event], venue: str) -> list[ev.ClaimWrittenDown]:
    return [e for e in log if isinstance(e, ev.ClaimWrittenDown) and e.venue == venue]


class TestScenarioClaims:
    @pytest.mark.parametrize(
        ("claim", "named"),
        [
            ("{counterparty: nowhere, kind: loan, amount: 100}", "venues.1.claims.0.counterparty"),
            ("{counterparty: lender, kind: loan, amount: 100}", "itself"),
            ("{counterparty: borrower, kind: bond, amount: 100}", "venues.1.claims.0.kind"),
            ("{counterparty: borrower, kind: loan, amount: 0}", "venues.1.claims.0.amount"),
            (
                "{counterparty: borrower, kind: loan, amount: 100, recovery: 1.5}",
                "venues.1.claims.0.recovery",
            ),
            (
                "{counterparty: borrower, kind: loan, amount: 100, call_delay_hours: 2}",
                "a loan cannot be called back",
            ),
            ("{counterparty: borrower, kind: loan, amount: 1000000001}", "total_deposits"),
        ],
    )
    def test_a_bad_claim_is_refused_naming_the_field(self, claim, named):
        with pytest.raises(scenario.ScenarioError) as bad:
            pair(claim)
        assert named in str(bad.value)

    def test_claims_beyond_the_deposits_together_are_refused(self):
        with pytest.raises(scenario.ScenarioError, match=re.escape("venues.1: claims: 1000000002")):
            pair(
                "{counterparty: borrower, kind: loan, amount: 500000001}",
                "{counterparty: borrower, kind: deposit, amount: 500000001}",
            )

    def test_a_second_claim_of_one_kind_on_one_venue_is_refused(self):
        with pytest.raises(
            scenario.ScenarioError, match=re.escape("venues.1.claims.1: a second loan")
        ):
            pair(
                "{counterparty: borrower, kind: loan, amount: 5}",
                "{counterparty: borrower, kind: loan, amount: 5}",
            )

    def test_a_claim_in_another_asset_is_refused(self):
        text = PAIR.replace("    customers: 50", "    asset: BTC\n    customers: 50", 1)
        with pytest.raises(
            scenario.ScenarioError, match=re.escape("venues.1.claims.0.counterparty")
        ):
            scenario.parse(
                text + "      - {counterparty: borrower, kind: loan, amount: 5}\n" + LOAD
            )

    def test_both_parties_are_told_of_a_claim_with_its_defaults(self):
        spec = pair("{counterparty: borrower, kind: deposit, amount: 5}")
        (claim,) = spec.claims()
        assert (claim.lender, claim.borrower, claim.recovery, claim.call_delay_hours) == (
            "lender",
            "borrower",
            0.0,
            2.0,
        )
        assert spec.claims_of("borrower") == spec.claims_of("lender") == [claim]

    def test_a_credit_line_is_a_promise_not_money_placed(self):
        """Its limit may exceed the lender's deposits: it is funded from cash as it is drawn."""
        spec = pair("{counterparty: borrower, kind: credit_line, amount: 2000000000}")
        (line,) = spec.claims()
        assert (line.kind, line.amount, line.call_delay_hours) == ("credit_line", 2 * 10**9, 2.0)
        spec = pair("{counterparty: borrower, kind: credit_line, amount: 5, call_delay_hours: 0}")
        assert spec.claims()[0].call_delay_hours == 0.0


class TestLedger:
    def test_a_frozen_claim_keeps_its_recovery_and_equity_takes_the_rest(self):
        book = ledger.InMemoryBook()
        book.post(_funded("v", 1_000))
        book.post(ledger.place_claim("v", ClaimState.DEPOSIT, "x", "USD", 600))
        book.post(ledger.start_mobilization(book, "v", "deposit:x", "USD", 100))
        book.post(ledger.freeze_claim("v", ClaimState.DEPOSIT, "x", "USD", 500, 100, 120))
        t = ledger.totals(book, "v", "USD")
        assert (t.hot, t.claim_deposit, t.transit, t.claim_frozen) == (400, 0, 0, 120)
        assert t.equity == -480 and t.assets - t.liabilities == t.equity
        assert ledger.invariant_violations(book) == []

    def test_a_draw_is_cash_on_its_way_to_the_borrower_and_a_claim_of_the_lenders(self):
        book = ledger.InMemoryBook()
        book.post(_funded("l", 1_000))
        book.post(_funded("b", 100))
        book.post(ledger.place_claim("l", ClaimState.CREDIT_LINE, "b", "USD", 300))
        book.post(ledger.draw("b", "l", "USD", 300))
        book.post(ledger.land_mobilization("b", "USD", 300, 300))
        lender, borrower = ledger.totals(book, "l", "USD"), ledger.totals(book, "b", "USD")
        assert (lender.hot, lender.claim_credit_line, lender.equity) == (700, 300, 0)
        assert (borrower.hot, borrower.transit, borrower.borrowed) == (400, 0, 300)
        assert borrower.liabilities == 100  # owed to customers: the draw is owed to the lender
        assert borrower.assets - borrower.liabilities - borrower.borrowed == borrower.equity == 0
        assert ledger.invariant_violations(book) == []

    def test_owing_a_lender_less_than_nothing_breaks_the_invariants(self):
        book = ledger.InMemoryBook({ledger.borrowed("b", "l", "USD").key: 1})
        assert any("negative liability" in p for p in ledger.invariant_violations(book))

    def test_a_claim_below_zero_breaks_the_invariants(self):
        book = ledger.InMemoryBook({ledger.claim("v", ClaimState.LOAN, "x", "USD").key: -1})
        assert any("negative asset" in p for p in ledger.invariant_violations(book))


def _funded(venue: str, amount: int) -> ledger.Posting:
    return ledger.Posting.transfer(
        ledger.wallet(venue, ledger.Tier.HOT, "USD"), ledger.customer(venue, "c", "USD"), amount
    )


@pytest.fixture(scope="module")
def run() -> tuple[dict, list[ev.Event]]:
    """The pair with a deposit and a loan at the borrower; the lender keeps 2 % of the rest hot,
    so the constant load makes it call its deposit back before the borrower halts at 14 h."""
    bus = sim.simulate(
        pair(
            "{counterparty: borrower, kind: deposit, amount: 500000000, recovery: 0.25}",
            "{counterparty: borrower, kind: loan, amount: 300000000, recovery: 0.5}",
        )
    )
    return summary.summarize(bus.log, {})["venues"], bus.log


class TestOnTheBorrowersHalt:
    def test_the_lender_places_its_claims_and_its_policy_places_the_rest(self, run):
        _, log = run
        first = snapshots(log, "lender")[0]
        assert first.claims == {"deposit": 500_000_000, "loan": 300_000_000, "frozen": 0}
        assert first.hot == 4_000_000  # 2 % of the 200,000,000 left
        assert snapshots(log, "borrower")[0].claims == {}  # the borrower's book is its own

    def test_a_short_lender_calls_its_deposit_and_the_cash_lands(self, run):
        rows, log = run
        halted = rows["borrower"]["halted_at_hours"] * HOUR
        assert halted == 14 * HOUR
        assert sum(e.amount for e in deposit_calls(log, ev.MobilizationStarted)) > 0
        landed = deposit_calls(log, ev.MobilizationLanded)
        assert landed and all(e.scenario_time < halted for e in landed)

    def test_claims_freeze_at_the_halt_with_calls_in_flight_marked_to_recovery(self, run):
        rows, log = run
        assert rows["lender"]["claims_frozen_at_hours"] == rows["borrower"]["halted_at_hours"]
        landed = sum(e.amount for e in deposit_calls(log, ev.MobilizationLanded))
        deposit, loan = written_down(log, "lender")
        assert (deposit.frozen, deposit.value) == (500_000_000 - landed, deposit.frozen // 4)
        assert (loan.frozen, loan.value, loan.loss) == (300_000_000, 150_000_000, 150_000_000)
        last = snapshots(log, "lender")[-1]
        assert last.claims == {"deposit": 0, "loan": 0, "frozen": deposit.value + loan.value}
        assert rows["lender"]["claim_losses"] == deposit.loss + loan.loss

    def test_the_lenders_liquid_reserve_falls_at_the_halt(self, run):
        rows, log = run
        before, after = around(log, "lender", rows["borrower"]["halted_at_hours"])
        held = snapshots(log, "lender")
        still_there = [s for s in held if s.scenario_time < 14 * HOUR][-1].claims["deposit"]
        assert before - after >= still_there > 0

    def test_the_log_conserves_money(self, run):
        _, log = run
        assert summary.check(log) == []


def deposit_calls(log: list[ev.Event], kind: type[ev.Event]) -> list:
    return [
        e
        for e in log
        if isinstance(e, kind) and e.venue == "lender" and e.source == "deposit:borrower"
    ]


def lined(*claims: str, hot_ratio: float = 0.5, gate: str = "") -> scenario.Scenario:
    """The pair with the lender keeping `hot_ratio` of its deposits hot (enough to fund draws),
    with a `gate` if given, and no claims but `claims`."""
    lender = "params: {hot_ratio: 0.02, warm_ratio: 0.0, cold_delay_hours: 1000}"
    assert lender in PAIR
    text = PAIR.replace(
        lender,
        lender.replace("0.02", str(hot_ratio)) + (f"\n    gate: {gate}" if gate else ""),
    )
    if not claims:
        text = text.removesuffix("    claims:\n")
    return scenario.parse(text + "".join(f"      - {c}\n" for c in claims) + LOAD)


LINE = "{counterparty: borrower, kind: credit_line, amount: 300000000, recovery: 0.5}"


def simulated(spec: scenario.Scenario) -> tuple[dict, list[ev.Event]]:
    log = sim.simulate(spec).log  # which checks the ledger's invariants at the end
    return summary.summarize(log, {})["venues"], log


def of(log: list[ev.Event], kind: type[ev.Event], **fields) -> list:
    return [
        e for e in log if isinstance(e, kind) and all(getattr(e, k) == v for k, v in fields.items())
    ]


@pytest.fixture(scope="module")
def drawn() -> tuple[dict, list[ev.Event]]:
    """The lender extends the borrower a line of 300,000,000 and keeps half its deposits hot:
    the borrower runs dry at 10 h and draws on the line until it halts at 14 h."""
    return simulated(lined(LINE))


class TestCreditLine:
    def test_the_borrower_draws_what_waits_uncovered_once_it_runs_short(self, drawn):
        rows, log = drawn
        asked = of(log, ev.CreditDrawRequested, venue="lender", borrower="borrower")
        assert asked and asked[0].scenario_time == rows["borrower"]["dry_at_hours"] * HOUR
        assert all(e.scenario_time <= rows["borrower"]["halted_at_hours"] * HOUR for e in asked)
        answers = of(log, ev.CreditDrawn, venue="borrower", lender="lender")
        assert len(answers) == len(asked)
        assert all((a.amount, a.reason) == (a.requested, None) for a in answers)

    def test_what_the_lender_sends_lands_in_the_borrowers_hot_wallet_after_the_delay(self, drawn):
        _, log = drawn
        source = "credit_line:lender"
        started = of(log, ev.MobilizationStarted, venue="borrower", source=source)
        landed = of(log, ev.MobilizationLanded, venue="borrower", source=source)
        sent = sum(a.amount for a in of(log, ev.CreditDrawn, venue="borrower"))
        assert sum(m.amount for m in started) == sum(m.proceeds for m in landed) == sent > 0
        assert [m.lands_at for m in started] == [m.scenario_time for m in landed]
        assert all(m.lands_at == m.scenario_time + 2 * HOUR for m in started)

    def test_the_lender_pays_it_out_of_its_hot_wallet_and_holds_a_claim(self, drawn):
        rows, log = drawn
        halted = rows["borrower"]["halted_at_hours"] * HOUR
        answers = of(log, ev.CreditDrawn, venue="borrower")
        sent = sum(a.amount for a in answers if a.scenario_time < halted)
        before = [s for s in snapshots(log, "lender") if s.scenario_time < halted][-1]
        assert before.claims["credit_line"] == sent > 0
        assert snapshots(log, "lender")[0].claims == {
            "deposit": 0,
            "loan": 0,
            "credit_line": 0,
            "frozen": 0,
        }
        owed = sum(a.amount for a in answers)  # the last draw came as the borrower halted
        assert snapshots(log, "borrower")[-1].borrowed == owed  # and is owed until the end
        assert rows["lender"]["dry_at_hours"] is None

    def test_the_line_pays_more_of_the_borrowers_customers(self, drawn):
        rows, _ = drawn
        alone, _ = simulated(lined())
        assert rows["borrower"]["paid_fraction"] > alone["borrower"]["paid_fraction"]
        assert rows["lender"]["paid_fraction"] == alone["lender"]["paid_fraction"] == 1.0

    def test_what_was_drawn_freezes_at_the_borrowers_halt(self, drawn):
        rows, log = drawn
        sent = sum(a.amount for a in of(log, ev.CreditDrawn, venue="borrower"))
        (down,) = written_down(log, "lender")
        assert down.scenario_time == rows["borrower"]["halted_at_hours"] * HOUR
        assert (down.frozen, down.value, down.loss) == (sent, sent // 2, sent - sent // 2)
        assert snapshots(log, "lender")[-1].claims["credit_line"] == 0
        assert rows["lender"]["claim_losses"] == down.loss

    def test_the_log_conserves_money(self, drawn):
        _, log = drawn
        assert summary.check(log) == []

    def test_a_line_is_drawn_up_to_its_limit(self):
        _, log = simulated(lined(LINE.replace("300000000", "3000000")))
        answers = of(log, ev.CreditDrawn, venue="borrower")
        assert sum(a.amount for a in answers) == 3_000_000
        assert all(a.reason is None for a in answers)  # never asked for more than is left

    def test_a_lender_without_spare_cash_sends_nothing_and_is_asked_again(self):
        rows, log = simulated(lined(LINE, hot_ratio=0.0))
        halted = rows["borrower"]["halted_at_hours"] * HOUR
        answers = of(log, ev.CreditDrawn, venue="borrower")
        open_ = [(a.amount, a.reason) for a in answers if a.scenario_time < halted]
        assert len(open_) > 1 and set(open_) == {(0, "no_cash")}
        assert snapshots(log, "borrower")[-1].borrowed == 0
        assert written_down(log, "lender") == []  # a line never drawn on loses nothing
        assert rows["lender"]["claims_frozen_at_hours"] is None
        closed = [a for a in answers if a.reason == "line_closed"]
        assert closed == answers[-1:] and closed[0].scenario_time >= halted  # closed by the halt

    def test_a_lender_keeps_its_hot_wallet_for_its_own_customers_first(self):
        """Its hot wallet holds 500 of 1,000: a draw of 100 is sent; once a withdrawal of 800
        waits on it, the next draw gets nothing, though 400 are still in the wallet."""
        bus = sim.InProcessBus()
        line = ev.Claim(lender="l", borrower="b", kind="credit_line", amount=1_000)
        params = {"hot_ratio": 0.5, "warm_ratio": 0.0, "cold_delay_hours": 1000}
        bus.publish(
            ev.VenueOpened(
                venue="l", scenario_time=0, policy="full-reserve", params=params, claims=(line,)
            )
        )
        bus.publish(
            ev.AccountFunded(venue="l", scenario_time=0, account="c", asset="USD", amount=1_000)
        )
        bus.publish(
            ev.ScenarioStarted(venue="l", scenario_time=0, started_at=0, speed=1, duration_hours=24)
        )

        def draw(at: float) -> tuple[int, str | None]:
            bus.publish(
                ev.CreditDrawRequested(
                    venue="l", scenario_time=at, borrower="b", asset="USD", amount=100
                )
            )
            answer = of(bus.log, ev.CreditDrawn)[-1]
            return answer.amount, answer.reason

        assert draw(1) == (100, None)
        bus.publish(
            ev.WithdrawalRequested(
                venue="l", scenario_time=2, account="c", asset="USD", amount=800, request_id="r"
            )
        )
        assert of(bus.log, ev.PayoutFailed)  # the withdrawal waits
        assert draw(3) == (0, "no_cash")
        assert ledger.invariant_violations(bus.ledger_balances()) == []

    def test_a_halted_lender_closes_its_lines(self):
        """The lender halts at 11 h, an hour after the borrower starts drawing: the draw after
        the halt is refused, and the borrower asks no more."""
        rows, log = simulated(
            lined(LINE, gate="{trigger: always, halt: true, halt_after_hours: 11}")
        )
        assert rows["lender"]["halted_at_hours"] == 11
        (closed,) = of(log, ev.CreditLineClosed, venue="lender")
        at = log.index(closed)
        answers = [e for e in log if isinstance(e, ev.CreditDrawn)]
        before = [a for a in answers if log.index(a) < at]
        after = [a for a in answers if log.index(a) > at]
        assert before and all(a.amount == a.requested for a in before)
        assert [(a.amount, a.reason) for a in after] == [(0, "line_closed")]
        assert log.index(of(log, ev.CreditDrawRequested)[-1]) < log.index(after[0])
        owed = sum(a.amount for a in before)
        assert snapshots(log, "borrower")[-1].borrowed == owed > 0


class TestFear:
    def test_a_lenders_customers_fear_the_share_of_deposits_stuck_at_a_halted_venue(self):
        spec = pair(
            "{counterparty: borrower, kind: deposit, amount: 100000000}",
            "{counterparty: borrower, kind: loan, amount: 300000000}",
        )
        desk = PanicDesk(spec, PanicParams(exposure_weight=2.0))
        assert desk.exposure("lender") == 0.0
        desk.see(14.0, halted=["borrower"])
        assert desk.exposure("lender") == pytest.approx(0.4)
        assert desk.exposure("borrower") == 0.0  # it owes; its own halt frightens it anyway
        lines = PanicDesk(pair(LINE), PanicParams(exposure_weight=2.0))
        lines.see(14.0, halted=["borrower"])
        assert lines.exposure("lender") == 0.0  # what was drawn on a line is not published
        crowd = desk.crowds["lender"]
        calm = crowd.fear(Signals())
        assert crowd.fear(Signals(exposure=0.4)) == pytest.approx(calm + 0.8)


@pytest.fixture(scope="module")
def contagion() -> tuple[dict, list[ev.Event]]:
    log = sim.simulate(scenario.load("contagion")).log
    return summary.summarize(log, {})["venues"], log


class TestContagionScenario:
    """The acceptance of issue 8, part 4, on the shipped scenario: a lender with a large
    exposure (blockfi, 41 % of its deposits at FTX) and one with a small one (genesis, 6 %),
    beside an unexposed twin."""

    @pytest.mark.parametrize("lender", ["blockfi", "genesis"])
    def test_the_lenders_liquid_reserve_falls_at_the_borrowers_halt_by_its_deposit(
        self, contagion, lender
    ):
        rows, log = contagion
        halted = rows["ftx"]["halted_at_hours"]
        before, after = around(log, lender, halted)
        deposit = next(d for d in written_down(log, lender) if d.frozen)
        assert rows[lender]["claims_frozen_at_hours"] == halted
        assert deposit.scenario_time == halted * HOUR
        assert before - after == rows[lender]["claims_start"]["deposit"] == deposit.frozen

    def test_with_a_large_exposure_the_lender_runs_dry_after_the_borrower_and_halts(
        self, contagion
    ):
        rows, _ = contagion
        ftx, blockfi = rows["ftx"], rows["blockfi"]
        assert blockfi["dry_at_hours"] is not None
        assert blockfi["dry_at_hours"] > ftx["dry_at_hours"]
        assert blockfi["dry_at_hours"] >= ftx["halted_at_hours"]  # not before the contagion
        assert blockfi["halted_at_hours"] is not None  # a second venue falls
        assert blockfi["paid_fraction"] < 0.5

    def test_with_a_small_exposure_the_lender_pays_the_few_who_run(self, contagion):
        rows, log = contagion
        genesis = rows["genesis"]
        assert genesis["dry_at_hours"] is None and genesis["halted_at_hours"] is None
        assert 0 < genesis["withdrawals_requested"] < 0.1 * len(funded(log, "genesis"))
        assert genesis["paid_fraction"] == 1.0

    def test_ftxs_credit_line_to_blockfi_is_gone_when_blockfi_needs_it(self, contagion):
        """BlockFi first runs short as FTX halts: its draw on FTX's line is refused."""
        rows, log = contagion
        (closed,) = of(log, ev.CreditLineClosed, venue="ftx")
        assert closed.scenario_time == rows["ftx"]["halted_at_hours"] * HOUR
        answers = of(log, ev.CreditDrawn, venue="blockfi", lender="ftx")
        assert answers and {(a.amount, a.reason) for a in answers} == {(0, "line_closed")}
        assert all(log.index(a) > log.index(closed) for a in answers)
        assert rows["blockfi"]["credit_drawn"] == rows["ftx"]["credit_lent"] == 0

    def test_the_unexposed_twin_sees_nothing(self, contagion):
        rows, log = contagion
        before, after = around(log, "unexposed", rows["ftx"]["halted_at_hours"])
        assert before == after
        assert rows["unexposed"]["withdrawals_requested"] == 0
        assert rows["unexposed"]["claims_frozen_at_hours"] is None

    def test_the_write_down_leaves_recovery_on_the_book_and_hits_equity(self, contagion):
        rows, log = contagion
        for lender in ("blockfi", "genesis"):
            downs = written_down(log, lender)
            assert sum(d.frozen for d in downs) == sum(rows[lender]["claims_start"].values())
            assert rows[lender]["claim_losses"] == sum(d.frozen - d.value for d in downs) > 0
            assert snapshots(log, lender)[-1].claims["frozen"] == sum(d.value for d in downs)

    def test_the_log_conserves_money(self, contagion):
        _, log = contagion
        assert summary.check(log) == []  # and sim.simulate checked the ledger invariants


def test_raising_the_small_exposure_sinks_the_same_lender():
    """Only genesis's exposure changes (6 % -> 20 % of its deposits): it runs dry after FTX
    halts — so the difference is the exposure, not the venue."""
    text = scenario.resolve("contagion").read_text()
    small = "counterparty: ftx, kind: deposit, amount: 17500000000"
    assert small in text
    spec = scenario.parse(text.replace(small, small.replace("17500000000", "56000000000")))
    rows = summary.summarize(sim.simulate(spec).log, {})["venues"]
    assert rows["genesis"]["dry_at_hours"] is not None
    assert rows["genesis"]["dry_at_hours"] >= rows["ftx"]["halted_at_hours"]


def funded(log: list[ev.Event], venue: str) -> list[ev.AccountFunded]:
    return [e for e in log if isinstance(e, ev.AccountFunded) and e.venue == venue]


def test_claims_freeze_along_a_chain_of_lenders():
    """lender (2 % hot, the rest at borrower) runs dry within the hour and its gate halts it:
    the third venue's loan to it is written down then; borrower's halt later freezes lender's
    own deposit — contagion passes along a chain of claims either way."""
    text = (
        PAIR.replace(
            "hot_ratio: 0.02, warm_ratio: 0.0, cold_delay_hours: 1000}",
            "hot_ratio: 0.02, warm_ratio: 0.0, cold_delay_hours: 1000}\n"
            "    gate: {trigger: dry, halt: true}",
        )
        + "      - {counterparty: borrower, kind: deposit, amount: 900000000}\n"
        + "  - id: third\n"
        + "    policy: full-reserve\n"
        + "    customers: 10\n"
        + "    total_deposits: 1000000000\n"
        + "    claims: [{counterparty: lender, kind: loan, amount: 100000000, recovery: 0.5}]\n"
        + LOAD
    )
    log = sim.simulate(scenario.parse(text)).log
    rows = summary.summarize(log, {})["venues"]
    assert rows["lender"]["halted_at_hours"] < rows["borrower"]["halted_at_hours"]
    assert rows["third"]["claims_frozen_at_hours"] == rows["lender"]["halted_at_hours"]
    assert rows["third"]["claim_losses"] == 50_000_000
    assert rows["lender"]["claims_frozen_at_hours"] == rows["borrower"]["halted_at_hours"]
