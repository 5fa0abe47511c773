"""Check ``degenerate-repetition``: the output falls into a loop that repeats the same text.

The output is split into whitespace-separated tokens. For each period p of
1 to ``MAX_PERIOD`` tokens, numpy compares the token sequence with itself
shifted by p; a run of at least 4p equal pairs means a unit of p tokens
occurs five or more times in a row. A zlib compression ratio screens out
ordinary text first, so the search runs only on outputs that compress
unusually well. A run inside one token ("33333333...", "!!!!!!!!...") is
invisible to the token search, so a character search for a unit of 1 to
``MAX_CHAR_PERIOD`` characters repeated ``MIN_CHAR_COPIES`` times backs it up.
"""

from __future__ import annotations

import re
import zlib

import numpy as np

from atlas_builder.diagnose.checks.base import Finding, Row, output_evidence, quote

#: Outputs shorter than this are not searched: short answers repeat naturally ("(A) (A)").
MIN_CHARS = 120
#: zlib-compressed size / raw size at or above which an output is taken as ordinary text.
MAX_RATIO = 0.45
#: Longest repeated unit searched, in tokens.
MAX_PERIOD = 80
#: A loop has at least this many copies of its unit in a row, and at least MIN_LOOP_TOKENS tokens.
MIN_COPIES = 5
MIN_LOOP_TOKENS = 20
#: The loop must cover at least this share of the output, or at least LOOP_MIN_CHARS characters.
MIN_SHARE = 0.3
LOOP_MIN_CHARS = 400
_TOKEN = re.compile(r"\S+")
#: Longest unit of the character search, and how many copies in a row it needs.
MAX_CHAR_PERIOD = 8
MIN_CHAR_COPIES = 30
_CHAR_RUN = re.compile(rf"(\S{{1,{MAX_CHAR_PERIOD}}}?)\1{{{MIN_CHAR_COPIES - 1},}}")


def find_char_run(text: str) -> tuple[int, int, int] | None:
    """Return (start, end, unit length) in characters of the longest run of one short unit inside tokens, or None."""
    best = None
    for match in _CHAR_RUN.finditer(text):
        if best is None or match.end() - match.start() > best[1] - best[0]:
            best = (match.start(), match.end(), len(match.group(1)))
    return best


def find_loop(text: str) -> tuple[int, int, int] | None:
    """Return (start, end, period) in characters/tokens of the longest loop in ``text``, or None.

    The loop is the longest stretch of tokens that is periodic with some
    period p (at least ``MIN_COPIES`` copies of p tokens); among equally long
    stretches the shortest period wins.
    """
    matches = list(_TOKEN.finditer(text))
    if len(matches) < MIN_LOOP_TOKENS:
        return None
    ids: dict[str, int] = {}
    tokens = np.fromiter((ids.setdefault(match.group(0), len(ids)) for match in matches), dtype=np.int64, count=len(matches))
    best: tuple[int, int, int] | None = None  # (covered tokens, first token, period)
    for period in range(1, min(MAX_PERIOD, len(tokens) // MIN_COPIES) + 1):
        equal = tokens[:-period] == tokens[period:]
        if not equal.any():
            continue
        edges = np.flatnonzero(np.diff(np.concatenate(([0], equal.astype(np.int8), [0]))))
        starts, ends = edges[0::2], edges[1::2]
        lengths = ends - starts
        index = int(lengths.argmax())
        covered = int(lengths[index]) + period
        if lengths[index] < (MIN_COPIES - 1) * period or covered < MIN_LOOP_TOKENS:
            continue
        if best is None or covered > best[0]:
            best = (covered, int(starts[index]), period)
    if best is None:
        return None
    covered, first, period = best
    return matches[first].start(), matches[first + covered - 1].end(), period


def check_repetition(row: Row) -> Finding | None:
    """Report an output in which one unit of text repeats five or more times in a row over a large share of it."""
    output = row.output
    if len(output) < MIN_CHARS:
        return None
    raw = output.encode("utf-8")
    if len(zlib.compress(raw, 1)) / len(raw) >= MAX_RATIO:
        return None
    loop = find_loop(output)
    run = find_char_run(output)
    if run is not None and (loop is None or run[1] - run[0] > loop[1] - loop[0]):
        start, end, period = run
        unit = output[start:start + period]
        copies = (end - start) // period
    elif loop is not None:
        start, end, period = loop
        unit = " ".join(output[start:end].split()[:period])
        copies = len(output[start:end].split()) // period
    else:
        return None
    length = end - start
    if length < MIN_SHARE * len(output.strip()) and length < LOOP_MIN_CHARS:
        return None
    reaches_end = not output[end:].strip()
    return Finding(
        title="Degenerate repetition",
        summary=f"The output repeats “{quote(unit, 40)}” {copies} times in a row, {length} of its {len(output)} characters.",
        evidence=(output_evidence(output, start, end),),
        explains_fully=reaches_end,
        details={"unit": unit[:200], "copies": copies, "loop_chars": length, "reaches_end": reaches_end},
    )
