"""The synthetic atlas generator: deterministic bytes, the atlas format, judge answers that the build reads,
and clearly synthetic names."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from atlas_builder import pipeline
from atlas_builder.analysis import Analysis, analyse
from atlas_builder.diagnose.judge.plan import PURPOSE
from atlas_builder.diagnose.judge.prompts import (DIAGNOSE_PROMPT_VERSION, DIAGNOSE_SCHEMA, check_diagnosis,
                                                  validate_schema)
from atlas_builder.diagnose.judge.store import read_records
from atlas_builder.records import Diagnoses, Diagnosis, Results
from atlas_builder.results import load_results
from atlas_builder.taxonomy import load_taxonomy
from atlas_builder.taxonomy.classify import load_assignments
from bench import generate as gen
from bench import synthetic_judge

TINY = gen.Config(seed=7, base_models=3, base_datasets=8, instances_per_model=320, corpus_words=30_000)


def file_hashes(folder: Path) -> dict[str, str]:
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.fixture(scope="module")
def tiny_atlas(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synthetic") / "data"
    gen.generate(TINY, out, jobs=1)
    return out


@pytest.fixture(scope="module")
def tiny_build(tiny_atlas: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Results, Diagnoses, Analysis]:
    """Run the build's stages up to the analysis (no site) on the tiny atlas."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("ATLAS_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        results, diagnoses, taxonomy = pipeline.prepare(tiny_atlas)
    return results, diagnoses, analyse(results, diagnoses, taxonomy)


def judge_diagnoses(diagnoses: Diagnoses) -> list[Diagnosis]:
    return [item for item in diagnoses.items if item.kind == "judge"]


def failure_keys(rows) -> set[tuple[str, str, str]]:
    failing = rows[~rows["correct"]]
    return set(zip(failing["dataset"], failing["model"], failing["instance_id"]))


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


def test_judge_records_in_store_format(tiny_atlas: Path) -> None:
    records = read_records(tiny_atlas / "judge", PURPOSE).records
    marker = gen.read_marker(tiny_atlas)
    failing = failure_keys(load_results(tiny_atlas).rows)
    assert marker is not None
    assert len(records) == marker["judge_answers"] > 0
    for record in records:
        subject = record["subject"]
        assert (subject["dataset"], subject["model"], subject["instance_id"]) in failing
        assert record["judge"] == synthetic_judge.JUDGE_MODEL
        assert record["prompt_version"] == DIAGNOSE_PROMPT_VERSION
        assert record["ok"] is True
        validate_schema(record["answer"], DIAGNOSE_SCHEMA)
        check_diagnosis(record["answer"])
    assert not (tiny_atlas / synthetic_judge.STAGING_DIR).exists()


def test_every_judge_title_has_an_assignment(tiny_atlas: Path) -> None:
    marker = gen.read_marker(tiny_atlas)
    assignments = load_assignments(tiny_atlas, gen.TAXONOMY_VERSION)
    titles = {record["answer"]["error_title"] for record in read_records(tiny_atlas / "judge", PURPOSE).records}
    assert marker is not None
    assert len(assignments) == marker["judge_titles"]
    assert titles <= {item.title for item in assignments.values()}


def test_build_reads_every_judge_answer(tiny_atlas: Path, tiny_build: tuple[Results, Diagnoses, Analysis]) -> None:
    _, diagnoses, _ = tiny_build
    judged = judge_diagnoses(diagnoses)
    marker = gen.read_marker(tiny_atlas)
    assert marker is not None
    assert len(judged) == marker["judge_answers"]
    # Matched by their exact request key: the stored findings are the ones the build's checks report.
    assert not [item for item in judged if item.details.get("findings_changed")]
    assert all(item.evidence for item in judged)
    assert any(item.details["peer_model"] is not None for item in judged)


def test_judge_answers_cover_tenth_of_failures(tiny_build: tuple[Results, Diagnoses, Analysis]) -> None:
    results, diagnoses, _ = tiny_build
    explained = {item.key for item in diagnoses.items if item.kind == "check" and item.explains_fully}
    unexplained = failure_keys(results.rows) - explained
    share = len(judge_diagnoses(diagnoses)) / len(unexplained)
    assert 0.05 <= share <= 0.2, share


def test_judge_diagnoses_get_synthetic_categories(tiny_build: tuple[Results, Diagnoses, Analysis]) -> None:
    _, diagnoses, analysis = tiny_build
    leaves = set(gen.leaf_content_categories(gen.taxonomy_categories(TINY)))
    judged = judge_diagnoses(diagnoses)
    for item in judged:
        assert item.category in leaves, item.title
        assert item.title.startswith(f"Synthetic error {synthetic_judge.category_label(item.category)}-")
    assert sum(item.kind == "judge" for item in diagnoses.primary.values()) == len(judged)
    signature = analysis.signature
    synthetic_rows = signature[signature["category"].str.startswith("synthetic-category-")]
    assert synthetic_rows["k"].sum() == len(judged)


def test_added_model_matches_larger_generation(tiny_atlas: Path, tmp_path: Path) -> None:
    larger = tmp_path / "data"
    gen.generate(gen.Config(**{**TINY.__dict__, "base_models": 4}), larger, jobs=1)
    copy = tmp_path / "copy"
    gen.generate(TINY, copy, jobs=1)
    created = gen.add_model(TINY, copy)
    assert len(created) >= 1 + 8
    assert any(path.relative_to(copy).parts[0] == "judge" for path in created)
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
