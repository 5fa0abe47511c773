"""Write generated files only when their bytes change, and remove files no longer generated."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import tempfile

logger = logging.getLogger(__name__)


def _replace_file(path: Path, data: bytes) -> None:
    """Write through a temporary file and a rename, without fsync: generated files can be regenerated."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class OutputTree:
    """A folder of generated files; tracks what one render wrote, left unchanged and kept."""

    def __init__(self, root: Path, keep: tuple[str, ...] = ()):
        self.root = Path(root)
        self.keep = set(keep)
        self.written = 0
        self.written_paths: list[str] = []
        self.unchanged = 0
        self.produced: set[str] = set()

    def path(self, relative: str) -> Path:
        """Return the absolute path of ``relative``, which must stay inside the tree."""
        target = (self.root / relative).resolve()
        if not target.is_relative_to(self.root.resolve()):
            raise ValueError(f"generated path {relative!r} leaves the output folder {self.root}")
        return target

    def write(self, relative: str, data: bytes | str) -> bool:
        """Write ``data`` to ``relative`` unless the file already has these bytes; return whether it wrote."""
        payload = data.encode("utf-8") if isinstance(data, str) else data
        target = self.path(relative)
        self.produced.add(relative)
        try:
            if target.stat().st_size == len(payload) and target.read_bytes() == payload:
                self.unchanged += 1
                return False
        except FileNotFoundError:
            pass
        _replace_file(target, payload)
        self.written += 1
        self.written_paths.append(relative)
        return True

    def mark(self, relative: str) -> None:
        """Record that ``relative`` belongs to this render although it was not rewritten (e.g. a cached chart)."""
        self.produced.add(relative)
        self.unchanged += 1

    def prune(self) -> int:
        """Delete files under the tree that this render did not produce; return how many."""
        removed = 0
        if not self.root.exists():
            return 0
        for directory, _, names in os.walk(self.root, topdown=False):
            for name in names:
                path = Path(directory) / name
                relative = path.relative_to(self.root).as_posix()
                if relative in self.produced or relative in self.keep or name.startswith("."):
                    continue
                path.unlink()
                removed += 1
            if directory != str(self.root) and not os.listdir(directory):
                os.rmdir(directory)
        return removed
