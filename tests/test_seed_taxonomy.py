import pytest
import yaml

from atlas_builder.taxonomy import InvalidTaxonomyError, load_taxonomy
from atlas_factory import SEED_TAXONOMY

PUBLISHED_TOP_LEVEL = {
    "Missing Required Element", "Specification Misinterpretation", "Logical Reasoning Error",
    "Incorrect Identification", "Computation Error", "Factual Error", "Counting/Enumeration Error",
    "Tool/API Usage Error", "Hard to Analyze", "Other",
}


def test_seed_has_published_top_level_names():
    taxonomy = load_taxonomy(SEED_TAXONOMY.parent.parent, version="1")
    top = {category.name for category in taxonomy.children(None)}

    assert PUBLISHED_TOP_LEVEL <= top


def test_seed_shares_match_published_figures():
    taxonomy = load_taxonomy(SEED_TAXONOMY.parent.parent, version="1")

    assert taxonomy.categories["missing-required-element"].published_share == pytest.approx(0.1556)
    assert taxonomy.categories["computation-error"].published_share == pytest.approx(0.0845)


def test_seed_every_category_defined():
    taxonomy = load_taxonomy(SEED_TAXONOMY.parent.parent, version="1")

    for category in taxonomy.categories.values():
        assert len(category.definition.split()) >= 5, category.id
        assert taxonomy.top_level(category.id) in taxonomy.categories


def test_taxonomy_unknown_parent_rejected(tmp_path):
    (tmp_path / "taxonomy").mkdir()
    obj = {"version": "1", "categories": [{"id": "child", "name": "C", "definition": "d", "parent": "missing"}]}
    (tmp_path / "taxonomy" / "v1.yaml").write_text(yaml.safe_dump(obj))

    with pytest.raises(InvalidTaxonomyError) as caught:
        load_taxonomy(tmp_path)

    assert "unknown parent 'missing'" in str(caught.value)


def test_taxonomy_missing_file_names_fix(tmp_path):
    with pytest.raises(InvalidTaxonomyError) as caught:
        load_taxonomy(tmp_path)

    assert "not found" in str(caught.value)
