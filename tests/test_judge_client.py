"""JudgeClient against a local OpenAI-compatible server, through the real litellm client."""

from __future__ import annotations

import asyncio
import json
import os
import time

import pytest

os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")

from openai_stub import OpenAIStub, Reply  # noqa: E402

from atlas_builder.diagnose.judge import JudgeClient, JudgeConfigError, JudgeStore  # noqa: E402
from atlas_builder.diagnose.judge.prompts import (  # noqa: E402
    DIAGNOSE_SCHEMA,
    DIAGNOSE_SCHEMA_NAME,
    check_diagnosis,
    diagnosis_messages,
)
from atlas_builder.diagnose.judge.store import read_records  # noqa: E402

pytestmark = pytest.mark.timeout(120)

JUDGE = "openai/stub-judge"


def valid_answer(evidence: str = "5") -> dict:
    return {
        "criteria": [
            {"criterion": "Adds the two numbers correctly.", "met": False, "evidence": evidence},
            {"criterion": "Gives a single final number.", "met": True, "evidence": evidence},
        ],
        "first_error": {"criterion": 1, "evidence": evidence, "explanation": "2 + 2 is 4, not 5."},
        "error_title": "Single-digit addition",
        "error_summary": "The answer adds 2 and 2 and gets 5.",
        "reference_flag": False,
        "ambiguous_flag": False,
        "flag_reason": "",
    }


def sample_messages(output: str = "5") -> list[dict]:
    return diagnosis_messages(
        task_type="math", dataset_name="Toy arithmetic", input_text="What is 2 + 2?",
        reference=["4"], output=output, peer_output="4",
    )


def make_client(tmp_path, stub, **overrides) -> JudgeClient:
    settings = dict(api_base=stub.api_base, api_key="test-key", timeout=5.0, max_attempts=3, backoff_base=0.01)
    settings.update(overrides)
    return JudgeClient(JUDGE, JudgeStore(tmp_path / "judge"), **settings)


def ask(client: JudgeClient, messages: list[dict] | None = None, **extra):
    return asyncio.run(client.complete_json(
        purpose="diagnose", prompt_version="diagnose-v1", messages=messages or sample_messages(),
        schema=DIAGNOSE_SCHEMA, schema_name=DIAGNOSE_SCHEMA_NAME,
        subject={"dataset": "toy", "model": "m1", "instance_id": "q-1"},
        request={"peer_model": "m2", "findings": []}, check=check_diagnosis, **extra,
    ))


def test_correct_answer_is_stored_with_accounting(tmp_path):
    with OpenAIStub(lambda body: valid_answer()) as stub:
        client = make_client(tmp_path, stub)
        answer = ask(client)

    assert answer.ok
    assert answer.data == valid_answer()
    assert not answer.cached
    assert answer.attempts == 1
    assert answer.tokens_in > 0
    assert answer.tokens_out > 0
    assert answer.cost_usd is None  # litellm has no price for a local model name
    body = stub.requests[0]
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"] == DIAGNOSE_SCHEMA
    assert body["messages"] == sample_messages()
    [record] = read_records(tmp_path / "judge").records
    assert record["key"] == answer.key
    assert record["judge"] == JUDGE
    assert record["prompt_version"] == "diagnose-v1"
    assert record["subject"] == {"dataset": "toy", "model": "m1", "instance_id": "q-1"}
    assert record["answer"] == valid_answer()
    assert record["tokens_in"] == answer.tokens_in
    assert record["latency_s"] >= 0
    assert record["time"].endswith("Z")
    assert (tmp_path / "judge" / "diagnose" / "toy" / "m1.jsonl").is_file()


def test_stored_answer_is_not_requested_again(tmp_path):
    with OpenAIStub(lambda body: valid_answer()) as stub:
        first = ask(make_client(tmp_path, stub))
        second = ask(make_client(tmp_path, stub))  # a new client reads the store from disk

    assert stub.count == 1
    assert second.cached
    assert second.data == first.data
    assert second.key == first.key


def test_price_override_sets_cost(tmp_path):
    with OpenAIStub(lambda body: valid_answer()) as stub:
        client = make_client(tmp_path, stub, price_in=1.0, price_out=2.0)
        answer = ask(client)

    expected = (answer.tokens_in * 1.0 + answer.tokens_out * 2.0) / 1_000_000
    assert answer.cost_usd == pytest.approx(expected)
    assert client.stats.spent_usd == pytest.approx(expected)


