"""Render the made-up fixture atlas with a real `mkdocs build --strict` and check what readers get."""

from __future__ import annotations

import dataclasses
import html
import json
import re
import shutil
import sys
from pathlib import Path

import pytest

from atlas_builder.analysis import analyse
from atlas_builder.results import load_results
from atlas_builder.site import Release, render_site
from atlas_builder.taxonomy.load import load_taxonomy

FIXTURE = Path(__file__).parent / "fixtures" / "site"
sys.path.insert(0, str(FIXTURE))
from synthetic import fixture_diagnoses  # noqa: E402

pytestmark = pytest.mark.slow


def build_fixture(out: Path, data: Path = FIXTURE / "data", stability=None, **kwargs):
    """Build the fixture atlas (or the copy in ``data``) into ``out``; return (records, report).

    ``stability`` stands in for the taxonomy stage's agreement figures.
    """
    results = load_results(data)
    diagnoses = fixture_diagnoses(results)
    taxonomy = load_taxonomy(data)
    analysis = analyse(results, diagnoses, taxonomy)
    if stability is not None:
        analysis = dataclasses.replace(analysis, stability=stability)
    report = render_site(results, diagnoses, taxonomy, analysis, docs_dir=out / "src", site_dir=out / "site", **kwargs)
    return (results, diagnoses, taxonomy, analysis), report


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("atlas")
    records, report = build_fixture(out, release=Release(name="2024.1", date="2024-05-01", site_url="https://atlas.example.org"))
    return out, records, report


def html_files(site: Path) -> list[Path]:
    return sorted(site.rglob("*.html"))


def test_every_entity_has_a_page(built):
    out, (results, _, taxonomy, _), report = built
    site = out / "site"
    for model in results.models:
        assert (site / "models" / model / "index.html").is_file()
    for dataset in results.datasets:
        assert (site / "datasets" / dataset / "index.html").is_file()
    for category in taxonomy.categories:
        assert (site / "categories" / category / "index.html").is_file()
    assert (site / "models" / "families" / "llama-3" / "index.html").is_file()
    assert report.pages >= len(results.models) + len(results.datasets) + len(taxonomy.categories)


def test_injection_text_is_inert(built):
    out, _, _ = built
    for path in html_files(out / "site"):
        text = path.read_text(encoding="utf-8")
        assert "<script>window.__pwned" not in text, path
        assert "onerror=\"window.__pwned" not in text, path
        assert 'href="javascript:' not in text, path
        assert "<b>bold org</b>" not in text, path


def test_injection_escaped_in_sources(built):
    out, _, _ = built
    page = (out / "src" / "docs" / "models" / "inject-model.md").read_text(encoding="utf-8")
    assert "&#60;script&#62;" in page
    assert "&#91;click&#93;&#40;javascript" in page
    assert "{{ 7*7 }}" not in page


def test_hidden_dataset_text_never_published(built):
    out, (results, _, _, _), _ = built
    secret_outputs = set(results.rows.loc[results.rows["dataset"] == "secret", "input"])
    shard_dir = out / "site" / "failures" / "data" / "shards" / "secret"
    shards = list(shard_dir.rglob("*.json"))
    assert shards
    for shard in shards:
        for record in json.loads(shard.read_text(encoding="utf-8")):
            assert record["input"] is None
            assert record["output"] is None
            assert record["reference"] is None
    text = "\n".join(path.read_text(encoding="utf-8") for path in (out / "site").rglob("*") if path.suffix in (".html", ".json", ".csv"))
    for value in secret_outputs:
        assert value not in text


def test_excerpt_dataset_cut(built):
    out, _, _ = built
    for shard in (out / "site" / "failures" / "data" / "shards" / "quiz").rglob("*.json"):
        for record in json.loads(shard.read_text(encoding="utf-8")):
            assert len(record["input"]) <= 40
    page = (out / "site" / "datasets" / "quiz" / "index.html").read_text(encoding="utf-8")
    assert "Content warning" in page


def test_cite_block_names_release(built):
    out, _, _ = built
    page = html.unescape((out / "site" / "models" / "llama-3-8b" / "index.html").read_text(encoding="utf-8"))
    assert "https://atlas.example.org/2024.1/models/llama-3-8b/" in page
    assert "@misc{erroratlas_2024_1_model_llama_3_8b," in page
    assert (out / "site" / "models" / "llama-3-8b.csv").is_file()
    assert (out / "site" / "models" / "llama-3-8b.json").is_file()


def test_failure_pages_excluded_from_search(built):
    out, _, _ = built
    index = json.loads((out / "site" / "search" / "search_index.json").read_text(encoding="utf-8"))
    locations = {doc["location"].split("#")[0] for doc in index["docs"]}
    assert "failures/" not in locations
    assert "models/llama-3-8b/" in locations


