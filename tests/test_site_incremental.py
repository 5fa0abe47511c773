"""Incremental rendering: pages whose inputs are unchanged are skipped, and the output equals a full render."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from atlas_builder.analysis import analyse
from atlas_builder.results import load_results
from atlas_builder.site.pages import Release
from atlas_builder.site.render import render_sources
from atlas_builder.taxonomy.load import load_taxonomy

FIXTURE = Path(__file__).parent / "fixtures" / "site"
sys.path.insert(0, str(FIXTURE))
from synthetic import fixture_diagnoses  # noqa: E402

CHANGED = "mistral-7b"


def render(data: Path, out: Path, *, force: bool = False):
    """Render the sources of the atlas in ``data`` into ``out``; return the output tree and the analysis."""
    results = load_results(data)
    diagnoses = fixture_diagnoses(results)
    taxonomy = load_taxonomy(data)
    analysis = analyse(results, diagnoses, taxonomy)
    tree, *_ = render_sources(results, diagnoses, taxonomy, analysis, docs_dir=out, site_dir=out.parent / "site",
                              release=Release(name="2024.1", date="2024-05-01"), force=force)
    return tree, analysis


def snapshot(root: Path) -> dict[str, bytes]:
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory):
    """Render twice, rename one model, render again; return the data, output folder, trees and analysis."""
    base = tmp_path_factory.mktemp("incremental")
    data, out = base / "data", base / "src"
    shutil.copytree(FIXTURE / "data", data)
    first, _ = render(data, out)
    unchanged, _ = render(data, out)
    model_file = data / "models" / f"{CHANGED}.yaml"
    model_file.write_text(model_file.read_text(encoding="utf-8").replace("name: Mistral 7B", "name: Mistral Seven"),
                          encoding="utf-8")
    changed, analysis = render(data, out)
    return data, out, first, unchanged, changed, analysis


def test_unchanged_rebuild_renders_no_page(rebuilt):
    _, _, first, unchanged, _, _ = rebuilt
    assert first.written > 100
    assert unchanged.written_paths == []


def test_renamed_model_rewrites_only_pages_listing_it(rebuilt):
    _, _, _, _, changed, analysis = rebuilt
    failures = analysis.failures
    mine = failures[failures["model"] == CHANGED]
    listing = {f"docs/models/{CHANGED}", "docs/models/index", "docs/models/models",
               "docs/models/compare-data/meta"}
    listing |= {f"docs/datasets/{dataset}" for dataset in analysis.accuracy.query("model == @CHANGED")["dataset"]}
    categories_with_model = set()
    for category in mine["category"].dropna():
        # A category page counts the failures of its whole subtree, so the ancestors list the model too.
        node = category
        while node is not None:
            categories_with_model.add(node)
            node = load_taxonomy(FIXTURE / "data").categories[node].parent
    listing |= {f"docs/categories/{category}" for category in categories_with_model}
    listing |= {f"docs/models/{model}" for model, near in analysis.nearest.items() if CHANGED in dict(near)}
    written = set(changed.written_paths)
    assert f"docs/models/{CHANGED}.md" in written
    assert "docs/models/index.md" in written
    for path in written:
        allowed = (path.rsplit(".", 1)[0] in listing or path.startswith(("docs/charts/", "docs/failures/"))
                   or path == "docs/.page-hashes.json")
        assert allowed, f"{path} was rewritten although it does not list {CHANGED}"
    untouched = [category for category in load_taxonomy(FIXTURE / "data").categories if category not in categories_with_model]
    assert untouched, "the fixture should have categories without failures of the changed model"
    for category in untouched:
        assert f"docs/categories/{category}.md" not in written


def test_forced_full_render_gives_same_bytes(rebuilt, tmp_path):
    data, out, _, _, _, _ = rebuilt
    incremental = snapshot(out)
    forced, _ = render(data, out, force=True)
    assert forced.written_paths == []
    assert snapshot(out) == incremental
    render(data, tmp_path / "fresh", force=True)
    fresh = snapshot(tmp_path / "fresh")
    assert sorted(fresh) == sorted(incremental)
    for name, data_bytes in incremental.items():
        if name == "mkdocs.yml":
            continue  # contains the absolute docs_dir and site_dir, which differ between the two folders
        assert fresh[name] == data_bytes, f"{name} differs between the incremental and a full render"


def test_unchanged_comparison_not_formatted_again(tmp_path, monkeypatch):
    import atlas_builder.site.render as render_module

    data, out = tmp_path / "data", tmp_path / "src"
    shutil.copytree(FIXTURE / "data", data)
    calls = []
    real = render_module.compare_shards
    monkeypatch.setattr(render_module, "compare_shards", lambda *args: calls.append(1) or real(*args))

    render(data, out)
    second, _ = render(data, out)

    assert len(calls) == 1
    assert (out / "docs" / "models" / "compare-data" / "meta.json").is_file()
    assert second.written_paths == []


def test_description_edit_renders_no_model_page(tmp_path, monkeypatch):
    from atlas_builder.site.pages import PageBuilder

    data, out = tmp_path / "data", tmp_path / "src"
    shutil.copytree(FIXTURE / "data", data)
    render(data, out)
    dataset_file = data / "datasets" / "quiz.yaml"
    text = dataset_file.read_text(encoding="utf-8")
    assert "description:" in text
    dataset_file.write_text(text.replace("description:", "description: Edited.", 1), encoding="utf-8")
    rendered = []
    real_model = PageBuilder.model
    monkeypatch.setattr(PageBuilder, "model", lambda self, model_id: rendered.append(model_id) or real_model(self, model_id))

    edited, _ = render(data, out)

    assert "docs/datasets/quiz.md" in set(edited.written_paths)
    assert rendered == []
