"""Number parsing and answer normalisation shared by the checks.

Two answers are "the same" when their normalised forms are equal: option
letters compare case-blind without brackets, numbers compare by value after
dropping thousands separators, currency signs, percent signs, units and LaTeX
wrappers, and free text compares after lower-casing and removing punctuation,
articles and extra spaces.
"""

from __future__ import annotations

import math
import re
import unicodedata
from fractions import Fraction

#: Option letters the checks accept (MMLU-Pro has ten options, A-J; BBH has up to 18, A-R).
OPTION_LETTERS = "ABCDEFGHIJKLMNOPQR"

_CURRENCY = "$€£¥₹"
_BOXED = re.compile(r"\\boxed\s*\{")
_LATEX_FRAC = re.compile(r"\\[dt]?frac\s*\{\s*(-?[\d.,]+)\s*\}\s*\{\s*(-?[\d.,]+)\s*\}")
_LATEX_TEXT = re.compile(r"\\(?:text|mathrm|textbf|mathbf)\s*\{([^{}]*)\}")
_LATEX_NOISE = re.compile(r"\\[,;!: ]|\\left|\\right|\\\(|\\\)|\\\[|\\\]|\$")
_NUMBER = re.compile(
    r"""
    (?<![\w.])                      # not inside a word or after a decimal point
    (?P<sign>[-−+])?\s?
    (?P<currency>[$€£¥₹])?\s?
    (?P<body>
        \d{1,3}(?:,\d{3})+(?:\.\d+)?  # 1,234,567.89
      | \d+(?:\.\d+)?                 # 1234.5
      | \.\d+                         # .5
    )
    (?:[eE](?P<exp>[-+]?\d+))?
    (?P<percent>\s?%)?
    """,
    re.VERBOSE,
)
_FRACTION = re.compile(r"^(?P<sign>[-−])?\s*(?P<num>\d+)\s*/\s*(?P<den>\d+)$")
_MIXED = re.compile(r"^(?P<whole>\d+)\s+(?P<num>\d+)\s*/\s*(?P<den>\d+)$")
_LETTER = re.compile(
    r"^\s*(?:\*\*)?(?:option|choice|answer)?\s*[:\-]?\s*[\(\[]?\s*([A-Ra-r])\s*[\)\]]?(?:[.:)]|\s|\*\*|$)",
    re.IGNORECASE,
)
_PUNCT = re.compile(r"[^\w\s]")
_ARTICLES = re.compile(r"\b(?:a|an|the)\b")
_SPACES = re.compile(r"\s+")


def unwrap_boxed(text: str) -> str:
    """Return the content of the last ``\\boxed{...}`` in ``text`` (braces balanced), or ``text`` unchanged."""
    matches = list(_BOXED.finditer(text))
    if not matches:
        return text
    start = matches[-1].end()
    depth = 1
    for index in range(start, len(text)):
        char = text[index]
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[start:index]
    return text[start:]


def strip_latex(text: str) -> str:
    """Remove LaTeX wrappers around a short answer: ``\\boxed``, ``\\text``, ``\\frac``, math delimiters."""
    text = unwrap_boxed(text)
    text = _LATEX_FRAC.sub(r"\1/\2", text)
    text = _LATEX_TEXT.sub(r"\1", text)
    text = _LATEX_NOISE.sub("", text)
    return text.replace("\\%", "%").strip()


def parse_number(text: str) -> float | None:
    """Parse one number written the way answers write them, or return None.

    Accepts signs, currency signs, thousands commas, decimals, exponents,
    percent (kept as written: ``"45%"`` parses as 45), fractions ``3/4`` and
    ``\\frac{3}{4}``, mixed numbers ``1 1/2`` and trailing units or words
    (``"12 km"``, ``"$5.00 per hour"``). Text with no number, or with a second
    number after the first (``"3 or 4"``), is not a single number.
    """
    cleaned = strip_latex(unicodedata.normalize("NFKC", text)).strip().rstrip(".")
    if not cleaned:
        return None
    mixed = _MIXED.match(cleaned)
    if mixed:
        den = int(mixed["den"])
        return None if den == 0 else int(mixed["whole"]) + int(mixed["num"]) / den
    fraction = _FRACTION.match(cleaned)
    if fraction:
        den = int(fraction["den"])
        if den == 0:
            return None
        value = int(fraction["num"]) / den
        return -value if fraction["sign"] else value
    match = _NUMBER.search(cleaned)
    if match is None or cleaned[: match.start()].strip(" =:" + _CURRENCY):
        return None
    rest = cleaned[match.end():]
    if _NUMBER.search(rest):
        return None
    value = number_value(match)
    return value if math.isfinite(value) else None


def number_value(match: re.Match[str]) -> float:
    """Return the value of a ``_NUMBER`` match (commas dropped, sign and exponent applied)."""
    body = match["body"].replace(",", "")
    value = float(body) if match["exp"] is None else float(f"{body}e{match['exp']}")
    if match["sign"] in ("-", "−"):
        value = -value
    return value


def find_numbers(text: str) -> list[tuple[float, int, int]]:
    """Return every number in ``text`` as (value, start, end), left to right."""
    found = []
    for match in _NUMBER.finditer(text):
        value = number_value(match)
        if math.isfinite(value):
            found.append((value, match.start(), match.end()))
    return found


def format_number(value: float) -> str:
    """Return a canonical text for a number: integers without ``.0``, others rounded to 6 significant digits."""
    if value == 0:
        return "0"
    if abs(value - round(value)) < 1e-9 * max(1.0, abs(value)):
        return str(int(round(value)))
    return f"{value:.6g}"


def numbers_equal(left: float, right: float, rel: float = 1e-6, abs_tol: float = 1e-9) -> bool:
    """Return whether two numbers are equal within a relative tolerance."""
    return math.isclose(left, right, rel_tol=rel, abs_tol=abs_tol)


def parse_letter(text: str) -> str | None:
    """Return the option letter of an answer like ``"(B)"``, ``"b."``, ``"Option C"`` or ``"**D**"``, upper-cased."""
    match = _LETTER.match(text)
    return match.group(1).upper() if match else None


def normalise_text(text: str) -> str:
    """Lower-case, drop accents, punctuation and English articles, and collapse spaces."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(char for char in text if not unicodedata.combining(char))
    text = _PUNCT.sub(" ", text.lower())
    text = _ARTICLES.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def normalise_answer(text: str, task_type: str = "short_answer") -> str:
    """Return the canonical form of a short answer, so equal answers compare equal.

    For multiple choice a bare option letter becomes ``"B"``; anything that
    parses as one number becomes its canonical number text; everything else
    becomes normalised text.
    """
    text = strip_latex(unicodedata.normalize("NFKC", text)).strip()
    if task_type == "multiple_choice":
        letter = parse_letter(text)
        if letter is not None and len(normalise_text(text)) <= 8:
            return letter
    number = parse_number(text)
    if number is None:
        # Stray punctuation can hide a number (";00"); the normalised text is checked again so that
        # normalising twice gives the same result.
        text = normalise_text(text)
        number = parse_number(text)
    return text if number is None else format_number(number)


def as_fraction(value: float) -> Fraction:
    """Return ``value`` as a fraction with a bounded denominator (for exact step arithmetic)."""
    return Fraction(value).limit_denominator(10**9)
