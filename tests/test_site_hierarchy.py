"""The taxonomy hierarchy on the site: node counts and shares, the icicle chart, changes between versions."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from atlas_builder.records import Category, Taxonomy
from atlas_builder.site.charts import draw
from atlas_builder.site.hierarchy import icicle_spec, taxonomy_changes, tree_nodes
from atlas_builder.taxonomy.load import load_taxonomy

FIXTURE = Path(__file__).parent / "fixtures" / "site"
sys.path.insert(0, str(Path(__file__).parent))
from test_site_render import build_fixture  # noqa: E402


@st.composite
def taxonomies_with_failures(draw_value):
    """A random forest of up to three levels and failures assigned to its nodes (or to no category)."""
    size = draw_value(st.integers(min_value=1, max_value=12))
    categories = {}
    for index in range(size):
        parent = draw_value(st.sampled_from([None, *categories])) if categories else None
        if parent is not None and categories[parent].parent is not None and categories[categories[parent].parent].parent:
            parent = None
        categories[f"c{index}"] = Category(id=f"c{index}", name=f"C {index}", definition="d", parent=parent)
    assigned = draw_value(st.lists(st.sampled_from([None, *categories]), max_size=60))
    return Taxonomy(version="1", categories=categories), pd.DataFrame({"category": pd.Series(assigned, dtype=object)})


@settings(max_examples=60, deadline=None)
@given(taxonomies_with_failures())
def test_tree_nodes_counts_add_up(case):
    taxonomy, failures = case
    nodes, total = tree_nodes(taxonomy, failures)
    own = failures["category"].value_counts()
    by_id = {node["id"]: node for node in nodes}
    assert total == int(failures["category"].notna().sum())
    assert sorted(by_id) == sorted(taxonomy.categories)
    assert sum(node["k"] for node in nodes if node["depth"] == 1) == total
    for node in nodes:
        children = [child for child in nodes if child["parent"] == node["id"]]
        assert node["k"] == int(own.get(node["id"], 0)) + sum(child["k"] for child in children)
        if total:
            assert node["share"] == pytest.approx(node["k"] / total)
        else:
            assert node["share"] is None


def test_tree_nodes_parent_before_children():
    taxonomy = load_taxonomy(FIXTURE / "data")
    nodes, _ = tree_nodes(taxonomy, pd.DataFrame({"category": ["arithmetic-slip", "computation-error", None]}))
    order = [node["id"] for node in nodes]
    assert order.index("computation-error") < order.index("arithmetic-slip")
    slip = nodes[order.index("arithmetic-slip")]
    assert slip["path"] == ["computation-error"]
    assert slip["depth"] == 2
    assert nodes[order.index("computation-error")]["k"] == 2
    assert slip["share"] == pytest.approx(0.5)


def test_icicle_chart_bytes_are_stable():
    taxonomy = load_taxonomy(FIXTURE / "data")
    failures = pd.DataFrame({"category": ["arithmetic-slip"] * 3 + ["computation-error"] * 2 + ["other"] * 4 + ["refusal"]})
    nodes, total = tree_nodes(taxonomy, failures)
    spec = icicle_spec("h.svg", nodes, total, taxonomy.version)
    first, second = draw(spec), draw(spec)
    assert first == second
    text = first.decode("utf-8")
    assert "Arithmetic Slip" in text
    assert "All diagnosed failures" in text
    assert "40.0 %" in text  # "Other": 4 of 10 diagnosed failures


def test_icicle_chart_draws_names_literally():
    taxonomy = Taxonomy(version="1", categories={"x": Category(id="x", name="$x$ <b>", definition="d")})
    nodes, total = tree_nodes(taxonomy, pd.DataFrame({"category": ["x"]}))
    text = draw(icicle_spec("h.svg", nodes, total, "1")).decode("utf-8")
    assert "$x$ &lt;b&gt;" in text


@pytest.fixture(scope="module")
def revised_data(tmp_path_factory) -> Path:
    """A copy of the fixture data with a version 2 that renames one category and adds another."""
    data = tmp_path_factory.mktemp("revised") / "data"
    shutil.copytree(FIXTURE / "data", data)
    document = yaml.safe_load((data / "taxonomy" / "v1.yaml").read_text(encoding="utf-8"))
    document["version"], document["previous_version"] = "2", "1"
    for item in document["categories"]:
        if item["id"] == "factual-error":
            item["name"] = "Wrong World Knowledge"
    document["categories"].append({"id": "unit-error", "name": "Unit Error", "definition": "Wrong unit.",
                                   "parent": "computation-error", "kind": "content"})
    document["mapping"] = {}
    (data / "taxonomy" / "v2.yaml").write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return data


def test_taxonomy_changes_lists_rename_and_addition(revised_data):
    changes = taxonomy_changes(load_taxonomy(revised_data))
    assert changes["previous_version"] == "1"
    assert [(row["id"], row["change"]) for row in changes["rows"]] == [("factual-error", "renamed")]
    assert changes["rows"][0]["targets"] == [{"id": "factual-error", "name": "Wrong World Knowledge"}]
    assert changes["added"] == [{"id": "unit-error", "name": "Unit Error"}]


def test_taxonomy_changes_none_for_first_version():
    assert taxonomy_changes(load_taxonomy(FIXTURE / "data")) is None


@pytest.mark.slow
def test_categories_pages_show_hierarchy(revised_data, tmp_path):
    build_fixture(tmp_path, data=revised_data)
    site = tmp_path / "site" / "categories"
    index = (site / "index.html").read_text(encoding="utf-8")
    assert 'src="../charts/taxonomy-hierarchy.svg"' in index
    assert 'alt="Icicle diagram of taxonomy v2' in index
    assert (tmp_path / "site" / "charts" / "taxonomy-hierarchy.svg").is_file()
    assert 'class="atlas-kind atlas-kind-special"' in index
    assert 'class="atlas-kind atlas-kind-mechanical"' in index
    assert "Changes since version 1" in index
    assert "renamed" in index
    assert "Wrong World Knowledge" in index
    slip = (site / "arithmetic-slip" / "index.html").read_text(encoding="utf-8")
    assert 'href="../computation-error/"' in slip  # breadcrumb to the parent
    assert "ours (this atlas added or renamed the category)" in slip
    parent = (site / "computation-error" / "index.html").read_text(encoding="utf-8")
    assert "Subcategories" in parent
    assert 'href="../unit-error/"' in parent
    assert "official name" in parent
    assert "8.5" in parent  # published share 8.45 %
