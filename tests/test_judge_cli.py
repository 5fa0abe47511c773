"""`atlas diagnose` end to end against a local OpenAI-compatible server, and the stored diagnoses it leaves."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")

from openai_stub import OpenAIStub, Reply  # noqa: E402

import atlas_builder.diagnose.checks_cache as checks_module  # noqa: E402
from atlas_builder.cli import cli  # noqa: E402
from atlas_builder.diagnose import diagnose  # noqa: E402
from atlas_builder.diagnose.judge import stored_diagnoses  # noqa: E402
from atlas_builder.diagnose.judge.store import read_records  # noqa: E402
from atlas_builder.records import Diagnosis  # noqa: E402
from atlas_builder.results.load import load_results  # noqa: E402
from atlas_builder.results.write import write_result_file, write_yaml  # noqa: E402

pytestmark = pytest.mark.timeout(300)

JUDGE = "openai/stub-judge"
MODELS = ("m1", "m2", "m3")
INSTANCES = 30
# m1 fails everything, m2 the odd instances, m3 those not divisible by 3: 30 + 15 + 20 failures.
FAILURES = 65
WRONG_BLOCK = re.compile(r"BEGIN (DATA-[0-9a-f]+) WRONG ANSWER\n(.*?)\nEND \1 WRONG ANSWER", re.S)
TOKEN = re.compile(r"ANSWER\[[a-z0-9]+/q-\d+\]")


def is_correct(model: str, index: int) -> bool:
    return {"m1": False, "m2": index % 2 == 0, "m3": index % 3 == 0}[model]


def make_data(root: Path) -> Path:
    write_yaml(root / "datasets" / "toy.yaml", {
        "id": "toy", "name": "Toy arithmetic", "description": "Additions for the judge tests.",
        "task_type": "math", "metric": "exact_match", "threshold": 1,
        "source": {"repository": "example/toy"}, "license": "CC0-1.0",
    })
    for model in MODELS:
        write_yaml(root / "models" / f"{model}.yaml", {"id": model, "name": model.upper()})
        rows = []
        for index in range(INSTANCES):
            correct = is_correct(model, index)
            value = index + 1 if correct else index + 2
            rows.append({
                "id": f"q-{index:03d}",
                "input": f"Question {index}: what is {index} + 1? Answer with a number.",
                "output": f"Working it out. ANSWER[{model}/q-{index:03d}] The sum is {value}.",
                "score": 1.0 if correct else 0.0,
                "reference": str(index + 1),
            })
        write_result_file(root / "results" / "toy" / f"{model}.jsonl", rows)
    return root


def answer_for(body: dict) -> dict:
    """A valid diagnosis that quotes the failure's ANSWER[...] token as evidence."""
    user = body["messages"][1]["content"]
    wrong = WRONG_BLOCK.search(user).group(2)
    token = TOKEN.search(wrong).group(0)
    return {
        "criteria": [
            {"criterion": "Adds one to the number.", "met": False, "evidence": token},
            {"criterion": "States a single number.", "met": True, "evidence": ""},
        ],
        "first_error": {"criterion": 1, "evidence": token, "explanation": "The sum is off by one."},
        "error_title": "Off-by-one addition",
        "error_summary": "The answer adds two instead of one.",
        "reference_flag": False,
        "ambiguous_flag": False,
        "flag_reason": "",
    }


def wrong_token(body: dict) -> str:
    return TOKEN.search(WRONG_BLOCK.search(body["messages"][1]["content"]).group(2)).group(0)


@pytest.fixture
def data(tmp_path, monkeypatch):
    # Deterministic checks are another stage; these tests send every failure to the judge.
    monkeypatch.setattr(checks_module, "run_checks_cached", lambda results: [])
    return make_data(tmp_path / "data")


def run_cli(data: Path, stub: OpenAIStub | None, *args: str):
    argv = ["diagnose", "--data", str(data), "--judge", JUDGE, "--backoff", "0.01"]
    if stub is not None:
        argv += ["--api-base", stub.api_base, "--api-key-env", "STUB_API_KEY"]
    result = CliRunner().invoke(cli, argv + list(args), env={"STUB_API_KEY": "test-key"}, catch_exceptions=False)
    return result


