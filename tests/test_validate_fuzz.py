"""Fuzz validation: hundreds of malformed files each get a clear problem with a line, and nothing is written."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from atlas_builder.results import validate_paths
from atlas_builder.results.load import read_result_file
from atlas_builder.results.schema import MAX_FIELD_CHARS, MAX_LINE_BYTES, check_result_object, parse_result_line
from atlas_builder.results.write import result_line

DATASET = {
    "id": "toy", "name": "Toy", "description": "A toy dataset.", "task_type": "short_answer", "metric": "exact_match",
    "threshold": 1, "source": {"repository": "example/toy"}, "license": "MIT", "score_range": [0, 1],
}
GOOD = {"id": "q1", "input": "What is 2+2?", "output": "4", "score": 1, "reference": "4"}
GOOD_LINE = json.dumps(GOOD).encode()


def line_with(**changes: object) -> bytes:
    obj = {**GOOD, **changes}
    return json.dumps(obj).encode()


def without(key: str) -> bytes:
    return json.dumps({k: v for k, v in GOOD.items() if k != key}).encode()


def malformed_result_files() -> list[tuple[str, bytes]]:
    """Return (case name, file bytes) pairs; every file is invalid in one way."""
    cases: list[tuple[str, bytes]] = []
    # Broken JSON: every truncation of a valid line, and junk.
    for cut in range(1, len(GOOD_LINE) - 1, 2):
        cases.append((f"truncated-at-{cut}", GOOD_LINE[:cut] + b"\n"))
    for junk in [b"{", b"}", b"{]", b"{'id': 'q1'}", b"{\"id\": \"q1\",}", b"nul", b"{\"id\" \"q1\"}", b"\x00\x00",
                 b"{\"id\": \"q1\"} {\"id\": \"q2\"}", b"<html>", b"--- yaml: true", b"{\"a\":1}}"]:
        cases.append((f"junk-{junk[:12]!r}", junk + b"\n"))
    # Not an object.
    for value in [b"[]", b"\"text\"", b"1", b"null", b"true", b"[{\"id\": \"q1\"}]"]:
        cases.append((f"not-object-{value!r}", value + b"\n"))
    # Missing and unknown fields.
    for key in ("id", "input", "output", "score"):
        cases.append((f"missing-{key}", without(key) + b"\n"))
    cases.append(("unknown-field", line_with(extra=1) + b"\n"))
    cases.append(("unknown-field-typo", line_with(refernce="4") + b"\n"))
    # Wrong types for every field.
    wrong = {
        "id": [1, 1.5, None, True, [], {}, ["q1"]],
        "input": [1, None, True, {}, [1], [{"role": "user"}], [{"role": 1, "content": "x"}], [{"role": "user", "content": 5}], ["text"]],
        "output": [1, None, True, [], {}, ["4"]],
        "score": ["1", "high", None, True, False, [], {}, [1]],
        "reference": [4, None, True, {}, [4], ["4", 4], [None]],
        "correct": ["true", 1, 0, None, [], "yes"],
        "metadata": [[], "x", 1, True],
    }
    for key, values in wrong.items():
        for index, value in enumerate(values):
            cases.append((f"wrong-type-{key}-{index}", line_with(**{key: value}) + b"\n"))
    # NaN and infinities, as bare constants and as overflowing numbers.
    for text in [b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e999", b"1" + b"0" * 400]:
        cases.append((f"score-{text!r}", GOOD_LINE.replace(b"\"score\": 1", b"\"score\": " + text) + b"\n"))
        cases.append((f"metadata-{text!r}", GOOD_LINE[:-1] + b", \"metadata\": {\"x\": " + text + b"}}\n"))
    # Score outside the declared score_range.
    for value in [-0.5, 1.5, 100, -1e300]:
        cases.append((f"score-range-{value}", line_with(score=value) + b"\n"))
    # Huge fields and lines.
    cases.append(("huge-output", line_with(output="x" * (MAX_FIELD_CHARS + 1)) + b"\n"))
    cases.append(("huge-input", line_with(input="x" * (MAX_FIELD_CHARS + 1)) + b"\n"))
    cases.append(("huge-reference", line_with(reference=["x" * (MAX_FIELD_CHARS // 2 + 1)] * 2) + b"\n"))
    cases.append(("huge-messages", line_with(input=[{"role": "user", "content": "x"}] * 501) + b"\n"))
    cases.append(("huge-line", line_with(metadata={"blob": "y" * MAX_LINE_BYTES}) + b"\n"))
    cases.append(("deep-nesting", GOOD_LINE[:-1] + b", \"metadata\": {\"x\": " + b"[" * 100_000 + b"]" * 100_000 + b"}}\n"))
    # Invalid UTF-8 at several places.
    for index, bad in enumerate([b"\xff", b"\xc3", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80"]):
        cases.append((f"utf8-in-output-{index}", GOOD_LINE.replace(b"\"4\"", b"\"4" + bad + b"\"", 1) + b"\n"))
        cases.append((f"utf8-in-key-{index}", GOOD_LINE.replace(b"\"output\"", b"\"out" + bad + b"\"", 1) + b"\n"))
    # Unpaired surrogate escapes.
    for index, escape in enumerate([b"\\ud800", b"\\udfff", b"\\ud83d x"]):
        cases.append((f"surrogate-{index}", GOOD_LINE.replace(b"\"4\"", b"\"4" + escape + b"\"", 1) + b"\n"))
    # Duplicate ids.
    cases.append(("duplicate-id", GOOD_LINE + b"\n" + GOOD_LINE + b"\n"))
    cases.append(("duplicate-id-later", GOOD_LINE + b"\n" + line_with(id="q2") + b"\n" + line_with(output="5") + b"\n"))
    cases.append(("duplicate-id-escaped", GOOD_LINE + b"\n" + GOOD_LINE.replace(b"\"q1\"", b"\"\\u00711\"") + b"\n"))
    # Path-like and otherwise invalid ids.
    for index, bad_id in enumerate(["../x", "..", "../../etc/passwd", "a/b", "/abs", "a\\b", "C:x", "x\x00y", "Upper", "",
                                    " ", "a..b", "-a", "a-", ".hidden", "x" * 81, "é", "a b", "%2e%2e", "q1\n", "~root", "a*"]):
        cases.append((f"bad-id-{index}", line_with(id=bad_id) + b"\n"))
    # Byte order marks and CRLF line endings.
    cases.append(("bom-first-line", b"\xef\xbb\xbf" + GOOD_LINE + b"\n"))
    cases.append(("bom-second-line", GOOD_LINE + b"\n\xef\xbb\xbf" + line_with(id="q2") + b"\n"))
    cases.append(("crlf", GOOD_LINE + b"\r\n" + line_with(id="q2") + b"\r\n"))
    cases.append(("crlf-last-line", GOOD_LINE + b"\n" + line_with(id="q2") + b"\r\n"))
    # Empty files.
    for index, empty in enumerate([b"", b"\n", b"\n\n\n", b"   \n\t\n"]):
        cases.append((f"empty-{index}", empty))
    # One bad line among good ones.
    for index in range(10):
        good = [line_with(id=f"q{n}") for n in range(10)]
        good[index] = good[index][:-3]
        cases.append((f"one-bad-line-{index}", b"\n".join(good) + b"\n"))
    return cases


def malformed_metadata_files() -> list[tuple[str, str, bytes]]:
    """Return (case name, folder, file bytes) pairs of invalid dataset and model metadata."""
    cases: list[tuple[str, str, bytes]] = []

    def dataset(**changes: object) -> bytes:
        obj = {**DATASET, **changes}
        return yaml.safe_dump({k: v for k, v in obj.items() if v is not ...}).encode()

    for key in ("name", "description", "task_type", "metric", "threshold", "source", "license"):
        cases.append((f"dataset-missing-{key}", "datasets", dataset(**{key: ...})))
        cases.append((f"dataset-placeholder-{key}", "datasets", dataset(**{key: "TODO: fill in"})))
    for key, value in [("task_type", "essay"), ("threshold", "high"), ("threshold", float("nan")), ("threshold", True),
                       ("source", "github"), ("source", {"commit": "abc"}), ("publishing", "hidden"),
                       ("publishing", {"text": "secret"}), ("publishing", {"excerpt_chars": -1}), ("aliases", "one"),
                       ("score_range", [1]), ("score_range", "0-1"), ("id", "other"), ("id", "../toy"), ("colour", "red"),
                       ("name", 5)]:
        cases.append((f"dataset-{key}-{value!r}", "datasets", dataset(**{key: value})))
    for index, text in enumerate([b"id: [unclosed", b"- a\n- b\n", b"just text", b"\xff\xfe", b"id: toy\n\tname: tab",
                                  b"x" * 1_000_001]):
        cases.append((f"dataset-broken-{index}", "datasets", text))
    model = {"id": "m1", "name": "Model"}
    for key, value in [("name", None), ("id", "M1"), ("sources", "x"), ("sources", [{"url": "x"}]), ("family", 3), ("license", "TODO: licence")]:
        cases.append((f"model-{key}-{value!r}", "models", yaml.safe_dump({**model, key: value}).encode()))
    return cases


def tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(str(path.relative_to(root)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("fuzz") / "data"
    (data / "datasets").mkdir(parents=True)
    (data / "models").mkdir()
    (data / "datasets" / "toy.yaml").write_text(yaml.safe_dump(DATASET))
    (data / "models" / "m1.yaml").write_text(yaml.safe_dump({"id": "m1", "name": "Model One"}))
    result_files = malformed_result_files()
    for index, (_, content) in enumerate(result_files):
        folder = data / "results" / "toy"
        folder.mkdir(parents=True, exist_ok=True)
        (data / "models" / f"f{index:03d}.yaml").write_text(yaml.safe_dump({"id": f"f{index:03d}", "name": "Fuzz"}))
        (folder / f"f{index:03d}.jsonl").write_bytes(content)
    for index, (_, folder, content) in enumerate(malformed_metadata_files()):
        stem = "toy" if folder == "datasets" else "m1"
        case_dir = data.parent / f"meta{index:03d}" / "data" / folder
        case_dir.mkdir(parents=True)
        (case_dir / f"{stem}.yaml").write_bytes(content)
    return data


def test_fuzz_case_count() -> None:
    assert len(malformed_result_files()) + len(malformed_metadata_files()) >= 200


@pytest.mark.parametrize(("index", "name"), [(index, name) for index, (name, _) in enumerate(malformed_result_files())])
def test_malformed_result_file(data_root: Path, index: int, name: str) -> None:
    path = data_root / "results" / "toy" / f"f{index:03d}.jsonl"
    before = tree_digest(data_root.parent)
    problems = validate_paths([path])
    assert problems, f"{name}: no problem reported"
    assert all(problem.path == str(path) for problem in problems)
    assert all(problem.line is not None for problem in problems), [str(problem) for problem in problems]
    assert all(problem.message and problem.fix for problem in problems)
    assert tree_digest(data_root.parent) == before


@pytest.mark.parametrize(("index", "name"), [(index, name) for index, (name, _, _) in enumerate(malformed_metadata_files())])
def test_malformed_metadata_file(data_root: Path, index: int, name: str) -> None:
    _, folder, _ = malformed_metadata_files()[index]
    path = data_root.parent / f"meta{index:03d}" / "data" / folder / ("toy.yaml" if folder == "datasets" else "m1.yaml")
    before = tree_digest(path.parent)
    problems = validate_paths([path])
    assert problems, f"{name}: no problem reported"
    assert all(problem.path == str(path) and problem.message for problem in problems)
    assert tree_digest(path.parent) == before


def test_whole_tree_validation_writes_nothing(data_root: Path) -> None:
    before = tree_digest(data_root.parent)
    problems = validate_paths([data_root])
    bad_files = {problem.path for problem in problems}
    assert len(bad_files) == len(malformed_result_files())
    assert tree_digest(data_root.parent) == before


# Property tests.

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_give_object_or_problem(raw: bytes) -> None:
    obj, problems = parse_result_line(raw, "f.jsonl", 7)
    assert obj is not None or problems
    assert all(problem.line == 7 and problem.message for problem in problems)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["id", "input", "output", "score", "reference", "correct", "metadata", "x"]), json_values))
def test_any_object_checks_without_error(obj: dict) -> None:
    problems = check_result_object(obj, "f.jsonl", 1)
    if not all(key in obj for key in ("id", "input", "output", "score")):
        assert problems


slugs = st.from_regex(r"[a-z0-9]([a-z0-9_-]{0,20}[a-z0-9])?", fullmatch=True)
texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=200)
rows = st.fixed_dictionaries(
    {"id": slugs, "input": texts | st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "system"]), "content": texts}), min_size=1, max_size=3),
     "output": texts, "score": st.floats(0, 1)},
    optional={"reference": texts | st.lists(texts, max_size=3), "correct": st.booleans(),
              "metadata": st.dictionaries(st.text(max_size=5), st.integers() | texts, max_size=3)},
)


@settings(max_examples=150, deadline=None)
@given(st.lists(rows, min_size=1, max_size=8, unique_by=lambda row: row["id"]))
def test_written_rows_read_back(tmp_path_factory: pytest.TempPathFactory, generated: list[dict]) -> None:
    path = tmp_path_factory.mktemp("rt") / "m.jsonl"
    path.write_bytes(("\n".join(result_line(row) for row in generated) + "\n").encode("utf-8"))
    read, problems, _ = read_result_file(path, None, score_range=(0.0, 1.0))
    assert problems == []
    assert [row["instance_id"] for row in read] == [row["id"] for row in generated]
    assert [row["output"] for row in read] == [row["output"] for row in generated]
