"""Checks ``answer-extraction-failure`` and ``scored-right-by-accident``.

Extraction failure: the output states the reference answer as its final
answer (same option letter or option text, same number, same normalised
string) but the row is scored wrong, so the scorer missed a right answer.
Scored right by accident is the opposite: the row is scored right although
the output states a different final answer, or none (MMLU-Pro's scorer, for
example, guesses a random letter when it extracts none).
"""

from __future__ import annotations

from atlas_builder.diagnose.checks.answers import answers_match, final_answer, option_texts
from atlas_builder.diagnose.checks.base import Finding, Row, output_evidence, quote
from atlas_builder.diagnose.checks.normalize import normalise_answer

#: Task types whose answers can be compared with the reference as short strings.
COMPARABLE = frozenset({"multiple_choice", "short_answer", "math"})


def check_extraction_failure(row: Row) -> Finding | None:
    """Report a failure whose stated final answer equals the reference."""
    if not row.reference:
        return None
    answer = final_answer(row.output)
    if answer is None:
        return None
    if not answers_match(answer.text, row.reference, row.task_type, option_texts(row.metadata, row.input)):
        return None
    extracted = row.metadata.get("extracted", "not recorded")
    return Finding(
        title="Right answer not extracted",
        summary=(
            f"The output's final answer “{quote(answer.text)}” matches the reference "
            f"“{quote(row.reference[0])}”, but the row is scored wrong."
        ),
        evidence=(output_evidence(row.output, answer.start, answer.end),),
        explains_fully=True,
        details={"stated": answer.text, "reference": list(row.reference), "scorer_extracted": extracted, "found_by": answer.how},
    )


def check_scored_right_by_accident(row: Row) -> Finding | None:
    """Report a row scored right whose output states another final answer, or none the scorer could have used."""
    if not row.reference:
        return None
    metadata = row.metadata
    answer = final_answer(row.output)
    if "extracted" in metadata and metadata["extracted"] is None:
        where = (answer.start, answer.end) if answer else (0, 0)
        return Finding(
            title="Scored right without an extracted answer",
            summary="The scorer extracted no answer from the output, yet the row is scored right (a fallback guess matched).",
            evidence=(output_evidence(row.output, *where),) if answer else (),
            details={"stated": answer.text if answer else None, "reference": list(row.reference), "scorer_extracted": None},
        )
    if answer is None or answer.how == "whole":
        return None
    if answers_match(answer.text, row.reference, row.task_type, option_texts(metadata, row.input)):
        return None
    stated = normalise_answer(answer.text, row.task_type)
    if not stated or len(stated) > 40:
        return None
    return Finding(
        title="Scored right with another final answer",
        summary=(
            f"The output's final answer “{quote(answer.text)}” differs from the reference "
            f"“{quote(row.reference[0])}”, yet the row is scored right."
        ),
        evidence=(output_evidence(row.output, answer.start, answer.end),),
        details={"stated": answer.text, "reference": list(row.reference), "scorer_extracted": metadata.get("extracted")},
    )
