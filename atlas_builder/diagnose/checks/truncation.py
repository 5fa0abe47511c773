"""Check ``truncated-output``: the output stops before the answer is complete.

Evidence, strongest first: the result's metadata says generation stopped at
the token limit (``finish_reason`` "length", or output tokens reaching
``max_tokens``); a code block, ``\\boxed{`` or display-math block is left
open; or a long output ends mid-sentence without having stated an answer.
"""

from __future__ import annotations

import re

from atlas_builder.diagnose.checks.answers import cut_runaway, final_answer
from atlas_builder.diagnose.checks.base import Finding, Row, output_evidence, quote

_LENGTH_REASONS = frozenset({"length", "max_tokens", "max_length", "max_new_tokens", "model_length"})
_REASON_KEYS = ("finish_reason", "stop_reason", "stop_reason_type")
_TOKEN_KEYS = ("output_tokens", "num_output_tokens", "completion_tokens", "generated_tokens")
#: Common generation limits; an output whose token count equals one of them most likely hit it.
ROUND_LIMITS = frozenset({64, 100, 128, 150, 200, 256, 300, 384, 400, 500, 512, 1000, 1024, 1536, 2000, 2048, 3000, 4000, 4096, 8192})
#: An output that ends in one of these characters ended a sentence, a formula or a list item.
_CLOSED_END = re.compile(r"""(?:[.!?。！？…][)\]"'”’*_`]*|[)\]}`*|>])\s*$""")
#: A last line that is a short list item ("- hoped for", "3. Paris") ends a list, not a sentence.
_LIST_ITEM = re.compile(r"(?:^|\n)[ \t]*(?:[-*•]|\d{1,3}[.)])[ \t]+[^\n]{1,80}$")
#: Bare answers up to this long are answers even when they end without punctuation.
SHORT_ANSWER_CHARS = 60
#: Outputs shorter than this that end without punctuation are usually bare answers, not cut-off text.
MIN_CHARS = 150


def _metadata_limit(metadata: dict) -> str | None:
    for key in _REASON_KEYS:
        value = metadata.get(key)
        if isinstance(value, str) and value.lower() in _LENGTH_REASONS:
            return f"metadata {key} is {value!r}"
    limit = metadata.get("max_tokens") or metadata.get("max_new_tokens")
    for key in _TOKEN_KEYS:
        tokens = metadata.get(key)
        if isinstance(tokens, int) and not isinstance(tokens, bool):
            if isinstance(limit, int) and tokens >= limit > 0:
                return f"metadata {key} {tokens} reaches max_tokens {limit}"
            if tokens in ROUND_LIMITS:
                return f"metadata {key} is the round limit {tokens}"
    return None


def _open_block(text: str) -> str | None:
    if text.count("```") % 2 == 1:
        return "a code block is opened with ``` and never closed"
    if text.count("$$") % 2 == 1:
        return "a $$ math block is never closed"
    if text.count("\\[") > text.count("\\]"):
        return "a \\[ math block is never closed"
    tail = text[text.rfind("\\boxed{"):] if "\\boxed{" in text else ""
    if tail and tail.count("{") > tail.count("}"):
        return "\\boxed{ is never closed"
    return None


def check_truncation(row: Row) -> Finding | None:
    """Report an output that was cut off before it stated an answer."""
    output = row.output
    stripped = output.rstrip()
    if not stripped:
        return None
    answer = final_answer(output)
    # A long bare line counts as an answer for direct prompting, but a cut-off sentence looks the same.
    answered = answer is not None and (answer.how != "whole" or len(answer.text) <= SHORT_ANSWER_CHARS)
    reason = _metadata_limit(row.metadata)
    if reason is None:
        text = cut_runaway(output)
        if text.rstrip() != stripped:
            # The model finished its answer and ran on into a new few-shot question; that part may be cut, the answer is not.
            return None
        reason = _open_block(stripped)
        if (reason is None and len(stripped) >= MIN_CHARS and not _CLOSED_END.search(stripped)
                and not _LIST_ITEM.search(stripped)):
            reason = "the output ends mid-sentence"
        if reason is None or (answered and row.task_type != "open_ended"):
            return None
    tail_start = max(0, len(stripped) - 80)
    return Finding(
        title="Truncated output",
        summary=f"The output stops before it is complete ({reason}); it ends with “{quote(stripped[tail_start:], 50)}”.",
        evidence=(output_evidence(output, tail_start, len(stripped)),),
        explains_fully=not answered and row.task_type != "open_ended",
        details={"reason": reason, "answer_stated": answered},
    )