def test_dry_run_makes_no_request(data):
    with OpenAIStub(answer_for) as stub:
        result = run_cli(data, stub, "--dry-run", "--price-in", "1", "--price-out", "2")

    assert result.exit_code == 0, result.output
    assert stub.count == 0
    assert f"would send {FAILURES} diagnosis requests" in result.output
    assert "estimated input tokens:" in result.output
    assert re.search(r"estimated cost: \d+\.\d{4} USD", result.output)
    assert not (data / "judge").exists()


def test_dry_run_without_price_says_unknown(data):
    result = run_cli(data, None, "--dry-run")

    assert result.exit_code == 0, result.output
    assert "estimated cost: unknown" in result.output


def test_second_run_makes_no_request(data):
    with OpenAIStub(answer_for) as stub:
        first = run_cli(data, stub)
        assert first.exit_code == 0, first.output
        assert stub.count == FAILURES
        second = run_cli(data, stub)

    assert second.exit_code == 0, second.output
    assert stub.count == FAILURES
    assert "nothing to send" in second.output
    assert f"{FAILURES} already stored" in second.output


def test_run_leaves_judge_diagnoses(data):
    with OpenAIStub(answer_for) as stub:
        result = run_cli(data, stub, "--max-concurrency", "4")
    assert result.exit_code == 0, result.output

    results = load_results(data)
    diagnoses = stored_diagnoses(results, data)

    assert len(diagnoses) == FAILURES
    first = next(item for item in diagnoses if item.key == ("toy", "m1", "q-004"))
    assert first.kind == "judge"
    assert first.diagnoser == JUDGE
    assert first.prompt_version == "diagnose-v1"
    assert first.title == "Off-by-one addition"
    assert first.evidence[0].field == "output"
    assert first.evidence[0].text == "ANSWER[m1/q-004]"
    output = results.rows.set_index(["model", "instance_id"]).loc[("m1", "q-004"), "output"]
    assert output[first.evidence[0].start:first.evidence[0].end] == "ANSWER[m1/q-004]"
    assert first.details["first_error"]["criterion_text"] == "Adds one to the number."
    assert first.details["criteria"][1]["span"] is None
    assert first.details["peer_model"] == "m2"  # the only model that answers q-004 correctly
    assert first.details["provenance"]["judge"] == JUDGE
    assert first.details["provenance"]["tokens_in"] > 0


def test_peer_answer_is_a_correct_output(data):
    with OpenAIStub(answer_for) as stub:
        run_cli(data, stub)

    bodies = {wrong_token(body): body["messages"][1]["content"] for body in stub.requests}
    # q-001: m2 and m3 both fail, so no model answered it correctly.
    assert "CORRECT ANSWER" not in bodies["ANSWER[m1/q-001]"]
    # q-006: m2 and m3 are both right; the peer block holds one of their outputs.
    assert re.search(r"CORRECT ANSWER\nWorking it out\. ANSWER\[m[23]/q-006\] The sum is 7\.", bodies["ANSWER[m1/q-006]"])


def test_no_peer_answer_switch(data):
    with OpenAIStub(answer_for) as stub:
        result = run_cli(data, stub, "--no-peer-answer")

    assert result.exit_code == 0, result.output
    assert stub.count == FAILURES
    assert all("CORRECT ANSWER" not in body["messages"][1]["content"] for body in stub.requests)


def test_sample_ratio_per_model_and_dataset(data):
    with OpenAIStub(answer_for) as stub:
        result = run_cli(data, stub, "--sample-ratio", "0.5", "--seed", "7")
        assert result.exit_code == 0, result.output
        first = sorted(wrong_token(body) for body in stub.requests)
        again = run_cli(data, stub, "--sample-ratio", "0.5", "--seed", "7")

    # ceil(0.5 * 30) + ceil(0.5 * 15) + ceil(0.5 * 20)
    assert len(first) == 15 + 8 + 10
    assert sum(token.startswith("ANSWER[m2/") for token in first) == 8
    assert "nothing to send" in again.output


def test_dataset_and_model_filters(data):
    with OpenAIStub(answer_for) as stub:
        result = run_cli(data, stub, "--model", "m2")

    assert result.exit_code == 0, result.output
    assert stub.count == 15
    assert all(wrong_token(body).startswith("ANSWER[m2/") for body in stub.requests)


def test_unknown_model_filter_is_rejected(data):
    result = run_cli(data, None, "--model", "nope", "--dry-run")

    assert result.exit_code != 0
    assert "nope" in result.output


