"""Results.outputs: model outputs per result file, from the rows or read back from disk."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from atlas_factory import write_atlas

from atlas_builder.records import RESULT_COLUMNS, UnknownResultFileError
from atlas_builder.results import load_results
from atlas_builder.results.outputs import ResultFileChangedError

ALPHA = [
    {"id": "q2", "input": "Pick A or B.", "output": "A <b>bold</b>", "score": 0},
    {"id": "q1", "input": "Pick A or B.", "output": "B", "score": 1},
    {"id": "q3", "input": [{"role": "user", "content": "Pick A or B."}], "output": "naïve 🙂 \\ \"quote\"", "score": 1},
]
BETA = [
    {"id": "q1", "input": "Pick A or B.", "output": "", "score": 0},
    {"id": "q2", "input": "Pick A or B.", "output": "C", "score": 0},
]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return write_atlas(tmp_path / "data", {("quiz", "alpha"): ALPHA, ("quiz", "beta"): BETA})


@pytest.fixture
def cache_off(monkeypatch):
    monkeypatch.setenv("ATLAS_CACHE_DIR", "off")


def expected(rows: list[dict]) -> pd.Series:
    return pd.Series([row["output"] for row in rows], index=pd.Index([row["id"] for row in rows], name="instance_id"),
                     name="output")


def edit(data: Path, model: str, rows: list[dict]) -> None:
    path = data / "results" / "quiz" / f"{model}.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def check_both_modes(data: Path) -> None:
    memory = load_results(data)
    disk = load_results(data, outputs="disk")
    for model, rows in (("alpha", ALPHA), ("beta", BETA)):
        pd.testing.assert_series_equal(memory.outputs("quiz", model), expected(rows))
        pd.testing.assert_series_equal(disk.outputs("quiz", model), expected(rows))


def test_outputs_in_file_order_with_cache(data):
    check_both_modes(data)  # the first load writes the cache entries
    check_both_modes(data)  # the second load reads them


def test_outputs_in_file_order_without_cache(data, cache_off):
    check_both_modes(data)


def test_disk_rows_have_no_output_column(data):
    memory = load_results(data)
    disk = load_results(data, outputs="disk")

    assert "output" not in disk.rows.columns
    assert list(disk.rows.columns) == [name for name in RESULT_COLUMNS if name != "output"]
    pd.testing.assert_frame_equal(disk.rows, memory.rows.drop(columns="output"))


def test_memory_mode_has_no_reader(data):
    results = load_results(data)

    assert "output" in results.rows.columns
    assert results.output_reader is None


def test_unknown_pair_raises_key_error(data):
    for mode in ("memory", "disk"):
        results = load_results(data, outputs=mode)

        with pytest.raises(UnknownResultFileError) as caught:
            results.outputs("quiz", "gamma")

        assert isinstance(caught.value, KeyError)
        assert str(caught.value) == ("no result file for dataset 'quiz' and model 'gamma' was loaded; "
                                     "expected results/quiz/gamma.jsonl in the data folder")


def test_cached_outputs_survive_file_edit(data):
    results = load_results(data, outputs="disk")
    edit(data, "alpha", [{**row, "output": "changed"} for row in ALPHA])

    # The cache entry is keyed by the loaded bytes, so it still contains the loaded outputs.
    pd.testing.assert_series_equal(results.outputs("quiz", "alpha"), expected(ALPHA))


def test_edited_file_without_cache_raises(data, cache_off):
    results = load_results(data, outputs="disk")
    edit(data, "alpha", [{**row, "output": "changed"} for row in ALPHA])

    with pytest.raises(ResultFileChangedError) as caught:
        results.outputs("quiz", "alpha")

    message = str(caught.value)
    assert str(data / "results" / "quiz" / "alpha.jsonl") in message
    assert "changed after it was loaded" in message
    assert "rerun the build" in message
    pd.testing.assert_series_equal(results.outputs("quiz", "beta"), expected(BETA))


def test_edited_file_with_missing_entry_raises(data, monkeypatch, tmp_path):
    monkeypatch.setenv("ATLAS_CACHE_DIR", str(tmp_path / "cache"))
    results = load_results(data, outputs="disk")
    for entry in (tmp_path / "cache").glob("*/*.parquet"):
        entry.unlink()
    edit(data, "alpha", [{**row, "output": "changed"} for row in ALPHA])

    with pytest.raises(ResultFileChangedError, match="alpha.jsonl changed after it was loaded"):
        results.outputs("quiz", "alpha")


def test_missing_entry_read_from_file(data, monkeypatch, tmp_path):
    monkeypatch.setenv("ATLAS_CACHE_DIR", str(tmp_path / "cache"))
    results = load_results(data, outputs="disk")
    entries = list((tmp_path / "cache").glob("*/*.parquet"))
    for entry in entries:
        entry.unlink()

    assert len(entries) == 2
    pd.testing.assert_series_equal(results.outputs("quiz", "alpha"), expected(ALPHA))


def test_removed_file_without_cache_raises(data, cache_off):
    results = load_results(data, outputs="disk")
    (data / "results" / "quiz" / "alpha.jsonl").unlink()

    with pytest.raises(ResultFileChangedError, match="alpha.jsonl was removed after it was loaded"):
        results.outputs("quiz", "alpha")


def test_unreadable_entry_read_from_file(data, monkeypatch, tmp_path):
    monkeypatch.setenv("ATLAS_CACHE_DIR", str(tmp_path / "cache"))
    results = load_results(data, outputs="disk")
    for entry in (tmp_path / "cache").glob("*/*.parquet"):
        entry.write_bytes(b"not parquet")

    pd.testing.assert_series_equal(results.outputs("quiz", "beta"), expected(BETA))


def test_non_strict_outputs_skip_bad_lines(data):
    bad = {"id": "Q 4", "input": "Pick A or B.", "output": "invalid id", "score": 0}
    edit(data, "alpha", [*ALPHA, bad])

    for mode in ("memory", "disk"):
        results = load_results(data, strict=False, outputs=mode)

        # A file with problems gets no cache entry, so disk mode parses it again.
        pd.testing.assert_series_equal(results.outputs("quiz", "alpha"), expected(ALPHA))


def test_outputs_for_reads_each_file_once(data):
    results = load_results(data, outputs="disk")
    reader = results.output_reader
    calls: list[tuple[str, str]] = []

    def counting(file):
        calls.append((file.dataset, file.model))
        return reader(file)

    results.output_reader = counting
    keys = [("quiz", "alpha", "q3"), ("quiz", "beta", "q2"), ("quiz", "alpha", "q1"), ("quiz", "alpha", "missing")]

    found = results.outputs_for(keys)

    assert found == {("quiz", "alpha", "q3"): ALPHA[2]["output"], ("quiz", "beta", "q2"): "C",
                     ("quiz", "alpha", "q1"): "B"}
    assert calls == [("quiz", "alpha"), ("quiz", "beta")]


def test_memory_outputs_follow_new_rows(data):
    results = load_results(data)
    results.outputs("quiz", "alpha")
    results.rows = results.rows[results.rows["model"] == "beta"].reset_index(drop=True)

    pd.testing.assert_series_equal(results.outputs("quiz", "beta"), expected(BETA))
    with pytest.raises(UnknownResultFileError):
        results.outputs("quiz", "alpha")


def test_rows_without_output_need_reader(data):
    results = load_results(data, outputs="disk")
    results.output_reader = None

    with pytest.raises(ValueError, match="no output column and no output_reader"):
        results.outputs("quiz", "alpha")


def test_invalid_outputs_mode_rejected(data):
    with pytest.raises(ValueError, match="invalid outputs mode 'disc'; use 'memory' or 'disk'"):
        load_results(data, outputs="disc")
