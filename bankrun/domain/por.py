"""Proof of Reserves, the liabilities side: a Merkle sum tree of what a venue owes its customers
in one asset, and inclusion proofs any customer can check offline against the published root.

The design follows Maxwell's sum tree as repaired in the literature — Vitalik Buterin, "Having a
safe CEX: proof of solvency and beyond" (2022), Binance's Merkle proof of reserves, and
Summa (summa-dev) — and guards against the published attacks on naive sum trees:

- **A node commits to both children's hashes and both sums**, not just to its own sum:
  `H(0x01 ‖ left hash ‖ left sum ‖ right hash ‖ right sum)`, as in Vitalik's
  `merkle_sum_tree.py`. With only the parent's sum in the hash (the Maxwell protocol) a prover
  can show two customers different splits of one sum and leave all but one balance out (Hu,
  Zhang, Guo, "Breaking the Binding", IACR ePrint 2018/1139).
- **Every amount is bounded**: balances and every node sum lie in [0, 2^128) (`BOUND`) and are
  hashed as 16 fixed big-endian bytes; the verifier checks each sibling sum and each partial sum
  on the way up, so a huge sibling cannot wrap round to act as a negative one (the overflow
  attack on sum trees over a finite field or fixed-width integers) and a negative balance can
  never cancel a debt. 2^128 and not 2^64: ETH's minor unit is the wei (10^18 per ether).
- **Leaves and nodes are domain-separated** (prefix 0x00 and 0x01, fixed-width node preimages),
  so an inner node cannot pose as a leaf and a proof cannot be shortened or lengthened.
- **Every leaf is salted**: salt = HMAC-SHA256(venue secret, venue ‖ asset ‖ account), so the
  leaf hash a customer sees as their neighbour's sibling cannot be brute-forced back to an
  account and balance; the secret is an input, so a run's tree can be rebuilt exactly.
- **Fixed height, padded and shuffled**: the 2^height leaf slots are filled with the accounts
  and with zero-balance padding leaves salted from the same secret (indistinguishable from a
  customer with nothing), ordered by leaf hash. Every proof has `height` siblings, and a
  proof's left/right path tells nothing about the account's place in any list or about how many
  accounts there are beyond the bound 2^height.

A leaf is `H(0x00 ‖ balance ‖ salt ‖ venue 0x00 asset 0x00 account)` (UTF-8; the account is
the last field, so any string works), so a proof also proves which venue and asset it is for.
Hashes are SHA-256. Pure: no I/O, no clock; the tree is built level by level over flat lists
(no object per node), which builds 10^6 accounts in seconds.

Left out on purpose: a proof shows its sibling sums, so the first sibling is one other
(anonymous) customer's balance — hiding sums needs commitments or zero-knowledge proofs
(Summa, DAPOL+), which this does not attempt.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints

SCHEME = "bankrun-por/v1"
SUM_BYTES = 16
BOUND = 1 << (8 * SUM_BYTES)  # every balance and every node sum is < BOUND
MAX_HEIGHT = 32
MIN_SECRET_BYTES = 16
LEAF = b"\x00"
NODE = b"\x01"

_HEX32 = re.compile(r"[0-9a-f]{64}")
Hex32 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class PorError(ValueError):
    """A tree that cannot be built as asked."""


class NegativeBalance(PorError):
    pass


class DuplicateAccount(PorError):
    pass


class Overflow(PorError):
    pass


class TreeFull(PorError):
    pass


class UnknownAccount(KeyError):
    pass


class InvalidProof(Exception):
    """A proof that does not hold; `str()` is the reason, for the customer."""


class Step(BaseModel):
    """One sibling on the way from the leaf to the root: it sits on `side` of the path."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    side: Literal["left", "right"]
    hash: Hex32
    sum: int


