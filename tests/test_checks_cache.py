import json

import pytest
from atlas_factory import SEED_TAXONOMY, dataset_yaml, write_atlas

from atlas_builder.diagnose import checks, checks_cache
from atlas_builder.diagnose.checks import run_checks
from atlas_builder.results import load_results


def quiz_rows(output):
    return [{"id": "q1", "input": "Pick A or B.\nA. cat\nB. dog", "output": output, "score": 0, "reference": ["B", "dog"]}]


@pytest.fixture
def checked_files(monkeypatch):
    """Record the (dataset, model) of every result file that the row checks run on."""
    calls = []
    real = checks.check_file

    def counting(rows):
        rows = list(rows)
        calls.append(sorted({(row.dataset, row.model) for row in rows}))
        return real(rows)

    monkeypatch.setattr(checks, "check_file", counting)
    return calls


def test_cache_reruns_only_changed_file(tmp_path, checked_files):
    data = write_atlas(tmp_path / "data", {("quiz", "alpha"): quiz_rows(""), ("quiz", "beta"): quiz_rows(""),
                                           ("exam", "alpha"): quiz_rows("")}, taxonomy_from=SEED_TAXONOMY)
    first = checks_cache.run_checks_cached(load_results(data))

    (data / "results" / "quiz" / "alpha.jsonl").write_text(json.dumps(quiz_rows("   ")[0]) + "\n")
    second = checks_cache.run_checks_cached(load_results(data))

    assert checked_files[3:] == [[("quiz", "alpha")]]
    assert [item.diagnoser for item in first] == ["check:empty-output"] * 3
    assert [item.key for item in second] == [item.key for item in first]


def test_cache_hit_returns_equal_findings(tmp_path, checked_files):
    data = write_atlas(tmp_path / "data", {("quiz", "alpha"): quiz_rows("")}, taxonomy_from=SEED_TAXONOMY)
    first = checks_cache.run_checks_cached(load_results(data))

    second = checks_cache.run_checks_cached(load_results(data))

    assert checked_files == [[("quiz", "alpha")]]
    assert second == first


def test_unchanged_dataset_read_whole(tmp_path, checked_files):
    import shutil

    data = write_atlas(tmp_path / "data", {("quiz", "alpha"): quiz_rows(""), ("quiz", "beta"): quiz_rows("")},
                       taxonomy_from=SEED_TAXONOMY)
    first = checks_cache.run_checks_cached(load_results(data))
    shutil.rmtree(checks_cache.checks_cache_dir() / "files")

    second = checks_cache.run_checks_cached(load_results(data))

    assert len(checked_files) == 2
    assert second == first


def test_new_model_checks_only_its_files(tmp_path, checked_files):
    pairs = {(dataset, "alpha"): quiz_rows("") for dataset in ("quiz", "exam")}
    data = write_atlas(tmp_path / "data", pairs, taxonomy_from=SEED_TAXONOMY)
    checks_cache.run_checks_cached(load_results(data))

    data = write_atlas(tmp_path / "data", {**pairs, **{(dataset, "beta"): quiz_rows("") for dataset in ("quiz", "exam")}},
                       taxonomy_from=SEED_TAXONOMY)
    checks_cache.run_checks_cached(load_results(data))

    assert sorted(checked_files[2:]) == [[("exam", "beta")], [("quiz", "beta")]]


def test_description_edit_keeps_findings(tmp_path, checked_files):
    data = write_atlas(tmp_path / "data", {("quiz", "alpha"): quiz_rows("")}, taxonomy_from=SEED_TAXONOMY)
    results = load_results(data)
    version = checks_cache.checks_code_version()
    before = checks_cache.file_key(results, results.files[0], version)
    checks_cache.run_checks_cached(results)

    (data / "datasets" / "quiz.yaml").write_text(json.dumps(dataset_yaml("quiz", description="Edited.")))
    edited = load_results(data)
    checks_cache.run_checks_cached(edited)

    assert checks_cache.file_key(edited, edited.files[0], version) == before
    assert checked_files == [[("quiz", "alpha")]]


def test_cache_key_follows_task_type(tmp_path):
    data = write_atlas(tmp_path / "data", {("quiz", "alpha"): quiz_rows("")}, taxonomy_from=SEED_TAXONOMY)
    version = checks_cache.checks_code_version()
    results = load_results(data)
    before = checks_cache.file_key(results, results.files[0], version)

    (data / "datasets" / "quiz.yaml").write_text(json.dumps(dataset_yaml("quiz", task_type="short_answer")))
    results = load_results(data)
    after = checks_cache.file_key(results, results.files[0], version)

    assert before != after


