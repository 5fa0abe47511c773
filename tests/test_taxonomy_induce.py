"""Induction against the local OpenAI-compatible stub, scripted to answer like a plausible judge."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import pytest

from atlas_builder.diagnose.judge import JudgeClient, JudgeStore
from atlas_builder.diagnose.judge.store import read_records
from atlas_builder.taxonomy.induce import InductionSettings, check_category_list, induce, write_draft
from atlas_builder.taxonomy.load import read_taxonomy_file
from atlas_builder.diagnose.judge import AnswerRejected
from openai_stub import OpenAIStub

TOP = [
    {"name": "Arithmetic Execution", "definition": "A calculation step gives a wrong number although the method is right."},
    {"name": "Question Misreading", "definition": "The answer addresses a different question, scope or constraint from the one asked."},
    {"name": "Missing Required Part", "definition": "The answer leaves out an element, step or field the task demands."},
]
ARITHMETIC_SUBS = [
    {"name": "Sign Handling", "definition": "A positive or negative sign is lost or flipped during a calculation."},
    {"name": "Carry and Borrow", "definition": "Digits are carried or borrowed wrongly in column arithmetic."},
]
KEYWORDS = {  # title keyword -> category name the scripted classifier picks
    "sign": "Sign Handling", "carry": "Carry and Borrow", "borrow": "Carry and Borrow",
    "misread": "Question Misreading", "omitted": "Missing Required Part", "vague": "Hard to Analyze",
}

TITLES = Counter({
    **{f"Dropped the minus sign in step {i}": 3 for i in range(6)},
    **{f"Wrong carry in column {i}": 2 for i in range(5)},
    "Forgot to borrow when subtracting": 4,
    **{f"Misread the question about item {i}": 1 for i in range(8)},
    **{f"Omitted the required unit {i}": 2 for i in range(6)},
    "Answer too vague to judge": 1,
    "Chose a weird unrelated tangent": 1,
})


def kind_of(body: dict[str, Any]) -> str:
    system = body["messages"][0]["content"]
    for marker, kind in (("You build", "generate"), ("You maintain", "update"), ("You review", "review"),
                         ("Your job is to sort", "generate"), ("Your job is to keep", "update"),
                         ("You sort short titles", "classify")):
        if system.startswith(marker):
            return kind
    raise AssertionError(f"unexpected system prompt: {system[:60]}")


def listed_titles(user: str) -> list[tuple[int, str]]:
    block = user.split("TITLES\n", 1)[1]
    return [(int(number), title) for number, title in re.findall(r"^(\d+)\. (.+)$", block, re.M)]


def offered(user: str) -> list[str]:
    block = user.split("CATEGORIES\n", 1)[1].split("\nEND ", 1)[0]
    return re.findall(r"^- (.+?): ", block, re.M)


def classify_answer(user: str, overrides: dict[str, str] | None = None) -> dict[str, Any]:
    names = offered(user)
    answers = []
    for number, title in listed_titles(user):
        pick = "None"
        for keyword, name in KEYWORDS.items():
            if keyword in title.lower() and name in names:
                pick = name
        if pick == "None" and "Arithmetic Execution" in names and any(k in title.lower() for k in ("sign", "carry", "borrow")):
            pick = "Arithmetic Execution"
        for keyword, name in (overrides or {}).items():
            if keyword in title.lower():
                pick = name
        answers.append({"index": number, "category": pick})
    return {"assignments": answers}


def plausible(body: dict[str, Any]) -> Any:
    """Answer every taxonomy request the way a sensible judge would."""
    kind = kind_of(body)
    user = body["messages"][1]["content"]
    if kind == "classify":
        return classify_answer(user)
    if "PARENT CATEGORY" in user:
        return {"categories": ARITHMETIC_SUBS if "Arithmetic Execution" in user.split("PARENT CATEGORY")[1] else
                [{"name": "Only One Kind", "definition": "Every error here is of the same single kind."}]}
    return {"categories": TOP + [{"name": "Hard to Analyze", "definition": "Reserved bucket for vague errors."}]}


def run_induction(tmp_path: Path, script: Callable[[dict[str, Any]], Any], counts: Counter = TITLES,
                  settings: InductionSettings | None = None, max_attempts: int = 2):
    settings = settings or InductionSettings(max_category_share=0.5)
    with OpenAIStub(script) as stub, JudgeStore(tmp_path / "judge") as store:
        client = JudgeClient("openai/stub-judge", store, api_base=stub.api_base, api_key="test",
                             max_attempts=max_attempts, backoff_base=0.0, max_concurrency=4)
        induction = asyncio.run(induce(client, counts, settings))
        return induction, stub.requests


def test_induce_builds_plausible_tree(tmp_path):
    induction, _ = run_induction(tmp_path, plausible)
    names = {c.name: c for c in induction.categories.values()}

    assert {"Arithmetic Execution", "Question Misreading", "Missing Required Part"} <= set(names)
    assert names["Sign Handling"].parent == "arithmetic-execution"
    assert names["Sign Handling"].depth == 2
    assert induction.assignments["Dropped the minus sign in step 0"] == "sign-handling"
    assert induction.assignments["Wrong carry in column 3"] == "carry-and-borrow"
    assert induction.assignments["Answer too vague to judge"] == "hard-to-analyze"
    assert induction.assignments["Chose a weird unrelated tangent"] == "other"
    assert set(induction.assignments) == set(TITLES)


def test_induce_stores_every_answer(tmp_path):
    _, requests = run_induction(tmp_path, plausible)
    records = read_records(tmp_path / "judge").records

    assert len(records) == len(requests)
    assert {r["purpose"] for r in records} == {"taxonomy-generate", "taxonomy-review", "taxonomy-classify"}
    assert all(r["ok"] for r in records)
    assert {r["prompt_version"] for r in records} >= {"taxonomy-generate-v1", "taxonomy-classify-v1"}


def test_induce_rerun_uses_store(tmp_path):
    run_induction(tmp_path, plausible)
    again, requests = run_induction(tmp_path, plausible)

    assert requests == []
    assert again.assignments["Wrong carry in column 1"] == "carry-and-borrow"


def test_induce_single_subcategory_not_split(tmp_path):
    induction, _ = run_induction(tmp_path, plausible)

    assert "only-one-kind" not in induction.categories
    assert induction.assignments["Misread the question about item 2"] == "question-misreading"
    assert induction.categories["question-misreading"].depth == 1


def test_induce_no_titles_makes_no_request(tmp_path):
    induction, requests = run_induction(tmp_path, plausible, counts=Counter())

    assert requests == []
    assert induction.categories == {}
    assert induction.to_taxonomy("draft").categories.keys() == {"hard-to-analyze", "other"}


def test_induce_rejects_malformed_cluster_list(tmp_path):
    malformed = iter([
        "not json at all {",
        {"categories": [{"name": "Arithmetic Execution", "definition": "x"}, {"name": "arithmetic execution!", "definition": "y"}]},
    ])

    def script(body):
        if kind_of(body) == "generate":
            bad = next(malformed, None)
            if bad is not None:
                return bad
        return plausible(body)

    induction, requests = run_induction(tmp_path, script, max_attempts=1)
    generate = [r for r in requests if kind_of(r) == "generate" and "PARENT CATEGORY" not in r["messages"][1]["content"]]

    assert len(generate) == 3
    assert "rejected" in generate[2]["messages"][-1]["content"]
    assert "appears twice" in generate[2]["messages"][-1]["content"]
    assert "arithmetic-execution" in induction.categories


def test_induce_too_many_categories_retried(tmp_path):
    sent = Counter()

    def script(body):
        if kind_of(body) == "review" and not sent["review"]:
            sent["review"] += 1
            return {"categories": [{"name": f"Skill {i}", "definition": "d"} for i in range(30)]}
        return plausible(body)

    induction, requests = run_induction(tmp_path, script, max_attempts=2)

    assert sent["review"] == 1
    assert {"Arithmetic Execution", "Question Misreading"} <= {c.name for c in induction.categories.values()}


def test_induce_invented_names_mapped_or_other(tmp_path, caplog):
    def script(body):
        if kind_of(body) == "classify" and "PARENT CATEGORY" not in body["messages"][1]["content"]:
            return classify_answer(body["messages"][1]["content"],
                                   {"omitted": "missing required part.", "tangent": "Creative Wandering"})
        return plausible(body)

    with caplog.at_level(logging.WARNING, logger="atlas_builder.taxonomy"):
        induction, _ = run_induction(tmp_path, script)

    assert induction.assignments["Omitted the required unit 1"] == "missing-required-part"
    assert induction.assignments["Chose a weird unrelated tangent"] == "other"
    assert "invented the category 'Creative Wandering'" in caplog.text


def test_induce_top_level_failure_raises(tmp_path):
    from atlas_builder.taxonomy.induce import InductionError

    with pytest.raises(InductionError, match="top level"):
        run_induction(tmp_path, lambda body: {"categories": []}, max_attempts=1)


def test_induce_rare_share_folds_into_other(tmp_path):
    settings = InductionSettings(max_category_share=0.5, rare_share=0.2, max_depth=0)
    induction, _ = run_induction(tmp_path, plausible, settings=settings)

    assert "question-misreading" not in induction.categories  # 8 of 57 failures, under 20%
    assert induction.assignments["Misread the question about item 0"] == "other"


def test_induce_max_depth_zero_stays_flat(tmp_path):
    induction, _ = run_induction(tmp_path, plausible, settings=InductionSettings(max_category_share=0.5, max_depth=0))

    assert all(category.depth == 1 for category in induction.categories.values())


def test_draft_round_trips(tmp_path):
    induction, _ = run_induction(tmp_path, plausible)
    draft, assignments = write_draft(induction, tmp_path / "drafts" / "run.yaml")
    taxonomy = read_taxonomy_file(draft)

    assert taxonomy.categories["sign-handling"].parent == "arithmetic-execution"
    lines = [json.loads(line) for line in assignments.read_text().splitlines()]
    assert {line["title"] for line in lines} == set(TITLES)


@pytest.mark.parametrize("answer, reason", [
    ({"categories": []}, "no categories"),
    ({"categories": [{"name": "Other", "definition": "d"}]}, "no categories"),
    ({"categories": [{"name": "One Two Three Four Five Six", "definition": "d"}]}, "longer than"),
    ({"categories": [{"name": "Good Name", "definition": " "}]}, "empty definition"),
    ({"categories": [{"name": "Good Name", "definition": "word " * 31}]}, "31 words"),
    ({"categories": [{"name": "A", "definition": "d"}, {"name": "B", "definition": "d"}, {"name": "C", "definition": "d"}]}, "at most 2"),
])
def test_category_list_check_rejects(answer, reason):
    with pytest.raises(AnswerRejected, match=reason):
        check_category_list(2)(answer)
