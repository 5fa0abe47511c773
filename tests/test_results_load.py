
import pandas as pd
import pytest
from atlas_factory import dataset_yaml, write_atlas

from atlas_builder.records import RESULT_COLUMNS
from atlas_builder.results import InvalidResultsError, load_results


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    """Keep the parsed-result cache of every test in its own temporary folder."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("ATLAS_CACHE_DIR", str(folder))
    return folder


def row(instance_id, output="B", score=1.0, **extra):
    return {"id": instance_id, "input": "Pick one. A. x B. y", "output": output, "score": score, "reference": "B", **extra}


def test_load_derives_correct_from_threshold(tmp_path):
    write_atlas(tmp_path, {("quiz", "alpha"): [row("q1", score=1.0), row("q2", output="A", score=0.0)]})

    results = load_results(tmp_path)

    assert list(results.rows["instance_id"]) == ["q1", "q2"]
    assert list(results.rows["correct"]) == [True, False]
    assert results.rows.loc[0, "reference"] == ("B",)
    assert len(results.failures()) == 1


def test_load_explicit_correct_overrides_threshold(tmp_path):
    write_atlas(tmp_path, {("quiz", "alpha"): [row("q1", score=0.0, correct=True)]})

    results = load_results(tmp_path)

    assert bool(results.rows.loc[0, "correct"]) is True


def test_load_chat_messages_become_text(tmp_path):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}]
    write_atlas(tmp_path, {("quiz", "alpha"): [{"id": "q1", "input": messages, "output": "4", "score": 1}]})

    results = load_results(tmp_path)

    assert results.rows.loc[0, "input"] == "system: Be brief.\n\nuser: 2+2?"
    assert results.rows.loc[0, "messages"] == messages


def test_load_reports_file_and_line(tmp_path):
    write_atlas(tmp_path, {("quiz", "alpha"): [row("q1"), row("q2", score="high")]})

    with pytest.raises(InvalidResultsError) as caught:
        load_results(tmp_path)

    problem = caught.value.problems[0]
    assert problem.path.endswith("results/quiz/alpha.jsonl")
    assert problem.line == 2
    assert "'score' must be a number" in problem.message


def test_load_rejects_duplicate_ids(tmp_path):
    write_atlas(tmp_path, {("quiz", "alpha"): [row("q1"), row("q1")]})

    with pytest.raises(InvalidResultsError) as caught:
        load_results(tmp_path)

    assert "duplicate id 'q1', first seen on line 1" in str(caught.value)


def test_load_rejects_nan_score(tmp_path):
    write_atlas(tmp_path, {("quiz", "alpha"): [row("q1")]})
    path = tmp_path / "results" / "quiz" / "alpha.jsonl"
    path.write_text('{"id": "q1", "input": "x", "output": "y", "score": NaN}\n')

    with pytest.raises(InvalidResultsError) as caught:
        load_results(tmp_path)

    assert "NaN is not valid JSON" in str(caught.value)


def test_load_rejects_result_without_metadata(tmp_path):
    write_atlas(tmp_path, {("quiz", "alpha"): [row("q1")]})
    (tmp_path / "models" / "alpha.yaml").unlink()

    with pytest.raises(InvalidResultsError) as caught:
        load_results(tmp_path)

    assert "model 'alpha' has no metadata" in str(caught.value)


def test_load_names_invalid_metadata_file(tmp_path):
    write_atlas(tmp_path, {("quiz", "alpha"): [row("q1")]})
    (tmp_path / "models" / "alpha.yaml").write_text("id: alpha\n")

    with pytest.raises(InvalidResultsError) as caught:
        load_results(tmp_path)

    assert "model 'alpha' has invalid metadata in" in str(caught.value)
    assert "missing required key 'name'" in str(caught.value)


def test_load_rejects_id_with_trailing_newline(tmp_path):
    write_atlas(tmp_path, {("quiz", "alpha"): [row("q1\n")]})

    with pytest.raises(InvalidResultsError) as caught:
        load_results(tmp_path)

    assert "invalid id" in str(caught.value)


def test_load_rejects_alias_used_twice(tmp_path):
    write_atlas(
        tmp_path,
        {("quiz", "alpha"): [row("q1")], ("quiz", "beta"): [row("q1")]},
        models={"alpha": {"id": "alpha", "name": "A", "aliases": ["Shared-Name"]},
                "beta": {"id": "beta", "name": "B", "aliases": ["shared-name"]}},
    )

    with pytest.raises(InvalidResultsError) as caught:
        load_results(tmp_path)

    assert "alias 'shared-name' is also used by 'alpha'" in str(caught.value)


def test_load_non_strict_skips_bad_lines(tmp_path):
    write_atlas(tmp_path, {("quiz", "alpha"): [row("q1"), row("Q 2")]})

    results = load_results(tmp_path, strict=False)

    assert list(results.rows["instance_id"]) == ["q1"]


def test_dataset_threshold_must_be_number(tmp_path):
    write_atlas(tmp_path, {("quiz", "alpha"): [row("q1")]},
                datasets={"quiz": dataset_yaml("quiz", threshold="one")})

    with pytest.raises(InvalidResultsError) as caught:
        load_results(tmp_path)

    assert "'threshold' must be a finite number" in str(caught.value)


def test_load_rejects_unpaired_surrogate_escape(tmp_path):
    write_atlas(tmp_path, {("quiz", "alpha"): [row("q1")]})
    path = tmp_path / "results" / "quiz" / "alpha.jsonl"
    # json.dumps would escape the backslash, so the escape is written into the raw bytes.
    path.write_bytes(path.read_bytes().replace(b'"output": "B"', b'"output": "B\\ud800"'))
    assert b"\\ud800" in path.read_bytes()

    with pytest.raises(InvalidResultsError) as caught:
        load_results(tmp_path)

    assert "unpaired UTF-16 surrogate" in str(caught.value)
    assert caught.value.problems[0].line == 1


def test_load_accepts_paired_surrogate_escape(tmp_path):
    write_atlas(tmp_path, {("quiz", "alpha"): [row("q1")]})
    path = tmp_path / "results" / "quiz" / "alpha.jsonl"
    path.write_bytes(path.read_bytes().replace(b'"output": "B"', b'"output": "B\\ud83d\\ude42"'))

    results = load_results(tmp_path)

    assert results.rows.loc[0, "output"] == "B\U0001f642"


def test_load_writes_cache_and_reads_it_back(tmp_path, cache_dir):
    messages = [{"role": "user", "content": "2+2?"}]
    write_atlas(tmp_path / "data", {
        ("quiz", "alpha"): [row("q1"), {"id": "q2", "input": messages, "output": "4", "score": 0, "metadata": {"k": [1]}}],
        ("quiz", "beta"): [row("q1", output="A", score=0.0)],
    })

    cold = load_results(tmp_path / "data")
    entries = sorted(cache_dir.glob("*/*.parquet"))
    warm = load_results(tmp_path / "data")

    assert len(entries) == 2
    pd.testing.assert_frame_equal(warm.rows, cold.rows)
    assert list(warm.rows.columns) == list(RESULT_COLUMNS)
    assert list(warm.rows["dataset"]) == ["quiz", "quiz", "quiz"]
    assert list(warm.rows["model"]) == ["alpha", "alpha", "beta"]
    assert warm.rows.loc[1, "messages"] == messages
    assert warm.rows.loc[1, "metadata"] == {"k": [1]}
    assert [file.rows for file in warm.files] == [2, 1]
    assert [file.sha256 for file in warm.files] == [file.sha256 for file in cold.files]


def test_load_shares_prompts_across_models(tmp_path):
    write_atlas(tmp_path, {("quiz", "alpha"): [row("q1")], ("quiz", "beta"): [row("q1", output="A", score=0.0)]})

    for _ in range(2):  # cold, then from the cache
        rows = load_results(tmp_path).rows

        assert rows.loc[0, "input"] is rows.loc[1, "input"]
        assert rows.loc[0, "reference"] is rows.loc[1, "reference"]


def test_load_sees_changed_file_after_caching(tmp_path):
    write_atlas(tmp_path, {("quiz", "alpha"): [row("q1")]})
    load_results(tmp_path)
    path = tmp_path / "results" / "quiz" / "alpha.jsonl"
    path.write_bytes(path.read_bytes().replace(b'"output": "B"', b'"output": "C"'))

    results = load_results(tmp_path)

    assert results.rows.loc[0, "output"] == "C"


def test_load_cache_off_writes_nothing(tmp_path, cache_dir, monkeypatch):
    monkeypatch.setenv("ATLAS_CACHE_DIR", "off")
    monkeypatch.chdir(tmp_path)
    write_atlas(tmp_path / "data", {("quiz", "alpha"): [row("q1")]})

    results = load_results(tmp_path / "data")

    assert len(results.rows) == 1
    assert not cache_dir.exists()
    assert not (tmp_path / ".atlas-cache").exists()


def test_load_cache_defaults_to_current_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("ATLAS_CACHE_DIR")
    monkeypatch.chdir(tmp_path)
    write_atlas(tmp_path / "data", {("quiz", "alpha"): [row("q1")]})

    load_results(tmp_path / "data")

    assert len(list((tmp_path / ".atlas-cache" / "results").glob("*/*.parquet"))) == 1


def test_load_survives_unwritable_cache(tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be", encoding="utf-8")
    monkeypatch.setenv("ATLAS_CACHE_DIR", str(blocker / "results"))
    write_atlas(tmp_path / "data", {("quiz", "alpha"): [row("q1")], ("quiz", "beta"): [row("q1")]})

    results = load_results(tmp_path / "data")

    assert len(results.rows) == 2
    warnings = [record for record in caplog.records if "cannot write the result cache" in record.getMessage()]
    assert len(warnings) == 1
