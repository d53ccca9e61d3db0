"""Proof of Reserves: every customer's proof verifies against the published root, and every way
of cheating on a sum tree that the literature knows makes verification fail."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bankrun.domain import por
from bankrun.domain.por import BOUND, SUM_BYTES, Proof, Step, SumTree, check, verify
from bankrun.por_files import ProofFileError, proof_json, read_proof, write_proof

VENUE = "ftx-like"
SECRET = b"ftx-like venue secret, 32 bytes."

books = st.dictionaries(
    st.text(min_size=1, max_size=12), st.integers(0, 10**15), min_size=1, max_size=40
)


def tree_of(book: dict[str, int], **kwargs: object) -> SumTree:
    return SumTree.build(VENUE, "USD", book.items(), SECRET, **kwargs)  # type: ignore[arg-type]


def reason(proof: Proof, root: por.Root, **published: object) -> str:
    with pytest.raises(por.InvalidProof) as failed:
        check(proof, root.hash, **published)  # type: ignore[arg-type]
    return str(failed.value)


def with_step(proof: Proof, level: int, **change: object) -> Proof:
    path = list(proof.path)
    path[level] = path[level].model_copy(update=change)
    return proof.model_copy(update={"path": tuple(path)})


def amount(value: int) -> bytes:
    return value.to_bytes(SUM_BYTES, "big")


class TestEveryCustomerCanCheck:
    @settings(deadline=None)
    @given(books)
    def test_every_customers_proof_verifies_against_the_root(self, book):
        tree = tree_of(book)
        root = tree.root
        for account, balance in book.items():
            proof = tree.proof(account)
            assert proof.balance == balance
            assert check(proof, root.hash, root.total, root.height) == root.total

    @settings(deadline=None)
    @given(books)
    def test_the_sum_at_the_root_is_the_total_owed(self, book):
        assert tree_of(book).root.total == sum(book.values())

    @settings(deadline=None)
    @given(books, st.integers(6, 8))
    def test_every_proof_has_height_siblings_padding_included(self, book, height):
        tree = tree_of(book, height=height)
        assert tree.root.height == height
        assert {len(tree.proof(account).path) for account in book} == {height}

    def test_the_height_defaults_to_the_least_that_holds_the_accounts(self):
        heights = {n: por.height_for(n) for n in (0, 1, 2, 3, 4, 5, 1024, 1025)}
        assert heights == {0: 1, 1: 1, 2: 1, 3: 2, 4: 2, 5: 3, 1024: 10, 1025: 11}
        assert tree_of({f"c-{i}": i for i in range(5)}).root.height == 3

    @settings(deadline=None)
    @given(books)
    def test_the_root_depends_on_the_accounts_not_their_order(self, book):
        backwards = dict(reversed(book.items()))
        assert tree_of(backwards).root == tree_of(book).root

    def test_the_same_secret_rebuilds_the_same_tree_and_another_secret_another(self):
        book = {"whale-1": 5_000_000, "retail-1": 1_250}
        again = SumTree.build(VENUE, "USD", book.items(), SECRET)
        other = SumTree.build(VENUE, "USD", book.items(), b"another venue secret")
        assert again.root == tree_of(book).root
        assert other.root.hash != again.root.hash and other.root.total == again.root.total

    def test_the_salt_is_hmac_sha256_of_the_venue_secret_and_the_account(self):
        proof = tree_of({"whale-1": 7}).proof("whale-1")
        message = b"account\x00" + VENUE.encode() + b"\x00USD\x00whale-1"
        assert proof.salt == hmac.new(SECRET, message, hashlib.sha256).hexdigest()

    def test_a_leaf_hashes_its_balance_salt_venue_asset_and_account_behind_a_prefix(self):
        proof = tree_of({"whale-1": 7}).proof("whale-1")
        preimage = b"\x00" + amount(7) + bytes.fromhex(proof.salt) + b"ftx-like\x00USD\x00whale-1"
        leaf = hashlib.sha256(preimage).digest()
        sibling = proof.path[0]
        pair = (
            (bytes.fromhex(sibling.hash), sibling.sum, leaf, 7)
            if sibling.side == "left"
            else (leaf, 7, bytes.fromhex(sibling.hash), sibling.sum)
        )
        node = hashlib.sha256(b"\x01" + pair[0] + amount(pair[1]) + pair[2] + amount(pair[3]))
        assert node.hexdigest() == tree_of({"whale-1": 7}).root.hash

    def test_a_customer_not_in_the_tree_has_no_proof(self):
        with pytest.raises(por.UnknownAccount):
            tree_of({"whale-1": 7}).proof("retail-9")

    def test_a_leaf_slot_is_not_the_accounts_place_in_the_input(self):
        tree = tree_of({f"c-{i:03}": 100 for i in range(64)}, height=6)
        slots = [
            sum((step.side == "left") << level for level, step in enumerate(tree.proof(a).path))
            for a in (f"c-{i:03}" for i in range(64))
        ]
        assert sorted(slots) == list(range(64)) and slots != list(range(64))


class TestTampering:
    @settings(deadline=None)
    @given(books, st.data())
    def test_changing_the_balance_in_a_proof_fails(self, book, data):
        tree = tree_of(book)
        account = data.draw(st.sampled_from(sorted(book)))
        proof = tree.proof(account)
        forged = data.draw(st.integers(0, 10**16).filter(lambda b: b != proof.balance))
        assert not verify(proof.model_copy(update={"balance": forged}), tree.root.hash)

    @settings(deadline=None)
    @given(books, st.data())
    def test_changing_a_siblings_sum_or_hash_or_side_fails(self, book, data):
        tree = tree_of(book)
        proof = tree.proof(data.draw(st.sampled_from(sorted(book))))
        level = data.draw(st.integers(0, len(proof.path) - 1))
        step = proof.path[level]
        other = data.draw(st.binary(min_size=32, max_size=32)).hex()
        assume(other != step.hash)
        lower = data.draw(st.integers(0, 10**16).filter(lambda s: s != step.sum))
        for forged in (
            with_step(proof, level, sum=lower),
            with_step(proof, level, hash=other),
            with_step(proof, level, side="left" if step.side == "right" else "right"),
        ):
            assert not verify(forged, tree.root.hash)

    def test_swapping_two_siblings_fails(self):
        tree = tree_of({f"c-{i}": 10 * i for i in range(8)})
        proof = tree.proof("c-3")
        first, second = proof.path[0], proof.path[1]
        swapped = with_step(with_step(proof, 0, **dict(second)), 1, **dict(first))
        assert "leads to root" in reason(swapped, tree.root)

    def test_changing_the_account_salt_venue_or_asset_fails(self):
        tree = tree_of({"whale-1": 5_000, "retail-1": 20})
        proof = tree.proof("whale-1")
        for change in (
            {"account": "whale-2"},
            {"salt": "00" * 32},
            {"venue": "binance-like"},
            {"asset": "USDT"},
        ):
            assert not verify(proof.model_copy(update=change), tree.root.hash)

    def test_a_leaf_that_cannot_be_hashed_fails_with_the_reason(self):
        tree = tree_of({"whale-1": 5_000, "retail-1": 20})
        proof = tree.proof("whale-1")
        for change in ({"venue": "ftx\x00like"}, {"account": "\ud800"}):
            assert "the leaf cannot be hashed" in reason(proof.model_copy(update=change), tree.root)

    def test_a_shortened_or_lengthened_path_fails(self):
        tree = tree_of({f"c-{i}": i for i in range(8)})
        proof = tree.proof("c-5")
        short = proof.model_copy(update={"path": proof.path[:-1]})
        long = proof.model_copy(update={"path": (*proof.path, proof.path[-1])})
        for forged in (short, long):
            assert not verify(forged, tree.root.hash)
        assert "height is 3" in reason(short, tree.root, height=3)

    @settings(deadline=None)
    @given(books.filter(lambda b: len(b) >= 2), st.data())
    def test_dropping_an_account_changes_the_root_and_the_total_drops_by_its_balance(
        self, book, data
    ):
        dropped = data.draw(st.sampled_from(sorted(book)))
        before = tree_of(book)
        after = tree_of({a: b for a, b in book.items() if a != dropped}, height=before.height)
        assert after.root.total == before.root.total - book[dropped]
        assert after.root.hash != before.root.hash
        assert not verify(before.proof(dropped), after.root.hash)
        with pytest.raises(por.UnknownAccount):
            after.proof(dropped)
        for account in book:
            if account != dropped:
                assert not verify(before.proof(account), after.root.hash)

    def test_a_proof_of_another_venue_or_asset_fails(self):
        book = {"whale-1": 5_000, "retail-1": 20}
        usdt = SumTree.build(VENUE, "USDT", book.items(), SECRET)
        other = SumTree.build("binance-like", "USD", book.items(), SECRET)
        proof = tree_of(book).proof("whale-1")
        assert not verify(proof, usdt.root.hash)
        assert not verify(proof, other.root.hash)

    def test_a_published_total_other_than_the_committed_one_fails(self):
        tree = tree_of({"whale-1": 5_000, "retail-1": 20})
        proof = tree.proof("retail-1")
        assert "commits to a total of 5020, not 4000" in reason(proof, tree.root, root_total=4000)


class TestSumsThatDoNotAddUp:
    """The attacks on naive sum trees, each forged by hand against this tree's layout."""

    def leaf(self, account: str, balance: int, salt: bytes = b"\x11" * 32) -> bytes:
        return por.leaf_hash(b"ftx-like\x00USD\x00", account, salt, balance)

    def proof(self, account: str, balance: int, *path: Step, salt: str = "11" * 32) -> Proof:
        return Proof(
            venue=VENUE, asset="USD", account=account, salt=salt, balance=balance, path=path
        )

    def test_two_customers_each_shown_the_other_with_nothing_cannot_both_verify(self):
        """Hu, Zhang, Guo (2018) against the Maxwell protocol, whose node hashes only its own
        sum: siblings of 10 each, each shown the other's sum as 0, under a parent of 10 — both
        proofs verify there and the total drops by 10. Here a node hashes both children's
        sums, so the split is fixed and one of the two proofs fails."""
        one, two = self.leaf("retail-1", 10), self.leaf("retail-2", 10, b"\x22" * 32)

        def maxwell(left: bytes, right: bytes, total: int) -> bytes:
            return hashlib.sha256(b"\x01" + left + right + amount(total)).digest()

        maxwell_root = maxwell(one, two, 10)
        assert maxwell(one, two, 10 + 0) == maxwell_root  # retail-1: mine 10, the right one 0
        assert maxwell(one, two, 0 + 10) == maxwell_root  # retail-2: the left one 0, mine 10

        root = por.node_hash(one, 10, two, 0).hex()  # retail-1's view, published total 10
        first = self.proof("retail-1", 10, Step(side="right", hash=two.hex(), sum=0))
        second = self.proof(
            "retail-2", 10, Step(side="left", hash=one.hex(), sum=0), salt="22" * 32
        )
        assert verify(first, root, 10)
        assert not verify(second, root, 10)

    def test_moving_value_from_a_sibling_to_the_leaf_keeps_the_parent_sum_and_still_fails(self):
        tree = tree_of({"whale-1": 5_000, "retail-1": 20})
        proof = tree.proof("retail-1")
        shifted = with_step(
            proof.model_copy(update={"balance": 4_000}), 0, sum=proof.path[0].sum - 3_980
        )
        assert shifted.balance + shifted.path[0].sum == tree.root.total
        assert "leads to root" in reason(shifted, tree.root)

    def test_a_root_over_sums_that_do_not_add_up_fails(self):
        """A node whose stated sum is not its children's: the verifier adds them itself."""
        mine, theirs = self.leaf("retail-1", 20), self.leaf("whale-1", 5_000)
        root = por.node_hash(mine, 20, theirs, 5_000)
        proof = self.proof("retail-1", 20, Step(side="right", hash=theirs.hex(), sum=5_000))
        published = por.Root(VENUE, "USD", root.hex(), total=20, height=1)
        assert check(proof, root.hex()) == 5_020
        assert reason(proof, published, root_total=20) == (
            "the root commits to a total of 5020, not 20"
        )

    def test_a_negative_balance_is_refused_at_build_and_fails_in_a_forged_proof(self):
        with pytest.raises(por.NegativeBalance, match="whale-1: negative balance -5"):
            tree_of({"retail-1": 20, "whale-1": -5})
        tree = tree_of({"whale-1": 5_000, "retail-1": 20})
        proof = tree.proof("whale-1").model_copy(update={"balance": -5})
        assert reason(proof, tree.root) == "the balance -5 is negative"

    def test_a_negative_sibling_sum_fails(self):
        tree = tree_of({"whale-1": 5_000, "retail-1": 20})
        forged = with_step(tree.proof("whale-1"), 0, sum=-20)
        assert reason(forged, tree.root) == "level 0: the sibling's sum -20 is negative"

    def test_a_debt_hidden_as_a_huge_balance_that_wraps_to_negative_fails(self):
        """In fixed-width (or finite-field) sums, BOUND - 5_000 acts as -5_000: a fake account
        with it cancels the whale's 5,000 and the published total is 20. Every sum on the way
        up is checked against the bound, so the whale's proof fails."""
        fake = BOUND - 5_000
        whale, ghost = self.leaf("whale-1", 5_000), self.leaf("ghost", fake, b"\x22" * 32)
        left = por.node_hash(whale, 5_000, ghost, fake)  # sum 2^128 ≡ 0
        retail = self.leaf("retail-1", 20)
        root = por.node_hash(left, 0, retail, 20)
        proof = self.proof(
            "whale-1",
            5_000,
            Step(side="right", hash=ghost.hex(), sum=fake),
            Step(side="right", hash=retail.hex(), sum=20),
        )
        assert reason(proof, por.Root(VENUE, "USD", root.hex(), 20, 2)).startswith(
            "level 1: the node's sum 340282366920938463463374607431768211456 is over the bound"
        )

    def test_a_balance_or_sibling_sum_at_the_bound_fails(self):
        tree = tree_of({"whale-1": 5_000, "retail-1": 20})
        proof = tree.proof("whale-1")
        assert "over the bound 2^128" in reason(
            proof.model_copy(update={"balance": BOUND}), tree.root
        )
        assert "sibling's sum" in reason(with_step(proof, 0, sum=BOUND), tree.root)

    def test_balances_and_a_total_at_the_bound_are_refused_at_build(self):
        with pytest.raises(por.Overflow):
            tree_of({"whale-1": BOUND // 2, "whale-2": BOUND // 2})
        with pytest.raises(por.Overflow):
            tree_of({"whale-1": BOUND})
        top = tree_of({"whale-1": BOUND // 2, "whale-2": BOUND // 2 - 1})
        assert top.root.total == BOUND - 1
        assert verify(top.proof("whale-2"), top.root.hash, BOUND - 1)


class TestBuildRefuses:
    @pytest.mark.parametrize(
        ("book", "error", "match"),
        [
            ([("whale-1", 1.5)], por.PorError, "not an integer"),
            ([("whale-1", True)], por.PorError, "not an integer"),
            ([("whale-1", 5), ("whale-1", 6)], por.DuplicateAccount, "whale-1: listed twice"),
            ([("", 5)], por.PorError, "non-empty"),
        ],
    )
    def test_bad_books(self, book, error, match):
        with pytest.raises(error, match=match):
            SumTree.build(VENUE, "USD", book, SECRET)

    def test_more_accounts_than_slots(self):
        with pytest.raises(por.TreeFull):
            tree_of({f"c-{i}": 1 for i in range(5)}, height=2)

    def test_a_short_secret(self):
        with pytest.raises(por.PorError, match="at least 16 bytes"):
            SumTree.build(VENUE, "USD", [("whale-1", 5)], b"guessable")

    def test_an_empty_book_is_a_tree_of_padding_with_nothing_owed(self):
        tree = tree_of({})
        assert (tree.root.total, tree.root.height, len(tree)) == (0, 1, 0)


class TestProofFiles:
    def test_a_written_proof_reads_back_and_verifies(self, tmp_path):
        tree = tree_of({"whale-1": 5_000, "retail-1": 20})
        path = write_proof(tree, "retail-1", tmp_path / "proof.json")
        assert read_proof(path) == tree.proof("retail-1")
        assert json.loads(path.read_text())["scheme"] == "bankrun-por/v1"

    def test_balances_over_2_to_the_53_survive_the_json(self, tmp_path):
        tree = tree_of({"eth-whale": 10**24, "retail-1": 1})  # a million ether in wei
        proof = read_proof(write_proof(tree, "eth-whale", tmp_path / "proof.json"))
        assert proof.balance == 10**24 and verify(proof, tree.root.hash, tree.root.total)

    @pytest.mark.parametrize(
        ("text", "named"),
        [
            ("{not json", "is not JSON"),
            ('{"scheme": "bankrun-por/v1"}', "account: Field required"),
            ("SALT", "salt: String should match pattern"),
            ("BALANCE", "balance: Input should be a valid integer"),
        ],
    )
    def test_a_malformed_file_names_the_problem(self, tmp_path, text, named):
        good = json.loads(proof_json(tree_of({"whale-1": 5}), "whale-1"))
        if text == "SALT":
            text = json.dumps({**good, "salt": "xyz"})
        elif text == "BALANCE":
            text = json.dumps({**good, "balance": "5"})
        path = tmp_path / "proof.json"
        path.write_text(text)
        with pytest.raises(ProofFileError, match=named):
            read_proof(path)

    def test_a_missing_file(self, tmp_path):
        with pytest.raises(ProofFileError, match="cannot read"):
            read_proof(tmp_path / "nope.json")


def bankrun(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from bankrun.cli import app; app()", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )


class TestVerifyCommand:
    @pytest.fixture
    def published(self, tmp_path: Path) -> tuple[Path, por.Root]:
        tree = tree_of({"whale-1": 500_000, "retail-1": 2_050})
        return write_proof(tree, "retail-1", tmp_path / "proof.json"), tree.root

    def test_a_valid_proof_exits_0(self, published):
        path, root = published
        done = bankrun("por", "verify", str(path), "--root", root.hash, "--total", str(root.total))
        assert done.returncode == 0, done.stdout + done.stderr
        assert "✓ retail-1 at ftx-like: 20.50 USD counted in root" in done.stdout

    def test_a_tampered_proof_exits_1_with_the_reason(self, published):
        path, root = published
        data = json.loads(path.read_text())
        path.write_text(json.dumps({**data, "balance": 3_000}))
        done = bankrun("por", "verify", str(path), "--root", root.hash)
        assert done.returncode == 1
        assert "leads to root" in done.stdout
        path.write_text(json.dumps(data))
        done = bankrun("por", "verify", str(path), "--root", root.hash, "--total", "1")
        assert done.returncode == 1 and "not 1" in done.stdout

    def test_an_unreadable_file_or_root_exits_2_naming_it(self, published, tmp_path):
        path, root = published
        (tmp_path / "bad.json").write_text('{"scheme": "bankrun-por/v1", "path": []}')
        for args, named in (
            ((str(tmp_path / "bad.json"), "--root", root.hash), "venue: Field required"),
            ((str(tmp_path / "nope.json"), "--root", root.hash), "cannot read"),
            ((str(path), "--root", "abc"), "not a root hash"),
        ):
            done = bankrun("por", "verify", *args)
            assert done.returncode == 2, done.stdout
            assert named in done.stdout


def test_the_benchmark_on_small_trees_reports_every_figure():
    """`bankrun bench por` on small trees: figures present and positive; no claim on speed."""
    from bankrun.bench.por import run_por_bench

    (small, larger) = run_por_bench(sizes=(100, 1_000), proofs=50, repeats=1)["sizes"]
    assert (small["height"], larger["height"]) == (7, 10)
    assert larger["proof_siblings"] == 10 and larger["proof_json_bytes_max"] > 1_000
    for key in ("build_s", "raw_sha256_per_s", "proofs_made_per_s", "proofs_verified_per_s"):
        assert larger[key] > 0, key
