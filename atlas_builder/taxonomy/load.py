"""Read and check the versioned taxonomy files in ``data/taxonomy/v<N>.yaml``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from atlas_builder.ids import slug_problem
from atlas_builder.records import Category, Problem, Taxonomy

VERSION_FILE = re.compile(r"^v(\d+)\.yaml$")
CATEGORY_KEYS = ("id", "name", "definition", "parent", "kind", "published_share", "name_status", "note")


class InvalidTaxonomyError(Exception):
    """Raised when a taxonomy file cannot be used; ``problems`` lists why."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("invalid taxonomy:\n" + "\n".join(str(problem) for problem in problems))


def taxonomy_versions(data_dir: Path) -> list[Path]:
    """Return the taxonomy files under ``data_dir/taxonomy``, oldest version first."""
    found = [(int(match.group(1)), path) for path in (Path(data_dir) / "taxonomy").glob("v*.yaml")
             if (match := VERSION_FILE.match(path.name))]
    return [path for _, path in sorted(found)]


def load_taxonomy(data_dir: Path, version: str | None = None) -> Taxonomy:
    """Load the published taxonomy (the highest version) or the given ``version``."""
    paths = taxonomy_versions(data_dir)
    if version is not None:
        paths = [path for path in paths if path.name == f"v{version}.yaml"]
    if not paths:
        wanted = f"v{version}.yaml" if version else "v<N>.yaml"
        raise InvalidTaxonomyError([Problem(str(Path(data_dir) / "taxonomy"), None, f"taxonomy file {wanted} not found",
                                            "add a taxonomy file, for example by copying the published one")])
    return read_taxonomy_file(paths[-1])


def read_taxonomy_file(path: Path) -> Taxonomy:
    """Parse one taxonomy file and check ids, parents and the version mapping."""
    with path.open("r", encoding="utf-8") as handle:
        obj = yaml.safe_load(handle)
    problems = check_taxonomy(obj, str(path))
    if problems:
        raise InvalidTaxonomyError(problems)
    categories = {}
    for item in obj["categories"]:
        categories[item["id"]] = Category(**{key: item.get(key) for key in CATEGORY_KEYS if key in item})
    mapping = {old: tuple(new) if isinstance(new, list) else (new,) for old, new in (obj.get("mapping") or {}).items()}
    return Taxonomy(version=str(obj["version"]), categories=categories,
                    previous_version=obj.get("previous_version"), mapping=mapping, path=path)


def check_taxonomy(obj: Any, path: str) -> list[Problem]:
    """Return the problems of a parsed taxonomy mapping."""
    if not isinstance(obj, dict) or not isinstance(obj.get("categories"), list):
        return [Problem(path, None, "expected a mapping with 'version' and a 'categories' list", "see data/taxonomy/v1.yaml")]
    problems = []
    if "version" not in obj:
        problems.append(Problem(path, None, "missing 'version'", "add version: \"<N>\" matching the file name"))
    seen: set[str] = set()
    for index, item in enumerate(obj["categories"]):
        where = f"category {index}"
        if not isinstance(item, dict):
            problems.append(Problem(path, None, f"{where} is not a mapping", "write id, name, definition, parent"))
            continue
        for key in ("id", "name", "definition"):
            if not isinstance(item.get(key), str) or not item.get(key):
                problems.append(Problem(path, None, f"{where}: missing {key!r}", f"give every category a {key}"))
        unknown = set(item) - set(CATEGORY_KEYS)
        if unknown:
            problems.append(Problem(path, None, f"{where}: unknown keys {sorted(unknown)}", f"use {', '.join(CATEGORY_KEYS)}"))
        reason = slug_problem(item.get("id"))
        if reason:
            problems.append(Problem(path, None, f"{where}: invalid id {item.get('id')!r}: {reason}", "use a lowercase slug"))
        elif item["id"] in seen:
            problems.append(Problem(path, None, f"duplicate category id {item['id']!r}", "ids must be unique"))
        seen.add(str(item.get("id")))
        if item.get("kind", "content") not in ("content", "mechanical", "special"):
            problems.append(Problem(path, None, f"{where}: invalid kind {item.get('kind')!r}", "use content, mechanical or special"))
    mapping = obj.get("mapping") or {}
    if not isinstance(mapping, dict):
        problems.append(Problem(path, None, "'mapping' is not a mapping", "write old-id: [new ids] per line"))
        mapping = {}
    for old, targets in mapping.items():
        for target in targets if isinstance(targets, list) else [targets]:
            if target not in seen:
                problems.append(Problem(path, None, f"mapping {old!r} -> {target!r}: no such category in this version",
                                        "map old ids to ids of this file, or to [] when retired"))
    for item in obj["categories"]:
        if isinstance(item, dict) and item.get("parent") is not None and item["parent"] not in seen:
            problems.append(Problem(path, None, f"category {item.get('id')!r} has unknown parent {item['parent']!r}", "point parent at an existing id or null"))
    return problems
