"""AlpacaEval 2: 805 open-ended instructions, each model's output compared with GPT-4 Turbo's by a judge."""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from scripts.realdata.common import (
    ALPACA_EVAL,
    check_id,
    clear_dataset,
    load_json,
    stable_hash,
    stratified_subset,
    write_dataset_yaml,
    write_results,
)
from scripts.realdata.models import canonical_id
from scripts.realdata.report import Report

logger = logging.getLogger(__name__)

DATASET_ID = "alpaca-eval-2"
SUBSET_TARGET = 300
ANNOTATOR_FOLDER = "weighted_alpaca_eval_gpt4_turbo"


def instance_id(instruction: str) -> str:
    """Return an id derived from the instruction text, so it does not depend on file order."""
    return check_id(f"ae-{stable_hash(DATASET_ID, instruction)[:12]}")


def record_problem(record: Any) -> str | None:
    if not isinstance(record, dict):
        return f"entry is a JSON {type(record).__name__}, not an object"
    for key in ("instruction", "output_1", "output_2"):
        if not isinstance(record.get(key), str):
            return f"{key} missing or not text"
    preference = record.get("preference")
    if isinstance(preference, bool) or not isinstance(preference, (int, float)) or not math.isfinite(preference):
        return "preference missing or not a finite number"
    if not 1 <= preference <= 2:
        return "preference outside [1, 2]"
    return None


def convert_record(record: dict[str, Any]) -> dict[str, Any]:
    # preference runs from 1 (the judge prefers output_1, GPT-4 Turbo) to 2 (it prefers output_2, the model).
    score = round(record["preference"] - 1, 10)
    return {
        "id": instance_id(record["instruction"]),
        "input": record["instruction"],
        "output": record["output_2"],
        "score": score,
        "reference": record["output_1"],
        "correct": score >= 0.5,
        "metadata": {
            "preference": record["preference"],
            "reference_generator": record.get("generator_1"),
            "instruction_set": record.get("dataset"),
            "annotator": record.get("annotator"),
        },
    }


def convert(source_dir: Path, data_dir: Path, subset_target: int = SUBSET_TARGET) -> Report:
    report = Report(DATASET_ID)
    paths = sorted((source_dir / ALPACA_EVAL.folder / "results").glob(f"*/{ANNOTATOR_FOLDER}/annotations.json"))
    valid: dict[str, list[dict[str, Any]]] = {}
    for path in paths:
        records = load_json(path)
        model_name = path.parent.parent.name
        model_id = canonical_id(ALPACA_EVAL.folder, model_name)
        usable, seen = [], set()
        for record in records:
            report.read += 1
            problem = record_problem(record)
            if problem is None and record.get("generator_2") != model_name:
                problem = "generator_2 is not the model the folder is named after"
            if problem is None and record["instruction"] in seen:
                problem = "instruction repeated in the same file"
            if problem is not None:
                report.skip(problem)
                continue
            seen.add(record["instruction"])
            usable.append(record)
        valid[model_id] = usable

    # The subset is drawn from instructions that every model's file contains, by instruction set.
    shared = set.intersection(*({record["instruction"] for record in records} for records in valid.values())) if valid else set()
    by_set: dict[str, list[str]] = defaultdict(list)
    for record in next(iter(valid.values()), []):
        if record["instruction"] in shared:
            by_set[str(record.get("dataset"))].append(record["instruction"])
    subset = stratified_subset(by_set, subset_target, DATASET_ID)
    logger.info("%s: %d instructions shared by %d models; subset of %d", DATASET_ID, len(shared), len(valid), len(subset))

    clear_dataset(data_dir, DATASET_ID)
    for model_id, records in valid.items():
        rows = []
        for record in records:
            if record["instruction"] not in shared:
                report.skip("instruction missing from another model's file")
            elif record["instruction"] not in subset:
                report.skip("not in the subset")
            else:
                row = convert_record(record)
                rows.append(row)
                report.wrote(model_id, row["correct"])
        write_results(data_dir, DATASET_ID, model_id, rows)
    write_dataset_yaml(data_dir, dataset_meta(len(subset), len(shared)))
    report.log()
    return report


def dataset_meta(subset_size: int, shared: int) -> dict[str, Any]:
    return {
        "id": DATASET_ID,
        "name": "AlpacaEval 2",
        "description": (
            "Open-ended instructions (from the self-instruct, OASST, Koala, Vicuna and Anthropic helpful-base sets). "
            "A GPT-4 Turbo judge compared each model output with GPT-4 Turbo's own output (the reference) and "
            "returned a preference between 1 (reference better) and 2 (model better), weighted by the judge's "
            "token probabilities. The score is preference - 1, the probability that the judge prefers the model; "
            "its mean times 100 reproduces the leaderboard's win_rate column. An instance fails when the score is "
            "below 0.5, that is, when the reference won; an exact tie (0.5) is not a failure. There is no gold "
            "answer: the reference is one strong model's output."
        ),
        "task_type": "open_ended",
        "metric": "preference vs GPT-4 Turbo reference (0 = reference preferred, 1 = model preferred)",
        "threshold": 0.5,
        "score_range": [0, 1],
        "source": ALPACA_EVAL.source(f"{ALPACA_EVAL.root}/<model>/{ANNOTATOR_FOLDER}/annotations.json"),
        "license": ALPACA_EVAL.license,
        "aliases": ["alpaca_eval", "AlpacaEval 2.0", ANNOTATOR_FOLDER],
        "publishing": {"text": "full"},
        "subset": (
            f"{subset_size} of the {shared} instructions. Per instruction set (the 'dataset' field), the "
            "instructions with the smallest SHA-256 of 'alpaca-eval-2:<instruction>' are taken, the set's share of "
            "300 rounded; the same instructions for every model."
        ),
        "citation": (
            "Li et al. (2023). AlpacaEval: An Automatic Evaluator of Instruction-following Models. "
            "https://github.com/tatsu-lab/alpaca_eval. Dubois et al. (2024). Length-Controlled AlpacaEval. "
            "arXiv:2404.04475."
        ),
    }