def test_budget_stops_the_run(data):
    with OpenAIStub(answer_for) as stub:
        result = run_cli(data, stub, "--price-in", "1000", "--price-out", "1000", "--budget-usd", "4",
                         "--max-concurrency", "1")

    assert result.exit_code == 0, result.output
    assert "budget of 4.0 USD reached" in result.output
    assert 1 <= stub.count < FAILURES
    records = read_records(data / "judge").records
    assert len(records) == stub.count
    assert sum(record["cost_usd"] for record in records) <= 4.0


def test_judge_failures_are_listed_as_undiagnosed(data):
    def script(body):
        if wrong_token(body) == "ANSWER[m1/q-002]":
            return "not JSON at all"
        return answer_for(body)

    with OpenAIStub(script) as stub:
        result = run_cli(data, stub, "--max-attempts", "2")
    assert result.exit_code == 0, result.output
    assert "1 requests are stored as judge failures" in result.output

    results = load_results(data)
    failure = [item for item in stored_diagnoses(results, data) if item.kind == "judge-failure"]
    assert [item.key for item in failure] == [("toy", "m1", "q-002")]
    assert "not valid JSON" in failure[0].summary
    outcome = diagnose(results)
    assert any(item.kind == "judge-failure" and item.key == ("toy", "m1", "q-002") for item in outcome.items)
    # A failed judge call never decides a category: a check finding does, or nothing (undiagnosed).
    primary = outcome.primary.get(("toy", "m1", "q-002"))
    assert primary is None or primary.kind == "check"


def test_changed_output_invalidates_stored_answer(data):
    with OpenAIStub(answer_for) as stub:
        run_cli(data, stub, "--model", "m1")
    path = data / "results" / "toy" / "m1.jsonl"
    lines = path.read_text().splitlines()
    row = json.loads(lines[5])
    row["output"] += " (edited)"
    lines[5] = json.dumps(row)
    path.write_text("\n".join(lines) + "\n")

    keys = {item.key for item in stored_diagnoses(load_results(data), data)}

    assert ("toy", "m1", "q-005") not in keys
    assert ("toy", "m1", "q-004") in keys
    assert len(keys) == INSTANCES - 1


def test_newest_answer_wins_across_judges(data):
    with OpenAIStub(answer_for) as stub:
        run_cli(data, stub, "--model", "m2")
        result = CliRunner().invoke(cli, [
            "diagnose", "--data", str(data), "--judge", "openai/second-judge", "--api-base", stub.api_base,
            "--api-key-env", "STUB_API_KEY", "--model", "m2",
        ], env={"STUB_API_KEY": "test-key"}, catch_exceptions=False)
    assert result.exit_code == 0, result.output

    diagnoses = stored_diagnoses(load_results(data), data)

    assert len(diagnoses) == 15
    assert {item.diagnoser for item in diagnoses} == {"openai/second-judge"}


def test_judge_from_environment(data):
    with OpenAIStub(answer_for) as stub:
        result = CliRunner().invoke(cli, [
            "diagnose", "--data", str(data), "--api-base", stub.api_base, "--api-key-env", "STUB_API_KEY",
            "--model", "m3",
        ], env={"STUB_API_KEY": "test-key", "ATLAS_JUDGE": "openai/env-judge"}, catch_exceptions=False)

    assert result.exit_code == 0, result.output
    assert {body["model"] for body in stub.requests} == {"env-judge"}


def test_missing_api_key_variable_is_reported(data):
    result = CliRunner().invoke(cli, [
        "diagnose", "--data", str(data), "--judge", JUDGE, "--api-key-env", "NO_SUCH_VARIABLE_FOR_TESTS",
    ])

    assert result.exit_code != 0
    assert "NO_SUCH_VARIABLE_FOR_TESTS" in result.output


def _store_lines(data: Path) -> int:
    root = data / "judge"
    return sum(path.read_bytes().count(b"\n") for path in root.rglob("*.jsonl")) if root.exists() else 0


