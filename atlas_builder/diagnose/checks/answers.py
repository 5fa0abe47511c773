"""Find the final answer a model stated in its output, with its character span.

Outputs state answers in many ways: ``The answer is (B).``, ``So the answer is
valid.``, ``#### 42``, ``\\boxed{3/4}``, ``Answer: C`` or, for direct prompting,
the whole short output. The last statement wins, because chain-of-thought
outputs often correct themselves and few-shot outputs may run on into a new
question (see ``cut_runaway``).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from atlas_builder.diagnose.checks.normalize import (
    OPTION_LETTERS,
    normalise_answer,
    normalise_text,
    parse_letter,
    unwrap_boxed,
)

#: A few-shot output that goes on to write the next example starts one of these lines.
_RUNAWAY = re.compile(r"\n\s*(?:Q:|Question:|Problem:|Input:|\[Question\]|Human:|User:|###\s*(?:Instruction|Question))")
# Answer markers: the answer runs from the end of the marker to the end of its line. Markers are searched
# on their own, so two on one line ("the answer should be X. So the answer is (B).") are both found.
_ANSWER_IS = re.compile(
    r"(?:the\s+|my\s+)?(?:final\s+|correct\s+|best\s+)?answer\s*(?:is|would\s+be|should\s+be|=)\s*:?\s*"
    r"(?:option\s+|choice\s+)?(?=[^\n])",
    re.IGNORECASE,
)
_ANSWER_COLON = re.compile(r"(?:final\s+)?answer\s*:\s*(?:option\s+|choice\s+)?(?=[^\n])", re.IGNORECASE)
_HASHES = re.compile(r"####\s*(?P<answer>[^\n]{1,100})")
#: "A: 42" on a line of its own, the answer line of question/answer few-shot prompts.
_A_LINE = re.compile(r"(?m)^A:\s*(?P<answer>[^\n]{1,100})")
#: An option line of a multiple-choice prompt: "A. text", "(B) text" or "C) text".
_OPTION_LINE = re.compile(r"(?m)^\s*\(?([A-R])[.)]\s+(\S[^\n]*)$")
_BOXED = re.compile(r"\\boxed\s*\{")
_TRAILING = re.compile(r"(?:\*\*|[.\s*_`\"'])+$")
_LEADING = re.compile(r"^(?:\*\*|[\s*_`\"':])+")
_SENTENCE_END = re.compile(r"\.(?:\s|$)")
_LETTER_ANYWHERE = re.compile(r"(?<![A-Za-z])\(?([A-R])\)(?![A-Za-z])|(?<![A-Za-z'])([A-R])(?=[.:)]?(?:\s|$))")


#: A one-line output up to this long, with no answer marker, is taken whole as the answer (direct prompting).
MAX_BARE_CHARS = 300


@dataclass(frozen=True)
class Answer:
    """A final answer found in an output: its text and where it sits."""

    text: str
    start: int
    end: int
    how: str  # which pattern found it: "answer-is", "answer-colon", "hashes", "answer-line", "boxed", "whole"


def cut_runaway(output: str) -> str:
    """Return the output up to the point where a few-shot model starts writing the next question."""
    match = _RUNAWAY.search(output)
    return output[: match.start()] if match else output


def _clean_span(output: str, start: int, end: int) -> tuple[int, int]:
    text = output[start:end]
    sentence = _SENTENCE_END.search(text)
    if sentence is not None and sentence.start() > 0:
        # "(B). Because ..." -> "(B)"; keep decimals such as "3.5" because the dot there is followed by a digit.
        text = text[: sentence.start()]
    trailing = _TRAILING.search(text)
    if trailing is not None:
        text = text[: trailing.start()]
    leading = _LEADING.match(text)
    offset = leading.end() if leading else 0
    return start + offset, start + len(text)


def _boxed_answers(text: str) -> list[Answer]:
    found = []
    for match in _BOXED.finditer(text):
        inner = unwrap_boxed(text[match.start():])
        start = match.end()
        found.append(Answer(inner.strip(), start, start + len(inner), "boxed"))
    return found


@functools.lru_cache(maxsize=8192)
def final_answer(output: str) -> Answer | None:
    """Return the last stated final answer in ``output``, or the whole output when it is short and bare.

    Cached, because several checks ask for the answer of the same output."""
    text = cut_runaway(output)
    candidates: list[Answer] = _boxed_answers(text)
    for pattern, how in ((_ANSWER_IS, "answer-is"), (_ANSWER_COLON, "answer-colon"), (_HASHES, "hashes"), (_A_LINE, "answer-line")):
        for match in pattern.finditer(text):
            if "answer" in match.re.groupindex:
                start, end = match.start("answer"), match.end("answer")
            else:
                start = match.end()
                newline = text.find("\n", start)
                end = min(len(text) if newline < 0 else newline, start + 200)
            start, end = _clean_span(text, start, end)
            if end > start:
                candidates.append(Answer(text[start:end], start, end, how))
    if candidates:
        return max(candidates, key=lambda answer: (answer.start, answer.how == "boxed"))
    stripped = text.strip()
    if stripped and len(stripped) <= MAX_BARE_CHARS and "\n" not in stripped:
        start = text.index(stripped)
        start, end = _clean_span(text, start, start + len(stripped))
        if end > start:
            return Answer(text[start:end], start, end, "whole")
    return None


def answer_letter(answer: Answer) -> str | None:
    """Return the option letter an answer names, such as ``B`` for ``"(B) 42"`` or ``"B"``."""
    return parse_letter(answer.text)


def option_texts(metadata: dict, prompt: str = "") -> dict[str, str]:
    """Return the options of a multiple-choice item as {letter: text}.

    They come from ``metadata.options`` (or ``choices``) when present, else from
    the option lines "A. text" of the prompt's last question, read from A on.
    """
    options = metadata.get("options") or metadata.get("choices")
    if not options and prompt:
        return options_in_prompt(prompt)
    if isinstance(options, dict):
        return {str(key).strip("() ").upper(): str(value) for key, value in options.items()}
    if isinstance(options, list) and options and all(isinstance(item, str) for item in options):
        return {OPTION_LETTERS[index]: text for index, text in enumerate(options[: len(OPTION_LETTERS)])}
    return {}


def answers_match(answer: str, references: tuple[str, ...], task_type: str, options: dict[str, str]) -> bool:
    """Return whether a stated answer equals one of the references after normalisation.

    For multiple choice a letter matches a letter reference, and the text of an
    option matches the reference letter whose option has that text.
    """
    if not references:
        return False
    normal = normalise_answer(answer, task_type)
    wanted = {normalise_answer(reference, task_type) for reference in references}
    if normal and normal in wanted:
        return True
    if task_type == "multiple_choice" and options:
        letter = parse_letter(answer)
        answer_text = normalise_text(answer)
        for reference in references:
            ref_letter = parse_letter(reference)
            if ref_letter is None or ref_letter not in options:
                continue
            option = normalise_text(options[ref_letter])
            if option and (answer_text == option or (letter == ref_letter and answer_text.endswith(option))):
                return True
    return False


def letters_in(text: str) -> list[tuple[str, int, int]]:
    """Return the option letters written in ``text`` as (letter, start, end), such as ``(C)`` or a bare ``C.``."""
    found = []
    for match in _LETTER_ANYWHERE.finditer(text):
        group = 1 if match.group(1) else 2
        found.append((match.group(group), match.start(group), match.end(group)))
    return found


def options_in_prompt(prompt: str) -> dict[str, str]:
    """Return the lettered options of the last question in ``prompt`` as {letter: text}."""
    found: dict[str, str] = {}
    for match in _OPTION_LINE.finditer(prompt):
        letter, text = match.group(1), match.group(2).strip()
        if letter == "A":
            found = {}
        if OPTION_LETTERS.index(letter) == len(found):
            found[letter] = text
    return found
