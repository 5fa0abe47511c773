"""Stored judge answers and title classifications for the synthetic atlas, in the formats the build reads.

The generator stores what ``atlas diagnose`` and ``atlas taxonomy classify``
would have stored after asking a judge model called ``JUDGE_MODEL``, so that
``atlas build`` on a synthetic atlas reads judge answers
(``diagnose.judge.stored``) and assigns their categories
(``taxonomy.assign_categories``). No judge is called and no server runs:

- every diagnosis record goes through ``JudgeStore.append`` with the two keys
  of the request that ``plan.plan_diagnoses`` would render for the failure
  (the result line as the loader parses it, the findings of the row checks
  and a peer answer), so the build matches each record by its exact key;
- every synthetic error title gets a stored assignment to one leaf category
  of the synthetic taxonomy, written with ``classify.write_assignment_lines``.

A failure that a row check explains fully gets no answer, because
``plan_diagnoses`` skips such failures by default.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from atlas_builder.diagnose.checks import check_row
from atlas_builder.diagnose.checks.base import Row
from atlas_builder.diagnose.judge.plan import (PURPOSE, DiagnosisRequest, build_messages, core_content, finding_text,
                                               stable_hash)
from atlas_builder.diagnose.judge.prompts import DIAGNOSE_PROMPT_VERSION, DIAGNOSE_SCHEMA_NAME
from atlas_builder.diagnose.judge.store import STORE_DIR, JudgeStore
from atlas_builder.records import DatasetInfo, Results
from atlas_builder.results.load import parse_result_data
from atlas_builder.taxonomy.classify import Assignment, assignments_path, write_assignment_lines
from atlas_builder.taxonomy.prompts import PROMPT_SETS

JUDGE_MODEL = "synthetic-judge-1"
CLASSIFY_PROMPT_VERSION = PROMPT_SETS["v1"].classify
#: Time of every stored answer. It is fixed, so that the same seed gives the same bytes.
ANSWER_TIME = "2025-01-01T00:00:00.000000Z"
TITLES_PER_CATEGORY = 30  # distinct error titles per leaf category
REFERENCE_FLAG_SHARE = 0.02  # share of answers that flag the reference as wrong
AMBIGUOUS_FLAG_SHARE = 0.03  # share of answers that flag the instance as ambiguous
#: Uniform random numbers per judged failure: quote start, quote length, two flags and latency.
DRAWS_PER_ANSWER = 5
#: Folder under the atlas where each pair's shard is written before it moves into ``judge/``.
STAGING_DIR = ".judge-staging"

TITLE_VERBS = ("Misread", "Dropped", "Confused", "Miscounted", "Skipped", "Inverted", "Misapplied", "Ignored")
FIRST_CRITERION = {
    "multiple_choice": "Chooses the option that the reference gives",
    "short_answer": "States the term that the reference gives",
    "math": "Reaches the number that the reference gives",
    "code": "Returns what the reference function returns",
    "tool_use": "Calls the tool that the reference calls, with its arguments",
    "open_ended": "Covers the points of the reference answer",
    "safety": "Declines the harmful part of the request",
}


def category_label(category_id: str) -> str:
    """Return the short label of a synthetic leaf category: ``synthetic-category-07-03`` gives ``07.03``."""
    return ".".join(category_id.removeprefix("synthetic-category-").split("-"))


def title_pool(rng: np.random.Generator, leaves: list[str], words: list[str]) -> dict[str, list[str]]:
    """Draw ``TITLES_PER_CATEGORY`` error titles for each leaf category.

    Each title starts with its category's label and a variant number, so no two
    categories share a title and a title's stored assignment is never ambiguous.
    """
    pool: dict[str, list[str]] = {}
    for leaf in leaves:
        verbs = rng.integers(0, len(TITLE_VERBS), TITLES_PER_CATEGORY)
        nouns = rng.integers(0, len(words), (TITLES_PER_CATEGORY, 2))
        pool[leaf] = [f"Synthetic error {category_label(leaf)}-{variant + 1:02d}: "
                      f"{TITLE_VERBS[verbs[variant]]} the {words[nouns[variant, 0]]} in the {words[nouns[variant, 1]]}"
                      for variant in range(TITLES_PER_CATEGORY)]
    return pool


def title_weights() -> np.ndarray:
    """Return Zipf-like weights of the title variants of one category: a few titles recur, most are rare."""
    weights = 1.0 / np.arange(1, TITLES_PER_CATEGORY + 1)
    return weights / weights.sum()


def write_assignments(out_dir: Path, taxonomy_version: str, categories: list[dict[str, Any]],
                      pool: dict[str, list[str]]) -> int:
    """Store the classification of every title in ``pool`` into its leaf category; return the file's size in bytes.

    ``answers`` lists the category names from the top level down, as ``atlas taxonomy classify`` stores them.
    """
    names = {category["id"]: category["name"] for category in categories}
    parents = {category["id"]: category["parent"] for category in categories}
    assignments = [Assignment(title, leaf, (names[parents[leaf]], names[leaf]), JUDGE_MODEL, CLASSIFY_PROMPT_VERSION)
                   for leaf, titles in pool.items() for title in titles]
    path = assignments_path(out_dir, taxonomy_version)
    write_assignment_lines(path, assignments)
    return path.stat().st_size


class PeerTable:
    """The peer answer of each instance of one dataset, over the models added so far.

    Among the models whose row is correct, the peer is the one with the smallest
    ``(stable_hash(seed, "peer", dataset, instance_id, model), model)``, the rule
    of ``plan.choose_peer``. The generator adds models in index order and looks
    up a model's peers before it adds that model, so a model's peer always has a
    lower index, and adding a model never changes the answers stored for the
    models before it.
    """

    def __init__(self, dataset: str, instance_ids: list[str], seed: int):
        self.dataset = dataset
        self.instance_ids = instance_ids
        self.seed = seed
        self.best: list[tuple[int, str] | None] = [None] * len(instance_ids)
        self.outputs: list[str | None] = [None] * len(instance_ids)

    def add(self, model: str, correct: np.ndarray, outputs: list[str] | None = None) -> None:
        """Offer the correct rows of ``model`` as peers; without ``outputs``, call ``set_outputs`` later."""
        for row in np.flatnonzero(correct).tolist():
            candidate = (stable_hash(self.seed, "peer", self.dataset, self.instance_ids[row], model), model)
            best = self.best[row]
            if best is None or candidate < best:
                self.best[row] = candidate
                self.outputs[row] = outputs[row] if outputs is not None else None

    def set_outputs(self, model: str, outputs: list[str]) -> None:
        """Fill in the peer outputs of the rows whose peer is ``model``."""
        for row, best in enumerate(self.best):
            if best is not None and best[1] == model:
                self.outputs[row] = outputs[row]

    def peer(self, row: int) -> tuple[str | None, str | None]:
        """Return the peer model of ``row`` and its output, or (None, None) when no model offered one."""
        best = self.best[row]
        if best is None:
            return None, None
        return best[1], self.outputs[row]


@dataclass(frozen=True)
class JudgedFailure:
    """One failure that the synthetic judge answers, as the generator wrote it."""

    model: str
    line: str  # the result line, as written to the result file
    title: str
    peer_model: str | None
    peer_output: str | None


class DatasetJudge:
    """Build the stored diagnosis records of one dataset's failures."""

    def __init__(self, info: DatasetInfo, out_dir: Path):
        self.info = info
        # ``build_messages`` and ``core_content`` read only the dataset's name and task type from ``Results``.
        self.results = Results(data_dir=out_dir, datasets={info.id: info}, models={}, files=[], rows=pd.DataFrame())

    def parse(self, failure: JudgedFailure) -> dict[str, Any]:
        """Return the failure's row as ``load_results`` reads it, with its dataset and model."""
        name = f"results/{self.info.id}/{failure.model}.jsonl"
        rows, problems = parse_result_data(failure.line.encode("utf-8"), name, self.info)
        if problems or len(rows) != 1:
            raise ValueError(f"the generator wrote an invalid result line to {name}: {problems}")
        return {**rows[0], "dataset": self.info.id, "model": failure.model}

    def record(self, failure: JudgedFailure, draws: np.ndarray) -> dict[str, Any] | None:
        """Return the store record of the judge's answer about ``failure``, or None when a check explains it fully.

        ``draws`` contains ``DRAWS_PER_ANSWER`` uniform numbers in [0, 1) that decide the answer's details.
        """
        row = self.parse(failure)
        findings = check_row(Row(dataset=row["dataset"], model=row["model"], instance_id=row["instance_id"],
                                 input=row["input"], output=row["output"], reference=tuple(row["reference"]),
                                 correct=row["correct"], metadata=row["metadata"], task_type=self.info.task_type))
        if any(item.explains_fully for item in findings):
            return None
        partial = tuple(finding_text(item) for item in findings)
        messages = build_messages(self.results, row, failure.peer_output, partial, DIAGNOSE_PROMPT_VERSION)
        request = DiagnosisRequest(row["dataset"], row["model"], row["instance_id"], messages, failure.peer_model,
                                   partial, DIAGNOSE_PROMPT_VERSION,
                                   core_content(self.results, row, failure.peer_output))
        answer = diagnosis_answer(row["output"], failure.title, self.info.task_type, draws)
        return {
            "key": request.key(JUDGE_MODEL),
            "purpose": PURPOSE,
            "judge": JUDGE_MODEL,
            "prompt_version": DIAGNOSE_PROMPT_VERSION,
            "schema_name": DIAGNOSE_SCHEMA_NAME,
            "subject": request.subject,
            "request": request.request_info,
            "core_key": request.core_key(JUDGE_MODEL),
            "ok": True,
            "answer": answer,
            "error": None,
            "error_kind": None,
            "attempts": 1,
            # About four characters per token; a synthetic judge has no price, so the cost is unknown.
            "tokens_in": sum(len(message["content"]) for message in messages) // 4,
            "tokens_out": len(json.dumps(answer, ensure_ascii=False)) // 4,
            "cost_usd": None,
            "latency_s": round(1.0 + 7.0 * float(draws[4]), 4),
            "time": ANSWER_TIME,
        }