def test_provenance_on_entity_pages(built):
    out, _, _ = built
    for page in ("models/llama-3-8b", "datasets/arith", "categories/computation-error"):
        text = (out / "site" / page / "index.html").read_text(encoding="utf-8")
        assert "Provenance" in text, page
        assert "Diagnosed by" in text, page


def test_rebuild_writes_nothing_new(built, tmp_path):
    out, _, _ = built
    _, first = build_fixture(tmp_path, build_html=False)
    _, second = build_fixture(tmp_path, build_html=False)
    assert first.written > 0
    assert second.written == 0
    assert second.unchanged >= first.written


def test_stale_pages_removed(tmp_path):
    _, _ = build_fixture(tmp_path, build_html=False)
    stale = tmp_path / "src" / "docs" / "models" / "gone.md"
    stale.write_text("old page", encoding="utf-8")
    build_fixture(tmp_path, build_html=False)
    assert not stale.exists()


def test_undiagnosed_share_on_home(built):
    out, (_, diagnoses, _, _), _ = built
    text = (out / "site" / "index.html").read_text(encoding="utf-8")
    assert "Not diagnosed yet" in text
    assert str(len(diagnoses.undiagnosed)) in text


def test_stability_figures_rendered(tmp_path):
    summary = json.loads((FIXTURE / "stability.json").read_text(encoding="utf-8"))
    build_fixture(tmp_path, stability=summary)
    site = tmp_path / "site"
    methodology = (site / "methodology" / "index.html").read_text(encoding="utf-8")
    assert "3 induction runs over 500 failures" in methodology
    assert "0.810 (0.700)" in methodology  # top-level ARI mean (min)
    assert "0.860 (0.790)" in methodology  # top-level NMI
    assert "74.0" in methodology  # matched share, as a percentage
    assert "0.640" in methodology  # kappa
    assert "judge-a and judge-b" in methodology
    assert "<td style=\"text-align: right;\">200</td>" in methodology  # failures behind the kappa
    assert "built-in method" not in methodology
    assert "Adjusted Rand index" in methodology
    measured = (site / "categories" / "computation-error" / "index.html").read_text(encoding="utf-8")
    assert "90.0" in measured
    assert "40 member failures" in measured
    unmeasured = (site / "categories" / "refusal" / "index.html").read_text(encoding="utf-8")
    assert "no figure for it" in unmeasured


def test_stability_missing_says_not_measured(built):
    out, _, _ = built
    text = (out / "site" / "categories" / "computation-error" / "index.html").read_text(encoding="utf-8")
    assert "not measured yet: run <code>atlas taxonomy stability --runs N</code>" in text
    methodology = (out / "site" / "methodology" / "index.html").read_text(encoding="utf-8")
    assert "Not measured yet: run <code>atlas taxonomy stability --runs N</code>" in methodology


def test_repository_docs_included(tmp_path):
    docs = tmp_path / "repo-docs"
    docs.mkdir()
    (docs / "checks.md").write_text("# Checks\n\n## Empty output\n\nSee [the format](result-format.md) and "
                                    "[Python](https://www.python.org/).\n", encoding="utf-8")
    build_fixture(tmp_path, build_html=False, repo_docs=docs)
    page = (tmp_path / "src" / "docs" / "methodology.md").read_text(encoding="utf-8")
    assert "### Empty output" in page
    assert "See the format and" in page
    assert "[Python](https://www.python.org/)" in page
    submit = (tmp_path / "src" / "docs" / "submit.md").read_text(encoding="utf-8")
    assert "Each line of a result file" in submit  # no result-format.md there: the built-in summary


def test_family_nav_title_shows_exact_text(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(FIXTURE / "data", data)
    hostile = '<i>Fam</i> & "q" *x* {{ 7*7 }}'
    for model in ("llama-3-8b", "llama-3-70b"):
        path = data / "models" / f"{model}.yaml"
        text = path.read_text(encoding="utf-8").replace("family: llama-3", f"family: '{hostile}'")
        path.write_text(text, encoding="utf-8")
    build_fixture(tmp_path / "out", data=data)
    page = (tmp_path / "out" / "site" / "index.html").read_text(encoding="utf-8")
    assert "<i>Fam</i>" not in page
    shown = [html.unescape(title) for title in re.findall(r'md-nav__link[^>]*>\s*(?:<span[^>]*>)?\s*([^<]*Fam[^<]*)', page)]
    assert shown, "the family is missing from the nav"
    assert shown[0].strip() == f"{hostile} family"
