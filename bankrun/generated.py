"""Files generated from code and checked in (JSON Schemas, Grafana dashboards): written, or
compared with what the code generates now, so drift fails a check instead of misleading."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


def dump_json(data: object) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


@dataclass(frozen=True)
class GeneratedFiles:
    render: Callable[[], dict[str, str]]  # relative path -> file text
    default_dir: Path
    pattern: str = "*.json"

    def write(self, directory: Path | None = None) -> list[Path]:
        directory = directory or self.default_dir
        written = []
        for rel, text in self.render().items():
            path = directory / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            written.append(path)
        for stale in self.drift(directory):
            (directory / stale).unlink(missing_ok=True)
        return written

    def drift(self, directory: Path | None = None) -> list[str]:
        """Files under `directory` that differ from what the code generates (or should not
        exist)."""
        directory = directory or self.default_dir
        expected = self.render()
        problems = [rel for rel, text in expected.items() if _read(directory / rel) != text]
        on_disk = {p.relative_to(directory).as_posix() for p in directory.rglob(self.pattern)}
        problems += sorted(on_disk - expected.keys())
        return problems


def _read(path: Path) -> str | None:
    return path.read_text() if path.exists() else None
