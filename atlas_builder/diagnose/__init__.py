"""Diagnose stage: explain each failure by deterministic checks and stored judge answers.

Entry point: ``diagnose(results) -> Diagnoses``. It works offline: it never calls
the judge (``atlas diagnose`` does that) and only reads what is stored.
"""

from __future__ import annotations

import logging
from collections import defaultdict

from atlas_builder.diagnose.checks_cache import run_checks_cached
from atlas_builder.diagnose.judge import stored_diagnoses
from atlas_builder.records import Diagnoses, Diagnosis, FailureKey, Results

logger = logging.getLogger(__name__)

SUSPECT_REFERENCE_DIAGNOSER = "check:suspect-reference"
ACCIDENTAL_PASS_DIAGNOSER = "check:scored-right-by-accident"


def diagnose(results: Results) -> Diagnoses:
    """Run the checks, read stored judge answers and pick each failure's primary diagnosis."""
    checks = run_checks_cached(results)
    items = checks + stored_diagnoses(results, results.data_dir, check_findings=checks)
    by_key: dict[FailureKey, list[Diagnosis]] = defaultdict(list)
    suspect: dict[tuple[str, str], dict] = {}
    accidental: list[Diagnosis] = []
    for item in items:
        if item.diagnoser == ACCIDENTAL_PASS_DIAGNOSER:
            # Found on rows scored correct: a scorer problem of the dataset, never a failure diagnosis.
            accidental.append(item)
            continue
        if item.diagnoser == SUSPECT_REFERENCE_DIAGNOSER:
            # A wrong reference is a dataset problem: it goes to the dataset page, not to model signatures.
            suspect[(item.dataset, item.instance_id)] = {"summary": item.summary, "flagged_by": [item.diagnoser], **dict(item.details)}
            continue
        if item.kind == "judge" and item.details.get("reference_flag"):
            entry = suspect.setdefault((item.dataset, item.instance_id), {"summary": item.summary, "flagged_by": []})
            entry.setdefault("flagged_by", []).append(f"{item.diagnoser} on {item.model}")
        by_key[item.key].append(item)

    primary: dict[FailureKey, Diagnosis] = {}
    undiagnosed: list[FailureKey] = []
    failures = results.failures()
    for key in zip(failures["dataset"], failures["model"], failures["instance_id"]):
        choice = choose_primary(by_key.get(key, []))
        if choice is None:
            undiagnosed.append(key)
        else:
            primary[key] = choice
    logger.info(
        "diagnosed %d of %d failures (%d check findings, %d judge answers); %d undiagnosed",
        len(primary), len(failures),
        sum(item.kind == "check" for item in items), sum(item.kind == "judge" for item in items),
        len(undiagnosed),
    )
    return Diagnoses(items=items, primary=primary, undiagnosed=undiagnosed, suspect_references=suspect,
                     accidental_passes=accidental)


def choose_primary(candidates: list[Diagnosis]) -> Diagnosis | None:
    """Pick the diagnosis that decides a failure's category.

    A check that fully explains the failure wins (it is mechanical and certain),
    then a judge answer, then a partial check finding. Judge failures never count.
    """
    for predicate in (
        lambda item: item.kind == "check" and item.explains_fully,
        lambda item: item.kind == "judge",
        lambda item: item.kind == "check",
    ):
        for item in candidates:
            if predicate(item):
                return item
    return None
