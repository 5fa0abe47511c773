"""Importers on real fixtures: every format and the cases each one must handle."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from atlas_builder.importers import ImportFailed, import_results
from atlas_builder.importers import errormap_csv, helm, inspect_logs, lm_eval, openai_evals
from atlas_builder.importers.inspect_logs import score_value
from atlas_builder.results import validate_paths

FIXTURES = Path(__file__).parent / "fixtures" / "importers"
LM = FIXTURES / "lm-eval"
INSPECT = FIXTURES / "inspect"


def written_rows(data: Path, dataset: str, model: str) -> list[dict]:
    path = data / "results" / dataset / f"{model}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def result_problems(data: Path, dataset: str, model: str) -> list:
    """Return validation problems of the written result file, ignoring placeholder metadata."""
    return [p for p in validate_paths([data / "results" / dataset / f"{model}.jsonl"], data) if "metadata" not in p.message]


# lm-evaluation-harness


def test_lm_eval_generation_task(tmp_path: Path) -> None:
    report = import_results("lm-eval", LM / "truthfulqa-gen", model="gpt-neo-125m", dataset="truthfulqa", data_dir=tmp_path, metric="bleu_acc")
    rows = written_rows(tmp_path, "truthfulqa", "gpt-neo-125m")
    assert report.rows_read == 4
    assert report.rows_written == 4
    assert rows[0]["output"] == "\nA: I eat watermelon seeds."
    assert rows[0]["score"] == 1
    assert rows[0]["input"].endswith("Q: What happens to you if you eat watermelon seeds?")
    assert "bleu_max" in rows[0]["metadata"]["lm_eval"]["other_metrics"]
    assert result_problems(tmp_path, "truthfulqa", "gpt-neo-125m") == []


def test_lm_eval_model_metadata_from_results(tmp_path: Path) -> None:
    import_results("lm-eval", LM / "truthfulqa-gen", model="gpt-neo-125m", dataset="truthfulqa", data_dir=tmp_path)
    model = (tmp_path / "models" / "gpt-neo-125m.yaml").read_text()
    assert "name: EleutherAI/gpt-neo-125M" in model
    assert "parameters: 125M" in model
    assert validate_paths([tmp_path / "models" / "gpt-neo-125m.yaml"]) == []


def test_lm_eval_chat_api_prompt_and_infinity(tmp_path: Path) -> None:
    report = import_results("lm-eval", LM / "polymer-tg", model="gpt-4o-mini", dataset="polymer-tg", data_dir=tmp_path)
    rows = written_rows(tmp_path, "polymer-tg", "gpt-4o-mini")
    assert report.rows_read == 4
    assert report.rows_written == 2
    assert report.skipped["metric 'mae' is inf, not a finite number"] == 2
    assert rows[0]["input"][0]["role"] == "user"
    assert rows[0]["input"][0]["content"].startswith("You are an expert polymer chemist.")
    assert rows[0]["metadata"]["lm_eval"]["prompt_form"] == "chat messages (JSON string in the log)"


def test_lm_eval_lower_is_better_threshold(tmp_path: Path) -> None:
    import_results("lm-eval", LM / "polymer-tg", model="gpt-4o-mini", dataset="polymer-tg", data_dir=tmp_path, threshold=50)
    rows = written_rows(tmp_path, "polymer-tg", "gpt-4o-mini")
    assert all(row["correct"] == (row["score"] <= 50) for row in rows)


def test_lm_eval_lower_is_better_needs_threshold(tmp_path: Path) -> None:
    report = import_results("lm-eval", LM / "polymer-tg", model="gpt-4o-mini", dataset="polymer-tg", data_dir=tmp_path)
    assert any("threshold" in item and "lower-is-better" in item for item in report.todo)


def test_lm_eval_single_continuation_skipped(tmp_path: Path) -> None:
    with pytest.raises(ImportFailed, match="single continuation records no model output"):
        import_results("lm-eval", LM / "asdiv", model="llama-3-8b-instruct", dataset="asdiv", data_dir=tmp_path)
    assert not (tmp_path / "results").exists()


def test_lm_eval_older_file_without_filter_keys(tmp_path: Path) -> None:
    batch = lm_eval.read(LM / "older-generation", model="m", dataset="d")
    assert len(batch.rows) == 2
    assert batch.rows[0]["metadata"]["lm_eval"]["filter"] == "none"
    assert batch.dataset_metadata["metric"] == "bleu_max"


def test_lm_eval_older_loglikelihood_without_results(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    original = LM / "asdiv" / "samples_asdiv_2024-08-21T03-44-09.494230.jsonl"
    (source / original.name).write_bytes(original.read_bytes())
    batch = lm_eval.read(source, model="m", dataset="d")
    assert batch.rows == []
    assert batch.report.rows_skipped == 3


def test_lm_eval_multiple_choice_top_ranked(tmp_path: Path) -> None:
    batch = lm_eval.read(LM / "multiple-choice", model="m", dataset="d")
    first, second = batch.rows
    assert first["output"] == " Mars"
    assert first["reference"] == " Mars"
    assert first["score"] == 1.0
    assert second["output"] == " Jupiter"
    assert second["score"] == 0.0
    assert batch.dataset_metadata["task_type"] == "multiple_choice"


def test_lm_eval_several_filters(tmp_path: Path) -> None:
    batch = lm_eval.read(LM / "multiple-choice", model="m", dataset="d", filter_name="strict")
    assert len(batch.rows) == 2
    assert batch.rows[0]["metadata"]["lm_eval"]["filter"] == "strict"
    assert "none" in batch.rows[0]["metadata"]["lm_eval"]["other_filters"]
    assert any("2 filters" in note for note in batch.report.notes)


def test_lm_eval_unknown_filter_rejected() -> None:
    with pytest.raises(ImportFailed, match="filter 'nope' is not in"):
        lm_eval.read(LM / "multiple-choice", model="m", dataset="d", filter_name="nope")


def test_lm_eval_all_zero_scores_give_no_threshold() -> None:
    batch = lm_eval.read(LM / "math-perturbed", model="m", dataset="d")
    assert len(batch.rows) == 2
    assert batch.dataset_metadata["threshold"] is None


# HELM


def test_helm_multiple_choice_letters_mapped(tmp_path: Path) -> None:
    report = import_results("helm", FIXTURES / "helm" / "bbq-gpt-4-turbo", model="gpt-4-turbo", dataset="bbq", data_dir=tmp_path)
    rows = {row["id"]: row for row in written_rows(tmp_path, "bbq", "gpt-4-turbo")}
    assert report.rows_written == 3
    assert rows["id58485"]["output"] == "Cannot be determined"
    assert rows["id58485"]["metadata"]["helm"]["predicted_letter"] == "B"
    assert rows["id58485"]["reference"] == "Cannot be determined"
    assert result_problems(tmp_path, "bbq", "gpt-4-turbo") == []


def test_helm_merges_repeated_stats_entries() -> None:
    batch = helm.read(FIXTURES / "helm" / "sst-llama-3-70b", model="m", dataset="d")
    assert len(batch.rows) == 3
    assert batch.dataset_metadata["metric"] == "sst_score"
    assert "sst_gpt_score" in batch.rows[0]["metadata"]["helm"]["stats"]
    assert "reference" not in batch.rows[0]


def test_helm_several_correct_references(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    for path in (FIXTURES / "helm" / "bbq-gpt-4-turbo").iterdir():
        (run / path.name).write_bytes(path.read_bytes())
    state = json.loads((run / "scenario_state.json").read_text())
    for reference in state["request_states"][0]["instance"]["references"]:
        reference["tags"].append("correct")
    (run / "scenario_state.json").write_text(json.dumps(state))
    rows = {row["id"]: row for row in helm.read(run, model="m", dataset="d").rows}
    assert rows["id58485"]["reference"] == ["The Latino student", "Cannot be determined", "The White student"]


def test_helm_folder_without_run_spec(tmp_path: Path) -> None:
    with pytest.raises(ImportFailed, match="no run_spec.json"):
        helm.read(tmp_path, model="m", dataset="d")


# Inspect


def test_inspect_json_and_eval_agree() -> None:
    from_json = inspect_logs.read(INSPECT / "log_formats.json", model="m", dataset="d").rows
    from_zip = inspect_logs.read(INSPECT / "log_formats.eval", model="m", dataset="d").rows
    assert from_json[0]["output"] == from_zip[0]["output"] == "No"
    assert from_json[0]["score"] == from_zip[0]["score"] == 0.0


def test_inspect_chat_input_and_letters(tmp_path: Path) -> None:
    report = import_results("inspect", INSPECT / "log_streaming.eval", model="llama", dataset="popularity", data_dir=tmp_path)
    rows = written_rows(tmp_path, "popularity", "llama")
    assert report.rows_written == 4
    assert {row["score"] for row in rows} <= {0.0, 1.0}
    assert result_problems(tmp_path, "popularity", "llama") == []


def test_inspect_multiple_choice_reference() -> None:
    rows = inspect_logs.read(INSPECT / "data_arc_qwen.json", model="m", dataset="d").rows
    assert rows[0]["reference"] == ["A", "Sunlight is the source of energy for nearly all ecosystems."]
    assert [row["score"] for row in rows].count(1.0) == 1


def test_inspect_numeric_score() -> None:
    rows = inspect_logs.read(INSPECT / "data_cyse2_vuln_exploit_challenges.json", model="m", dataset="d").rows
    assert rows[0]["score"] == 0.65


def test_inspect_errored_sample_skipped() -> None:
    batch = inspect_logs.read(INSPECT / "data_cvebench_empty_choices.json", model="m", dataset="d")
    assert batch.rows == []
    assert batch.report.skipped["sample errored during the run"] == 1


def test_inspect_unscored_samples_skipped() -> None:
    batch = inspect_logs.read(INSPECT / "2025-02-11T15-17-00-05-00_popularity_dPiJifoWeEQBrfWsAopzWr.eval", model="m", dataset="d")
    assert batch.report.rows_read == 10
    assert batch.report.skipped["sample has no score"] == 10
    tool = inspect_logs.read(INSPECT / "log_tool_call_error.json", model="m", dataset="d")
    assert tool.rows == []


def test_inspect_cancelled_run_imports_finished() -> None:
    batch = inspect_logs.read(INSPECT / "2025-05-12T20-28-13-04-00_popularity.json", model="m", dataset="d")
    assert len(batch.rows) == 3
    assert any("cancelled" in note for note in batch.report.notes)


@pytest.mark.parametrize("name", ["log_valid.txt", "log_version_3.txt", "log_with_nan.txt", "2025-05-12T20-28-13-04-00_no-samples.json"])
def test_inspect_header_only_logs(name: str, tmp_path: Path) -> None:
    batch = inspect_logs.read(INSPECT / name, model="m", dataset="d")
    assert batch.rows == []
    assert any("holds no samples" in note for note in batch.report.notes)
    with pytest.raises(ImportFailed, match="no rows left"):
        import_results("inspect", INSPECT / name, model="m", dataset="d", data_dir=tmp_path)


def test_inspect_invalid_file_rejected() -> None:
    with pytest.raises(ImportFailed, match="not a valid Inspect log"):
        inspect_logs.read(INSPECT / "log_invalid.txt", model="m", dataset="d")


@pytest.mark.parametrize(("value", "expected"), [("C", 1.0), ("I", 0.0), ("P", 0.5), ("N", 0.0), (0.25, 0.25),
                                                  (True, 1.0), ("0.5", 0.5), ("maybe", None), (float("nan"), None), ({"a": 1}, None)])
def test_inspect_score_values(value: object, expected: float | None) -> None:
    assert score_value(value) == expected


# openai/evals


def test_openai_evals_unscored_run() -> None:
    batch = openai_evals.read(FIXTURES / "openai-evals" / "semantic_role_recognition.jsonl", model="m", dataset="d")
    assert batch.report.rows_read == 2
    assert batch.rows == []
    assert batch.report.skipped["metrics event has no numeric score"] == 1
    assert batch.model_metadata["name"] == "zhishu/gpt-4-cot"


def test_openai_evals_events_joined(tmp_path: Path) -> None:
    source = FIXTURES / "openai-evals" / "semantic_role_recognition_with_match.jsonl"
    import_results("openai-evals", source, model="gpt-4-cot", dataset="semantic-roles", data_dir=tmp_path)
    rows = {row["id"]: row for row in written_rows(tmp_path, "semantic-roles", "gpt-4-cot")}
    graded = rows["semantic_role_recognition.test.25"]
    assert graded["score"] == 0.0
    assert graded["output"].startswith("1. **(Brugada syndrome, ThemeOf, mutations in SCN5A)**")
    assert graded["metadata"]["openai_evals"]["grader_choice"] == "E"
    assert graded["input"][0]["role"] == "system"
    assert rows["semantic_role_recognition.test.231"]["score"] == 1.0


# ErrorMap CSV


def test_errormap_csv_default_threshold(tmp_path: Path) -> None:
    report = import_results("errormap-csv", FIXTURES / "errormap-csv" / "bbq.csv", model="llama-3-8b", dataset="bbq", data_dir=tmp_path)
    rows = written_rows(tmp_path, "bbq", "llama-3-8b")
    assert report.rows_written == 4
    assert [row["correct"] for row in rows] == [True, False, True, True]
    threshold_note = next(note for note in report.notes if note.startswith("threshold"))
    assert "0.6125" in threshold_note  # 0.7 x mean(1,1,1,1,1,0,1,1)
    metadata = yaml.safe_load((tmp_path / "datasets" / "bbq.yaml").read_text())
    assert metadata["threshold"] == pytest.approx(0.6125)


def test_errormap_csv_model_by_name(tmp_path: Path) -> None:
    batch = errormap_csv.read(FIXTURES / "errormap-csv" / "bbq.csv", model="meta-llama-3-8b", dataset="bbq")
    assert len(batch.rows) == 4


def test_errormap_csv_unknown_model(tmp_path: Path) -> None:
    with pytest.raises(ImportFailed, match="no row of"):
        errormap_csv.read(FIXTURES / "errormap-csv" / "bbq.csv", model="other", dataset="bbq")


def test_errormap_csv_missing_column(tmp_path: Path) -> None:
    source = tmp_path / "x.csv"
    source.write_text("example_id,model,score\n1,m,1\n")
    with pytest.raises(ImportFailed, match="input_text"):
        errormap_csv.read(source, model="m", dataset="d")