def test_cache_off_always_runs(tmp_path, monkeypatch, checked_files):
    monkeypatch.setenv("ATLAS_CACHE_DIR", "off")
    data = write_atlas(tmp_path / "data", {("quiz", "alpha"): quiz_rows("")}, taxonomy_from=SEED_TAXONOMY)

    checks_cache.run_checks_cached(load_results(data))
    checks_cache.run_checks_cached(load_results(data))

    assert checked_files == [[("quiz", "alpha")], [("quiz", "alpha")]]


def test_unreadable_entry_is_rechecked(tmp_path, checked_files):
    data = write_atlas(tmp_path / "data", {("quiz", "alpha"): quiz_rows("")}, taxonomy_from=SEED_TAXONOMY)
    first = checks_cache.run_checks_cached(load_results(data))
    for path in checks_cache.checks_cache_dir().rglob("*.json"):
        path.write_text("{not json")

    second = checks_cache.run_checks_cached(load_results(data))

    assert len(checked_files) == 2
    assert second == first


def test_forked_workers_match_serial(tmp_path, monkeypatch):
    rows = {(f"set{n}", model): quiz_rows("") for n in range(3) for model in ("alpha", "beta")}
    data = write_atlas(tmp_path / "data", rows, taxonomy_from=SEED_TAXONOMY)
    monkeypatch.setenv("ATLAS_CACHE_DIR", "off")
    serial = checks_cache.run_checks_cached(load_results(data))

    monkeypatch.setattr(checks_cache, "PARALLEL_MIN_ROWS", 1)
    forked = checks_cache.run_checks_cached(load_results(data))

    assert len(serial) == 6
    assert forked == serial


def mc_rows(model_answers):
    """Per model: q1, whose reference says A, answered as given, and q2 to q4 answered right."""
    def row(instance_id, answer):
        return {"id": instance_id, "input": f"Which {instance_id}?\nA. cat\nB. dog\nC. cow",
                "output": f"The answer is ({answer}).", "score": float(answer == "A"), "reference": ["A"]}

    return {("quiz", model): [row("q1", answer)] + [row(f"q{n}", "A") for n in range(2, 5)]
            for model, answer in model_answers.items()}


def test_cached_findings_equal_run_checks(tmp_path):
    # Seven models that agree on B against the reference A: the suspect-reference check fires.
    answers = {f"m{n}": "B" for n in range(6)} | {"m6": "A"}
    data = write_atlas(tmp_path / "data", mc_rows(answers), taxonomy_from=SEED_TAXONOMY)
    expected = run_checks(load_results(data))

    cold = checks_cache.run_checks_cached(load_results(data))
    warm = checks_cache.run_checks_cached(load_results(data))

    assert "check:suspect-reference" in {item.diagnoser for item in expected}
    assert [item.key + (item.diagnoser,) for item in cold] == [item.key + (item.diagnoser,) for item in expected]
    assert warm == cold


def test_suspects_follow_a_changed_file(tmp_path):
    answers = {f"m{n}": "B" for n in range(6)} | {"m6": "A"}
    data = write_atlas(tmp_path / "data", mc_rows(answers), taxonomy_from=SEED_TAXONOMY)
    before = checks_cache.run_checks_cached(load_results(data))

    data = write_atlas(tmp_path / "data", mc_rows(answers | {f"m{n}": "A" for n in range(4)}),
                       taxonomy_from=SEED_TAXONOMY)
    after = checks_cache.run_checks_cached(load_results(data))

    assert "check:suspect-reference" in {item.diagnoser for item in before}
    assert "check:suspect-reference" not in {item.diagnoser for item in after}


def test_forked_workers_inherit_frozen_heap(tmp_path, monkeypatch):
    import gc

    rows = {(f"set{n}", "alpha"): quiz_rows("") for n in range(3)}
    data = write_atlas(tmp_path / "data", rows, taxonomy_from=SEED_TAXONOMY)
    monkeypatch.setattr(checks_cache, "PARALLEL_MIN_ROWS", 1)
    frozen_at_fork = []
    real_freeze = gc.freeze

    def freeze():
        real_freeze()
        frozen_at_fork.append(gc.get_freeze_count())

    monkeypatch.setattr(checks_cache.gc, "freeze", freeze)
    checks_cache.run_checks_cached(load_results(data))

    assert len(frozen_at_fork) == 1
    assert frozen_at_fork[0] > 0
    assert gc.get_freeze_count() == 0
