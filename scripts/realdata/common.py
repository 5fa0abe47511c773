"""Helpers shared by the converters: source descriptions, stable hashing, subsets, excerpts."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from atlas_builder.ids import slug_problem
from atlas_builder.results import write_result_file, write_yaml

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceRepo:
    """A public repository the results were copied from, unchanged."""

    folder: str  # folder name under the source directory
    repository: str
    commit: str
    license: str
    root: str  # path inside the repository that the folder mirrors

    def url(self, path: str) -> str:
        return f"https://github.com/{self.repository}/tree/{self.commit}/{path}"

    def source(self, path: str) -> dict[str, str]:
        """Return a ``source`` mapping for a file or folder of this repository."""
        return {"repository": self.repository, "commit": self.commit, "path": path, "url": self.url(path)}


MMLU_PRO = SourceRepo("mmlu-pro", "TIGER-AI-Lab/MMLU-Pro", "f418b116", "Apache-2.0", "eval_results")
HELM = SourceRepo("helm-safety-v4", "stanford-crfm/helm", "865aaae7", "Apache-2.0", "benchmark_output_last/runs/v4")
ALPACA_EVAL = SourceRepo("alpaca-eval", "tatsu-lab/alpaca_eval", "cd543a14", "Apache-2.0", "results")
BBH = SourceRepo("bbh-code-davinci-002", "suzgunmirac/BIG-Bench-Hard", "9ee07bd4", "MIT", "code-davinci-002-outputs")
GSM8K = SourceRepo("gsm8k-openai-gpt3", "openai/grade-school-math", "3101c7d5", "MIT", "grade_school_math/data")


def stable_hash(namespace: str, key: str) -> str:
    """Return a hex digest that orders keys the same way on every machine and Python version."""
    return hashlib.sha256(f"{namespace}:{key}".encode("utf-8")).hexdigest()


def stratified_subset(keys_by_group: Mapping[str, Iterable[str]], target: int, namespace: str) -> set[str]:
    """Pick about ``target`` keys, every group getting a share proportional to its size (at least one).

    Inside a group the keys with the smallest ``stable_hash`` are taken, so the
    choice depends only on the keys, never on file order.
    """
    groups = {group: sorted(set(keys)) for group, keys in keys_by_group.items() if keys}
    total = sum(len(keys) for keys in groups.values())
    chosen: set[str] = set()
    for group in sorted(groups):
        keys = groups[group]
        quota = min(len(keys), max(1, round(target * len(keys) / total)))
        ranked = sorted(keys, key=lambda key: stable_hash(namespace, key))
        chosen.update(ranked[:quota])
    return chosen


def excerpt(text: str, max_chars: int = 200) -> str:
    """Collapse the whitespace of ``text``, cut it to at most ``max_chars`` and half its length, and append " […]".

    The cut falls on the last space inside the limit when there is one. The
    half-length cap keeps short items from being republished whole.
    """
    text = " ".join(text.split())
    limit = max(1, min(max_chars, len(text) // 2))
    cut = text[:limit]
    if len(text) > limit and " " in cut:
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip() + " […]"


def check_id(value: str) -> str:
    """Return ``value`` when it is a valid atlas id; raise with the reason otherwise."""
    problem = slug_problem(value)
    if problem is not None:
        raise ValueError(f"generated id {value!r} is invalid: {problem}; change the converter's id rule")
    return value


def write_results(data_dir: Path, dataset_id: str, model_id: str, rows: list[dict[str, Any]]) -> int:
    """Write one ``results/<dataset>/<model>.jsonl`` file, rows sorted by id for stable bytes."""
    ids = [row["id"] for row in rows]
    if len(ids) != len(set(ids)):
        duplicates = sorted({value for value in ids if ids.count(value) > 1})
        raise ValueError(f"{dataset_id}/{model_id}: duplicate instance ids {duplicates[:5]}; fix the id rule")
    rows = sorted(rows, key=lambda row: row["id"])
    return write_result_file(data_dir / "results" / dataset_id / f"{model_id}.jsonl", rows)


def clear_dataset(data_dir: Path, dataset_id: str) -> None:
    """Remove the previous result files of a dataset so a model dropped from the source leaves no stale file."""
    folder = data_dir / "results" / dataset_id
    if folder.is_dir():
        for path in folder.glob("*.jsonl"):
            path.unlink()


def write_dataset_yaml(data_dir: Path, meta: dict[str, Any]) -> None:
    write_yaml(data_dir / "datasets" / f"{meta['id']}.yaml", meta)


def load_json(path: Path) -> Any:
    with path.open("r", encoding="utf-8") as handle:
        return json.load(handle)
