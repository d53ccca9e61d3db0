"""A venue's proof-of-reserves attestation: the liabilities its Merkle sum tree commits to, the
reserves that may be counted against them, and the ratio of the two.

What counts is decided by what a customer could be paid from, not by what the book says it is
worth. Cash in the venue's own wallets counts, whatever the tier (cold cash is slow, not
doubtful). The venue's own token and a loan to its affiliate never count: their value is the
venue's own credit, which is exactly what a run tests (FTT and Alameda's loan, November 2022).
Less-liquid assets count at their market value only if the attestation says so. Claims on other
venues do not count — they are someone else's liability, and contagion is how they go bad — and
of the money in transit only what will land as the venue's own cash counts: cash moving between
its own wallets and the proceeds of a finished sale (`transit_cash`), not a holding still on
sale nor a deposit being called back from another venue.

The liabilities are the tree's total, which every customer can check their part of; the ledger's
liabilities (customer balances and withdrawals reserved but not yet paid) are set beside it, and
the ratio is taken against the larger, so a tree that leaves money owed out never flatters it.
Pure: a root and a balance sheet in, an attestation out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bankrun.domain.ledger import Totals
from bankrun.domain.por import Root, SumTree

CASH = ("hot", "warm", "cold")
NEVER = ("platform_token", "affiliate_loan")
NOT_RESERVES = ("claim_deposit", "claim_loan", "claim_credit_line", "claim_frozen")


#: What is reserved for withdrawals not yet paid is owed too, to whoever asked: one leaf, under
#: a name no customer account can have (ids start with a letter or digit).
PENDING_LEAF = "~withdrawals-pending"


def liabilities_tree(
    venue: str, asset: str, balances: list[tuple[str, int]], pending: int, secret: bytes
) -> SumTree:
    """What a venue owes in one asset: every customer's balance and the pending leaf, so the
    root's total is the ledger's liabilities. Custody builds it to attest; the gateway rebuilds
    it from the published parts to serve proofs."""
    return SumTree.build(venue, asset, [*balances, (PENDING_LEAF, pending)], secret)


@dataclass(frozen=True)
class Attestation:
    venue: str
    asset: str
    liabilities_root: str  # the tree's root hash
    liabilities: int  # the tree's total
    ledger_liabilities: int  # Totals.liabilities: customer balances and reserved withdrawals
    eligible: dict[str, int]  # counted reserves by source
    excluded: dict[str, int]  # everything else on the sheet's asset side, by source
    less_liquid_counted: bool
    problems: tuple[str, ...] = field(default=())

    @property
    def reserves(self) -> int:
        return sum(self.eligible.values())

    @property
    def owed(self) -> int:
        """What the ratio is taken against: the larger of the tree's and the ledger's figure."""
        return max(self.liabilities, self.ledger_liabilities)

    @property
    def ratio(self) -> float | None:
        """Eligible reserves over liabilities; None when nothing is owed."""
        return self.reserves / self.owed if self.owed else None

    @property
    def solvent(self) -> bool:
        return self.reserves >= self.owed

    def to_dict(self) -> dict[str, object]:
        return {
            "venue": self.venue,
            "asset": self.asset,
            "liabilities_root": self.liabilities_root,
            "liabilities": self.liabilities,
            "ledger_liabilities": self.ledger_liabilities,
            "eligible": dict(self.eligible),
            "excluded": dict(self.excluded),
            "less_liquid_counted": self.less_liquid_counted,
            "reserves": self.reserves,
            "ratio": self.ratio,
            "solvent": self.solvent,
            "problems": list(self.problems),
        }


def attest(
    root: Root, totals: Totals, *, count_less_liquid: bool = False, transit_cash: int = 0
) -> Attestation:
    """The attestation of `root` (the venue's customer liabilities in `root.asset`) against
    `totals` (the same venue's sheet in that asset, e.g. custody's `read_totals`); of
    `totals.transit`, `transit_cash` lands as cash."""
    counted = CASH + (("less_liquid",) if count_less_liquid else ())
    left_out = NEVER + NOT_RESERVES + (() if count_less_liquid else ("less_liquid",))
    problems = []
    if root.total != totals.liabilities:
        problems.append(
            f"the tree commits to {root.total} but the ledger owes {totals.liabilities}"
        )
    negative = [name for name in (*counted, *left_out, "transit") if getattr(totals, name) < 0]
    problems += [f"{name} is negative: {getattr(totals, name)}" for name in negative]
    if transit_cash < 0:
        problems.append(f"cash in transit is negative: {transit_cash}")
    return Attestation(
        venue=root.venue,
        asset=root.asset,
        liabilities_root=root.hash,
        liabilities=root.total,
        ledger_liabilities=totals.liabilities,
        eligible={name: max(0, getattr(totals, name)) for name in counted}
        | {"transit": max(0, transit_cash)},
        excluded={name: getattr(totals, name) for name in left_out}
        | {"transit": max(0, totals.transit - max(0, transit_cash))},
        less_liquid_counted=count_less_liquid,
        problems=tuple(problems),
    )
