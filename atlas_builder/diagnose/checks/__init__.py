"""Deterministic checks that explain mechanical failures without a judge.

Entry point: ``run_checks(results) -> list[Diagnosis]``. Each check is a
small module of this package (see ``registry.CHECKS`` for the order and the
taxonomy category of each). The row checks look at one row at a time, so
``check_file`` runs them on one result file; the suspect-reference check then
compares the models of a dataset through the votes ``check_file`` collects
(``suspect.dataset_suspects``). ``diagnose.checks_cache`` caches both steps.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Iterator

import pandas as pd

from atlas_builder.diagnose.checks.base import Row, to_diagnosis
from atlas_builder.diagnose.checks.registry import CHECKS
from atlas_builder.diagnose.checks.suspect import Vote, dataset_suspects, find_suspects, vote_of
from atlas_builder.logs import progress
from atlas_builder.records import Diagnosis, Results

logger = logging.getLogger(__name__)


def iter_rows(rows: pd.DataFrame, task_types: dict[str, str]) -> Iterator[Row]:
    """Yield the check view of each row of a result frame."""
    columns = ["dataset", "model", "instance_id", "input", "output", "reference", "correct", "metadata"]
    for dataset, model, instance_id, text, output, reference, correct, metadata in zip(*(rows[c] for c in columns)):
        yield Row(
            dataset=dataset,
            model=model,
            instance_id=instance_id,
            input=text if isinstance(text, str) else "",
            output=output if isinstance(output, str) else "",
            reference=tuple(reference) if reference is not None else (),
            correct=bool(correct),
            metadata=metadata if isinstance(metadata, dict) else {},
            task_type=task_types.get(dataset, "open_ended"),
        )


def check_row(row: Row) -> list[Diagnosis]:
    """Run every applicable check on one row, in registry order, and return their findings."""
    found: list[Diagnosis] = []
    fired: set[str] = set()
    wanted = "failures" if not row.correct else "correct"
    for check in CHECKS:
        if check.on != wanted or (check.task_types is not None and row.task_type not in check.task_types):
            continue
        if fired.intersection(check.unless):
            continue
        finding = check.run(row)
        if finding is not None:
            fired.add(check.name)
            found.append(to_diagnosis(check, row, finding))
    return found


@dataclass
class FileFindings:
    """The row-check findings of one result file, and the votes of its rows for the suspect-reference check."""

    findings: list[Diagnosis]
    votes: list[Vote]


def check_file(rows: Iterable[Row]) -> FileFindings:
    """Run the row checks on the rows of one result file and collect their suspect-reference votes."""
    findings: list[Diagnosis] = []
    votes: list[Vote] = []
    for row in rows:
        findings.extend(check_row(row))
        vote = vote_of(row)
        if vote is not None:
            votes.append(vote)
    return FileFindings(findings, votes)


def run_checks(results: Results) -> list[Diagnosis]:
    """Run every check on every failure of ``results`` (and the accident check on right rows); return the findings."""
    task_types = {dataset_id: info.task_type for dataset_id, info in results.datasets.items()}
    rows = list(iter_rows(results.rows, task_types))
    found: list[Diagnosis] = []
    for row in progress(rows, total=len(rows), desc="checks", unit="row"):
        found.extend(check_row(row))
    found.extend(find_suspects(rows))
    counts = Counter(item.diagnoser for item in found)
    logger.info("checks: %d findings on %d rows (%s)", len(found), len(rows),
                ", ".join(f"{name} {count}" for name, count in sorted(counts.items())))
    return found


__all__ = ["FileFindings", "Vote", "check_file", "check_row", "dataset_suspects", "find_suspects", "iter_rows",
           "run_checks"]
