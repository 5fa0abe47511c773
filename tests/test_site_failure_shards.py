import json
from dataclasses import replace

from atlas_factory import SEED_TAXONOMY, write_atlas

from atlas_builder.analysis import analyse
from atlas_builder.diagnose import diagnose
from atlas_builder.results import load_results
from atlas_builder.site.failures import SHARD_MANIFEST, write_browser_data
from atlas_builder.site.writer import OutputTree
from atlas_builder.taxonomy import assign_categories, load_taxonomy


def prepared(data):
    results = load_results(data)
    taxonomy = load_taxonomy(data)
    diagnoses = assign_categories(diagnose(results), taxonomy, data)
    return results, diagnoses, taxonomy, analyse(results, diagnoses, taxonomy)


def rows(output):
    return [{"id": f"q{n}", "input": "Pick A or B.\nA. cat\nB. dog", "output": output, "score": 0, "reference": ["B", "dog"]}
            for n in range(3)]


def test_unchanged_pairs_keep_shards(tmp_path):
    data = write_atlas(tmp_path / "data", {("quiz", "alpha"): rows(""), ("quiz", "beta"): rows("A")},
                       taxonomy_from=SEED_TAXONOMY)
    tree = OutputTree(tmp_path / "docs")
    write_browser_data(tree, *prepared(data))
    first_written = tree.written

    (data / "results" / "quiz" / "beta.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows("")))
    again = OutputTree(tmp_path / "docs")
    write_browser_data(again, *prepared(data))

    beta = "failures/data/shards/quiz/beta/0000.json"
    alpha = "failures/data/shards/quiz/alpha/0000.json"
    assert first_written > 0
    assert alpha in again.produced
    assert beta in again.produced
    assert json.loads((tmp_path / "docs" / beta).read_text())[0]["output"] == ""
    manifest = json.loads((tmp_path / "docs" / SHARD_MANIFEST).read_text())
    assert sorted(manifest) == ["quiz/alpha", "quiz/beta"]


def test_shard_digest_follows_publishing_rule(tmp_path):
    data = write_atlas(tmp_path / "data", {("quiz", "alpha"): rows("")}, taxonomy_from=SEED_TAXONOMY)
    results, diagnoses, taxonomy, analysis = prepared(data)
    tree = OutputTree(tmp_path / "docs")
    write_browser_data(tree, results, diagnoses, taxonomy, analysis)

    hidden = replace(results.datasets["quiz"], publishing=replace(results.datasets["quiz"].publishing, text="hidden"))
    results.datasets["quiz"] = hidden
    again = OutputTree(tmp_path / "docs")
    write_browser_data(again, results, diagnoses, taxonomy, analysis)

    shard = json.loads((tmp_path / "docs" / "failures/data/shards/quiz/alpha/0000.json").read_text())
    assert shard[0]["input"] is None


def test_force_rewrites_unchanged_shards(tmp_path):
    data = write_atlas(tmp_path / "data", {("quiz", "alpha"): rows("")}, taxonomy_from=SEED_TAXONOMY)
    parts = prepared(data)
    write_browser_data(OutputTree(tmp_path / "docs"), *parts)
    shard = tmp_path / "docs" / "failures/data/shards/quiz/alpha/0000.json"
    shard.write_text("[]")

    write_browser_data(OutputTree(tmp_path / "docs"), *parts)
    after_plain_render = shard.read_text()
    write_browser_data(OutputTree(tmp_path / "docs"), *parts, force=True)

    assert after_plain_render == "[]"
    assert json.loads(shard.read_text())[0]["id"] == "q0"
