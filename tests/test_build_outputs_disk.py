"""A build that keeps model outputs on disk writes the same site as one that keeps them in memory."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from atlas_builder import pipeline
from atlas_builder.diagnose import diagnose
from atlas_builder.diagnose.judge.plan import DiagnosisOptions, plan_diagnoses
from atlas_builder.diagnose.judge.prompts import DIAGNOSE_SCHEMA_NAME
from atlas_builder.diagnose.judge.store import JudgeStore
from atlas_builder.results import load_results
from bench import generate as gen

pytestmark = pytest.mark.slow

# Small, but with every task type and the excerpt and hidden publishing rules.
TINY = gen.Config(seed=3, base_models=3, base_datasets=8, instances_per_model=320, corpus_words=30_000)
JUDGE = "openai/stub-judge"
TITLES = ("Misread the question", "Dropped a required step", "Wrong final answer")


def answer(output: str, number: int) -> dict:
    """Return a valid diagnosis answer that quotes part of ``output``, so that evidence spans are located."""
    quote = output[10:60]
    return {
        "criteria": [{"criterion": "States the right answer", "met": False, "evidence": quote},
                     {"criterion": "Follows the format", "met": True, "evidence": ""}],
        "first_error": {"criterion": 1, "evidence": quote, "explanation": "The answer is wrong."},
        "error_title": TITLES[number % len(TITLES)], "error_summary": "The model gave a wrong answer.",
        "reference_flag": number % 7 == 0, "ambiguous_flag": False, "flag_reason": "",
    }


def store_judge_answers(data: Path) -> int:
    """Store a judge answer (every fifth one a failed call) for half the failures; return how many."""
    results = load_results(data)
    findings = [item for item in diagnose(results).items if item.kind == "check"]
    plan = plan_diagnoses(results, DiagnosisOptions(sample_ratio=0.5, seed=1), findings)
    with JudgeStore(data / "judge") as store:
        for number, request in enumerate(plan.requests):
            ok = number % 5 != 4
            outcome = ({"ok": True, "answer": answer(request.core_content["output"], number)} if ok else
                       {"ok": False, "answer": None, "error": "HTTP 500", "error_kind": "transient"})
            store.append({
                "key": request.key(JUDGE), "purpose": "diagnose", "judge": JUDGE,
                "prompt_version": request.prompt_version, "schema_name": DIAGNOSE_SCHEMA_NAME,
                "subject": request.subject, "request": request.request_info, "core_key": request.core_key(JUDGE),
                "attempts": 1, **outcome, "time": f"2026-01-01T00:00:{number % 60:02d}.000000Z",
            })
    return len(plan.requests)


def snapshot(root: Path, out: Path) -> dict[str, bytes]:
    """Return the bytes of every file under ``root``, with the build's output folder ``out`` written as "OUT"."""
    return {path.relative_to(root).as_posix(): path.read_bytes().replace(str(out).encode(), b"OUT")
            for path in sorted(root.rglob("*")) if path.is_file()}


def build(data: Path, out: Path, outputs: str, monkeypatch) -> pipeline.BuildReport:
    """Build ``data`` into ``out``, loading with this ``outputs`` mode and a cache folder of its own."""
    monkeypatch.setenv("ATLAS_CACHE_DIR", str(out / "cache"))
    monkeypatch.setattr(pipeline, "load_results",
                        lambda data_dir, **options: load_results(data_dir, **{**options, "outputs": outputs}))
    return pipeline.build(data, out / "site", out / "docs")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synthetic") / "data"
    gen.generate(TINY, out, jobs=1)
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("ATLAS_CACHE_DIR", "off")
        store_judge_answers(out)
    return out


@pytest.fixture(scope="module")
def builds(data, tmp_path_factory):
    with pytest.MonkeyPatch.context() as monkeypatch:
        base = tmp_path_factory.mktemp("builds")
        memory = build(data, base / "memory", "memory", monkeypatch)
        disk = build(data, base / "disk", "disk", monkeypatch)
    return base, memory, disk


def test_build_loads_outputs_on_disk(data, tmp_path, monkeypatch):
    monkeypatch.setenv("ATLAS_CACHE_DIR", str(tmp_path / "cache"))

    report = pipeline.build(data, tmp_path / "site", tmp_path / "docs")

    assert "output" not in report.results.rows.columns
    assert report.results.output_reader is not None


def test_modes_used_as_asked(builds):
    _, memory, disk = builds
    assert "output" in memory.results.rows.columns
    assert "output" not in disk.results.rows.columns


def test_atlas_has_judge_answers_with_evidence(builds):
    _, memory, _ = builds
    judged = [item for item in memory.diagnoses.items if item.kind == "judge"]
    failed = [item for item in memory.diagnoses.items if item.kind == "judge-failure"]
    assert len(judged) > 10
    assert len(failed) > 2
    assert sum(bool(item.evidence) for item in judged) > 10
    assert sum(item.details["peer_model"] is not None for item in judged) > 10


def test_atlas_has_category_examples(builds):
    base, _, _ = builds
    pages = (base / "memory" / "docs" / "docs" / "categories").glob("*.md")
    example_outputs = [text for page in pages
                       for text in re.findall(r'<pre class="atlas-text">([^<]+)</pre>', page.read_text("utf-8"))]
    assert len(example_outputs) > 3


def test_same_diagnoses_in_both_modes(builds):
    _, memory, disk = builds
    assert disk.diagnoses.items == memory.diagnoses.items
    assert disk.diagnoses.primary == memory.diagnoses.primary


def test_same_failure_shards_in_both_modes(builds):
    base, _, _ = builds
    folder = Path("docs", "docs", "failures", "data")
    memory = snapshot(base / "memory" / folder, base / "memory")
    disk = snapshot(base / "disk" / folder, base / "disk")
    assert sum(name.startswith("shards/") for name in memory) > 10
    assert sorted(disk) == sorted(memory)
    for name in memory:
        assert disk[name] == memory[name], name


def test_same_pages_in_both_modes(builds):
    base, _, _ = builds
    for folder in ("docs", "site"):
        memory = snapshot(base / "memory" / folder, base / "memory")
        disk = snapshot(base / "disk" / folder, base / "disk")
        assert len(memory) > 100, folder
        assert sorted(disk) == sorted(memory), folder
        for name in memory:
            assert disk[name] == memory[name], f"{folder}/{name}"
