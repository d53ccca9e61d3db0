"""Pydantic's validation errors as lines that name the field, for every input a user writes
(scenario files, parameter paths, proof files)."""

from __future__ import annotations

from pydantic import ValidationError


def named(bad: ValidationError, prefix: str = "", root: str = "") -> str:
    """`field.path: message; …`; `root` names an error about the input as a whole."""
    return "; ".join(
        f"{prefix}{'.'.join(str(p) for p in e['loc']) or root}: {e['msg']}" for e in bad.errors()
    )