def test_rate_limit_honours_retry_after(tmp_path):
    arrivals: list[float] = []

    def script(body):
        arrivals.append(time.monotonic())
        if len(arrivals) == 1:
            return Reply(status=429, headers={"Retry-After": "1"})
        return valid_answer()

    with OpenAIStub(script) as stub:
        answer = ask(make_client(tmp_path, stub))

    assert answer.ok
    assert answer.attempts == 2
    assert stub.count == 2
    # The client sleeps at least Retry-After seconds after it receives the 429.
    assert arrivals[1] - arrivals[0] >= 1.0


def test_server_error_is_retried(tmp_path):
    replies = iter([Reply(status=500), Reply(status=503), valid_answer()])
    with OpenAIStub(lambda body: next(replies)) as stub:
        answer = ask(make_client(tmp_path, stub))

    assert answer.ok
    assert answer.attempts == 3
    assert stub.count == 3


def test_persistent_server_error_is_recorded_then_retried(tmp_path):
    with OpenAIStub(lambda body: Reply(status=500)) as stub:
        answer = ask(make_client(tmp_path, stub))
        assert stub.count == 3
        # A transient failure is retried by the next run.
        again = ask(make_client(tmp_path, stub))

    assert not answer.ok
    assert answer.error_kind == "transient"
    assert "500" in answer.error
    assert not again.cached
    assert stub.count == 6
    records = read_records(tmp_path / "judge").records
    assert [record["ok"] for record in records] == [False, False]


def test_slow_answer_past_timeout_is_retried(tmp_path):
    replies = iter([Reply(content=valid_answer(), delay=3.0), valid_answer()])
    with OpenAIStub(lambda body: next(replies)) as stub:
        answer = ask(make_client(tmp_path, stub, timeout=0.5))

    assert answer.ok
    assert answer.attempts == 2
    assert stub.count == 2


def test_timeouts_on_every_attempt_become_a_failure(tmp_path):
    with OpenAIStub(lambda body: Reply(content=valid_answer(), delay=2.0)) as stub:
        answer = ask(make_client(tmp_path, stub, timeout=0.3, max_attempts=2))

    assert not answer.ok
    assert answer.error_kind == "transient"
    assert "timed out" in answer.error
    assert answer.attempts == 2


def test_malformed_json_is_retried_then_recorded(tmp_path):
    with OpenAIStub(lambda body: "this is not JSON {") as stub:
        answer = ask(make_client(tmp_path, stub))
        assert stub.count == 3
        # An answer failure is settled: the next run does not send it again...
        cached = ask(make_client(tmp_path, stub))
        assert stub.count == 3
        # ...unless asked to retry failures.
        retried = ask(make_client(tmp_path, stub, retry_failed=True))

    assert not answer.ok
    assert answer.error_kind == "answer"
    assert "not valid JSON" in answer.error
    assert answer.tokens_in > 0  # rejected answers still cost tokens
    assert cached.cached and not cached.ok
    assert not retried.cached
    assert stub.count == 6


def test_truncated_answer_is_rejected(tmp_path):
    cut = json.dumps(valid_answer())[:60]
    replies = iter([Reply(content=cut, finish_reason="length"), cut, valid_answer()])
    with OpenAIStub(lambda body: next(replies)) as stub:
        answer = ask(make_client(tmp_path, stub))

    assert answer.ok
    assert answer.attempts == 3
    assert stub.count == 3
    assert "invalid_answer" not in answer.record  # an answer that finally passed keeps no rejected text


def test_truncated_answer_error_names_length(tmp_path):
    cut = json.dumps(valid_answer())[:60]
    with OpenAIStub(lambda body: Reply(content=cut, finish_reason="length")) as stub:
        answer = ask(make_client(tmp_path, stub, max_attempts=1))

    assert not answer.ok
    assert "truncated" in answer.error
    [stored] = read_records(tmp_path / "judge").records
    assert stored["invalid_answer"] == cut


def test_invalid_answer_text_is_stored_cut_and_verbatim(tmp_path):
    # Template syntax in the rejected text must come back as the same characters, never rendered.
    payload = "{{ 7 * 7 }} {% for x in range(3) %}{{ x }}{% endfor %} " + "x" * 5000
    broken = {**valid_answer(), "extra": payload}
    with OpenAIStub(lambda body: broken) as stub:
        answer = ask(make_client(tmp_path, stub, max_attempts=2))

    assert not answer.ok
    [stored] = read_records(tmp_path / "judge").records
    text = stored["invalid_answer"]
    assert len(text) == 2000
    assert text == json.dumps(broken)[:2000]
    assert "{{ 7 * 7 }} {% for x in range(3) %}{{ x }}{% endfor %}" in text
    assert "49" not in text


