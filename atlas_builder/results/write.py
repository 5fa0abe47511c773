"""Write result files and metadata in the atlas format, atomically."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable

import yaml


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def result_line(instance: dict[str, Any]) -> str:
    """Serialise one result object as a JSON line with a fixed key order."""
    order = ("id", "input", "output", "score", "reference", "correct", "metadata")
    ordered = {key: instance[key] for key in order if key in instance}
    return json.dumps(ordered, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def write_result_file(path: Path, instances: Iterable[dict[str, Any]]) -> int:
    """Write result objects to ``path`` (JSON Lines), replacing it atomically; return the row count."""
    lines = [result_line(instance) for instance in instances]
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode("utf-8"))
    return len(lines)


def write_yaml(path: Path, obj: dict[str, Any]) -> None:
    """Write a metadata mapping as block-style YAML, keys in the given order."""
    text = yaml.safe_dump(obj, sort_keys=False, allow_unicode=True, width=100)
    atomic_write_bytes(path, text.encode("utf-8"))