def test_kill_mid_run_then_resume(tmp_path):
    data = make_data(tmp_path / "data")
    env = {**os.environ, "STUB_API_KEY": "test-key", "LITELLM_OFFLINE_MODE": "true"}
    argv = [sys.executable, "-m", "atlas_builder", "-q", "diagnose", "--data", str(data), "--judge", JUDGE,
            "--api-key-env", "STUB_API_KEY", "--max-concurrency", "2", "--include-explained"]

    with OpenAIStub(lambda body: Reply(content=answer_for(body), delay=0.2)) as stub:
        argv += ["--api-base", stub.api_base]
        process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while _store_lines(data) < 6 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert process.poll() is None, "the run ended before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
        process.wait()

        before = read_records(data / "judge").records
        completed = {record["key"] for record in before if record["ok"]}
        completed_tokens = {"ANSWER[{model}/{instance_id}]".format(**record["subject"]) for record in before}
        sent_before = stub.count

        resumed = subprocess.run(argv, env=env, capture_output=True, timeout=240)
        assert resumed.returncode == 0, resumed.stderr.decode()
        after = stub.requests[sent_before:]
        final = subprocess.run(argv, env=env, capture_output=True, timeout=240)

    assert process.returncode == -signal.SIGKILL
    assert len(completed) >= 6
    after_tokens = [wrong_token(body) for body in after]
    resent = [token for token in after_tokens if token in completed_tokens]
    assert resent == []
    every_failure = {f"ANSWER[{model}/q-{index:03d}]" for model in MODELS for index in range(INSTANCES)
                     if not is_correct(model, index)}
    assert set(after_tokens) == every_failure - completed_tokens
    # Besides the resumed run's requests, the stub may read at most the killed run's 2 requests in flight.
    assert len(after_tokens) - len(set(after_tokens)) <= 2
    records = read_records(data / "judge")
    assert records.invalid_lines == 0
    keys = [record["key"] for record in records.records]
    assert len(keys) == len(set(keys)) == FAILURES
    assert all(record["ok"] for record in records.records)
    assert final.returncode == 0
    assert stub.count == sent_before + len(after)  # the third run sent nothing


def test_stored_diagnoses_do_not_import_litellm(data):
    with OpenAIStub(answer_for) as stub:
        run_cli(data, stub, "--model", "m3")
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from atlas_builder.diagnose.judge import stored_diagnoses\n"
        "from atlas_builder.results.load import load_results\n"
        f"data = Path({str(data)!r})\n"
        "found = stored_diagnoses(load_results(data), data)\n"
        "print(len(found), 'litellm' in sys.modules)\n"
    )

    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["20", "False"]


def partial_findings(results, summary: str) -> list:
    """One partial check finding per failure of m2, with ``summary`` as its text."""
    failures = results.failures()
    failures = failures[failures["model"] == "m2"]
    return [
        Diagnosis(dataset, model, instance_id, "check:example", "check", "Example finding", summary)
        for dataset, model, instance_id in zip(failures["dataset"], failures["model"], failures["instance_id"])
    ]


def test_changed_findings_keep_stored_answers(data, monkeypatch):
    monkeypatch.setattr(checks_module, "run_checks_cached", lambda results: partial_findings(results, "old wording"))
    with OpenAIStub(answer_for) as stub:
        first = run_cli(data, stub, "--model", "m2")
        assert first.exit_code == 0, first.output
        assert stub.count == 15
        assert all("old wording" in body["messages"][1]["content"] for body in stub.requests)

        # A change in the checks' code changes the findings, and with them every exact key.
        monkeypatch.setattr(checks_module, "run_checks_cached", lambda results: partial_findings(results, "new wording"))
        dry = run_cli(data, stub, "--model", "m2", "--dry-run")
        again = run_cli(data, stub, "--model", "m2")
        sent_before_refresh = stub.count

        results = load_results(data)
        kept = stored_diagnoses(results, data, check_findings=partial_findings(results, "new wording"))
        unflagged = stored_diagnoses(results, data)

        refreshed = run_cli(data, stub, "--model", "m2", "--refresh-changed-findings")

    assert dry.exit_code == 0, dry.output
    assert "15 already stored; 0 to send" in dry.output
    assert "would send 0 diagnosis requests" in dry.output
    assert "15 of the stored answers were made when the checks reported other findings" in dry.output
    assert "nothing to send" in again.output
    assert sent_before_refresh == 15
    assert len(kept) == 15
    assert all(item.kind == "judge" for item in kept)
    assert all(item.details.get("findings_changed") is True for item in kept)
    assert kept[0].details["automatic_findings"] == [{"title": "Example finding", "summary": "old wording"}]
    assert len(unflagged) == 15
    assert not any("findings_changed" in item.details for item in unflagged)
    assert refreshed.exit_code == 0, refreshed.output
    assert stub.count == 30
    assert all("new wording" in body["messages"][1]["content"] for body in stub.requests[15:])
    latest = stored_diagnoses(results, data, check_findings=partial_findings(results, "new wording"))
    assert len(latest) == 15
    assert not any("findings_changed" in item.details for item in latest)
    assert latest[0].details["automatic_findings"] == [{"title": "Example finding", "summary": "new wording"}]


