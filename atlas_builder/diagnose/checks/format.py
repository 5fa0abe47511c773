"""Check ``format-violation``: the output lacks the answer format the task type requires.

Multiple choice: no valid option letter (or option text) is given as the
answer, or the letter is outside the item's options. Short answer and math:
no final answer is stated at all (no "the answer is", ``####``, ``\\boxed{}``,
or short bare answer).
"""

from __future__ import annotations

from atlas_builder.diagnose.checks.answers import answer_letter, final_answer, option_texts
from atlas_builder.diagnose.checks.base import Finding, Row, output_evidence, quote
from atlas_builder.diagnose.checks.normalize import OPTION_LETTERS, normalise_text, parse_number


def _option_count(row: Row) -> int | None:
    options = option_texts(row.metadata, row.input)
    if options:
        return len(options)
    count = row.metadata.get("num_options")
    return count if isinstance(count, int) else None


def check_format(row: Row) -> Finding | None:
    """Report an output with no answer in the form its task type requires."""
    answer = final_answer(row.output)
    tail_start = max(0, len(row.output.rstrip()) - 80)
    tail = output_evidence(row.output, tail_start, len(row.output.rstrip()))
    if answer is None:
        return Finding(
            title="No final answer stated",
            summary=f"The output never states a final answer in a form the scorer reads; it ends with “{quote(tail.text, 50)}”.",
            evidence=(tail,),
            explains_fully=True,
            details={"problem": "no final answer"},
        )
    if row.task_type != "multiple_choice":
        if row.task_type == "math" and parse_number(answer.text) is None and answer.how != "boxed":
            return Finding(
                title="Final answer is not a number",
                summary=f"The math answer “{quote(answer.text)}” is not a single number.",
                evidence=(output_evidence(row.output, answer.start, answer.end),),
                details={"problem": "non-numeric answer", "stated": answer.text},
            )
        return None
    letter = answer_letter(answer)
    options = option_texts(row.metadata, row.input)
    if letter is None:
        text = normalise_text(answer.text)
        if options and any(text == normalise_text(option) for option in options.values()):
            return None
        return Finding(
            title="No option letter",
            summary=f"The multiple-choice answer “{quote(answer.text)}” names no option letter.",
            evidence=(output_evidence(row.output, answer.start, answer.end),),
            explains_fully=True,
            details={"problem": "no option letter", "stated": answer.text},
        )
    count = _option_count(row)
    if count is not None and OPTION_LETTERS.index(letter) >= count:
        return Finding(
            title="Option letter out of range",
            summary=f"The answer names option {letter}, but the item has only {count} options.",
            evidence=(output_evidence(row.output, answer.start, answer.end),),
            explains_fully=True,
            details={"problem": "letter out of range", "stated": letter, "options": count},
        )
    return None
