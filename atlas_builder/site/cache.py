"""Skip rendering a page whose inputs did not change since the last render into the same folder.

A page unit is one Markdown page plus its CSV and JSON downloads. Its key is
the SHA-256 of its inputs: the slices of the analysis it reads, the metadata
it prints, the release, and the version of the site code and templates. The
manifest beside the pages stores, per unit, that digest, the files it wrote,
its chart specs and the row it adds to an index page, so a skipped unit still
contributes charts and index rows. Index, family and fixed pages are cheap and
always rendered.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from dataclasses import asdict
from importlib import resources
from typing import Any

import pandas as pd

from atlas_builder.site.charts import ChartSpec

logger = logging.getLogger(__name__)

MANIFEST_NAME = ".page-hashes.json"


@functools.lru_cache(maxsize=1)
def site_code_version() -> str:
    """Return the SHA-256 of the site package's Python files and templates, so a code change renders every page."""
    digest = hashlib.sha256()
    package = resources.files("atlas_builder.site")
    files = [item for item in package.iterdir() if item.name.endswith(".py")]
    files += [item for item in package.joinpath("templates").iterdir() if item.name.endswith(".j2")]
    for item in sorted(files, key=lambda entry: entry.name):
        digest.update(item.name.encode("utf-8") + b"\0" + item.read_bytes() + b"\0")
    return digest.hexdigest()


def input_digest(parts: list[Any]) -> str:
    """Return the SHA-256 of a page's inputs: data frames by content, anything else as sorted JSON (repr for other objects)."""
    digest = hashlib.sha256(site_code_version().encode("ascii"))
    for part in parts:
        if isinstance(part, (pd.DataFrame, pd.Series)):
            frame = part.to_frame() if isinstance(part, pd.Series) else part
            digest.update(json.dumps([list(map(str, frame.columns)), list(map(str, frame.dtypes))]).encode("utf-8"))
            digest.update(pd.util.hash_pandas_object(frame, index=isinstance(part, pd.Series)).to_numpy().tobytes())
        else:
            digest.update(json.dumps(part, sort_keys=True, default=repr, allow_nan=True).encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


class PageCache:
    """The manifest of page units of one output folder: which to skip, and what the render produced."""

    def __init__(self, tree, folder: str, *, force: bool = False):
        self.tree, self.folder = tree, folder
        self.previous: dict[str, Any] = {}
        if not force:
            try:
                self.previous = json.loads(tree.path(f"{folder}/{MANIFEST_NAME}").read_text(encoding="utf-8"))
            except (FileNotFoundError, ValueError):
                self.previous = {}
        self.current: dict[str, Any] = {}
        self.rendered = 0
        self.skipped = 0

    def lookup(self, unit: str, digest: str) -> dict[str, Any] | None:
        """Return the stored entry of ``unit`` when its digest matches and its files exist; mark the files as kept."""
        entry = self.previous.get(unit)
        if not isinstance(entry, dict) or entry.get("digest") != digest:
            return None
        paths = [f"{self.folder}/{name}" for name in entry.get("files", [])]
        if not all(self.tree.path(path).is_file() for path in paths):
            return None
        for path in paths:
            self.tree.mark(path)
        self.current[unit] = entry
        self.skipped += 1
        return entry

    def store(self, unit: str, digest: str, files: dict[str, str], charts: list[ChartSpec], row: Any) -> dict[str, Any]:
        """Write the files of a freshly rendered unit and record it."""
        for name, text in files.items():
            self.tree.write(f"{self.folder}/{name}", text)
        entry = {"digest": digest, "files": sorted(files), "charts": [asdict(spec) for spec in charts], "row": row}
        self.current[unit] = entry
        self.rendered += 1
        return entry

    def save(self) -> None:
        # Keys keep their order: index rows become CSV columns in this order.
        self.tree.write(f"{self.folder}/{MANIFEST_NAME}", json.dumps(self.current, separators=(",", ":"),
                                                                     default=float))
        logger.info("pages: %d rendered, %d skipped (inputs unchanged)", self.rendered, self.skipped)


def chart_specs(entry: dict[str, Any]) -> list[ChartSpec]:
    """Return the chart specs stored in a manifest entry."""
    return [ChartSpec(**spec) for spec in entry.get("charts", [])]
