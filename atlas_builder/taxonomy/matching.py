"""Map a category name written by the judge onto one of the names it was offered."""

from __future__ import annotations

import difflib
import re

#: Lowest difflib similarity ratio at which an unknown name counts as a spelling of an offered one.
FUZZY_CUTOFF = 0.85

_NON_WORD = re.compile(r"[^0-9a-z]+")


def normalise_name(name: str) -> str:
    """Return ``name`` case-folded, with "&" as "and" and every run of punctuation or space as one space."""
    return _NON_WORD.sub(" ", name.casefold().replace("&", " and ")).strip()


def match_name(answer: str, offered: list[str], cutoff: float = FUZZY_CUTOFF) -> str | None:
    """Return the offered name that ``answer`` means, or None.

    An exact match wins, then a match after ``normalise_name``, then the
    closest normalised name whose difflib ratio is at least ``cutoff``.
    """
    if answer in offered:
        return answer
    by_normalised: dict[str, str] = {}
    for name in offered:
        by_normalised.setdefault(normalise_name(name), name)
    key = normalise_name(answer)
    if key in by_normalised:
        return by_normalised[key]
    close = difflib.get_close_matches(key, list(by_normalised), n=1, cutoff=cutoff)
    return by_normalised[close[0]] if close else None
