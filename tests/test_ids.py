from hypothesis import given
from hypothesis import strategies as st

from atlas_builder.ids import slug_problem, slugify


def test_slug_accepts_typical_ids():
    for value in ("llama-3-70b", "gpt-4o-2024-05-13", "qwen1.5-72b-chat", "q_0042", "a"):
        assert slug_problem(value) is None, value


def test_slug_rejects_with_reason():
    cases = {
        "": "must not be empty",
        "Llama": "lowercase",
        "../etc": "'..'",
        "a/b": "may contain only",
        "-lead": "start and end",
        "x" * 81: "at most 80",
    }
    for value, reason in cases.items():
        problem = slug_problem(value)
        assert problem is not None and reason in problem, (value, problem)


def test_slug_rejects_non_string():
    assert "must be a string" in slug_problem(42)


@given(st.text(max_size=200))
def test_slugify_always_valid(text):
    assert slug_problem(slugify(text)) is None


@given(st.from_regex(r"[a-z0-9]{1,8}(?:[_-][a-z0-9]{1,8}){0,4}", fullmatch=True))
def test_slugify_keeps_simple_slugs(value):
    assert slugify(value) == value


@given(st.text(max_size=200))
def test_slugify_idempotent(text):
    once = slugify(text)

    assert slugify(once) == once
