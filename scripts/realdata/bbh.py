"""BIG-Bench Hard: code-davinci-002 on 27 tasks, chain-of-thought and direct few-shot prompting.

The source files carry the BIG-bench canary string, whose owners ask that the items not be
republished where crawlers can read them. So only a short excerpt of each final question
is stored as the input. The few-shot prompt and the rest of the item are left out.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from scripts.realdata.common import BBH, check_id, clear_dataset, excerpt, load_json, write_dataset_yaml, write_results
from scripts.realdata.models import canonical_id
from scripts.realdata.report import Report

logger = logging.getLogger(__name__)

MODEL_NAME = "code-davinci-002"
ANSWER_MARKER = "So the answer is "
FILE_SUFFIX = "_few_shot_template_0-255000.json"
MODES = {"cot": "bbh-cot", "direct": "bbh-direct"}
EXCERPT_CHARS = 200
ACCURACY_TOLERANCE = 1e-6


def final_question(prompt: str) -> str | None:
    """Return the last ``Q:`` block of a few-shot prompt without its trailing ``A:`` line."""
    start = prompt.rfind("\nQ: ")
    if start < 0:
        if not prompt.startswith("Q: "):
            return None
        start = -1
    question = prompt[start + len("\nQ: "):]
    answer_at = question.rfind("\nA:")
    if answer_at >= 0:
        question = question[:answer_at]
    return question.strip() or None


def extract_cot_answer(prediction: str) -> str | None:
    """Return the text after the last "So the answer is ", final period dropped, or None without the marker."""
    if ANSWER_MARKER not in prediction:
        return None
    answer = prediction.split(ANSWER_MARKER)[-1]
    return answer[:-1] if answer.endswith(".") else answer


def predicted_answer(mode: str, prediction: str) -> str | None:
    return extract_cot_answer(prediction) if mode == "cot" else prediction.strip()


def task_files(source_dir: Path, mode: str) -> dict[str, Path]:
    folder = source_dir / BBH.folder / BBH.root / f"{MODEL_NAME}-{mode}"
    return {path.name[: -len(FILE_SUFFIX)]: path for path in sorted(folder.glob(f"*{FILE_SUFFIX}"))}


def published_accuracy(path: Path) -> float | None:
    """Return the accuracy (percent) from the ``*_eval_metrics.jsonl`` file next to a task file."""
    metrics = path.with_name(path.name[: -len(".json")] + "_eval_metrics.jsonl")
    if not metrics.exists():
        return None
    for line in metrics.read_text(encoding="utf-8").splitlines():
        if line.strip():
            return float(json.loads(line)["accuracy"])
    return None


def item_problem(item: Any) -> str | None:
    if not isinstance(item, dict):
        return f"entry is a JSON {type(item).__name__}, not an object"
    for key in ("input", "prediction", "target"):
        if not isinstance(item.get(key), str):
            return f"{key} missing or not text"
    if final_question(item["input"]) is None:
        return "no final 'Q:' block in the prompt"
    return None


def convert_item(mode: str, task: str, index: int, item: dict[str, Any], canary: str) -> dict[str, Any]:
    answer = predicted_answer(mode, item["prediction"])
    correct = answer == item["target"]
    metadata: dict[str, Any] = {"task": task, "canary": canary}
    if mode == "cot":
        metadata["extracted"] = answer
    return {
        "id": check_id(f"{task}-{index:03d}"),
        "input": excerpt(final_question(item["input"]), EXCERPT_CHARS),
        "output": item["prediction"],
        "score": 1 if correct else 0,
        "reference": item["target"],
        "correct": correct,
        "metadata": metadata,
    }


def convert_mode(source_dir: Path, data_dir: Path, mode: str) -> Report:
    dataset_id = MODES[mode]
    report = Report(dataset_id)
    model_id = canonical_id(BBH.folder, MODEL_NAME)
    files = task_files(source_dir, mode)
    rows, canaries = [], set()
    for task, path in files.items():
        document = load_json(path)
        canary = document.get("canary")
        items = document.get("outputs", [])
        if not isinstance(canary, str) or not canary:
            report.read += len(items)
            report.skip("task file has no canary string", len(items))
            continue
        canaries.add(canary)
        correct = 0
        for index, item in enumerate(items):
            report.read += 1
            problem = item_problem(item)
            if problem is not None:
                report.skip(problem)
                continue
            row = convert_item(mode, task, index, item, canary)
            rows.append(row)
            correct += row["correct"]
            report.wrote(model_id, row["correct"])
        check_accuracy(dataset_id, task, path, correct, len(items))
    clear_dataset(data_dir, dataset_id)
    write_results(data_dir, dataset_id, model_id, rows)
    write_dataset_yaml(data_dir, dataset_meta(mode, len(files), sorted(canaries)))
    report.log()
    return report


def check_accuracy(dataset_id: str, task: str, path: Path, correct: int, total: int) -> None:
    """Log whether the recomputed accuracy equals the one published next to the task file."""
    published = published_accuracy(path)
    computed = 100 * correct / total if total else 0.0
    if published is None:
        logger.warning("%s/%s: no published accuracy to compare with (computed %.2f%%)", dataset_id, task, computed)
    elif abs(published - computed) > ACCURACY_TOLERANCE:
        logger.warning("%s/%s: computed accuracy %.4f%% differs from the published %.4f%%",
                       dataset_id, task, computed, published)
    else:
        logger.info("%s/%s: accuracy %.2f%% matches the published figure", dataset_id, task, computed)


def convert_cot(source_dir: Path, data_dir: Path) -> Report:
    return convert_mode(source_dir, data_dir, "cot")


def convert_direct(source_dir: Path, data_dir: Path) -> Report:
    return convert_mode(source_dir, data_dir, "direct")


def dataset_meta(mode: str, task_count: int, canaries: list[str]) -> dict[str, Any]:
    if mode == "cot":
        how = ("with chain-of-thought few-shot prompts. The answer is the text after the last "
               f"'{ANSWER_MARKER}' in the output, final period dropped (metadata.extracted; null when the "
               "phrase is missing, which counts as wrong)")
    else:
        how = "with direct-answer few-shot prompts. The answer is the whole output with surrounding spaces removed"
    return {
        "id": MODES[mode],
        "name": f"BIG-Bench Hard ({'chain-of-thought' if mode == 'cot' else 'direct answer'})",
        "description": (
            f"{task_count} hard BIG-Bench reasoning tasks answered by code-davinci-002 {how}. An instance is "
            "correct when the answer equals the target exactly; this reproduces the per-task accuracies "
            "published with the outputs. The input is only an excerpt of the final question, because the "
            "source marks its items with the BIG-bench canary; metadata.task names the task."
        ),
        "task_type": "short_answer",
        "metric": "exact_match",
        "threshold": 1,
        "score_range": [0, 1],
        "source": BBH.source(f"{BBH.root}/{MODEL_NAME}-{mode}"),
        "license": BBH.license,
        "aliases": [f"{MODEL_NAME}-{mode}"],
        "publishing": {
            "text": "excerpt",
            "excerpt_chars": EXCERPT_CHARS,
            "reason": ("BIG-bench canary: the source files carry the canary string "
                       f"({'; '.join(canaries)}), and its owners ask that the items not appear where crawlers "
                       "read them, so only an excerpt of each question is stored and shown."),
        },
        "subset": f"All items of all {task_count} tasks (instance id <task>-<index in the task file, zero-padded to three digits>).",
        "citation": (
            "Suzgun et al. (2023). Challenging BIG-Bench Tasks and Whether Chain-of-Thought Can Solve Them. "
            "Findings of ACL 2023. arXiv:2210.09261."
        ),
    }
