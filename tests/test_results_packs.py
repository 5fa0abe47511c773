"""Dataset packs: a load without outputs reads one parquet file per unchanged dataset, with the same rows."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest

from atlas_builder.results import load_results, write_result_file, write_yaml


def dataset(dataset_id: str) -> dict:
    return {"id": dataset_id, "name": dataset_id.upper(), "description": "Small dataset for pack tests.",
            "task_type": "short_answer", "metric": "exact_match", "threshold": 0.5,
            "source": {"repository": "example/packs"}, "license": "CC0-1.0"}


def rows(model: str, count: int) -> list[dict]:
    return [{"id": f"q{n}", "input": f"Question {n}: <b>{n}+1</b>?", "output": f"{model} says {n}",
             "score": float(n % 2), "reference": str(n + 1), "metadata": {"n": n, "tags": ["x", model]}}
            for n in range(count)]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    for dataset_id in ("alpha", "beta"):
        write_yaml(data / "datasets" / f"{dataset_id}.yaml", dataset(dataset_id))
    for model, count in (("m1", 3), ("m2", 4), ("m3", 2)):
        write_yaml(data / "models" / f"{model}.yaml", {"id": model, "name": model.upper()})
        for dataset_id in ("alpha", "beta"):
            write_result_file(data / "results" / dataset_id / f"{model}.jsonl", rows(model, count))
    return data


def packs(cache_dir: Path) -> list[Path]:
    return sorted((cache_dir / "packs").glob("*/*.parquet"))


def summary(caplog: pytest.LogCaptureFixture) -> str:
    # The last load's summary: records of earlier loads in the same test may be captured too.
    return [record.getMessage() for record in caplog.records if record.getMessage().startswith("result cache:")][-1]


def test_pack_load_equals_file_load(data_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                    caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("ATLAS_CACHE_DIR", str(tmp_path / "cache"))
    reference = load_results(data_dir, outputs="memory", use_cache=False)
    cold = load_results(data_dir, outputs="disk")
    caplog.set_level(logging.INFO, logger="atlas_builder.results.load")
    warm = load_results(data_dir, outputs="disk")

    assert len(packs(tmp_path / "cache")) == 2
    assert "6 files read from the cache (2 datasets as one pack each, 0 partly from an earlier pack), 0 parsed" \
        in summary(caplog)
    expected = reference.rows.drop(columns="output")
    pd.testing.assert_frame_equal(cold.rows, expected, check_dtype=False)
    pd.testing.assert_frame_equal(warm.rows, expected, check_dtype=False)
    assert [(item.dataset, item.model, item.sha256, item.rows) for item in warm.files] == \
        [(item.dataset, item.model, item.sha256, item.rows) for item in reference.files]
    assert warm.outputs("beta", "m2").tolist() == [f"m2 says {n}" for n in range(4)]


def test_changed_file_rereads_its_dataset(data_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                          caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("ATLAS_CACHE_DIR", str(tmp_path / "cache"))
    load_results(data_dir, outputs="disk")
    write_result_file(data_dir / "results" / "alpha" / "m2.jsonl", rows("m2", 5))

    caplog.set_level(logging.INFO, logger="atlas_builder.results.load")
    changed = load_results(data_dir, outputs="disk")

    assert "5 files read from the cache (1 datasets as one pack each, 1 partly from an earlier pack), 1 parsed" \
        in summary(caplog)
    assert len(packs(tmp_path / "cache")) == 3
    assert changed.rows[changed.rows["dataset"] == "alpha"]["model"].value_counts().to_dict() == \
        {"m1": 3, "m2": 5, "m3": 2}
    assert changed.outputs("alpha", "m2").tolist() == [f"m2 says {n}" for n in range(5)]


def test_added_model_misses_pack(data_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ATLAS_CACHE_DIR", str(tmp_path / "cache"))
    load_results(data_dir, outputs="disk")
    write_yaml(data_dir / "models" / "m4.yaml", {"id": "m4", "name": "M4"})
    write_result_file(data_dir / "results" / "beta" / "m4.jsonl", rows("m4", 1))

    loaded = load_results(data_dir, outputs="disk")

    assert [item.model for item in loaded.files if item.dataset == "beta"] == ["m1", "m2", "m3", "m4"]
    assert loaded.rows[loaded.rows["model"] == "m4"]["instance_id"].tolist() == ["q0"]


def test_unreadable_pack_is_rewritten(data_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                      caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("ATLAS_CACHE_DIR", str(tmp_path / "cache"))
    first = load_results(data_dir, outputs="disk")
    for path in packs(tmp_path / "cache"):
        path.write_bytes(b"not parquet")

    caplog.set_level(logging.INFO, logger="atlas_builder.results.cache")
    second = load_results(data_dir, outputs="disk")

    assert any("ignoring unreadable result cache pack" in record.getMessage() for record in caplog.records)
    pd.testing.assert_frame_equal(second.rows, first.rows)
    assert all(path.read_bytes().startswith(b"PAR1") for path in packs(tmp_path / "cache"))


def test_memory_load_writes_no_pack(data_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ATLAS_CACHE_DIR", str(tmp_path / "cache"))

    load_results(data_dir, outputs="memory")

    assert packs(tmp_path / "cache") == []


def test_invalid_line_writes_no_pack(data_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ATLAS_CACHE_DIR", str(tmp_path / "cache"))
    path = data_dir / "results" / "alpha" / "m1.jsonl"
    path.write_text(path.read_text() + "{not json\n")

    loaded = load_results(data_dir, strict=False, outputs="disk")

    assert len(packs(tmp_path / "cache")) == 1
    assert len(loaded.rows[loaded.rows["dataset"] == "alpha"]) == 9


@pytest.fixture
def wide_dir(tmp_path: Path) -> Path:
    """One dataset with eleven models, so that one changed file is under a tenth of its files."""
    data = tmp_path / "wide"
    write_yaml(data / "datasets" / "alpha.yaml", dataset("alpha"))
    for number in range(1, 12):
        model = f"m{number:02d}"
        write_yaml(data / "models" / f"{model}.yaml", {"id": model, "name": model.upper()})
        write_result_file(data / "results" / "alpha" / f"{model}.jsonl", rows(model, number % 4 + 1))
    return data


def add_model(data: Path, model: str, count: int) -> None:
    write_yaml(data / "models" / f"{model}.yaml", {"id": model, "name": model.upper()})
    write_result_file(data / "results" / "alpha" / f"{model}.jsonl", rows(model, count))


def assert_same_rows(loaded, data: Path) -> None:
    reference = load_results(data, outputs="memory", use_cache=False)
    pd.testing.assert_frame_equal(loaded.rows, reference.rows.drop(columns="output"), check_dtype=False)
    assert [(item.model, item.sha256, item.rows) for item in loaded.files] == \
        [(item.model, item.sha256, item.rows) for item in reference.files]


def test_added_model_reuses_latest_pack(wide_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("ATLAS_CACHE_DIR", str(tmp_path / "cache"))
    load_results(wide_dir, outputs="disk")
    add_model(wide_dir, "m12", 3)

    caplog.set_level(logging.INFO, logger="atlas_builder.results.load")
    added = load_results(wide_dir, outputs="disk")
    after_add = summary(caplog)
    again = load_results(wide_dir, outputs="disk")

    assert "11 files read from the cache (0 datasets as one pack each, 1 partly from an earlier pack), 1 parsed" \
        in after_add
    assert "12 files read from the cache (0 datasets as one pack each, 1 partly from an earlier pack), 0 parsed" \
        in summary(caplog)
    assert len(packs(tmp_path / "cache")) == 1
    assert_same_rows(added, wide_dir)
    assert_same_rows(again, wide_dir)
    assert again.outputs("alpha", "m12").tolist() == [f"m12 says {n}" for n in range(3)]


def test_model_sorted_inside_keeps_order(wide_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ATLAS_CACHE_DIR", str(tmp_path / "cache"))
    load_results(wide_dir, outputs="disk")
    add_model(wide_dir, "m05b", 2)

    loaded = load_results(wide_dir, outputs="disk")

    assert [item.model for item in loaded.files][4:7] == ["m05", "m05b", "m06"]
    assert_same_rows(loaded, wide_dir)


def test_removed_model_reuses_latest_pack(wide_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ATLAS_CACHE_DIR", str(tmp_path / "cache"))
    load_results(wide_dir, outputs="disk")
    (wide_dir / "results" / "alpha" / "m03.jsonl").unlink()

    loaded = load_results(wide_dir, outputs="disk")

    assert "m03" not in {item.model for item in loaded.files}
    assert_same_rows(loaded, wide_dir)


def test_many_changed_files_write_new_pack(wide_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("ATLAS_CACHE_DIR", str(tmp_path / "cache"))
    load_results(wide_dir, outputs="disk")
    add_model(wide_dir, "m12", 1)
    add_model(wide_dir, "m13", 2)

    changed = load_results(wide_dir, outputs="disk")
    caplog.set_level(logging.INFO, logger="atlas_builder.results.load")
    again = load_results(wide_dir, outputs="disk")

    # Two new files are more than a tenth of thirteen, so the load wrote a pack of all thirteen.
    assert len(packs(tmp_path / "cache")) == 2
    assert "13 files read from the cache (1 datasets as one pack each, 0 partly from an earlier pack), 0 parsed" \
        in summary(caplog)
    assert_same_rows(changed, wide_dir)
    assert_same_rows(again, wide_dir)