def test_failure_without_answer_text_stores_no_text(tmp_path):
    with OpenAIStub(lambda body: Reply(status=500)) as stub:
        answer = ask(make_client(tmp_path, stub, max_attempts=1))

    assert not answer.ok
    [stored] = read_records(tmp_path / "judge").records
    assert "invalid_answer" not in stored


@pytest.mark.parametrize(
    "broken",
    [
        {"verdict": "correct"},
        {**valid_answer(), "extra": 1},
        {key: value for key, value in valid_answer().items() if key != "error_title"},
        {**valid_answer(), "reference_flag": "no"},
        {**valid_answer(), "criteria": []},
    ],
    ids=["other-object", "extra-field", "missing-field", "wrong-type", "no-criteria"],
)
def test_schema_violation_is_rejected(tmp_path, broken):
    with OpenAIStub(lambda body: broken) as stub:
        answer = ask(make_client(tmp_path, stub, max_attempts=2))

    assert not answer.ok
    assert answer.error_kind == "answer"
    assert "schema" in answer.error
    assert stub.count == 2


def test_check_rejects_first_error_on_met_criterion(tmp_path):
    contradictory = valid_answer()
    contradictory["first_error"]["criterion"] = 2  # criterion 2 is marked as met
    replies = iter([contradictory, valid_answer()])
    with OpenAIStub(lambda body: next(replies)) as stub:
        answer = ask(make_client(tmp_path, stub))

    assert answer.ok
    assert answer.attempts == 2


def test_authentication_error_stops_the_run(tmp_path):
    with OpenAIStub(lambda body: Reply(status=401)) as stub:
        client = make_client(tmp_path, stub)
        with pytest.raises(JudgeConfigError, match="API key"):
            ask(client)

    assert stub.count == 1
    assert read_records(tmp_path / "judge").records == []


def test_bad_request_is_not_retried(tmp_path):
    with OpenAIStub(lambda body: Reply(status=400)) as stub:
        answer = ask(make_client(tmp_path, stub))

    assert not answer.ok
    assert answer.error_kind == "request"
    assert stub.count == 1


def test_budget_needs_a_price(tmp_path):
    with OpenAIStub(lambda body: valid_answer()) as stub:
        with pytest.raises(JudgeConfigError, match="price"):
            make_client(tmp_path, stub, budget_usd=1.0)


def test_connection_error_is_transient(tmp_path):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port once the probe socket is closed.
    client = JudgeClient(JUDGE, JudgeStore(tmp_path / "judge"), api_base=f"http://127.0.0.1:{port}/v1",
                         api_key="k", timeout=5.0, max_attempts=2, backoff_base=0.01)

    answer = ask(client)

    assert not answer.ok
    assert answer.error_kind == "transient"
    assert answer.attempts == 2
    assert "connection" in answer.error.lower()


class _HeaderError(Exception):
    def __init__(self, headers):
        super().__init__("rate limited")
        self.litellm_response_headers = headers


@pytest.mark.parametrize(
    ("headers", "low", "high"),
    [
        ({"retry-after": "3"}, 3.0, 3.0),
        ({"Retry-After": "0.5"}, 0.5, 0.5),
        ({"retry-after": "100000"}, 300.0, 300.0),
        ({"retry-after": "soon"}, None, None),
        ({}, None, None),
    ],
    ids=["seconds", "capitalised", "capped", "invalid", "absent"],
)
def test_retry_after_parsing(headers, low, high):
    from atlas_builder.diagnose.judge.client import _retry_after_seconds

    value = _retry_after_seconds(_HeaderError(headers))

    if low is None:
        assert value is None
    else:
        assert low <= value <= high


def test_retry_after_http_date():
    import email.utils

    from atlas_builder.diagnose.judge.client import _retry_after_seconds

    date = email.utils.formatdate(time.time() + 30, usegmt=True)
    value = _retry_after_seconds(_HeaderError({"retry-after": date}))

    assert 20 <= value <= 30


def test_client_works_across_event_loops(tmp_path):
    replies = iter([valid_answer(), valid_answer()])
    with OpenAIStub(lambda body: next(replies)) as stub:
        client = make_client(tmp_path, stub, max_concurrency=1)
        first = ask(client, sample_messages("5"))
        second = ask(client, sample_messages("6"))  # a second asyncio.run with the same client

    assert first.ok
    assert second.ok
    assert stub.count == 2
