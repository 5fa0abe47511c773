"""The parquet cache of parsed result files: same frames as parsing, keyed by content, threshold and score range."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from atlas_builder.results import write_result_file, write_yaml
from atlas_builder.results.cache import FRAME_COLUMNS, ResultCache, cache_key, read_result_frame
from atlas_builder.results.load import load_metadata

DATASET = {
    "id": "demo", "name": "Demo", "description": "Small dataset for cache tests.", "task_type": "short_answer",
    "metric": "exact_match", "threshold": 0.5, "source": {"repository": "example/demo"}, "license": "CC0-1.0",
}
ROWS = [
    {"id": "a", "input": "What is <b>2+2</b>?", "output": "4", "score": 1, "reference": "4",
     "metadata": {"z": 1, "a": [1, 2], "nested": {"k": None}}},
    {"id": "b", "input": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a colour."}],
     "output": "", "score": 0.25, "reference": ["red", "blue"]},
    {"id": "c", "input": "naïve café 🙂 \\ \"quote\"", "output": "x", "score": 0.75, "correct": False},
    {"id": "d", "input": "What is <b>2+2</b>?", "output": "5", "score": 0},
]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    write_yaml(data / "datasets" / "demo.yaml", DATASET)
    write_yaml(data / "models" / "m.yaml", {"id": "m", "name": "M"})
    write_result_file(data / "results" / "demo" / "m.jsonl", ROWS)
    return data


def read(data_dir: Path, cache: ResultCache | None, score_range: tuple[float, float] | None = None) -> pd.DataFrame:
    datasets, _, _ = load_metadata(data_dir)
    frame, problems, _ = read_result_frame(data_dir / "results" / "demo" / "m.jsonl", datasets["demo"], cache,
                                           score_range=score_range)
    assert problems == []
    assert frame is not None
    return frame


def test_cached_frame_equals_parsed_frame(data_dir: Path, tmp_path: Path) -> None:
    parsed = read(data_dir, None)
    cold = ResultCache(tmp_path / "cache")
    stored = read(data_dir, cold)
    warm = ResultCache(tmp_path / "cache")
    cached = read(data_dir, warm)
    assert (cold.hits, cold.misses) == (0, 1)
    assert (warm.hits, warm.misses) == (1, 0)
    assert list(cached.columns) == list(FRAME_COLUMNS)
    # The cache keeps prompts in object columns so that rows can share them; the values are the same.
    pd.testing.assert_frame_equal(stored, parsed, check_dtype=False)
    pd.testing.assert_frame_equal(cached, parsed, check_dtype=False)
    assert cached["input"].dtype == object
    for column in ("instance_id", "output", "score", "correct", "line"):
        assert cached[column].dtype == parsed[column].dtype, column


def test_cached_metadata_keeps_key_order(data_dir: Path, tmp_path: Path) -> None:
    read(data_dir, ResultCache(tmp_path / "cache"))
    cached = read(data_dir, ResultCache(tmp_path / "cache"))
    assert list(cached.loc[0, "metadata"]) == ["z", "a", "nested"]


def test_equal_prompts_share_one_object(data_dir: Path, tmp_path: Path) -> None:
    for cache in (ResultCache(tmp_path / "cache"), ResultCache(tmp_path / "cache")):
        frame = read(data_dir, cache)
        assert frame.loc[0, "input"] == frame.loc[3, "input"]
        assert frame.loc[0, "input"] is frame.loc[3, "input"]


def test_changed_file_misses_cache(data_dir: Path, tmp_path: Path) -> None:
    read(data_dir, ResultCache(tmp_path / "cache"))
    write_result_file(data_dir / "results" / "demo" / "m.jsonl", ROWS[:2])
    cache = ResultCache(tmp_path / "cache")
    frame = read(data_dir, cache)
    assert cache.misses == 1
    assert len(frame) == 2


def test_threshold_change_misses_cache(data_dir: Path, tmp_path: Path) -> None:
    before = read(data_dir, ResultCache(tmp_path / "cache"))
    write_yaml(data_dir / "datasets" / "demo.yaml", {**DATASET, "threshold": 0.2})
    cache = ResultCache(tmp_path / "cache")
    after = read(data_dir, cache)
    assert cache.misses == 1
    assert before.loc[1, "correct"] == False  # noqa: E712 - numpy bool
    assert after.loc[1, "correct"] == True  # noqa: E712


def test_key_depends_on_every_input() -> None:
    keys = {cache_key("aa", 1.0), cache_key("ab", 1.0), cache_key("aa", 0.5), cache_key("aa", 1.0, (0.0, 1.0))}
    assert len(keys) == 4


def test_files_with_problems_are_not_cached(data_dir: Path, tmp_path: Path) -> None:
    datasets, _, _ = load_metadata(data_dir)
    path = data_dir / "results" / "demo" / "m.jsonl"
    path.write_text(path.read_text(encoding="utf-8") + "{not json}\n", encoding="utf-8")
    cache = ResultCache(tmp_path / "cache")
    frame, problems, _ = read_result_frame(path, datasets["demo"], cache)
    assert problems
    assert frame is not None
    assert not list((tmp_path / "cache").rglob("*.parquet"))


def test_unreadable_entry_is_rebuilt(data_dir: Path, tmp_path: Path) -> None:
    read(data_dir, ResultCache(tmp_path / "cache"))
    [entry] = list((tmp_path / "cache").rglob("*.parquet"))
    entry.write_bytes(b"not parquet")
    cache = ResultCache(tmp_path / "cache")
    frame = read(data_dir, cache)
    assert cache.misses == 1
    assert len(frame) == 4
    assert ResultCache(tmp_path / "cache").load(entry.stem) is not None


def test_prune_keeps_only_used_entries(data_dir: Path, tmp_path: Path) -> None:
    read(data_dir, ResultCache(tmp_path / "cache"))
    write_result_file(data_dir / "results" / "demo" / "m.jsonl", ROWS[:3])
    cache = ResultCache(tmp_path / "cache")
    read(data_dir, cache)
    assert len(list((tmp_path / "cache").rglob("*.parquet"))) == 2
    assert cache.prune() == 1
    assert len(list((tmp_path / "cache").rglob("*.parquet"))) == 1
