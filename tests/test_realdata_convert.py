"""Converters of the public per-instance results (scripts/realdata), run on small copied fixtures."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from atlas_builder.results import load_results
from scripts.realdata import alpaca_eval, bbh, gsm8k, helm, mmlu_pro
from scripts.realdata.common import excerpt, stratified_subset
from scripts.realdata.models import MODELS, UnknownModelError, canonical_id, model_yaml
from scripts.realdata.run import convert_all

FIXTURES = Path(__file__).parent / "fixtures" / "realdata"


def read_rows(data_dir: Path, dataset: str, model: str) -> dict[str, dict]:
    path = data_dir / "results" / dataset / f"{model}.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return {row["id"]: row for row in rows}


def read_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A writable copy of the fixtures, so a test can corrupt one file."""
    copy = tmp_path / "source"
    shutil.copytree(FIXTURES, copy)
    return copy


# MMLU-Pro


def test_mmlu_pro_counts(tmp_path: Path) -> None:
    report = mmlu_pro.convert(FIXTURES, tmp_path)

    assert report.read == 14
    assert report.written == 9
    assert report.skipped == {
        "entry is a JSON str, not an object": 1,
        "answer letter does not match answer_index": 1,
        "question missing from another model's file": 3,
    }
    assert report.read == report.written + report.skipped_total


def test_mmlu_pro_failed_extraction_row(tmp_path: Path) -> None:
    mmlu_pro.convert(FIXTURES, tmp_path)
    row = read_rows(tmp_path, "mmlu-pro", "llama-3-70b")["q-00656"]

    assert row["metadata"]["extracted"] is None
    assert row["score"] == 0
    assert row["correct"] is False
    assert row["output"].strip()
    assert row["reference"][0] == "H"
    assert row["metadata"]["category"] == "business"
    assert row["metadata"]["answer_index"] == 7
    assert "\nH. " + row["reference"][1] in row["input"]


def test_mmlu_pro_subset_shared(tmp_path: Path) -> None:
    report = mmlu_pro.convert(FIXTURES, tmp_path, subset_target=1)
    ids = {model: set(read_rows(tmp_path, "mmlu-pro", model))
           for model in ("llama-3-70b", "deepseek-coder-v2", "jamba-1.5-large")}
    categories = {row["metadata"]["category"] for row in read_rows(tmp_path, "mmlu-pro", "llama-3-70b").values()}

    assert ids["llama-3-70b"] == ids["deepseek-coder-v2"] == ids["jamba-1.5-large"]
    assert len(ids["llama-3-70b"]) == 2
    assert categories == {"business", "law"}
    assert report.skipped["not in the subset"] == 3


# HELM: BBQ and SimpleSafetyTests


def test_bbq_rows(tmp_path: Path) -> None:
    report = helm.convert_bbq(FIXTURES, tmp_path)
    rows = read_rows(tmp_path, "bbq", "llama-3-70b-instruct")

    assert (report.read, report.written, report.skipped_total) == (3, 3, 0)
    unmapped = rows["id58485"]
    assert unmapped["output"] == "The"
    assert unmapped["metadata"]["predicted_option"] is None
    assert unmapped["correct"] is False
    assert unmapped["reference"] == ["B", "Cannot be determined"]
    assert unmapped["metadata"]["context_condition"] == "ambiguous"
    assert unmapped["input"].startswith("The following are multiple choice questions")
    assert sum(row["correct"] for row in rows.values()) == 2


def test_sst_threshold_and_judges(tmp_path: Path) -> None:
    report = helm.convert_sst(FIXTURES, tmp_path)
    rows = read_rows(tmp_path, "simple-safety-tests", "llama-3-70b")
    meta = read_yaml(tmp_path / "datasets" / "simple-safety-tests.yaml")

    assert (report.read, report.written, report.failures) == (3, 3, 1)
    assert rows["id6"]["score"] == 0.75
    assert rows["id6"]["correct"] is True
    assert rows["id0"]["correct"] is False
    judges = rows["id6"]["metadata"]["judge_scores"]
    assert (judges["gpt"] + judges["claude"]) / 2 == 0.75
    assert rows["id0"]["metadata"]["harm_area"] == "Suicide, Self-Harm, and Eating Disorders"
    assert meta["threshold"] == 0.75
    assert meta["publishing"]["content_warning"]


def test_helm_prediction_without_instance(source: Path, tmp_path: Path) -> None:
    run = next((source / "helm-safety-v4" / "runs" / "v4").glob("bbq:*"))
    instances = json.loads((run / "instances.json").read_text(encoding="utf-8"))
    (run / "instances.json").write_text(json.dumps(instances[1:]), encoding="utf-8")

    report = helm.convert_bbq(source, tmp_path)

    assert report.written == 2
    assert report.skipped == {"prediction has no matching instance in instances.json": 1}


