"""GSM8K test set: solutions of four GPT-3 variants published with the grade-school-math data."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from scripts.realdata.common import GSM8K, check_id, clear_dataset, write_dataset_yaml, write_results
from scripts.realdata.models import canonical_id
from scripts.realdata.report import Report

logger = logging.getLogger(__name__)

DATASET_ID = "gsm8k"
FILE_NAME = "example_model_solutions.jsonl"
VARIANTS = ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification")
FINAL_ANSWER = re.compile(r"(?:^|\n)(?:A:|####)\s*(?P<answer>[^\n]*?)\s*$")


def final_answer(solution: str) -> str | None:
    """Return the final answer written after ``A:`` or ``####`` on the last line of a solution."""
    match = FINAL_ANSWER.search(solution)
    return match["answer"] if match and match["answer"] else None


def problem_of(record: Any) -> str | None:
    """Return why a problem line cannot be used for any model, or None."""
    if not isinstance(record, dict):
        return f"line is a JSON {type(record).__name__}, not an object"
    if not isinstance(record.get("question"), str):
        return "question missing"
    if not isinstance(record.get("ground_truth"), str) or final_answer(record["ground_truth"]) is None:
        return "ground_truth has no final 'A:' or '####' answer"
    return None


def solution_problem(entry: Any) -> str | None:
    if not isinstance(entry, dict):
        return "model entry missing"
    if not isinstance(entry.get("solution"), str):
        return "solution missing or not text"
    if not isinstance(entry.get("is_correct"), bool):
        return "is_correct missing or not true/false"
    return None


def convert_solution(index: int, record: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    correct = entry["is_correct"]
    return {
        "id": check_id(f"test-{index:04d}"),
        "input": record["question"],
        "output": entry["solution"],
        "score": 1 if correct else 0,
        "reference": final_answer(record["ground_truth"]),
        "correct": correct,
        "metadata": {
            "reference_solution": record["ground_truth"],
            "extracted": final_answer(entry["solution"]),
        },
    }


def convert(source_dir: Path, data_dir: Path) -> Report:
    report = Report(DATASET_ID)
    path = source_dir / GSM8K.folder / GSM8K.root / FILE_NAME
    rows: dict[str, list[dict[str, Any]]] = {canonical_id(GSM8K.folder, variant): [] for variant in VARIANTS}
    with path.open("r", encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        report.read += len(VARIANTS)  # one result row per variant on every problem line
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            report.skip("line is not valid JSON", len(VARIANTS))
            continue
        problem = problem_of(record)
        if problem is not None:
            report.skip(problem, len(VARIANTS))
            continue
        for variant in VARIANTS:
            problem = solution_problem(record.get(variant))
            if problem is not None:
                report.skip(problem)
                continue
            model_id = canonical_id(GSM8K.folder, variant)
            row = convert_solution(index, record, record[variant])
            rows[model_id].append(row)
            report.wrote(model_id, row["correct"])
    clear_dataset(data_dir, DATASET_ID)
    for model_id, model_rows in rows.items():
        if model_rows:
            write_results(data_dir, DATASET_ID, model_id, model_rows)
    write_dataset_yaml(data_dir, dataset_meta(report.read // len(VARIANTS)))
    report.log()
    return report


def dataset_meta(problem_count: int) -> dict[str, Any]:
    return {
        "id": DATASET_ID,
        "name": "GSM8K",
        "description": (
            "Grade-school math word problems that take two to eight arithmetic steps. Each output is a worked "
            "solution by a GPT-3 model trained to call a calculator: <<expression=result>> annotations mark "
            "calculator calls and are kept as generated. Correctness is the is_correct flag published with the "
            "solutions. The reference is the final number of the human-written solution, which is kept in "
            "metadata.reference_solution; metadata.extracted is the final answer line of the model's solution."
        ),
        "task_type": "math",
        "metric": "exact_match",
        "threshold": 1,
        "score_range": [0, 1],
        "source": GSM8K.source(f"{GSM8K.root}/{FILE_NAME}"),
        "license": GSM8K.license,
        "aliases": ["grade-school-math", "gsm8k-test"],
        "publishing": {"text": "full"},
        "subset": f"All {problem_count:,} test problems; instance id test-<line index, zero-padded to four digits>.",
        "citation": (
            "Cobbe et al. (2021). Training Verifiers to Solve Math Word Problems. arXiv:2110.14168."
        ),
    }
