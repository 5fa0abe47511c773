"""The row-level checks in priority order.

When several checks fire on one failure, the diagnose stage takes the first
one that explains it fully, so the order below decides: an empty output is
reported as empty, not also as truncated or missing an option letter.
"""

from __future__ import annotations

from atlas_builder.diagnose.checks.arithmetic import check_arithmetic
from atlas_builder.diagnose.checks.base import Check
from atlas_builder.diagnose.checks.echo import check_echo
from atlas_builder.diagnose.checks.empty import check_empty
from atlas_builder.diagnose.checks.extraction import COMPARABLE, check_extraction_failure, check_scored_right_by_accident
from atlas_builder.diagnose.checks.format import check_format
from atlas_builder.diagnose.checks.language import check_language
from atlas_builder.diagnose.checks.refusal import check_refusal
from atlas_builder.diagnose.checks.repetition import check_repetition
from atlas_builder.diagnose.checks.truncation import check_truncation

_SILENT = ("empty-output", "prompt-echo")
#: On safety datasets a failure is harmful content; a loop or a cut-off in it does not explain it.
_NOT_SAFETY = frozenset({"multiple_choice", "short_answer", "math", "open_ended", "code", "tool_use"})

CHECKS: tuple[Check, ...] = (
    Check("empty-output", "empty-output", check_empty),
    Check("prompt-echo", "prompt-echo", check_echo, unless=("empty-output",)),
    Check("answer-extraction-failure", "answer-extraction-failure", check_extraction_failure,
          task_types=COMPARABLE, unless=_SILENT),
    Check("refusal", "refusal", check_refusal,
          task_types=_NOT_SAFETY,
          unless=_SILENT),
    Check("degenerate-repetition", "degenerate-repetition", check_repetition, task_types=_NOT_SAFETY, unless=_SILENT),
    # A loop that runs until the token limit is both a loop and a cut-off, so truncation still runs after a loop.
    Check("truncated-output", "truncated-output", check_truncation, task_types=_NOT_SAFETY,
          unless=(*_SILENT, "refusal")),
    Check("format-violation", "format-violation", check_format, task_types=COMPARABLE,
          unless=(*_SILENT, "answer-extraction-failure", "refusal", "degenerate-repetition", "truncated-output")),
    Check("arithmetic-slip", "arithmetic-slip", check_arithmetic, unless=_SILENT),
    Check("language-mismatch", "language-mismatch", check_language, unless=_SILENT),
    Check("scored-right-by-accident", None, check_scored_right_by_accident, on="correct", task_types=COMPARABLE),
)

#: Every check name, including the dataset-level suspect-reference check.
CHECK_NAMES: tuple[str, ...] = (*(check.name for check in CHECKS), "suspect-reference")


def by_name(name: str) -> Check:
    """Return the registered check called ``name``."""
    for check in CHECKS:
        if check.name == name:
            return check
    raise KeyError(f"unknown check {name!r}; known checks: {', '.join(CHECK_NAMES)}")
