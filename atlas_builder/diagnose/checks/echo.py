"""Check ``prompt-echo``: the output only repeats text of the prompt and adds no answer."""

from __future__ import annotations

import functools
import re

from atlas_builder.diagnose.checks.answers import final_answer
from atlas_builder.diagnose.checks.base import Finding, Row, output_evidence

_SPACES = re.compile(r"\s+")
#: Below this many characters an output is too short to call an echo (a bare "A" also occurs in the prompt).
MIN_CHARS = 20
#: Share of the output's non-blank characters that must be lines copied from the prompt.
MIN_COPIED_SHARE = 0.9


def _flat(text: str) -> str:
    return _SPACES.sub(" ", text).strip().lower()


@functools.lru_cache(maxsize=4096)
def _prompt_views(prompt: str) -> tuple[str, str]:
    """Return the flattened prompt and its flattened last line; cached, as every model shares the prompt."""
    stripped = prompt.strip()
    return _flat(prompt), (_flat(stripped.splitlines()[-1]) if stripped else "")


def check_echo(row: Row) -> Finding | None:
    """Report an output whose lines (at least 90% of its characters) occur verbatim in the prompt, with no answer of its own."""
    output = row.output.strip()
    if len(output) < MIN_CHARS or not row.input:
        return None
    prompt, question = _prompt_views(row.input)
    flat_output = _flat(output)
    if flat_output in prompt:
        copied = len(output)
        total = len(output)
    elif len(question) >= MIN_CHARS and question in flat_output:
        # The prompt's last line copied over and over, a loop of echoes.
        total = len(flat_output)
        copied = total - len(flat_output.replace(question, "").replace(" ", ""))
    else:
        lines = [line for line in row.output.splitlines() if line.strip()]
        total = sum(len(line.strip()) for line in lines)
        copied = sum(len(line.strip()) for line in lines if len(line.strip()) >= 8 and _flat(line) in prompt)
    if total == 0 or copied / total < MIN_COPIED_SHARE:
        return None
    answer = final_answer(row.output)
    if answer is not None and answer.how != "whole" and _flat(row.output[answer.start:answer.end]) not in prompt:
        return None  # the copy of the question ends in an answer of the model's own
    start = row.output.index(output)
    return Finding(
        title="Output repeats the prompt",
        summary=f"{copied / total:.0%} of the output's {total} characters are copied verbatim from the prompt.",
        evidence=(output_evidence(row.output, start, start + len(output)),),
        explains_fully=True,
        details={"copied_share": round(copied / total, 3), "chars": total},
    )
