"""Check ``empty-output``: the output is empty or whitespace only."""

from __future__ import annotations

from atlas_builder.diagnose.checks.base import Finding, Row, output_evidence


def check_empty(row: Row) -> Finding | None:
    """Report an output with no visible character."""
    if row.output.strip():
        return None
    summary = (
        "The output is empty."
        if not row.output
        else f"The output contains only {len(row.output)} whitespace character(s)."
    )
    return Finding(
        title="Empty output",
        summary=summary,
        evidence=(output_evidence(row.output, 0, len(row.output)),),
        explains_fully=True,
        details={"length": len(row.output)},
    )
