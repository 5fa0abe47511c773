"""The match cache of stored judge answers: a rebuild reads unchanged shards, and every input that matters invalidates."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")

from openai_stub import OpenAIStub  # noqa: E402
from test_judge_cli import answer_for, make_data, run_cli  # noqa: E402

import atlas_builder.diagnose.checks_cache as checks_module  # noqa: E402
from atlas_builder.diagnose.checks_cache import to_json  # noqa: E402
from atlas_builder.diagnose.judge import stored_diagnoses  # noqa: E402
from atlas_builder.diagnose.judge.stored_cache import matches_cache_dir  # noqa: E402
from atlas_builder.records import Diagnosis  # noqa: E402
from atlas_builder.results.load import load_results  # noqa: E402

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def data(tmp_path, monkeypatch):
    # Only the judge path is under test, so the checks report nothing and every failure goes to the stub.
    monkeypatch.setattr(checks_module, "run_checks_cached", lambda results: [])
    data = make_data(tmp_path / "data")
    with OpenAIStub(answer_for) as stub:
        for model in ("m1", "m2"):
            result = run_cli(data, stub, "--model", model)
            assert result.exit_code == 0, result.output
    return data


def diagnose_stored(data: Path, check_findings: list[Diagnosis] | None = None) -> list[dict]:
    return [to_json(item) for item in stored_diagnoses(load_results(data), data, check_findings=check_findings)]


def shard_counts(caplog) -> str:
    return next(record.getMessage() for record in caplog.records if "store shards read" in record.getMessage())


def edit_row(path: Path, instance_id: str, **changes: Any) -> None:
    """Rewrite one row of a result file with ``changes`` applied to its fields (a callable gets the old value)."""
    lines = path.read_text().splitlines()
    for index, line in enumerate(lines):
        row = json.loads(line)
        if row["id"] == instance_id:
            for name, value in changes.items():
                row[name] = value(row[name]) if callable(value) else value
            lines[index] = json.dumps(row)
    path.write_text("\n".join(lines) + "\n")


def test_rebuild_reads_every_shard_from_cache(data, caplog):
    first = diagnose_stored(data)
    caplog.clear()

    with caplog.at_level(logging.INFO, logger="atlas_builder.diagnose.judge.stored"):
        second = diagnose_stored(data)

    assert len(first) == 30 + 15
    assert second == first
    assert shard_counts(caplog) == "judge answers: 2 of 2 store shards read from the match cache, 0 matched"


def test_peer_no_longer_correct_drops_answer(data):
    before = {item["instance_id"] for item in diagnose_stored(data) if item["model"] == "m1"}
    # m2 is the only model scored correct on q-004, so it is the peer of m1's q-004 answer.
    edit_row(data / "results" / "toy" / "m2.jsonl", "q-004", score=0.0)

    after = {item["instance_id"] for item in diagnose_stored(data) if item["model"] == "m1"}

    assert "q-004" in before
    assert before - after == {"q-004"}


def test_changed_findings_mark_cached_answer(data):
    diagnose_stored(data, check_findings=[])
    finding = Diagnosis(dataset="toy", model="m1", instance_id="q-004", diagnoser="check:test", kind="check",
                        title="Test finding", summary="A finding the judge did not see.")

    after = {item["instance_id"]: item for item in diagnose_stored(data, check_findings=[finding])}

    assert after["q-004"]["details"].get("findings_changed") is True
    assert "findings_changed" not in after["q-006"]["details"]


def test_dataset_name_edit_invalidates_answers(data):
    assert len(diagnose_stored(data)) == 45
    path = data / "datasets" / "toy.yaml"
    path.write_text(path.read_text().replace("Toy arithmetic", "Toy sums"))

    # The prompt shows the dataset name, so no stored answer matches the renamed dataset.
    assert diagnose_stored(data) == []


def test_subject_output_edit_drops_answer(data):
    diagnose_stored(data)
    edit_row(data / "results" / "toy" / "m2.jsonl", "q-001", output=lambda output: output + " (edited)")

    keys = {(item["model"], item["instance_id"]) for item in diagnose_stored(data)}

    assert ("m2", "q-001") not in keys
    assert ("m2", "q-003") in keys
    assert len(keys) == 44


def test_foreign_records_are_matched_together(data, monkeypatch, caplog):
    shard_dir = data / "judge" / "diagnose" / "toy"
    lines = (shard_dir / "m2.jsonl").read_text().splitlines(keepends=True)
    # Half of m2's answers move into m1's shard: both shards' records now compete for m2's failures.
    (shard_dir / "m2.jsonl").write_text("".join(lines[: len(lines) // 2]))
    with (shard_dir / "m1.jsonl").open("a") as handle:
        handle.write("".join(lines[len(lines) // 2:]))
    monkeypatch.setenv("ATLAS_CACHE_DIR", "off")
    uncached = diagnose_stored(data)
    monkeypatch.undo()
    monkeypatch.setattr(checks_module, "run_checks_cached", lambda results: [])

    first = diagnose_stored(data)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="atlas_builder.diagnose.judge.stored"):
        second = diagnose_stored(data)

    assert len(uncached) == 45
    assert first == uncached
    assert second == uncached
    assert shard_counts(caplog) == "judge answers: 0 of 2 store shards read from the match cache, 2 matched"


def test_cache_off_writes_nothing(data, monkeypatch):
    monkeypatch.setenv("ATLAS_CACHE_DIR", "off")

    first = diagnose_stored(data)
    second = diagnose_stored(data)

    assert matches_cache_dir() is None
    assert len(first) == 45
    assert second == first
