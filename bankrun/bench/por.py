"""`bankrun bench por`: the Proof of Reserves tree at 10^5 and 10^6 accounts — build time, proof
size, proofs made and verified per second — against the machine's raw SHA-256 rate on messages
the size of a node's preimage, measured in the same run just before each timing (a build or a
check is SHA-256 calls and the Python around them, so the ratio says how close to bare hashing
it gets). Each timing is repeated and the best kept, the baseline too: on a shared machine the
best is the least disturbed, and both sides of the ratio are measured alike."""

from __future__ import annotations

import functools
import gc
import hashlib
import random
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from bankrun.domain.por import SUM_BYTES, Proof, SumTree, check

VENUE = "bench"
SECRET = b"bankrun-bench-por-secret"
NODE_PREIMAGE = 1 + 2 * (32 + SUM_BYTES)


@functools.cache
def _messages(count: int = 200_000) -> list[bytes]:
    return [i.to_bytes(NODE_PREIMAGE, "big") for i in range(count)]


def sha256_per_s() -> float:
    """Raw `hashlib.sha256(m).digest()` calls per second on node-sized messages."""
    messages, sha = _messages(), hashlib.sha256
    started = time.perf_counter()
    for message in messages:
        sha(message).digest()
    return len(messages) / (time.perf_counter() - started)


def balances(accounts: int, seed: int = 1) -> list[tuple[str, int]]:
    """Pareto balances in cents (median about $18, a long tail of whales)."""
    rng = random.Random(seed)
    return [(f"c-{i}", int(1_000 * rng.paretovariate(1.16))) for i in range(accounts)]


def _rss_now_mb() -> float:
    """The process's resident memory now (Linux: /proc/self/statm)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def _best(repeats: int, timed: Callable[[], object]) -> tuple[list[float], list[float]]:
    """`repeats` pairs of (raw SHA-256 rate, seconds of `timed`), the baseline just before."""
    rates, seconds = [], []
    for _ in range(repeats):
        rates.append(sha256_per_s())
        gc.collect()
        started = time.perf_counter()
        timed()
        seconds.append(time.perf_counter() - started)
    return rates, seconds


def measure(accounts: int, proofs: int, repeats: int = 3, seed: int = 1) -> dict[str, Any]:
    book = balances(accounts, seed)
    sample = [account for account, _ in random.Random(seed).sample(book, min(proofs, accounts))]
    trees: list[SumTree] = []
    grew: list[float] = []

    def build() -> None:
        trees.clear()  # the previous tree goes before the next is built
        before = _rss_now_mb()
        trees.append(SumTree.build(VENUE, "USD", book, SECRET))
        grew.append(_rss_now_mb() - before)

    build_rates, build_s = _best(repeats, build)
    root = trees[0].root
    assert root.total == sum(balance for _, balance in book)
    book.clear()
    leaves = 1 << root.height
    digests = 3 * leaves + leaves - 1  # per slot: the salt (HMAC: 2) and the leaf; the nodes

    made: list[Proof] = []

    def make_all() -> None:
        made[:] = [trees[0].proof(account) for account in sample]

    _, made_s = _best(repeats, make_all)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    trees.clear()
    texts = [proof.model_dump_json() for proof in made]

    def verify_all() -> None:
        for proof in made:
            check(proof, root.hash, root.total, root.height)

    def parse_and_verify_all() -> None:
        for text in texts:
            check(Proof.model_validate_json(text), root.hash, root.total, root.height)

    verify_rates, verify_s = _best(repeats, verify_all)
    _, parse_verify_s = _best(repeats, parse_and_verify_all)
    sizes = [len(text.encode()) for text in texts]
    return {
        "accounts": accounts,
        "height": root.height,
        "leaves_with_padding": leaves,
        "build_s": min(build_s),
        "build_s_median": statistics.median(build_s),
        "build_sha256_per_s": digests / min(build_s),
        "raw_sha256_per_s": max(build_rates),
        "build_vs_raw_sha256": digests / min(build_s) / max(build_rates),
        "proof_siblings": len(made[0].path),
        "proof_json_bytes_mean": sum(sizes) / len(sizes),
        "proof_json_bytes_max": max(sizes),
        "proofs_made_per_s": len(sample) / min(made_s),
        "proofs_verified_per_s": len(made) / min(verify_s),
        "verify_vs_raw_sha256": len(made) * (root.height + 1) / min(verify_s) / max(verify_rates),
        "proofs_parsed_and_verified_per_s": len(made) / min(parse_verify_s),
        "tree_rss_mb": grew[0],  # what the first build added to the process and kept
        "peak_rss_mb": rss,
        "repeats": repeats,
    }


def run_por_bench(
    sizes: Sequence[int] = (100_000, 1_000_000), proofs: int = 10_000, repeats: int = 3
) -> dict[str, Any]:
    return {"sizes": [measure(accounts, proofs, repeats) for accounts in sizes]}
