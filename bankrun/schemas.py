"""JSON Schemas and the topics catalogue as files, generated from code and checked for drift."""

from __future__ import annotations

import json
from pathlib import Path

from bankrun.events import EVENT_TYPES
from bankrun.topics import CATALOGUE

DEFAULT_DIR = Path(__file__).resolve().parent.parent / "schemas"


def render() -> dict[str, str]:
    """Relative path -> file text, for every file under schemas/."""
    files: dict[str, str] = {}
    for name, cls in sorted(EVENT_TYPES.items()):
        schema = cls.model_json_schema()
        schema["$id"] = f"bankrun/events/{name}.json"
        files[f"events/{name}.json"] = _dump(schema)
    files["topics.json"] = _dump({"topics": [t.describe() for t in CATALOGUE]})
    return files


def _dump(data: object) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def write(directory: Path = DEFAULT_DIR) -> list[Path]:
    written = []
    for rel, text in render().items():
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    for stale in drift(directory):
        (directory / stale).unlink(missing_ok=True)
    return written


def drift(directory: Path = DEFAULT_DIR) -> list[str]:
    """Files under `directory` that differ from what the code generates (or should not exist)."""
    expected = render()
    problems = [rel for rel, text in expected.items() if _read(directory / rel) != text]
    on_disk = {p.relative_to(directory).as_posix() for p in directory.rglob("*.json")}
    problems += sorted(on_disk - expected.keys())
    return problems


def _read(path: Path) -> str | None:
    return path.read_text() if path.exists() else None