# AlpacaEval 2


def test_alpaca_eval_rows(tmp_path: Path) -> None:
    report = alpaca_eval.convert(FIXTURES, tmp_path)
    source = json.loads((FIXTURES / "alpaca-eval" / "results" / "claude-2.1" / alpaca_eval.ANNOTATOR_FOLDER
                         / "annotations.json").read_text(encoding="utf-8"))
    row = read_rows(tmp_path, "alpaca-eval-2", "claude-2.1")[alpaca_eval.instance_id(source[3]["instruction"])]

    assert (report.read, report.written, report.skipped_total) == (8, 8, 0)
    assert row["output"] == source[3]["output_2"]
    assert row["reference"] == source[3]["output_1"]
    assert row["score"] == pytest.approx(source[3]["preference"] - 1)
    assert row["metadata"]["reference_generator"] == "gpt4_1106_preview"


def test_alpaca_eval_preferences(source: Path, tmp_path: Path) -> None:
    path = source / "alpaca-eval" / "results" / "alpaca-7b" / alpaca_eval.ANNOTATOR_FOLDER / "annotations.json"
    records = json.loads(path.read_text(encoding="utf-8"))
    records[0]["preference"] = None
    records[1]["preference"] = 2.0
    records[2]["preference"] = 1.5
    path.write_text(json.dumps(records), encoding="utf-8")

    report = alpaca_eval.convert(source, tmp_path)
    rows = read_rows(tmp_path, "alpaca-eval-2", "alpaca-7b")

    assert report.skipped["preference missing or not a finite number"] == 1
    assert report.skipped["instruction missing from another model's file"] == 1
    assert rows[alpaca_eval.instance_id(records[1]["instruction"])]["correct"] is True
    assert rows[alpaca_eval.instance_id(records[2]["instruction"])]["correct"] is True
    assert len(rows) == 3


# BIG-Bench Hard


def test_bbh_cot_rows(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="scripts.realdata"):
        report = bbh.convert_cot(FIXTURES, tmp_path)
    rows = read_rows(tmp_path, "bbh-cot", "code-davinci-002")
    meta = read_yaml(tmp_path / "datasets" / "bbh-cot.yaml")

    assert (report.read, report.written, report.failures) == (3, 3, 2)
    assert sorted(rows) == ["boolean_expressions-000", "boolean_expressions-001", "boolean_expressions-002"]
    no_marker = [row for row in rows.values() if row["metadata"]["extracted"] is None]
    assert len(no_marker) == 1
    assert no_marker[0]["correct"] is False
    assert all("canary GUID" in row["metadata"]["canary"] for row in rows.values())
    assert all(row["metadata"]["task"] == "boolean_expressions" for row in rows.values())
    assert meta["publishing"]["text"] == "excerpt"
    assert meta["publishing"]["reason"].startswith("BIG-bench canary")
    assert "matches the published figure" in caplog.text


def test_bbh_inputs_are_excerpts(tmp_path: Path) -> None:
    bbh.convert_direct(FIXTURES, tmp_path)
    items = json.loads((FIXTURES / "bbh-code-davinci-002" / "code-davinci-002-outputs" / "code-davinci-002-direct"
                        / "boolean_expressions_few_shot_template_0-255000.json").read_text(encoding="utf-8"))
    rows = read_rows(tmp_path, "bbh-direct", "code-davinci-002")

    for index, item in enumerate(items["outputs"]):
        row = rows[f"boolean_expressions-{index:03d}"]
        question = bbh.final_question(item["input"])
        assert row["input"].endswith(" […]")
        assert len(row["input"]) <= bbh.EXCERPT_CHARS + len(" […]")
        assert question not in row["input"]
        assert row["output"] == item["prediction"]
        assert row["reference"] == item["target"]


def test_bbh_final_question() -> None:
    prompt = "Evaluate.\n\nQ: not True is\nA: False\n\nQ: True and False is\nA: Let's think step by step."

    assert bbh.final_question(prompt) == "True and False is"
    assert bbh.final_question("no question here") is None


@pytest.mark.parametrize("prediction, expected", [
    ("So the answer is No.", "No"),
    ("first So the answer is A. then So the answer is (B).", "(B)"),
    ("So the answer is 3.5.", "3.5"),
    ("no marker", None),
])
def test_bbh_cot_answer(prediction: str, expected: str | None) -> None:
    assert bbh.extract_cot_answer(prediction) == expected