class Proof(BaseModel):
    """What a customer needs to check their balance is counted: the leaf's data and its path.

    Shape only is validated here (a malformed file is not a failed proof); amounts are checked
    by `check`, which says what is wrong with them.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    scheme: Literal["bankrun-por/v1"] = SCHEME
    venue: str
    asset: str
    account: str
    salt: Hex32
    balance: int
    path: tuple[Step, ...]


@dataclass(frozen=True)
class Root:
    """What a venue publishes: the top hash commits to the total (both halves' sums)."""

    venue: str
    asset: str
    hash: str
    total: int
    height: int

    def to_dict(self) -> dict[str, object]:
        return {
            "venue": self.venue,
            "asset": self.asset,
            "hash": self.hash,
            "total": self.total,
            "height": self.height,
        }


def _context(venue: str, asset: str) -> bytes:
    if "\x00" in venue or "\x00" in asset:
        raise PorError("a venue or asset name cannot contain NUL")
    return venue.encode() + b"\x00" + asset.encode() + b"\x00"


def _amount(value: int) -> bytes:
    return value.to_bytes(SUM_BYTES, "big")


def leaf_hash(context: bytes, account: str, salt: bytes, balance: int) -> bytes:
    return hashlib.sha256(LEAF + _amount(balance) + salt + context + account.encode()).digest()


def node_hash(left: bytes, left_sum: int, right: bytes, right_sum: int) -> bytes:
    return hashlib.sha256(NODE + left + _amount(left_sum) + right + _amount(right_sum)).digest()


class _Salter:
    """HMAC-SHA256 keyed once: the pads' states are copied per message (2.3x `hmac.digest`)."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < MIN_SECRET_BYTES:
            raise PorError(f"the venue secret must be at least {MIN_SECRET_BYTES} bytes")
        key = hashlib.sha256(secret).digest() if len(secret) > 64 else secret
        key = key.ljust(64, b"\x00")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def pads(self) -> tuple[Any, Any]:
        """The inner and outer hash states after the key, to copy (for a hot loop)."""
        return self._inner, self._outer

    def __call__(self, message: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


def _account_salt(salter: _Salter, context: bytes, account: str) -> bytes:
    return salter(b"account\x00" + context + account.encode())


def _padding_salt(salter: _Salter, context: bytes, slot: int) -> bytes:
    return salter(b"padding\x00" + context + slot.to_bytes(8, "big"))


def _check_accounts(accounts: list[str], balances: list[int]) -> None:
    """Name the first offender; the common case runs at C speed."""
    if not all(type(b) is int for b in balances):
        bad = next(i for i, b in enumerate(balances) if type(b) is not int)
        raise PorError(f"{accounts[bad]}: balance {balances[bad]!r} is not an integer")
    if balances and min(balances) < 0:
        bad = next(i for i, b in enumerate(balances) if b < 0)
        raise NegativeBalance(f"{accounts[bad]}: negative balance {balances[bad]}")
    if not all(accounts) or not all(type(a) is str for a in accounts):
        raise PorError("an account id must be a non-empty string")
    if len(set(accounts)) != len(accounts):
        seen: set[str] = set()
        twice = next(a for a in accounts if a in seen or seen.add(a))
        raise DuplicateAccount(f"{twice}: listed twice")
    total = sum(balances)
    if total >= BOUND:
        raise Overflow(f"total liabilities {total} reach the bound 2^{8 * SUM_BYTES}")


def height_for(accounts: int) -> int:
    """The smallest height (at least 1) whose 2^height leaf slots hold `accounts`."""
    return max(1, (accounts - 1).bit_length())


class SumTree:
    """A venue's customer liabilities in one asset. Build with `SumTree.build`."""

    def __init__(
        self,
        venue: str,
        asset: str,
        salter: _Salter,
        hashes: list[bytes],
        sums: list[list[int]],
        slots: dict[str, int],
    ) -> None:
        self.venue = venue
        self.asset = asset
        self._context = _context(venue, asset)
        self._salter = salter
        self._hashes = hashes  # per level, leaves first: the level's 32-byte hashes concatenated
        self._sums = sums  # per level, leaves first
        self._slots = slots  # account -> leaf slot

    @classmethod
    def build(
        cls,
        venue: str,
        asset: str,
        balances: Iterable[tuple[str, int]],
        secret: bytes,
        height: int | None = None,
    ) -> SumTree:
        """Refuses (before hashing anything) a balance that is not an integer in [0, BOUND), an
        empty or repeated account id, a total at or over `BOUND`, and more accounts than
        2^height slots. `height` defaults to the least that holds them."""
        context = _context(venue, asset)
        salter = _Salter(secret)
        pairs = list(balances)
        accounts = [account for account, _ in pairs]
        leaf_sums = [balance for _, balance in pairs]
        del pairs
        _check_accounts(accounts, leaf_sums)
        n = len(accounts)
        height = height_for(n) if height is None else height
        if not 1 <= height <= MAX_HEIGHT:
            raise PorError(f"height {height} is outside 1 … {MAX_HEIGHT}")
        size = 1 << height
        if n > size:
            raise TreeFull(f"{n} accounts do not fit 2^{height} leaves")

        # The leaves, inlined (`leaf_hash` and `_Salter.__call__` per account cost twice as much);
        # every proof's check recomputes them with those functions, so the two cannot drift.
        sha, width = hashlib.sha256, SUM_BYTES
        inner, outer = salter.pads()
        salt_prefix = b"account\x00" + context
        leaves: list[bytes] = []
        append = leaves.append
        for account, balance in zip(accounts, leaf_sums, strict=True):
            tail = account.encode()
            mac = inner.copy()
            mac.update(salt_prefix + tail)
            salt = outer.copy()
            salt.update(mac.digest())
            append(
                sha(LEAF + balance.to_bytes(width, "big") + salt.digest() + context + tail).digest()
            )
        leaves += [
            leaf_hash(context, "", _padding_salt(salter, context, slot), 0)
            for slot in range(n, size)
        ]
        leaf_sums += [0] * (size - n)
        # Slots in leaf-hash order: a keyed shuffle that anyone holding the secret can redo.
        order = sorted(range(size), key=leaves.__getitem__)
        level = [leaves[i] for i in order]
        level_sums = [leaf_sums[i] for i in order]
        del leaves, leaf_sums
        slot_of = [0] * size
        for slot, i in enumerate(order):
            slot_of[i] = slot
        slots = dict(zip(accounts, slot_of, strict=False))
        del order, slot_of, accounts

        hashes: list[bytes] = []
        sums: list[list[int]] = []
        while True:
            hashes.append(b"".join(level))
            sums.append(level_sums)
            if len(level) == 1:
                break
            up: list[bytes] = []
            up_sums: list[int] = []
            push, push_sum = up.append, up_sums.append
            for i in range(0, len(level), 2):
                ls, rs = level_sums[i], level_sums[i + 1]
                push(
                    sha(
                        NODE
                        + level[i]
                        + ls.to_bytes(width, "big")
                        + level[i + 1]
                        + rs.to_bytes(width, "big")
                    ).digest()
                )
                push_sum(ls + rs)
            level, level_sums = up, up_sums
        return cls(venue, asset, salter, hashes, sums, slots)

    @property
    def height(self) -> int:
        return len(self._sums) - 1

    @property
    def root(self) -> Root:
        return Root(self.venue, self.asset, self._hashes[-1].hex(), self._sums[-1][0], self.height)

    def __len__(self) -> int:
        return len(self._slots)

    def __contains__(self, account: object) -> bool:
        return account in self._slots

    def balance(self, account: str) -> int:
        return self._sums[0][self._slot(account)]

    def _slot(self, account: str) -> int:
        try:
            return self._slots[account]
        except KeyError:
            raise UnknownAccount(account) from None

    def proof(self, account: str) -> Proof:
        """The account's leaf data and its siblings, leaf first."""
        slot = self._slot(account)
        path = []
        index = slot
        for level in range(self.height):
            sibling = index ^ 1
            path.append(
                {
                    "side": "left" if sibling < index else "right",
                    "hash": self._hashes[level][32 * sibling : 32 * sibling + 32].hex(),
                    "sum": self._sums[level][sibling],
                }
            )
            index >>= 1
        return Proof.model_validate(  # one validation call for the whole proof: the fastest way
            {
                "venue": self.venue,
                "asset": self.asset,
                "account": account,
                "salt": _account_salt(self._salter, self._context, account).hex(),
                "balance": self._sums[0][slot],
                "path": tuple(path),
            }
        )


def _in_bounds(value: int, what: str) -> None:
    if value < 0:
        raise InvalidProof(f"{what} {value} is negative")
    if value >= BOUND:
        raise InvalidProof(f"{what} {value} is over the bound 2^{8 * SUM_BYTES}")


def check(
    proof: Proof, root_hash: str, root_total: int | None = None, height: int | None = None
) -> int:
    """Recompute the root from the proof alone; raise `InvalidProof` saying what does not hold,
    or return the root's total. `root_hash` (hex) and the optional total and height are what
    the venue published; a bad `root_hash` is a `ValueError`, not a failed proof."""
    if not _HEX32.fullmatch(root_hash):
        raise ValueError("a root hash is 64 lowercase hex digits")
    expected = bytes.fromhex(root_hash)
    if height is not None and len(proof.path) != height:
        raise InvalidProof(f"the path has {len(proof.path)} steps, the tree's height is {height}")
    _in_bounds(proof.balance, "the balance")
    try:
        context = _context(proof.venue, proof.asset)
        node = leaf_hash(context, proof.account, bytes.fromhex(proof.salt), proof.balance)
    except ValueError as exc:  # a NUL in a name, text that is not Unicode, a bad salt
        raise InvalidProof(f"the leaf cannot be hashed: {exc}") from None
    total = proof.balance
    for level, step in enumerate(proof.path):
        _in_bounds(step.sum, f"level {level}: the sibling's sum")
        sibling = bytes.fromhex(step.hash)
        if step.side == "left":
            node = node_hash(sibling, step.sum, node, total)
        else:
            node = node_hash(node, total, sibling, step.sum)
        total += step.sum
        _in_bounds(total, f"level {level + 1}: the node's sum")
    if not hmac.compare_digest(node, expected):
        raise InvalidProof(
            f"the proof leads to root {node.hex()}, not {root_hash}: the leaf or a sibling "
            "is not what the venue committed to"
        )
    if root_total is not None and total != root_total:
        raise InvalidProof(f"the root commits to a total of {total}, not {root_total}")
    return total


def verify(
    proof: Proof, root_hash: str, root_total: int | None = None, height: int | None = None
) -> bool:
    """Whether `check` passes."""
    try:
        check(proof, root_hash, root_total, height)
    except InvalidProof:
        return False
    return True
