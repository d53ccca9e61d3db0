"""Custody's proof of reserves: at each attestation time, the sum tree of what every customer
is owed, and the reserves that count against it (`bankrun.domain.attestation`).

Custody keeps an index of each attesting venue's accounts (the handlers only look state up by
key), so an attestation walks it. It sends the balances the tree was built from in parts on
`bankrun.por`, then the attestation: the gateway rebuilds the same tree from the parts and
serves each customer their inclusion proof against the published root.

Leaf salts come from a per-run secret (`BANKRUN_POR_SECRET`) that custody and the gateway
share and nothing writes down. It is configuration, set once when the service starts, like
its settings: the handlers stay deterministic for a given secret.
"""

from __future__ import annotations

import hashlib
from typing import Any

from bankrun import events as ev
from bankrun.domain import ledger
from bankrun.domain.attestation import attest, liabilities_tree
from bankrun.domain.ledger import LedgerError, Totals
from services.common.journal import Effects, View

HOUR = 3600.0
PART = 1000  # balances per PorLeaves event: ~30 kB, far under the largest event a service takes

_secret: list[bytes] = []


def use_secret(secret: bytes) -> None:
    """The per-run secret the leaf salts are derived from; custody and gateway share it."""
    _secret[:] = [secret]


def sim_secret(seed: int) -> bytes:
    """A sim's secret: there is no gateway to share it with, only the roots to reproduce."""
    return hashlib.sha256(f"bankrun-sim-por/{seed}".encode()).digest()


def count_key(venue: str, asset: str) -> str:
    return f"por-accounts/{venue}/{asset}"


def index_key(venue: str, asset: str, i: int) -> str:
    return f"por-account/{venue}/{asset}/{i}"


def due_key(venue: str) -> str:
    """When the next attestation is due, scenario seconds; its number is `seq_key`'s."""
    return f"por-due/{venue}"


def seq_key(venue: str) -> str:
    return f"por-seq/{venue}"


def index_account(state: View, config: dict[str, Any], venue: str, account: str) -> None:
    """Remember a new account of an attesting venue, in the order accounts were opened."""
    if not config.get("por"):
        return
    asset = config["asset"]
    n = state.get(count_key(venue, asset), 0)
    state.set(index_key(venue, asset, n), account)
    state.set(count_key(venue, asset), n + 1)


def transit_counted(mobilizations: list[dict[str, Any]], count_less_liquid: bool) -> int:
    """What of the money in transit counts: cash tiers on their way to the hot wallet and sales
    whose proceeds are known land as the venue's own cash; a less-liquid holding still on sale
    counts at its market value when less-liquid holdings count. A deposit called back from
    another venue is a claim until it lands, and the token on sale is still the token."""
    counted = 0
    for m in mobilizations:
        if m["source"].startswith(CLAIM_SOURCES):
            continue
        if m["proceeds"] is not None:
            counted += m["proceeds"]
        elif count_less_liquid and m["source"] == ledger.Holding.LESS_LIQUID:
            counted += m.get("mark_value", 0)
    return counted


CLAIM_SOURCES = ("deposit:", "loan:")


def due(event: ev.Event, state: View, config: dict[str, Any]) -> bool:
    """Whether the venue attests now: it has proofs on and its next attestation time has come.
    Asked on every tick, so it reads nothing else."""
    por = config.get("por")
    if not por:
        return False
    return event.scenario_time >= state.get(due_key(event.venue), por["first_at_hours"] * HOUR)


def publish(
    event: ev.Event,
    state: View,
    effects: Effects,
    config: dict[str, Any],
    totals: Totals,
    mobilizations: list[dict[str, Any]],
) -> None:
    """Attest, and publish the parts and the attestation (call when `due`), once per event: a
    clock that jumps several intervals attests once, then waits for the next due time."""
    por = config["por"]
    venue, asset = event.venue, config["asset"]
    next_due = state.get(due_key(venue), por["first_at_hours"] * HOUR)
    if not _secret:
        raise LedgerError(f"{venue} attests its reserves, but custody has no BANKRUN_POR_SECRET")
    interval = por["interval_hours"] * HOUR
    while next_due <= event.scenario_time:
        next_due += interval
    state.set(due_key(venue), next_due)
    seq = state.get(seq_key(venue), 0)
    state.set(seq_key(venue), seq + 1)

    n = state.get(count_key(venue, asset), 0)
    accounts = [state.get(index_key(venue, asset, i)) for i in range(n)]
    balances = [(a, -(state.get(ledger.customer(venue, a, asset).key) or 0)) for a in accounts]
    pending = -(state.get(ledger.pending(venue, asset).key) or 0)
    tree = liabilities_tree(venue, asset, balances, pending, _secret[0])
    found = attest(
        tree.root,
        totals,
        count_less_liquid=por["count_less_liquid"],
        transit_cash=transit_counted(mobilizations, por["count_less_liquid"]),
    )
    parts = [balances[i : i + PART] for i in range(0, len(balances), PART)]
    for i, part in enumerate(parts):
        effects.emit(
            event.caused(
                ev.PorLeaves,
                label=f"{seq}/{i}",
                asset=asset,
                seq=seq,
                part=i,
                parts=len(parts),
                balances=tuple(part),
            )
        )
    summary = found.to_dict()
    effects.emit(
        event.caused(
            ev.PorAttested,
            label=str(seq),
            asset=asset,
            seq=seq,
            root=found.liabilities_root,
            height=tree.height,
            accounts=len(balances),
            liabilities=found.liabilities,
            ledger_liabilities=found.ledger_liabilities,
            pending=pending,
            eligible=found.eligible,
            excluded=found.excluded,
            reserves=found.reserves,
            ratio=summary["ratio"],
            solvent=found.solvent,
            problems=found.problems,
            published=por["published"],
            parts=len(parts),
        )
    )
