"""Check ``degenerate-repetition``: the output falls into a loop that repeats the same text.

A cheap zlib compression ratio screens out ordinary text first, so the
backtracking search for a repeated unit runs only on outputs that compress
unusually well.
"""

from __future__ import annotations

import re
import zlib

from atlas_builder.diagnose.checks.base import Finding, Row, output_evidence, quote

#: Outputs shorter than this are not searched: short answers repeat naturally ("(A) (A)").
MIN_CHARS = 120
#: zlib-compressed size / raw size at or above which an output is taken as ordinary text.
MAX_RATIO = 0.45
#: A unit of 4-400 characters, then at least 4 more copies (5 in a row), separated by optional whitespace.
_LOOP = re.compile(r"(?s)(\S.{3,399}?)(?:\s*\1){4,}")
#: The loop must cover at least this share of the output, or at least LOOP_MIN_CHARS characters.
MIN_SHARE = 0.3
LOOP_MIN_CHARS = 400


def find_loop(text: str) -> tuple[int, int, str] | None:
    """Return (start, end, unit) of the longest run of one unit repeated 5+ times in a row, or None."""
    best: tuple[int, int, str] | None = None
    position = 0
    while True:
        match = _LOOP.search(text, position)
        if match is None:
            return best
        if best is None or match.end() - match.start() > best[1] - best[0]:
            best = (match.start(), match.end(), match.group(1))
        position = match.end()


def check_repetition(row: Row) -> Finding | None:
    """Report an output in which one unit of text repeats five or more times in a row over a large share of it."""
    output = row.output
    if len(output) < MIN_CHARS:
        return None
    raw = output.encode("utf-8")
    if len(zlib.compress(raw, 1)) / len(raw) >= MAX_RATIO:
        return None
    loop = find_loop(output)
    if loop is None:
        return None
    start, end, unit = loop
    length = end - start
    if length < MIN_SHARE * len(output.strip()) and length < LOOP_MIN_CHARS:
        return None
    copies = output[start:end].count(unit)
    return Finding(
        title="Degenerate repetition",
        summary=f"The output repeats “{quote(unit, 40)}” {copies} times in a row, {length} of its {len(output)} characters.",
        evidence=(output_evidence(output, start, end),),
        explains_fully=True,
        details={"unit": unit[:200], "copies": copies, "loop_chars": length},
    )
