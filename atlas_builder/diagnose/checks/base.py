"""The pieces every check shares: the row it reads, the finding it returns, and the check record."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal

from atlas_builder.records import Diagnosis, Evidence


@dataclass(frozen=True)
class Row:
    """One result row as the checks see it, with its dataset's task type."""

    dataset: str
    model: str
    instance_id: str
    input: str
    output: str
    reference: tuple[str, ...]
    correct: bool
    metadata: dict[str, Any]
    task_type: str


@dataclass(frozen=True)
class Finding:
    """What a check found on one row; ``run_checks`` turns it into a ``Diagnosis``."""

    title: str
    summary: str  # one sentence that names the evidence
    evidence: tuple[Evidence, ...] = ()
    explains_fully: bool = False
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Check:
    """One row-level check: its name, taxonomy category and the function that runs it.

    ``task_types`` limits the check to some dataset task types (None: all).
    ``unless`` names checks that, when they fired on the same row earlier in the
    registry order, make this one redundant (a format violation is no news on
    an empty output).
    """

    name: str
    category: str | None
    run: Callable[[Row], Finding | None]
    on: Literal["failures", "correct"] = "failures"
    task_types: frozenset[str] | None = None
    unless: tuple[str, ...] = ()

    @property
    def diagnoser(self) -> str:
        return f"check:{self.name}"


def output_evidence(output: str, start: int, end: int) -> Evidence:
    """Return an evidence span of the output, clamped to its length."""
    start = max(0, min(start, len(output)))
    end = max(start, min(end, len(output)))
    return Evidence(field="output", start=start, end=end, text=output[start:end])


def to_diagnosis(check: Check, row: Row, finding: Finding) -> Diagnosis:
    """Wrap a finding as a check diagnosis of ``row``."""
    return Diagnosis(
        dataset=row.dataset,
        model=row.model,
        instance_id=row.instance_id,
        diagnoser=check.diagnoser,
        kind="check",
        title=finding.title,
        summary=finding.summary,
        category=check.category,
        explains_fully=finding.explains_fully,
        evidence=finding.evidence,
        details=dict(finding.details),
    )


def quote(text: str, limit: int = 60) -> str:
    """Return a short one-line quotation of ``text`` for a summary sentence."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