def test_records_without_core_key_get_no_fallback(data, monkeypatch):
    monkeypatch.setattr(checks_module, "run_checks_cached", lambda results: partial_findings(results, "old wording"))
    with OpenAIStub(answer_for) as stub:
        run_cli(data, stub, "--model", "m2")
    # Rewrite the store as a version without core keys wrote it.
    for path in (data / "judge").rglob("*.jsonl"):
        records = [json.loads(line) for line in path.read_text().splitlines()]
        assert all("core_key" in record for record in records)
        path.write_text("".join(json.dumps({k: v for k, v in record.items() if k != "core_key"}) + "\n"
                                for record in records))
    monkeypatch.setattr(checks_module, "run_checks_cached", lambda results: partial_findings(results, "new wording"))

    dry = run_cli(data, None, "--model", "m2", "--dry-run")
    results = load_results(data)
    kept = stored_diagnoses(results, data, check_findings=partial_findings(results, "new wording"))

    assert "0 already stored; 15 to send" in dry.output
    # The build still rebuilds each old record's messages from its stored findings.
    assert len(kept) == 15
    assert all(item.details.get("findings_changed") is True for item in kept)


def test_changed_reference_is_logged_as_content_change(data, caplog, monkeypatch):
    with OpenAIStub(answer_for) as stub:
        run_cli(data, stub, "--model", "m1")
    # The CLI's logging set-up stops propagation to the root logger, where caplog listens.
    monkeypatch.setattr(logging.getLogger("atlas_builder"), "propagate", True)
    path = data / "results" / "toy" / "m1.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[3]["reference"] = "a new reference"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))

    with caplog.at_level(logging.INFO, logger="atlas_builder.diagnose.judge.stored"):
        keys = {item.key for item in stored_diagnoses(load_results(data), data)}

    assert ("toy", "m1", "q-003") not in keys
    assert len(keys) == INSTANCES - 1
    assert "1 whose failure's input, output, reference or dataset changed" in caplog.text


def test_total_budget_counts_earlier_runs(data):
    prices = ("--price-in", "1000", "--price-out", "1000", "--max-concurrency", "1")
    with OpenAIStub(answer_for) as stub:
        first = run_cli(data, stub, *prices, "--budget-usd", "2")
        after_first = stub.count
        spent_first = sum(record["cost_usd"] for record in read_records(data / "judge").records)
        second = run_cli(data, stub, *prices, "--budget-usd", "100", "--total-budget-usd", "4")
        after_second = stub.count
        third = run_cli(data, stub, *prices, "--total-budget-usd", "4")

    assert first.exit_code == 0, first.output
    assert 1 <= after_first < FAILURES
    assert 0 < spent_first <= 2.0
    assert second.exit_code == 0, second.output
    assert "total budget of 4.0 USD for openai/stub-judge reached" in second.output
    assert after_first < after_second < FAILURES
    records = read_records(data / "judge").records
    assert len(records) == after_second
    assert sum(record["cost_usd"] for record in records) <= 4.0
    # The per-run budget alone would let a third run spend 4 USD more; the total budget does not.
    assert third.exit_code == 0, third.output
    assert "total budget of 4.0 USD" in third.output
    assert stub.count == after_second


def test_total_budget_ignores_other_judges(tmp_path):
    from atlas_builder.diagnose.judge.store import JudgeStore

    with JudgeStore(tmp_path) as store:
        for judge, cost in (("a", 1.5), ("a", None), ("b", 7.0), ("a", 0.25)):
            store.append({"key": f"{judge}{cost}", "purpose": "taxonomy-induce", "judge": judge, "prompt_version": "v",
                          "subject": None, "ok": True, "answer": {}, "cost_usd": cost})
    reopened = JudgeStore(tmp_path)

    assert reopened.recorded_cost("a") == 1.75
    assert reopened.recorded_cost("b") == 7.0
    assert reopened.recorded_cost("c") == 0.0
