"""MMLU-Pro: 5-shot chain-of-thought outputs of 14 models, one zipped JSON list per model."""

from __future__ import annotations

import json
import logging
import re
import zipfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from scripts.realdata.common import MMLU_PRO, check_id, clear_dataset, stratified_subset, write_dataset_yaml, write_results
from scripts.realdata.models import canonical_id
from scripts.realdata.report import Report

logger = logging.getLogger(__name__)

DATASET_ID = "mmlu-pro"
SUBSET_TARGET = 500
LETTERS = "ABCDEFGHIJKLMNOP"
FILE_PATTERN = re.compile(r"^model_outputs_(?P<model>.+)_5shots\.zip$")


def read_records(path: Path) -> list[Any]:
    """Return the JSON list stored as the single member of one zip file."""
    with zipfile.ZipFile(path) as archive:
        members = [name for name in archive.namelist() if name.endswith(".json")]
        if len(members) != 1:
            raise ValueError(f"{path}: expected one .json member, found {members}; check the archive")
        data = json.loads(archive.read(members[0]))
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list, got {type(data).__name__}")
    return data


def _question_id(record: dict[str, Any]) -> int | None:
    value = record.get("question_id")
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def record_problem(record: Any) -> str | None:
    """Return why a record cannot be converted, or None when it can."""
    if not isinstance(record, dict):
        return f"entry is a JSON {type(record).__name__}, not an object"
    if _question_id(record) is None:
        return "question_id missing or not a whole number"
    options = record.get("options")
    if not isinstance(options, list) or not options or not all(isinstance(option, str) for option in options):
        return "options missing or not a list of strings"
    index = record.get("answer_index")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(options):
        return "answer_index missing or outside the options"
    if record.get("answer") != LETTERS[index]:
        return "answer letter does not match answer_index"
    if not isinstance(record.get("question"), str):
        return "question missing"
    if not isinstance(_output_text(record), str):
        return "no generated text (neither generated_text nor model_outputs is a string)"
    if record.get("pred") is not None and not isinstance(record.get("pred"), str):
        return "pred is neither a string nor null"
    return None


def _output_text(record: dict[str, Any]) -> Any:
    if "generated_text" in record:
        return record["generated_text"]
    return record.get("model_outputs")


def format_input(record: dict[str, Any]) -> str:
    lines = [record["question"], "", "Options:"]
    lines += [f"{LETTERS[index]}. {option}" for index, option in enumerate(record["options"])]
    return "\n".join(lines)


def convert_record(record: dict[str, Any]) -> dict[str, Any]:
    """Turn one valid MMLU-Pro record into an atlas result row."""
    pred = record["pred"]
    correct = pred == record["answer"]
    index = record["answer_index"]
    return {
        "id": check_id(f"q-{_question_id(record):05d}"),
        "input": format_input(record),
        "output": _output_text(record),
        "score": 1 if correct else 0,
        "reference": [record["answer"], record["options"][index]],
        "correct": correct,
        "metadata": {
            "extracted": pred,
            "category": record.get("category"),
            "src": record.get("src"),
            "answer_index": index,
        },
    }


def model_files(folder: Path) -> dict[str, Path]:
    """Map each source model name to its zip file."""
    files = {}
    for path in sorted(folder.glob("*.zip")):
        match = FILE_PATTERN.match(path.name)
        if match is None:
            raise ValueError(f"{path}: file name does not match model_outputs_<model>_5shots.zip; rename or remove it")
        files[match["model"]] = path
    return files


def convert(source_dir: Path, data_dir: Path, subset_target: int = SUBSET_TARGET) -> Report:
    folder = source_dir / MMLU_PRO.folder
    report = Report(DATASET_ID)
    files = model_files(folder)
    valid: dict[str, dict[int, dict[str, Any]]] = {}
    for name, path in files.items():
        model_id = canonical_id(MMLU_PRO.folder, name)
        records = read_records(path)
        report.read += len(records)
        by_id: dict[int, dict[str, Any]] = {}
        for record in records:
            problem = record_problem(record)
            if problem is None and _question_id(record) in by_id:
                problem = "question_id repeated in the same file"
            if problem is not None:
                report.skip(problem)
                continue
            by_id[_question_id(record)] = record
        valid[model_id] = by_id
        logger.info("%s: %s has %d usable records of %d", DATASET_ID, path.name, len(by_id), len(records))

    # The subset is drawn from questions that every model answered, so models compare on shared items.
    shared = set.intersection(*(set(by_id) for by_id in valid.values())) if valid else set()
    first = next(iter(valid.values()), {})
    by_category: dict[str, list[str]] = defaultdict(list)
    for question_id in shared:
        by_category[str(first[question_id].get("category"))].append(str(question_id))
    subset = {int(key) for key in stratified_subset(by_category, subset_target, DATASET_ID)}
    logger.info("%s: %d questions answered by all %d models; subset of %d in %d categories",
                DATASET_ID, len(shared), len(valid), len(subset), len(by_category))

    clear_dataset(data_dir, DATASET_ID)
    for model_id, by_id in valid.items():
        rows = []
        for question_id, record in by_id.items():
            if question_id not in shared:
                report.skip("question missing from another model's file")
            elif question_id not in subset:
                report.skip("not in the subset")
            else:
                row = convert_record(record)
                rows.append(row)
                report.wrote(model_id, row["correct"])
        write_results(data_dir, DATASET_ID, model_id, rows)

    write_dataset_yaml(data_dir, dataset_meta(len(subset), len(shared), len(valid), sorted(by_category)))
    report.log()
    return report


def dataset_meta(subset_size: int, shared: int, model_count: int, categories: list[str]) -> dict[str, Any]:
    return {
        "id": DATASET_ID,
        "name": "MMLU-Pro",
        "description": (
            "Ten-option multiple-choice questions across 14 subject categories, answered with 5-shot "
            "chain-of-thought prompting. An answer letter was extracted from each generated text; an instance "
            "fails when that letter differs from the gold letter, and also when no letter could be extracted "
            "(metadata.extracted is null then). The input shows the question and its lettered options; the "
            "5-shot examples the models saw are not in the source files."
        ),
        "task_type": "multiple_choice",
        "metric": "exact_match",
        "threshold": 1,
        "score_range": [0, 1],
        "source": MMLU_PRO.source(MMLU_PRO.root),
        "license": MMLU_PRO.license,
        "aliases": ["MMLU-Pro", "mmlu_pro"],
        "publishing": {"text": "full"},
        "subset": (
            f"{subset_size} of the {shared} question ids that all {model_count} result files contain (12,032 questions "
            f"in the benchmark). Per category, the ids with the smallest SHA-256 of 'mmlu-pro:<question_id>' are "
            f"taken, the category's share of 500 rounded (at least one), so all {len(categories)} categories "
            "appear and every model answers the same questions."
        ),
        "citation": (
            "Wang et al. (2024). MMLU-Pro: A More Robust and Challenging Multi-Task Language Understanding "
            "Benchmark. NeurIPS 2024 Datasets and Benchmarks. arXiv:2406.01574."
        ),
    }
