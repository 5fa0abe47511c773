"""`atlas validate` and `validate_paths`: problems with file, line and fix; GitHub annotations; stray files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from atlas_builder.cli import cli
from atlas_builder.cli.validate import github_annotation
from atlas_builder.records import Problem
from atlas_builder.results import validate_paths

DATASET = {
    "id": "toy", "name": "Toy", "description": "A toy dataset.", "task_type": "short_answer", "metric": "exact_match",
    "threshold": 1, "source": {"repository": "example/toy"}, "license": "MIT",
}
MODEL = {"id": "m1", "name": "Model One"}
ROW = {"id": "q1", "input": "2+2?", "output": "4", "score": 1}


def make_data(root: Path, rows: list[dict] | None = None, dataset: dict | None = None) -> Path:
    data = root / "data"
    (data / "datasets").mkdir(parents=True)
    (data / "models").mkdir()
    (data / "results" / "toy").mkdir(parents=True)
    (data / "datasets" / "toy.yaml").write_text(yaml.safe_dump(dataset or DATASET))
    (data / "models" / "m1.yaml").write_text(yaml.safe_dump(MODEL))
    lines = [json.dumps(row) for row in (rows if rows is not None else [ROW])]
    (data / "results" / "toy" / "m1.jsonl").write_text("\n".join(lines) + "\n")
    return data


def test_valid_tree_passes(tmp_path: Path) -> None:
    data = make_data(tmp_path)
    result = CliRunner().invoke(cli, ["validate", str(data)])
    assert result.exit_code == 0, result.output
    assert "OK" in result.output


def test_problem_printed_with_line_and_fix(tmp_path: Path) -> None:
    data = make_data(tmp_path, [ROW, {**ROW, "id": "q2", "score": "high"}])
    result = CliRunner().invoke(cli, ["validate", str(data)])
    assert result.exit_code == 1
    assert f"{data / 'results' / 'toy' / 'm1.jsonl'}:2: 'score' must be a number" in result.output
    assert "(write the metric value as a number" in result.output


def test_github_annotations(tmp_path: Path) -> None:
    data = make_data(tmp_path, [ROW, ROW])
    result = CliRunner().invoke(cli, ["validate", "--github", str(data)])
    assert result.exit_code == 1
    assert f"::error file={data / 'results' / 'toy' / 'm1.jsonl'},line=2::duplicate id 'q1'" in result.output


def test_annotation_escapes_newlines_and_commas() -> None:
    line = github_annotation(Problem("a,b:c.jsonl", 3, "bad\nvalue 100%", "fix, it"))
    assert line == "::error file=a%2Cb%3Ac.jsonl,line=3::bad%0Avalue 100%25 (fix, it)"


def test_stray_file_argument_reported(tmp_path: Path) -> None:
    data = make_data(tmp_path)
    stray = data / "results" / "notes.txt"
    stray.write_text("hello")
    problems = validate_paths([stray])
    assert len(problems) == 1
    assert "not a result file or a metadata file" in problems[0].message


@pytest.mark.parametrize("relative", ["results/toy.jsonl", "results/toy/m1/extra.jsonl", "datasets/toy.yml", "models/m1.json", "results/toy/m1.json"])
def test_files_in_wrong_place_found_by_walk(tmp_path: Path, relative: str) -> None:
    data = make_data(tmp_path)
    path = data / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(ROW) + "\n")
    problems = validate_paths([data])
    assert [problem.path for problem in problems] == [str(path)]


def test_missing_file_reported(tmp_path: Path) -> None:
    problems = validate_paths([tmp_path / "nope.jsonl"])
    assert problems[0].message == "file not found"


def test_score_range_enforced(tmp_path: Path) -> None:
    data = make_data(tmp_path, [ROW, {**ROW, "id": "q2", "score": 87}], {**DATASET, "score_range": [0, 1]})
    problems = validate_paths([data])
    assert len(problems) == 1
    assert problems[0].line == 2
    assert "outside the dataset's score_range [0.0, 1.0]" in problems[0].message


def test_invalid_score_range_reported(tmp_path: Path) -> None:
    data = make_data(tmp_path, dataset={**DATASET, "score_range": [1, 0]})
    problems = validate_paths([data / "datasets" / "toy.yaml"])
    assert "invalid score_range" in problems[0].message


def test_placeholders_rejected_with_fix(tmp_path: Path) -> None:
    data = make_data(tmp_path, dataset={**DATASET, "license": "TODO: the licence of the dataset text"})
    problems = validate_paths([data / "datasets" / "toy.yaml"])
    assert len(problems) == 1
    assert problems[0].message == "license is still a placeholder left by atlas import"
    assert problems[0].fix == "replace it: the licence of the dataset text"


def test_missing_required_metadata(tmp_path: Path) -> None:
    data = make_data(tmp_path, dataset={key: value for key, value in DATASET.items() if key != "license"})
    problems = validate_paths([data / "datasets" / "toy.yaml"])
    assert any("missing required key 'license'" in problem.message for problem in problems)


def test_metadata_file_name_must_be_slug(tmp_path: Path) -> None:
    data = make_data(tmp_path)
    bad = data / "models" / "Bad Name.yaml"
    bad.write_text(yaml.safe_dump({"id": "bad-name", "name": "x"}))
    problems = validate_paths([bad])
    assert "invalid model id" in problems[0].message


def test_validate_writes_nothing(tmp_path: Path) -> None:
    data = make_data(tmp_path, [ROW, ROW])
    before = sorted((path, path.read_bytes()) for path in data.rglob("*") if path.is_file())
    CliRunner().invoke(cli, ["validate", "--github", str(data)])
    after = sorted((path, path.read_bytes()) for path in data.rglob("*") if path.is_file())
    assert before == after
