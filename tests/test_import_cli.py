"""`atlas import`: report output, merging with stored results, --replace, metadata placeholders."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from click.testing import CliRunner

from atlas_builder.cli import cli
from atlas_builder.results import validate_paths

FIXTURES = Path(__file__).parent / "fixtures" / "importers"
TRUTHFUL = FIXTURES / "lm-eval" / "truthfulqa-gen"


def run(*args: str) -> "object":
    return CliRunner().invoke(cli, ["import", *args])


def test_import_prints_counts_and_reasons(tmp_path: Path) -> None:
    result = run("lm-eval", str(FIXTURES / "lm-eval" / "polymer-tg"), "--model", "gpt-4o-mini", "--dataset", "polymer", "--data", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "rows read:    4" in result.output
    assert "rows written: 2" in result.output
    assert "2 x metric 'mae' is inf, not a finite number (first: doc_id 0)" in result.output


def test_help_names_every_option() -> None:
    result = CliRunner().invoke(cli, ["import", "--help"])
    for option in ("--model", "--dataset", "--data", "--replace", "--threshold", "--metric", "--filter"):
        assert option in result.output


def test_placeholders_block_validation_until_filled(tmp_path: Path) -> None:
    run("lm-eval", str(TRUTHFUL), "--model", "gpt-neo-125m", "--dataset", "truthfulqa", "--data", str(tmp_path), "--metric", "bleu_acc")
    dataset_path = tmp_path / "datasets" / "truthfulqa.yaml"
    problems = validate_paths([tmp_path])
    assert {problem.message for problem in problems if problem.path == str(dataset_path)} == {
        "description is still a placeholder left by atlas import",
        "task_type is still a placeholder left by atlas import",
        "source is still a placeholder left by atlas import",
        "license is still a placeholder left by atlas import",
    }
    metadata = yaml.safe_load(dataset_path.read_text())
    metadata.update(description="TruthfulQA generation.", task_type="open_ended", source={"repository": "sylinrl/TruthfulQA"}, license="Apache-2.0")
    dataset_path.write_text(yaml.safe_dump(metadata))
    assert validate_paths([tmp_path]) == []


def test_existing_metadata_kept(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "gpt-neo-125m.yaml").write_text("id: gpt-neo-125m\nname: Mine\n")
    result = run("lm-eval", str(TRUTHFUL), "--model", "gpt-neo-125m", "--dataset", "truthfulqa", "--data", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "models" / "gpt-neo-125m.yaml").read_text() == "id: gpt-neo-125m\nname: Mine\n"


def test_reimport_same_rows_is_a_no_op_merge(tmp_path: Path) -> None:
    args = ("lm-eval", str(TRUTHFUL), "--model", "neo", "--dataset", "truthfulqa", "--data", str(tmp_path))
    run(*args)
    target = tmp_path / "results" / "truthfulqa" / "neo.jsonl"
    first = target.read_bytes()
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert target.read_bytes() == first
    assert "0 new instances, 4 identical ones" in result.output


def test_merge_keeps_stored_rows(tmp_path: Path) -> None:
    target = tmp_path / "results" / "truthfulqa" / "neo.jsonl"
    target.parent.mkdir(parents=True)
    stored = {"id": "stored-1", "input": "q", "output": "a", "score": 0}
    target.write_text(json.dumps(stored) + "\n")
    result = run("lm-eval", str(TRUTHFUL), "--model", "neo", "--dataset", "truthfulqa", "--data", str(tmp_path))
    assert result.exit_code == 0, result.output
    ids = [json.loads(line)["id"] for line in target.read_text().splitlines()]
    assert ids == ["stored-1", "0", "1", "2", "3"]


def test_conflict_refused_without_replace(tmp_path: Path) -> None:
    target = tmp_path / "results" / "truthfulqa" / "neo.jsonl"
    target.parent.mkdir(parents=True)
    stored = json.dumps({"id": "0", "input": "q", "output": "another run", "score": 0}) + "\n"
    target.write_text(stored)
    result = run("lm-eval", str(TRUTHFUL), "--model", "neo", "--dataset", "truthfulqa", "--data", str(tmp_path))
    assert result.exit_code != 0
    assert "already stores 1 of these instances with different content" in result.output
    assert "--replace" in result.output
    assert target.read_text() == stored
    assert not (tmp_path / "datasets").exists()


def test_replace_overwrites(tmp_path: Path) -> None:
    target = tmp_path / "results" / "truthfulqa" / "neo.jsonl"
    target.parent.mkdir(parents=True)
    target.write_text(json.dumps({"id": "0", "input": "q", "output": "another run", "score": 0}) + "\n")
    result = run("lm-eval", str(TRUTHFUL), "--model", "neo", "--dataset", "truthfulqa", "--data", str(tmp_path), "--replace")
    assert result.exit_code == 0, result.output
    assert len(target.read_text().splitlines()) == 4
    assert "another run" not in target.read_text()


def test_invalid_stored_file_not_merged(tmp_path: Path) -> None:
    target = tmp_path / "results" / "truthfulqa" / "neo.jsonl"
    target.parent.mkdir(parents=True)
    target.write_text("{broken\n")
    result = run("lm-eval", str(TRUTHFUL), "--model", "neo", "--dataset", "truthfulqa", "--data", str(tmp_path))
    assert result.exit_code != 0
    assert "stored result file is invalid" in result.output
    assert target.read_text() == "{broken\n"


def test_invalid_model_id_rejected(tmp_path: Path) -> None:
    result = run("lm-eval", str(TRUTHFUL), "--model", "../evil", "--dataset", "truthfulqa", "--data", str(tmp_path))
    assert result.exit_code != 0
    assert "invalid --model '../evil'" in result.output
    assert not any(tmp_path.iterdir())


def test_no_temporary_files_left(tmp_path: Path) -> None:
    run("helm", str(FIXTURES / "helm" / "bbq-gpt-4-turbo"), "--model", "gpt-4-turbo", "--dataset", "bbq", "--data", str(tmp_path))
    leftovers = [path for path in tmp_path.rglob("*") if path.name.endswith(".tmp")]
    assert leftovers == []
    assert (tmp_path / "results" / "bbq" / "gpt-4-turbo.jsonl").is_file()
