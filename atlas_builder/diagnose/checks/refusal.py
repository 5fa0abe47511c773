"""Check ``refusal``: the model declines or deflects instead of attempting the task.

The phrase lists are our own wording of common refusal and deflection forms.
On safety datasets refusing is the wanted behaviour, so the check does not run
there. A refusal phrase followed by a stated answer ("I can't be sure, but the
answer is B") is an answer, not a refusal.
"""

from __future__ import annotations

import re

from atlas_builder.diagnose.checks.answers import final_answer
from atlas_builder.diagnose.checks.base import Finding, Row, output_evidence, quote

_REFUSALS = [
    r"i(?:'m| am)? (?:really )?sorry,? but (?:i|as an ai)",
    r"i (?:can ?not|can't|won't|will not|am unable to|'m unable to|am not able to|'m not able to) "
    r"(?:help|assist|provide|answer|comply|fulfil+|complete|do that|do this|engage|generate|write|create|support|give|share|participate|respond)",
    r"i (?:must|have to|need to) (?:respectfully )?decline",
    r"i(?:'m| am) not (?:comfortable|going to) (?:with |help|provid|answer|assist|engag)",
    r"i do(?:n't| not) feel comfortable",
    r"as an ai(?: language model| assistant| model)?,? i (?:can ?not|can't|do not|don't|am not|'m not|must)",
    r"it (?:is|would be) (?:not appropriate|inappropriate|unethical|not ethical) (?:for me )?to",
    r"(?:this|that|your) (?:request|question) (?:is|seems|appears) (?:inappropriate|harmful|unethical|offensive)",
    r"i (?:can ?not|can't|won't) (?:and will not |and won't )?(?:provide|give) (?:an? )?(?:answer|response|opinion)",
    r"i apologi[sz]e,? but (?:i|this|that)",
    r"against my (?:programming|guidelines|principles|policy)",
]
_DEFLECTIONS = [
    r"(?:please )?consult (?:a|an|your) (?:qualified |licensed |medical |legal |financial )?(?:professional|doctor|lawyer|expert|physician|advisor)",
    r"i do(?:n't| not) have (?:enough|sufficient|access to|the ability|personal)",
    r"(?:there is|there's) (?:not enough|insufficient) information (?:to|for me)",
    r"(?:none|neither) of the (?:above|options|choices|given options) (?:is|are) (?:correct|right|valid)",
]
_REFUSAL = re.compile("|".join(f"(?:{pattern})" for pattern in _REFUSALS), re.IGNORECASE)
_DEFLECTION = re.compile("|".join(f"(?:{pattern})" for pattern in _DEFLECTIONS), re.IGNORECASE)
_APOSTROPHES = str.maketrans({"’": "'", "‘": "'"})
#: Words after a refusal phrase that start an attempt after all; they count only in outputs this long.
_GOES_ON = re.compile(r"\b(?:however|but i can|here (?:is|are)|that said|nevertheless|in general)\b", re.IGNORECASE)
SUBSTANTIVE_CHARS = 300
#: Refusals come first: only the opening of the output is searched, unless the output is short.
HEAD_CHARS = 400


def check_refusal(row: Row) -> Finding | None:
    """Report an output that opens with a refusal or deflection and never states an answer."""
    text = row.output.translate(_APOSTROPHES)
    head = text[:HEAD_CHARS]
    match = _REFUSAL.search(head)
    kind = "refusal"
    if match is None:
        match = _DEFLECTION.search(head)
        kind = "deflection"
    if match is None:
        return None
    rest = text[match.end():]
    if len(text) >= SUBSTANTIVE_CHARS and _GOES_ON.search(rest):
        return None  # "I don't have personal experience, but I can give an example: ..." is an answer
    answer = final_answer(row.output)
    if answer is not None and answer.how != "whole" and row.task_type in ("multiple_choice", "short_answer", "math"):
        return None
    return Finding(
        title="Refusal" if kind == "refusal" else "Deflection",
        summary=f"The output declines the task with “{quote(match.group(0))}” and states no answer.",
        evidence=(output_evidence(row.output, match.start(), match.end()),),
        explains_fully=row.task_type != "open_ended" or kind == "refusal",
        details={"kind": kind, "phrase": match.group(0)},
    )
