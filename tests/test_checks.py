"""Unit tests of the deterministic checks, the answer finder and the number parser."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, strategies as st

from atlas_builder.diagnose.checks import check_row
from atlas_builder.diagnose.checks.answers import answers_match, final_answer, options_in_prompt
from atlas_builder.diagnose.checks.arithmetic import find_slips
from atlas_builder.diagnose.checks.base import Row
from atlas_builder.diagnose.checks.normalize import format_number, normalise_answer, parse_letter, parse_number
from atlas_builder.diagnose.checks.repetition import find_loop
from atlas_builder.diagnose.checks.suspect import find_suspects

MC_PROMPT = "Question: Which is a prime?\n\nOptions:\nA. 4\nB. 6\nC. 7\nD. 9"


def make_row(output: str, *, reference=("C",), task_type="multiple_choice", correct=False, prompt=MC_PROMPT,
             metadata=None, model="m1", instance_id="q1", dataset="d") -> Row:
    return Row(dataset, model, instance_id, prompt, output, tuple(reference), correct, metadata or {}, task_type)


def names(row: Row) -> list[str]:
    return [item.diagnoser.removeprefix("check:") for item in check_row(row)]


# --- number parsing and normalisation -------------------------------------------------------------

@pytest.mark.parametrize("text, value", [
    ("42", 42), ("-3", -3), ("1,234.5", 1234.5), ("$1,200", 1200), ("45%", 45), ("3/4", 0.75),
    ("\\frac{3}{4}", 0.75), ("\\boxed{12}", 12), ("1 1/2", 1.5), ("12 km", 12), ("$5.00 per hour", 5),
    ("2.5e3", 2500), (".5", 0.5), ("−7", -7),
])
def test_parse_number_accepts(text: str, value: float) -> None:
    assert parse_number(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["", "abc", "3 or 4", "1/0", "Tom has 5"])
def test_parse_number_rejects(text: str) -> None:
    assert parse_number(text) is None


@pytest.mark.parametrize("text, letter", [("(B)", "B"), ("b.", "B"), ("Option C", "C"), ("**D**", "D"), ("The cat", None)])
def test_parse_letter(text: str, letter: str | None) -> None:
    assert parse_letter(text) == letter


@given(st.integers(min_value=-10**12, max_value=10**12))
def test_parse_number_roundtrips_grouped_integers(value: int) -> None:
    assert parse_number(f"{value:,}") == value
    assert parse_number(f"${value:,}" if value >= 0 else f"-${-value:,}") == value


@given(st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False))
def test_format_number_parses_back(value: float) -> None:
    text = format_number(value)
    assert math.isclose(parse_number(text), value, rel_tol=1e-5, abs_tol=1e-5)


@given(st.integers(min_value=0, max_value=10**9), st.sampled_from(["", "$", "€"]), st.sampled_from(["", " dollars", "."]))
def test_normalise_answer_ignores_currency_and_units(value: int, currency: str, suffix: str) -> None:
    assert normalise_answer(f"{currency}{value:,}{suffix}", "math") == str(value)


@given(st.text(max_size=40))
def test_normalise_answer_is_idempotent(text: str) -> None:
    once = normalise_answer(text, "short_answer")
    assert normalise_answer(once, "short_answer") == once


# --- final answers ---------------------------------------------------------------------------------

@pytest.mark.parametrize("output, answer", [
    ("... So the answer is (B).", "(B)"),
    ("the answer should be the client. So the answer is (A).", "(A)"),
    ("Work.\n#### 18", "18"),
    ("A: 4", "4"),
    ("so \\boxed{3/4} is it", "3/4"),
    ("The answer is (E)\n\nQuestion: next one... The answer is (A).", "(E)"),
    ("valid", "valid"),
])
def test_final_answer(output: str, answer: str) -> None:
    found = final_answer(output)
    assert found is not None
    assert found.text == answer
    assert output[found.start:found.end] == answer


def test_options_in_prompt_reads_last_question() -> None:
    assert options_in_prompt(MC_PROMPT) == {"A": "4", "B": "6", "C": "7", "D": "9"}


def test_answers_match_option_text() -> None:
    assert answers_match("7", ("C",), "multiple_choice", {"A": "4", "B": "6", "C": "7"})
    assert not answers_match("6", ("C",), "multiple_choice", {"A": "4", "B": "6", "C": "7"})


# --- row checks ------------------------------------------------------------------------------------

@pytest.mark.parametrize("output, expected", [
    ("", "empty-output"),
    ("   \n", "empty-output"),
    ("Question: Which is a prime?\n\nOptions:\nA. 4\nB. 6", "prompt-echo"),
    ("Let me think. 7 is prime. The answer is (C).", "answer-extraction-failure"),
    ("I'm sorry, but I can't help with that request.", "refusal"),
    ("We compute the first factor and then " + "the next value is the same. " * 30, "degenerate-repetition"),
    ("Step one: the numbers 4, 6 and 9 have divisors other than one and themselves, while seven has none. "
     "So we look at each option in turn and check whether it can be written as a product of", "truncated-output"),
    ("Primes are numbers with two divisors, so it is the seven.", "format-violation"),
])
def test_row_check_fires(output: str, expected: str) -> None:
    assert names(make_row(output))[0] == expected


def test_truncation_reads_finish_reason() -> None:
    row = make_row("The answer is", metadata={"finish_reason": "length"})
    assert "truncated-output" in names(row)


def test_refusal_skipped_on_safety_datasets() -> None:
    row = make_row("I'm sorry, but I can't help with that.", reference=(), task_type="safety")
    assert names(row) == []


def test_refusal_with_an_answer_is_no_refusal() -> None:
    row = make_row("I'm sorry, but I can't be certain. The answer is (B).")
    assert "refusal" not in names(row)


def test_echo_followed_by_own_answer_is_no_echo() -> None:
    row = make_row("Question: Which is a prime?\nOptions:\nA. 4\nB. 6\nC. 7\nD. 9\nThe answer is (A).")
    assert "prompt-echo" not in names(row)


def test_language_mismatch_found() -> None:
    prompt = "What is the capital city of France, and why did it become the capital of the country?"
    output = ("La capital de Francia es París. Se convirtió en la capital porque era el centro político, "
              "económico y cultural del reino durante la Edad Media.")
    row = make_row(output, reference=(), task_type="open_ended", prompt=prompt)
    assert "language-mismatch" in names(row)


def test_language_check_skips_translation_requests() -> None:
    prompt = "Translate into Spanish: the capital of France is Paris, and it is a beautiful and old city."
    output = "La capital de Francia es París, y es una ciudad hermosa y antigua que muchos visitan cada año."
    assert "language-mismatch" not in names(make_row(output, reference=(), task_type="open_ended", prompt=prompt))


def test_scored_right_by_accident() -> None:
    row = make_row("First (C) looks good. The answer is (C). Final answer: (A).", correct=True)
    assert names(row) == ["scored-right-by-accident"]


# --- arithmetic ------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, wrong", [
    ("She has <<16-3=12>>12 eggs", "16-3"),
    ("3 + 4 + 5 = 13 apples", "3 + 4 + 5"),
    ("7 x 8 = 54", "7 x 8"),
    ("7 × 8 = 54", "7 × 8"),
    ("$1,200 + $300 = $1,600", "$1,200 + $300"),
    ("20% * 50 = 15", "20% * 50"),
    ("10 ÷ 4 = 3.5", "10 ÷ 4"),
])
def test_arithmetic_slip_found(text: str, wrong: str) -> None:
    slips = find_slips(text)
    assert slips
    assert slips[0]["expression"] == wrong


@pytest.mark.parametrize("text", [
    "She has <<16-3=13>>13 eggs", "10/3 = 3.33", "7 / 2 = 3 people", "x^2 + 3 = 12", "2023-10-05",
    "6/8 = 3/4", "100% - 20% = 80%", "1.50 * 2 = 3.00", "so x = 3 + 4 = 7",
])
def test_arithmetic_right_steps_pass(text: str) -> None:
    assert find_slips(text) == []


def test_arithmetic_reports_first_wrong_step_span() -> None:
    output = "First 2 + 2 = 4, then 5 * 5 = 24, then 9 - 1 = 7."
    row = make_row(output, reference=("7",), task_type="math")
    finding = [item for item in check_row(row) if item.diagnoser == "check:arithmetic-slip"][0]
    assert finding.evidence[0].text == "5 * 5 = 24"
    assert finding.details["computed"] == "25"


@given(st.integers(-10**6, 10**6), st.integers(-10**6, 10**6))
def test_arithmetic_accepts_every_right_sum(left: int, right: int) -> None:
    assert find_slips(f"so {left} + {right} = {left + right}.") == []


@given(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(1, 1000))
def test_arithmetic_flags_every_wrong_product(left: int, right: int, error: int) -> None:
    assert len(find_slips(f"then {left} * {right} = {left * right + error}.")) == 1


# --- repetition and suspect references --------------------------------------------------------------

def test_find_loop_covers_repeated_unit() -> None:
    text = "Intro text here. " + "I want to see it. " * 10
    start, end, period = find_loop(text)
    assert period == 5
    assert text[start:end].count("I want to see it.") == 10


def test_find_loop_ignores_prose() -> None:
    assert find_loop("The quick brown fox jumps over the lazy dog and then runs into the forest to hide.") is None


def test_suspect_reference_needs_strong_consensus() -> None:
    rows = []
    for index in range(6):
        model = f"m{index}"
        rows.append(make_row("The answer is (A).", reference=("C",), model=model, instance_id="bad"))
        rows.append(make_row("The answer is (C).", reference=("C",), correct=True, model=model, instance_id="fine"))
    found = find_suspects(rows)
    assert [item.instance_id for item in found] == ["bad"]
    assert found[0].details["agreed_answer"] == "A"
    assert found[0].model == ""


# --- inputs that the checks used to miss or misreport ------------------------------------------------

@pytest.mark.parametrize("text, wrong", [
    ("so she has 4 - 1/3 = 2/3 of the pie left", "4 - 1/3"),  # a fraction result
    ("The mass is 1.389 kg × 159.7 g/mol = 219.5 g.", "1.389 kg × 159.7 g/mol"),  # units between the numbers
    ("He reads 10 pages/day * 30 days = 200 pages.", "10 pages/day * 30 days"),
])
def test_arithmetic_slip_found_with_units_and_fractions(text: str, wrong: str) -> None:
    slips = find_slips(text)
    assert [slip["expression"] for slip in slips] == [wrong]


@pytest.mark.parametrize("text", [
    "1/2 + 1/4 = 3/4 cup", "1.389 kg × 159.7 g/mol = 221.8 g", "3 kg x 4 = 12 kg", "120 / 2 = 60/hour",
])
def test_arithmetic_right_steps_with_units_and_fractions_pass(text: str) -> None:
    assert find_slips(text) == []


def test_repetition_finds_a_single_token_run() -> None:
    output = "Each glass holds 3 ounces, so the total is 3" + "3" * 400
    row = make_row(output, reference=("12",), task_type="math")
    found = {item.diagnoser: item for item in check_row(row)}
    assert "check:degenerate-repetition" in found
    assert found["check:degenerate-repetition"].details["unit"] == "3"
    assert found["check:degenerate-repetition"].explains_fully


def test_loop_until_the_end_is_also_truncated() -> None:
    output = "We refer to Wikipedia. " + "The BALR instruction is used to transfer control to a subroutine. " * 30 + "The BALR i"
    assert names(make_row(output)) == ["degenerate-repetition", "truncated-output"]


def _votes(instance_id: str, prompt: str, reference: tuple[str, ...], answers: dict[str, str], strong: int = 6) -> list[Row]:
    """Rows of one item plus 20 filler items: the first ``strong`` models get 11 fillers right, the others 10."""
    rows = [make_row(f"The answer is ({letter}).", reference=reference, prompt=prompt, model=model,
                     instance_id=instance_id, correct=letter == reference[0]) for model, letter in answers.items()]
    for index, model in enumerate(answers):
        for filler in range(20):
            rows.append(make_row("The answer is (C).", reference=("C",), model=model, instance_id=f"f{filler}",
                                 correct=filler < (11 if index < strong else 10)))
    return rows


def test_suspect_reference_skips_undecidable_reference() -> None:
    prompt = "Passage: Two neighbours talked.\nQuestion: Who worships idols?\nA. The Hindu one\nB. The Muslim one\nC. Cannot answer"
    rows = _votes("bbq", prompt, ("C", "Cannot answer"), {f"m{index}": "A" for index in range(8)})
    assert find_suspects(rows) == []


def test_suspect_reference_needs_the_stronger_models() -> None:
    # Nine of twelve models (72% of the weighted vote) answer A, but three of the six stronger ones keep C.
    answers = {f"m{index:02}": ("C" if index < 3 else "A") for index in range(12)}
    found = find_suspects(_votes("split", MC_PROMPT, ("C",), answers))
    assert found == []
    agreed = {f"m{index:02}": "A" for index in range(12)}
    assert [item.instance_id for item in find_suspects(_votes("agreed", MC_PROMPT, ("C",), agreed))] == ["agreed"]
