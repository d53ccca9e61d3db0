"""JSON Schemas and the topics catalogue as files, generated from code and checked for drift."""

from __future__ import annotations

from pathlib import Path

from bankrun.events import EVENT_TYPES
from bankrun.generated import GeneratedFiles, dump_json
from bankrun.topics import CATALOGUE

DEFAULT_DIR = Path(__file__).resolve().parent.parent / "schemas"


def render() -> dict[str, str]:
    """Relative path -> file text, for every file under schemas/."""
    files: dict[str, str] = {}
    for name, cls in sorted(EVENT_TYPES.items()):
        schema = cls.model_json_schema()
        schema["$id"] = f"bankrun/events/{name}.json"
        files[f"events/{name}.json"] = dump_json(schema)
    files["topics.json"] = dump_json({"topics": [t.describe() for t in CATALOGUE]})
    return files


FILES = GeneratedFiles(render, DEFAULT_DIR)
write = FILES.write
drift = FILES.drift
