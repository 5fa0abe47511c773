"""Check ``language-mismatch``: the output is in another language than the question.

A cheap screen runs first: the dominant writing system of each text (Latin,
Han/Kana/Hangul, Cyrillic, Arabic, ...) and, for two Latin texts, the share
of common English function words. Only outputs that look different are
passed to ``lingua`` (lingua-language-detector), an offline statistical
language identifier, to name both languages. Prompts that ask for a
translation or another language are skipped.
"""

from __future__ import annotations

import functools
import re

from atlas_builder.diagnose.checks.base import Finding, Row, output_evidence

_SCRIPTS = {
    "Latin": re.compile(r"[A-Za-zÀ-ɏ]"),
    "CJK": re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]"),
    "Cyrillic": re.compile(r"[\u0400-\u04ff]"),
    "Arabic": re.compile(r"[\u0600-\u06ff]"),
    "Devanagari": re.compile(r"[\u0900-\u097f]"),
    "Greek": re.compile(r"[\u0370-\u03ff]"),
    "Hebrew": re.compile(r"[\u0590-\u05ff]"),
    "Thai": re.compile(r"[\u0e00-\u0e7f]"),
}
_CODE = re.compile(r"```.*?(?:```|$)|`[^`\n]*`|\$\$.*?(?:\$\$|$)|\$[^$\n]*\$|\\\[.*?(?:\\\]|$)|\\\(.*?(?:\\\)|$)|\\[A-Za-z]+", re.DOTALL)
_WORD = re.compile(r"[A-Za-zÀ-ɏ']+")
_ENGLISH = frozenset(
    "the a an of to and in is are was be that it for on with as by this what which who how not or from at "
    "you your i we they he she his her their do does can will would should answer question".split()
)
_ASKS_LANGUAGE = re.compile(
    r"translat|\b(?:in|into|to) (?:french|spanish|german|italian|portuguese|chinese|japanese|korean|russian|arabic|hindi|dutch|polish|turkish|swedish|latin|greek)\b"
    r"|\blanguage\b|\bmultilingual\b",
    re.IGNORECASE,
)
#: Languages lingua chooses among: the most used languages of benchmarks and model outputs.
#: Fewer close relatives (Catalan, Galician) keep the confidence of the common ones high.
_LANGUAGES = (
    "ENGLISH", "SPANISH", "FRENCH", "GERMAN", "ITALIAN", "PORTUGUESE", "DUTCH", "POLISH", "RUSSIAN",
    "UKRAINIAN", "CHINESE", "JAPANESE", "KOREAN", "ARABIC", "HINDI", "TURKISH", "VIETNAMESE",
    "INDONESIAN", "SWEDISH", "CZECH", "GREEK", "HEBREW", "THAI", "PERSIAN", "LATIN",
)
#: Texts with fewer letters than this are too short to identify a language reliably.
MIN_LETTERS = 40
#: The question's last characters are used: few-shot prompts put the asked question at the end.
QUESTION_CHARS = 2000
#: Share of English function words above which a Latin text is taken as English, and below which it is not.
ENGLISH_SHARE = 0.12
NOT_ENGLISH_SHARE = 0.04
#: lingua confidence needed for each of the two languages.
MIN_CONFIDENCE = 0.5


_ASCII_LETTER = re.compile(r"[A-Za-z]")


def dominant_script(text: str) -> tuple[str | None, int]:
    """Return the writing system of most letters in ``text`` and the letter count."""
    if text.isascii():
        # Fast path: every letter of an ASCII text is Latin, so one scan counts them all.
        total = len(_ASCII_LETTER.findall(text))
        return ("Latin" if total else None), total
    counts = {name: len(pattern.findall(text)) for name, pattern in _SCRIPTS.items()}
    total = sum(counts.values())
    if total == 0:
        return None, 0
    name = max(counts, key=counts.__getitem__)
    return (name if counts[name] / total >= 0.6 else None), total


def english_share(text: str) -> tuple[float, int]:
    """Return the share of common English function words among the words of ``text``, and the word count."""
    words = [word.lower() for word in _WORD.findall(text)]
    if not words:
        return 0.0, 0
    return sum(word in _ENGLISH for word in words) / len(words), len(words)


@functools.lru_cache(maxsize=1)
def _detector():
    from lingua import Language, LanguageDetectorBuilder

    languages = [getattr(Language, name) for name in _LANGUAGES]
    # Low-accuracy mode uses trigrams only: faster, and reliable for the sentence-length texts checked here.
    return LanguageDetectorBuilder.from_languages(*languages).with_low_accuracy_mode().build()


def identify(text: str) -> tuple[str | None, float]:
    """Return the language lingua finds most likely in ``text`` (English name) and its confidence."""
    values = _detector().compute_language_confidence_values(text[:1500])
    if not values:
        return None, 0.0
    best = values[0]
    return best.language.name.title(), best.value


@functools.lru_cache(maxsize=4096)
def _question_profile(prompt: str) -> tuple[bool, str | None, int, float]:
    """Return (asks for a language, script, letter count, English word share) of a prompt's question.

    Cached: every model of a dataset answers the same prompt."""
    question = prompt[-QUESTION_CHARS:]
    if _ASKS_LANGUAGE.search(prompt):
        return True, None, 0, 0.0
    script, letters = dominant_script(question)
    share = english_share(question)[0] if script == "Latin" else 0.0
    return False, script, letters, share


def check_language(row: Row) -> Finding | None:
    """Report an output written in another language than its question."""
    asks_language, question_script, question_letters, question_share = _question_profile(row.input)
    if asks_language or question_letters < MIN_LETTERS or question_script is None:
        return None
    answer = _CODE.sub(" ", row.output) if ("`" in row.output or "$" in row.output or "\\" in row.output) else row.output
    answer_script, answer_letters = dominant_script(answer)
    if answer_letters < MIN_LETTERS or answer_script is None:
        return None
    if question_script == answer_script:
        if question_script != "Latin" or question_share < ENGLISH_SHARE:
            return None
        answer_share, answer_words = english_share(answer)
        if question_share < ENGLISH_SHARE or answer_share >= NOT_ENGLISH_SHARE or answer_words < 15:
            return None
    question_language, question_confidence = identify(row.input[-QUESTION_CHARS:])
    answer_language, answer_confidence = identify(answer)
    if (
        question_language is None
        or answer_language is None
        or question_language == answer_language
        or min(question_confidence, answer_confidence) < MIN_CONFIDENCE
    ):
        return None
    start = len(row.output) - len(row.output.lstrip())
    return Finding(
        title="Answer in another language",
        summary=f"The question is in {question_language} but the output is in {answer_language} (identified by lingua).",
        evidence=(output_evidence(row.output, start, min(len(row.output), start + 200)),),
        explains_fully=False,
        details={
            "question_language": question_language,
            "answer_language": answer_language,
            "confidence": round(answer_confidence, 3),
        },
    )