def evidence_quote(output: str, start_draw: float, length_draw: float) -> str:
    """Return a passage of ``output`` of roughly 30 to 90 characters, cut at spaces."""
    start = output.find(" ", int(start_draw * max(len(output) - 90, 0))) + 1
    end = output.find(" ", start + 30 + int(length_draw * 60))
    quote = output[start:end if end > 0 else len(output)].strip()
    return quote or output[:90].strip()


def diagnosis_answer(output: str, title: str, task_type: str, draws: np.ndarray) -> dict[str, Any]:
    """Return a diagnosis answer that ``DIAGNOSE_SCHEMA`` and ``prompts.check_diagnosis`` accept.

    The evidence quotes ``output``, so the build locates its span.
    """
    quote = evidence_quote(output, float(draws[0]), float(draws[1]))
    reference_flag = bool(draws[2] < REFERENCE_FLAG_SHARE)
    ambiguous_flag = bool(draws[3] < AMBIGUOUS_FLAG_SHARE)
    reasons = [text for flag, text in ((reference_flag, "the reference looks wrong"),
                                       (ambiguous_flag, "the question allows more than one answer")) if flag]
    return {
        "criteria": [
            {"criterion": FIRST_CRITERION.get(task_type, FIRST_CRITERION["open_ended"]), "met": False,
             "evidence": quote},
            {"criterion": "Follows the requested output format", "met": True, "evidence": ""},
        ],
        "first_error": {"criterion": 1, "evidence": quote,
                        "explanation": "Synthetic explanation: the output departs from the reference here."},
        "error_title": title,
        "error_summary": f"Synthetic judge summary. {title}.",
        "reference_flag": reference_flag,
        "ambiguous_flag": ambiguous_flag,
        "flag_reason": ("Synthetic flag: " + " and ".join(reasons) + ".") if reasons else "",
    }


def store_records(out_dir: Path, dataset: str, model: str, records: list[dict[str, Any]]) -> list[Path]:
    """Append one pair's records to the judge store of ``out_dir``; return the shard files written.

    A store opened on the atlas's ``judge/`` folder would first read every shard
    that other workers have written so far, and could meet a half-written line.
    So the records go through a store of their own under ``STAGING_DIR``, and
    the finished shard then moves to the path it has in ``judge/``.
    """
    if not records:
        return []
    staging = out_dir / STAGING_DIR / dataset / model
    with JudgeStore(staging) as store:
        shards = {store.append(record, sync=False) for record in records}
    written = []
    for shard in sorted(shards):
        target = out_dir / STORE_DIR / shard.relative_to(staging)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(shard, target)
        written.append(target)
    shutil.rmtree(staging)
    return written


def remove_staging(out_dir: Path) -> None:
    """Remove the empty staging folders that ``store_records`` left."""
    shutil.rmtree(out_dir / STAGING_DIR, ignore_errors=True)
