"""The synthetic atlas generator: deterministic bytes, the atlas format, and clearly synthetic names."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml

from atlas_builder.results import load_results
from atlas_builder.taxonomy import load_taxonomy
from bench import generate as gen

TINY = gen.Config(seed=7, base_models=3, base_datasets=8, instances_per_model=320, corpus_words=30_000)


def file_hashes(folder: Path) -> dict[str, str]:
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.fixture(scope="module")
def tiny_atlas(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synthetic") / "data"
    gen.generate(TINY, out, jobs=1)
    return out


def test_same_seed_gives_identical_bytes(tiny_atlas: Path, tmp_path: Path) -> None:
    again = tmp_path / "data"
    gen.generate(TINY, again, jobs=2)
    first, second = file_hashes(tiny_atlas), file_hashes(again)
    assert len(first) > 20
    assert first == second


def test_other_seed_gives_other_results(tiny_atlas: Path, tmp_path: Path) -> None:
    other = tmp_path / "data"
    gen.generate(gen.Config(**{**TINY.__dict__, "seed": 8}), other, jobs=1)
    name = f"results/{gen.dataset_id(0)}/{gen.model_id(0)}.jsonl"
    assert (other / name).read_bytes() != (tiny_atlas / name).read_bytes()


def test_loader_accepts_generated_atlas(tiny_atlas: Path) -> None:
    results = load_results(tiny_atlas)
    marker = gen.read_marker(tiny_atlas)
    assert marker is not None
    assert len(results.models) == 3
    assert len(results.datasets) == 8
    assert len(results.rows) == marker["rows"] == 3 * 320
    assert int((~results.rows["correct"]).sum()) == marker["failures"]
    assert len(results.files) == 3 * 8


def test_outputs_include_mechanical_failures(tiny_atlas: Path) -> None:
    rows = load_results(tiny_atlas).rows
    failures = rows[~rows["correct"]]
    assert (failures["output"] == "").any()
    assert failures["output"].isin(gen.REFUSALS).any()
    truncated = failures["metadata"].map(lambda metadata: metadata["finish_reason"] == "length")
    assert truncated.any()
    assert not (rows[rows["correct"]]["output"] == "").any()


def test_accuracy_differs_between_models(tiny_atlas: Path) -> None:
    accuracy = load_results(tiny_atlas).rows.groupby("model")["correct"].mean()
    assert accuracy.max() - accuracy.min() > 0.1


def test_names_say_synthetic(tiny_atlas: Path) -> None:
    results = load_results(tiny_atlas)
    for info in [*results.models.values(), *results.datasets.values()]:
        assert info.id.startswith("synthetic-")
        assert "Synthetic" in info.name
        assert "synthetic" in (info.description or "").lower()


def test_taxonomy_loads_with_subcategories(tiny_atlas: Path) -> None:
    taxonomy = load_taxonomy(tiny_atlas)
    top = taxonomy.children(None)
    assert 24 <= len(top) <= 28
    assert all(taxonomy.children(category.id) for category in top if category.id.startswith("synthetic-category-"))


def test_judge_answers_name_failures_and_leaf_categories(tiny_atlas: Path) -> None:
    rows = load_results(tiny_atlas).rows
    failing = set(zip(*[rows.loc[~rows["correct"], column] for column in ("dataset", "model", "instance_id")]))
    categories = yaml.safe_load((tiny_atlas / "taxonomy" / "v1.yaml").read_text(encoding="utf-8"))["categories"]
    leaves = set(gen.leaf_content_categories(categories))
    answers = [json.loads(line) for path in sorted((tiny_atlas / "judge").rglob("*.jsonl"))
               for line in path.read_text(encoding="utf-8").splitlines()]
    assert answers
    for answer in answers:
        assert (answer["dataset"], answer["model"], answer["instance_id"]) in failing
        assert answer["category"] in leaves
        assert answer["title"].startswith("Synthetic")


def test_added_model_matches_larger_generation(tiny_atlas: Path, tmp_path: Path) -> None:
    larger = tmp_path / "data"
    gen.generate(gen.Config(**{**TINY.__dict__, "base_models": 4}), larger, jobs=1)
    copy = tmp_path / "copy"
    gen.generate(TINY, copy, jobs=1)
    created = gen.add_model(TINY, copy)
    assert len(created) >= 1 + 8
    for path in created:
        relative = path.relative_to(copy)
        assert path.read_bytes() == (larger / relative).read_bytes(), relative


def test_refuses_repository_data_folder() -> None:
    with pytest.raises(SystemExit, match="real atlas data"):
        gen.check_target(gen.REPO_ROOT / "data", force=True)


def test_refuses_foreign_folder(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not generated", encoding="utf-8")
    with pytest.raises(SystemExit, match="not written by this generator"):
        gen.check_target(tmp_path, force=True)
