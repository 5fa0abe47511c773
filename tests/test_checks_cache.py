import json

from atlas_factory import SEED_TAXONOMY, dataset_yaml, write_atlas

from atlas_builder.diagnose import checks_cache
from atlas_builder.diagnose.checks import run_checks
from atlas_builder.results import load_results


def quiz_rows(output):
    return [{"id": "q1", "input": "Pick A or B.\nA. cat\nB. dog", "output": output, "score": 0, "reference": ["B", "dog"]}]


def counting(calls):
    def run(results):
        calls.append(sorted(results.datasets))
        return run_checks(results)
    return run


def test_cache_reruns_only_changed_dataset(tmp_path):
    data = write_atlas(tmp_path / "data", {("quiz", "alpha"): quiz_rows(""), ("exam", "alpha"): quiz_rows("")},
                       taxonomy_from=SEED_TAXONOMY)
    calls = []
    first = checks_cache.run_checks_cached(load_results(data), counting(calls))

    (data / "results" / "quiz" / "alpha.jsonl").write_text(json.dumps(quiz_rows("   ")[0]) + "\n")
    second = checks_cache.run_checks_cached(load_results(data), counting(calls))

    assert calls == [["exam"], ["quiz"], ["quiz"]]
    assert [item.diagnoser for item in first] == ["check:empty-output", "check:empty-output"]
    assert [item.key for item in second] == [item.key for item in first]


def test_cache_hit_returns_equal_findings(tmp_path):
    data = write_atlas(tmp_path / "data", {("quiz", "alpha"): quiz_rows("")}, taxonomy_from=SEED_TAXONOMY)
    calls = []
    first = checks_cache.run_checks_cached(load_results(data), counting(calls))

    second = checks_cache.run_checks_cached(load_results(data), counting(calls))

    assert calls == [["quiz"]]
    assert second == first


def test_cache_key_follows_dataset_metadata(tmp_path):
    data = write_atlas(tmp_path / "data", {("quiz", "alpha"): quiz_rows("")}, taxonomy_from=SEED_TAXONOMY)
    version = checks_cache.checks_code_version()
    before = checks_cache.dataset_key(load_results(data), "quiz", version)

    (data / "datasets" / "quiz.yaml").write_text(json.dumps(dataset_yaml("quiz", task_type="short_answer")))
    after = checks_cache.dataset_key(load_results(data), "quiz", version)

    assert before != after


def test_cache_off_always_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("ATLAS_CACHE_DIR", "off")
    data = write_atlas(tmp_path / "data", {("quiz", "alpha"): quiz_rows("")}, taxonomy_from=SEED_TAXONOMY)
    calls = []

    checks_cache.run_checks_cached(load_results(data), counting(calls))
    checks_cache.run_checks_cached(load_results(data), counting(calls))

    assert calls == [["quiz"], ["quiz"]]


def test_forked_workers_match_serial(tmp_path, monkeypatch):
    rows = {(f"set{n}", model): quiz_rows("") for n in range(3) for model in ("alpha", "beta")}
    data = write_atlas(tmp_path / "data", rows, taxonomy_from=SEED_TAXONOMY)
    monkeypatch.setenv("ATLAS_CACHE_DIR", "off")
    serial = checks_cache.run_checks_cached(load_results(data), run_checks)

    monkeypatch.setattr(checks_cache, "PARALLEL_MIN_ROWS", 1)
    forked = checks_cache.run_checks_cached(load_results(data), run_checks)

    assert len(serial) == 6
    assert forked == serial



def test_cold_and_warm_findings_identical(tmp_path):
    import numpy as np

    from atlas_builder.records import Diagnosis

    def run_with_rich_details(results):
        # Tuples and numpy integers do not survive JSON unchanged, so a cold run must not hand them on.
        return [Diagnosis("quiz", "alpha", "q1", "check:x", "check", "t", "s",
                          details={"span": (1, 2), "count": np.int64(3)})]

    data = write_atlas(tmp_path / "data", {("quiz", "alpha"): quiz_rows("")}, taxonomy_from=SEED_TAXONOMY)

    cold = checks_cache.run_checks_cached(load_results(data), run_with_rich_details)
    warm = checks_cache.run_checks_cached(load_results(data), run_with_rich_details)

    assert warm == cold
    assert cold[0].details["span"] == [1, 2]
