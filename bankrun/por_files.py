"""Proof files: the JSON a customer downloads (`GET /por/{venue}/proof`, or just its `proof`)
and checks offline with `bankrun por verify`."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from bankrun.domain.por import Proof, SumTree
from bankrun.validation import named


class ProofFileError(Exception):
    """A proof file that cannot be read or is not a proof; `str()` names the problem."""


def proof_json(tree: SumTree, account: str) -> str:
    return tree.proof(account).model_dump_json(indent=2) + "\n"


def write_proof(tree: SumTree, account: str, path: Path) -> Path:
    path.write_text(proof_json(tree, account))
    return path


def read_proof(path: Path) -> Proof:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ProofFileError(f"cannot read {path}: {exc}") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ProofFileError(f"{path} is not JSON: {exc}") from exc
    if isinstance(data, dict) and "proof" in data and "attestation" in data:
        data = data["proof"]  # the gateway's answer: the proof beside the attestation
    try:
        return Proof.model_validate_json(json.dumps(data))
    except ValidationError as exc:
        problems = named(exc, root="file")
        raise ProofFileError(f"{path} is not a {Proof.__name__.lower()} file: {problems}") from exc
