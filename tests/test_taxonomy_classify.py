"""Classification into a frozen taxonomy version, stored assignments and the share of Other."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from atlas_builder.diagnose.judge import JudgeClient, JudgeStore
from atlas_builder.records import Diagnoses, Diagnosis
from atlas_builder.taxonomy import assign_categories, load_taxonomy
from atlas_builder.taxonomy.classify import (
    classify_into_taxonomy,
    load_assignments,
    other_shares,
    revision_due,
    save_assignments,
)
from atlas_builder.taxonomy.matching import match_name
from atlas_builder.taxonomy.titles import title_hash
from atlas_factory import SEED_TAXONOMY
from openai_stub import OpenAIStub
from test_taxonomy_induce import classify_answer, listed_titles, offered

KEYWORD_TO_V1 = {  # title keyword -> name in the seed taxonomy
    "sum": "Computation Error", "slip": "Arithmetic Slip", "misread": "Specification Misinterpretation",
    "left out": "Missing Required Element", "blank": "Output Mechanics", "empty": "Empty Output",
}


def v1_script(body):
    user = body["messages"][1]["content"]
    names = offered(user)
    answers = []
    for number, title in listed_titles(user):
        pick = next((name for key, name in KEYWORD_TO_V1.items() if key in title.lower() and name in names), "None")
        if "invent" in title:
            pick = "Brand New Skill" if "PARENT" not in user else pick
        if "spelled" in title:
            pick = "computation errors"
        answers.append({"index": number, "category": pick})
    return {"assignments": answers}


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    # The seed's two-level branches are mechanical, which the classifier never offers, so this
    # copy marks three of them as content categories to give the level-by-level descent a path.
    seed = yaml.safe_load(SEED_TAXONOMY.read_text(encoding="utf-8"))
    for category in seed["categories"]:
        if category["id"] in ("arithmetic-slip", "output-mechanics", "empty-output"):
            category["kind"] = "content"
    (tmp_path / "taxonomy").mkdir()
    (tmp_path / "taxonomy" / "v1.yaml").write_text(yaml.safe_dump(seed, sort_keys=False), encoding="utf-8")
    return tmp_path


def classify(data_dir: Path, titles: list[str], script=v1_script):
    taxonomy = load_taxonomy(data_dir)
    with OpenAIStub(script) as stub, JudgeStore(data_dir / "judge") as store:
        client = JudgeClient("openai/stub-judge", store, api_base=stub.api_base, api_key="test",
                             max_attempts=1, backoff_base=0.0)
        return asyncio.run(classify_into_taxonomy(client, titles, taxonomy, batch_size=2))


def test_classify_descends_levels(data_dir):
    assignments, failed = classify(data_dir, ["Wrong sum with a slip", "Wrong sum overall", "Output blank and empty"])

    assert failed == set()
    assert assignments["Wrong sum with a slip"].category == "arithmetic-slip"
    assert assignments["Wrong sum overall"].category == "computation-error"
    assert assignments["Output blank and empty"].category == "empty-output"
    assert assignments["Wrong sum with a slip"].answers == ("Computation Error", "Arithmetic Slip")


def test_classify_invented_name_goes_to_other(data_dir, caplog):
    with caplog.at_level(logging.WARNING, logger="atlas_builder.taxonomy"):
        assignments, _ = classify(data_dir, ["I invent things", "Misread the task", "Unplaceable"])

    assert assignments["I invent things"].category == "other"
    assert assignments["Unplaceable"].category == "other"
    assert assignments["Misread the task"].category == "specification-misinterpretation"
    assert "invented the category 'Brand New Skill'" in caplog.text


def test_classify_misspelled_name_mapped(data_dir):
    assignments, _ = classify(data_dir, ["Name spelled loosely"])

    assert assignments["Name spelled loosely"].category == "computation-error"


def test_classify_bad_indexes_leave_titles_unclassified(data_dir):
    assignments, failed = classify(data_dir, ["Wrong sum overall"], script=lambda body: {
        "assignments": [{"index": 7, "category": "Computation Error"}]})

    assert assignments == {}
    assert failed == {"Wrong sum overall"}


def test_classify_skipped_title_goes_to_other(data_dir):
    def script(body):
        answer = classify_answer(body["messages"][1]["content"])
        answer["assignments"] = answer["assignments"][:1]
        return answer

    assignments, _ = classify(data_dir, ["a first title", "b second title"], script=script)

    assert assignments["b second title"].category == "other"


def test_assignments_store_round_trip(data_dir):
    assignments, _ = classify(data_dir, ["Wrong sum overall", "Misread the task"])
    path = save_assignments(data_dir, "1", assignments.values())
    loaded = load_assignments(data_dir, "1")

    assert path == data_dir / "taxonomy" / "assignments" / "v1.jsonl"
    assert loaded[title_hash("Wrong sum overall")].category == "computation-error"
    assert loaded[title_hash("Misread   the\ntask")].category == "specification-misinterpretation"


def judge_diagnosis(dataset: str, instance: str, title: str) -> Diagnosis:
    return Diagnosis(dataset=dataset, model="m", instance_id=instance, diagnoser="openai/j", kind="judge",
                     title=title, summary="s")


def test_assign_categories_uses_stored(data_dir, caplog):
    assignments, _ = classify(data_dir, ["Wrong sum overall", "Unplaceable"])
    save_assignments(data_dir, "1", assignments.values())
    check = Diagnosis(dataset="d", model="m", instance_id="0", diagnoser="check:empty", kind="check",
                      title="Empty output", summary="s", category="empty-output", explains_fully=True)
    items = [judge_diagnosis("d", "1", "Wrong sum overall"), judge_diagnosis("d", "2", "Unplaceable"),
             judge_diagnosis("d", "3", "Never seen before"), check]
    diagnoses = Diagnoses(items=items, primary={item.key: item for item in items}, undiagnosed=[])

    with caplog.at_level(logging.WARNING, logger="atlas_builder.taxonomy"):
        result = assign_categories(diagnoses, load_taxonomy(data_dir), data_dir)

    categories = {item.instance_id: item.category for item in result.items}
    assert categories == {"1": "computation-error", "2": "other", "3": None, "0": "empty-output"}
    assert result.primary[("d", "m", "1")].category == "computation-error"
    assert "1 distinct judge titles are not yet classified" in caplog.text
    assert "run `atlas taxonomy classify`" in caplog.text


def test_assign_categories_keeps_dataset_findings(data_dir):
    accident = Diagnosis(dataset="d", model="m", instance_id="9", diagnoser="check:scored-right-by-accident",
                         kind="check", title="Scored right by accident", summary="s")
    diagnoses = Diagnoses(items=[], primary={}, undiagnosed=[], suspect_references={("d", "4"): {"summary": "s"}},
                          accidental_passes=[accident])

    result = assign_categories(diagnoses, load_taxonomy(data_dir), data_dir)

    assert result.accidental_passes == [accident]
    assert result.suspect_references == {("d", "4"): {"summary": "s"}}


def test_other_share_warns_above_threshold(data_dir, caplog):
    items = [judge_diagnosis("a", str(i), "t") for i in range(40)] + [judge_diagnosis("b", str(i), "t") for i in range(40)]
    items = [replace(item, category="other" if (item.dataset == "a" and int(item.instance_id) < 4) else "factual-error")
             for item in items]
    diagnoses = Diagnoses(items=items, primary={item.key: item for item in items}, undiagnosed=[])
    shares = other_shares(diagnoses)

    assert shares["a"].other == 4
    assert shares["a"].share == pytest.approx(0.1)
    assert shares["b"].share == 0.0
    assert [item.dataset for item in revision_due(shares, 0.05)] == ["a"]
    assert revision_due(shares, 0.2) == []


@pytest.mark.parametrize("answer, expected", [
    ("Computation Error", "Computation Error"),
    ("computation-error", "Computation Error"),
    ("Computation  Errors", "Computation Error"),
    ("Counting / Enumeration Error", "Counting/Enumeration Error"),
    ("Something Else", None),
    ("", None),
])
def test_match_name(answer, expected):
    assert match_name(answer, ["Computation Error", "Counting/Enumeration Error", "Factual Error"]) == expected
