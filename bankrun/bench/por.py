"""`bankrun bench por`: the Proof of Reserves tree at 10^5 and 10^6 accounts — build time, proof
size, proofs served and verified per second — against the machine's raw SHA-256 rate, measured in
the same run on messages the size of a node's preimage (every build and check is SHA-256 calls
and the Python around them, so the ratio says how much of that is hashing)."""

from __future__ import annotations

import gc
import hashlib
import random
import resource
import time
from collections.abc import Sequence
from typing import Any

from bankrun.domain.por import SUM_BYTES, Proof, SumTree, check

VENUE = "bench"
SECRET = b"bankrun-bench-por-secret"
NODE_PREIMAGE = 1 + 2 * (32 + SUM_BYTES)


def sha256_per_s(hashes: int = 1_000_000) -> float:
    """Raw `hashlib.sha256(m).digest()` calls per second on node-sized messages."""
    messages = [i.to_bytes(NODE_PREIMAGE, "big") for i in range(hashes)]
    sha = hashlib.sha256
    started = time.perf_counter()
    for message in messages:
        sha(message).digest()
    return hashes / (time.perf_counter() - started)


def balances(accounts: int, seed: int = 1) -> list[tuple[str, int]]:
    """Pareto balances in cents (median about $30, a long tail of whales)."""
    rng = random.Random(seed)
    return [(f"c-{i}", int(1_000 * rng.paretovariate(1.16))) for i in range(accounts)]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(accounts: int, proofs: int, baseline: float, seed: int = 1) -> dict[str, Any]:
    book = balances(accounts, seed)
    sample = [account for account, _ in random.Random(seed).sample(book, min(proofs, accounts))]
    gc.collect()
    started = time.perf_counter()
    tree = SumTree.build(VENUE, "USD", book, SECRET)
    build_s = time.perf_counter() - started
    root = tree.root
    assert root.total == sum(balance for _, balance in book)
    del book
    leaves = 1 << root.height
    digests = 3 * leaves + leaves - 1  # salt (HMAC: 2) and leaf per slot, then the inner nodes

    started = time.perf_counter()
    made = [tree.proof(account) for account in sample]
    served_s = time.perf_counter() - started
    rss = _rss_mb()
    del tree
    texts = [proof.model_dump_json() for proof in made]
    started = time.perf_counter()
    for proof in made:
        check(proof, root.hash, root.total, root.height)
    verify_s = time.perf_counter() - started
    started = time.perf_counter()
    for text in texts:
        check(Proof.model_validate_json(text), root.hash, root.total, root.height)
    parse_verify_s = time.perf_counter() - started
    sizes = [len(text.encode()) for text in texts]
    return {
        "accounts": accounts,
        "height": root.height,
        "leaves_with_padding": leaves,
        "build_s": build_s,
        "build_sha256_per_s": digests / build_s,
        "build_vs_raw_sha256": digests / build_s / baseline,
        "proof_siblings": len(made[0].path),
        "proof_json_bytes_mean": sum(sizes) / len(sizes),
        "proof_json_bytes_max": max(sizes),
        "proofs_served_per_s": len(made) / served_s,
        "proofs_verified_per_s": len(made) / verify_s,
        "verify_vs_raw_sha256": len(made) * (root.height + 1) / verify_s / baseline,
        "proofs_parsed_and_verified_per_s": len(made) / parse_verify_s,
        "peak_rss_mb": rss,
    }


def run_por_bench(
    sizes: Sequence[int] = (100_000, 1_000_000), proofs: int = 10_000
) -> dict[str, Any]:
    baseline = sha256_per_s()
    rows = [measure(accounts, proofs, baseline) for accounts in sizes]
    return {
        "baseline": {"raw_sha256_per_s": baseline, "message_bytes": NODE_PREIMAGE},
        "sizes": rows,
    }
