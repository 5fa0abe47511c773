"""The judge store's append-only file format, and locating quoted evidence in an output."""

from __future__ import annotations

import json
import logging

import pytest
from hypothesis import given, strategies as st

from atlas_builder.diagnose.judge.store import (
    JudgeStore,
    StoreLockedError,
    read_records,
    record_settles,
    request_key,
    shard_path,
)
from atlas_builder.diagnose.judge.stored import clean_quote, locate_quote

SUBJECT = {"dataset": "toy", "model": "m1", "instance_id": "q-1"}


def record(key: str, ok: bool = True, **extra) -> dict:
    return {"key": key, "purpose": "diagnose", "judge": "j", "prompt_version": "diagnose-v1",
            "subject": SUBJECT, "ok": ok, "answer": {"n": 1} if ok else None, **extra}


def test_append_then_read(tmp_path):
    with JudgeStore(tmp_path) as store:
        path = store.append(record("a"))
        store.append(record("b"))

    assert path == tmp_path / "diagnose" / "toy" / "m1.jsonl"
    report = read_records(tmp_path)
    assert [item["key"] for item in report.records] == ["a", "b"]
    assert report.records[0]["format"] == 1
    assert path.read_bytes().endswith(b"\n")


def test_deferred_sync_is_readable_at_once(tmp_path):
    store = JudgeStore(tmp_path)
    store.append(record("a"), sync=False)

    assert store.needs_sync
    assert [item["key"] for item in read_records(tmp_path).records] == ["a"]
    store.sync()
    assert not store.needs_sync
    store.close()


def test_shard_without_subject_is_monthly(tmp_path):
    path = shard_path(tmp_path, "taxonomy-induce", None, "2026-03-05T10:00:00Z")

    assert path == tmp_path / "taxonomy-induce" / "2026-03.jsonl"


def test_shard_rejects_unsafe_ids(tmp_path):
    with pytest.raises(ValueError, match="dataset id"):
        shard_path(tmp_path, "diagnose", {"dataset": "../etc", "model": "m"}, "2026-03-05")


def test_torn_last_line_is_skipped_and_terminated(tmp_path, caplog):
    with JudgeStore(tmp_path) as store:
        path = store.append(record("a"))
    with path.open("ab") as handle:
        handle.write(json.dumps(record("torn")).encode()[:25])  # a write cut by kill -9

    with caplog.at_level(logging.WARNING):
        store = JudgeStore(tmp_path)
    assert store.report.torn_lines == 1
    assert "torn last line" in caplog.text
    assert store.get("a") is not None
    store.append(record("b"))
    store.close()

    report = read_records(tmp_path)
    assert [item["key"] for item in report.records] == ["a", "b"]
    assert report.invalid_lines == 1  # the torn fragment, now a line of its own
    assert report.torn_lines == 0


def test_invalid_lines_get_one_warning_per_file(tmp_path, caplog):
    path = tmp_path / "diagnose" / "toy" / "m1.jsonl"
    path.parent.mkdir(parents=True)
    lines = ['{"judge_model": "other format"}', "not json", json.dumps(record("a")), "[1, 2]"]
    path.write_text("\n".join(lines) + "\n")

    with caplog.at_level(logging.WARNING):
        report = read_records(tmp_path)

    assert [item["key"] for item in report.records] == ["a"]
    assert report.invalid_lines == 3
    assert len(caplog.records) == 1
    assert "skipping 3 invalid line(s); the first is line 1" in caplog.text


def test_answer_is_not_replaced_by_later_failure(tmp_path):
    with JudgeStore(tmp_path) as store:
        store.append(record("a", ok=True))
        store.append(record("a", ok=False, error="boom", error_kind="transient"))

    assert JudgeStore(tmp_path).get("a")["ok"] is True


def test_second_writer_is_locked_out(tmp_path):
    first = JudgeStore(tmp_path)
    first.lock()
    second = JudgeStore(tmp_path)
    try:
        with pytest.raises(StoreLockedError, match="another process"):
            second.lock()
    finally:
        first.close()
        second.close()


@pytest.mark.parametrize(
    ("stored", "retry_failed", "settled"),
    [
        (None, False, False),
        ({"ok": True}, True, True),
        ({"ok": False, "error_kind": "transient"}, False, False),
        ({"ok": False, "error_kind": "answer"}, False, True),
        ({"ok": False, "error_kind": "answer"}, True, False),
        ({"ok": False, "error_kind": "request"}, False, True),
    ],
)
def test_record_settles(stored, retry_failed, settled):
    assert record_settles(stored, retry_failed) is settled


def test_request_key_covers_every_part():
    messages = [{"role": "user", "content": "x"}]
    base = request_key(messages, "judge-a", "diagnose-v1", {"type": "object"})

    assert base == request_key([{"content": "x", "role": "user"}], "judge-a", "diagnose-v1", {"type": "object"})
    assert base != request_key([{"role": "user", "content": "y"}], "judge-a", "diagnose-v1", {"type": "object"})
    assert base != request_key(messages, "judge-b", "diagnose-v1", {"type": "object"})
    assert base != request_key(messages, "judge-a", "diagnose-v2", {"type": "object"})
    assert base != request_key(messages, "judge-a", "diagnose-v1", {"type": "array"})


@pytest.mark.parametrize(
    ("quote", "text", "span"),
    [
        ("sum is 5", "The sum is 5.", (4, 12)),
        ('"sum is 5"', "The sum is 5.", (4, 12)),
        ("SUM  is\n5", "The sum is 5.", (4, 12)),
        ("The sum ... is 5", "The sum of both numbers is 5.", (0, 28)),
        ("nowhere", "The sum is 5.", None),
        ("", "The sum is 5.", None),
        ("\x85", "", None),
        ("...", "The sum is 5.", None),
    ],
    ids=["exact", "quoted", "case-and-space", "ellipsis", "absent", "empty", "unicode-space", "only-ellipsis"],
)
def test_locate_quote(quote, text, span):
    assert locate_quote(quote, text) == span


@given(st.text(max_size=200), st.data())
def test_locate_quote_finds_any_substring(text, data):
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, len(text)))
    quote = text[start:end]

    span = locate_quote(quote, text)

    stripped = clean_quote(quote)
    if not stripped:
        assert span is None
    else:
        assert span is not None
        assert text[span[0]:span[1]] == stripped


@given(st.text(max_size=200), st.text(min_size=1, max_size=40))
def test_located_span_lies_inside_text(text, quote):
    span = locate_quote(quote, text)

    if span is not None:
        assert 0 <= span[0] < span[1] <= len(text)
