from atlas_factory import SEED_TAXONOMY

from atlas_builder.taxonomy import load_taxonomy
from atlas_builder.taxonomy.classify import offered_children


def test_classifier_not_offered_mechanical_top_level():
    taxonomy = load_taxonomy(SEED_TAXONOMY.parent.parent, version="1")

    offered = {category.id for category in offered_children(taxonomy, None)}

    assert "output-mechanics" not in offered
    assert "missing-required-element" in offered
    assert "hard-to-analyze" in offered
    assert "other" not in offered


def test_classifier_stops_above_check_only_children():
    taxonomy = load_taxonomy(SEED_TAXONOMY.parent.parent, version="1")

    assert offered_children(taxonomy, "computation-error") == []
