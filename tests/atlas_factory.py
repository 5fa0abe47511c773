"""Write small made-up atlases for tests (real data lives in data/ and is never edited by tests)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml


def dataset_yaml(dataset_id: str, **overrides: Any) -> dict[str, Any]:
    """Return a valid dataset metadata mapping, with ``overrides`` applied."""
    obj = {
        "id": dataset_id,
        "name": dataset_id.upper(),
        "description": "A made-up dataset for tests.",
        "task_type": "multiple_choice",
        "metric": "exact_match",
        "threshold": 1,
        "source": {"repository": "example/tests", "commit": "0000000"},
        "license": "CC0-1.0",
    }
    obj.update(overrides)
    return obj


def model_yaml(model_id: str, **overrides: Any) -> dict[str, Any]:
    """Return a valid model metadata mapping, with ``overrides`` applied."""
    obj = {"id": model_id, "name": model_id.title(), "aliases": []}
    obj.update(overrides)
    return obj


def write_atlas(root: Path, results: dict[tuple[str, str], list[dict[str, Any]]],
                datasets: dict[str, dict[str, Any]] | None = None,
                models: dict[str, dict[str, Any]] | None = None,
                taxonomy_from: Path | None = None) -> Path:
    """Write metadata and result files under ``root`` and return it.

    ``results`` maps (dataset, model) to result objects. Metadata is generated
    for every id that ``datasets``/``models`` do not give explicitly.
    """
    datasets = dict(datasets or {})
    models = dict(models or {})
    for dataset_id, model_id in results:
        datasets.setdefault(dataset_id, dataset_yaml(dataset_id))
        models.setdefault(model_id, model_yaml(model_id))
    for folder, items in (("datasets", datasets), ("models", models)):
        (root / folder).mkdir(parents=True, exist_ok=True)
        for item_id, obj in items.items():
            (root / folder / f"{item_id}.yaml").write_text(yaml.safe_dump(obj, sort_keys=False), encoding="utf-8")
    for (dataset_id, model_id), rows in results.items():
        path = root / "results" / dataset_id / f"{model_id}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    if taxonomy_from is not None:
        (root / "taxonomy").mkdir(parents=True, exist_ok=True)
        (root / "taxonomy" / taxonomy_from.name).write_bytes(taxonomy_from.read_bytes())
    return root


REPO = Path(__file__).resolve().parents[1]
SEED_TAXONOMY = REPO / "data" / "taxonomy" / "v1.yaml"