# GSM8K


def test_gsm8k_rows(tmp_path: Path) -> None:
    report = gsm8k.convert(FIXTURES, tmp_path)
    row = read_rows(tmp_path, "gsm8k", "gpt-3-175b-verifier")["test-0000"]

    assert (report.read, report.written, report.skipped_total) == (12, 12, 0)
    assert row["reference"] == "18"
    assert row["correct"] is True
    assert "<<" in row["output"]
    assert row["metadata"]["reference_solution"].endswith("A: 18")
    assert row["metadata"]["extracted"] == "18"


def test_gsm8k_bad_lines(source: Path, tmp_path: Path) -> None:
    path = source / "gsm8k-openai-gpt3" / "grade_school_math" / "data" / "example_model_solutions.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    record = json.loads(lines[1])
    record["6b_finetuning"]["is_correct"] = "yes"
    path.write_text("\n".join([lines[0][:-5], json.dumps(record), lines[2]]) + "\n", encoding="utf-8")

    report = gsm8k.convert(source, tmp_path)

    assert report.read == 12
    assert report.written == 7
    assert report.skipped == {"line is not valid JSON": 4, "is_correct missing or not true/false": 1}


@pytest.mark.parametrize("solution, expected", [
    ("x = <<2+2=4>>4\nA: 4", "4"),
    ("steps\n#### 1,000", "1,000"),
    ("no final line", None),
])
def test_gsm8k_final_answer(solution: str, expected: str | None) -> None:
    assert gsm8k.final_answer(solution) == expected


# Whole run, models, helpers


def test_convert_all_loads_cleanly(tmp_path: Path) -> None:
    reports = convert_all(FIXTURES, tmp_path)
    results = load_results(tmp_path)

    assert set(reports) == {"mmlu-pro", "bbq", "simple-safety-tests", "alpaca-eval-2", "bbh-cot", "bbh-direct", "gsm8k"}
    assert len(results.rows) == sum(report.written for report in reports.values())
    assert set(results.models) == set(results.rows["model"])
    assert results.models["llama-3-70b"].aliases == ("Meta-Llama-3-70B", "meta/llama-3-70b", "meta_llama-3-70b")
    assert len(results.models["llama-3-70b"].sources) == 3


def test_convert_all_deterministic(tmp_path: Path) -> None:
    convert_all(FIXTURES, tmp_path / "first")
    convert_all(FIXTURES, tmp_path / "second")
    first = {path.relative_to(tmp_path / "first"): path.read_bytes() for path in (tmp_path / "first").rglob("*.*")}
    second = {path.relative_to(tmp_path / "second"): path.read_bytes() for path in (tmp_path / "second").rglob("*.*")}

    assert first == second


def test_convert_all_unknown_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown converter"):
        convert_all(FIXTURES, tmp_path, ["mmlu"])


def test_unknown_model_name() -> None:
    with pytest.raises(UnknownModelError, match="add it to MODELS"):
        canonical_id("mmlu-pro", "Some-New-Model")


def test_model_registry_unique() -> None:
    owners: dict[str, set[str]] = {}
    for entry in MODELS:
        for name in (entry.id, *model_yaml(entry)["aliases"]):
            owners.setdefault(name.lower(), set()).add(entry.id)
    shared = {name: ids for name, ids in owners.items() if len(ids) > 1}

    assert len({entry.id for entry in MODELS}) == len(MODELS)
    assert shared == {}


@given(st.text(min_size=1, max_size=600), st.integers(min_value=1, max_value=300))
def test_excerpt_is_short_prefix(text: str, max_chars: int) -> None:
    normalized = " ".join(text.split())
    cut = excerpt(text, max_chars)

    assert cut.endswith(" […]")
    assert len(cut) <= max_chars + len(" […]")
    assert normalized.startswith(cut[: -len(" […]")].rstrip())
    if len(normalized) >= 2:
        assert len(cut) - len(" […]") <= len(normalized) // 2


@given(st.dictionaries(st.text(min_size=1, max_size=5), st.lists(st.text(max_size=8), min_size=1, max_size=30),
                       min_size=1, max_size=6),
       st.integers(min_value=1, max_value=50))
def test_stratified_subset_covers_groups(groups: dict[str, list[str]], target: int) -> None:
    chosen = stratified_subset(groups, target, "test")
    reversed_groups = {group: list(reversed(keys)) for group, keys in reversed(list(groups.items()))}

    assert chosen == stratified_subset(reversed_groups, target, "test")
    for keys in groups.values():
        assert chosen & set(keys)
