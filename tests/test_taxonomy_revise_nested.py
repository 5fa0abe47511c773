"""Revision from a draft with subcategories: an old category follows its failures to the draft parent."""

from __future__ import annotations

from atlas_factory import SEED_TAXONOMY, write_atlas

from atlas_builder.records import Category, Taxonomy
from atlas_builder.taxonomy import load_taxonomy
from atlas_builder.taxonomy.revise import change_kinds, revise_from_draft


def nested_draft() -> Taxonomy:
    categories = {
        "list-completeness": Category("list-completeness", "List Completeness", "d"),
        "item-omission": Category("item-omission", "Item Omission", "d", parent="list-completeness"),
        "field-omission": Category("field-omission", "Field Omission", "d", parent="list-completeness"),
        "unit-handling": Category("unit-handling", "Unit Handling", "d"),
        "other": Category("other", "Other", "d", kind="special"),
        "hard-to-analyze": Category("hard-to-analyze", "Hard to Analyze", "d", kind="special"),
    }
    return Taxonomy(version="draft", categories=categories)


def revise_nested(tmp_path):
    v1 = load_taxonomy(write_atlas(tmp_path, {}, taxonomy_from=SEED_TAXONOMY))
    old, new = {}, {}
    # The seed's "Missing Required Element" failures went to both subcategories of "List Completeness";
    # its "Specification Misinterpretation" failures went to "Unit Handling" and to one subcategory.
    flows = [("missing-required-element", "item-omission", 5), ("missing-required-element", "field-omission", 5),
             ("specification-misinterpretation", "unit-handling", 6),
             ("specification-misinterpretation", "field-omission", 3)]
    for old_id, new_id, count in flows:
        for index in range(count):
            title = f"{old_id} {new_id} {index}"
            old[title], new[title] = old_id, new_id
    return v1, revise_from_draft(v1, nested_draft(), old, new)


def test_old_id_goes_to_draft_parent(tmp_path):
    v1, v2 = revise_nested(tmp_path)

    assert v2.categories["missing-required-element"].name == "List Completeness"
    assert v2.categories["missing-required-element"].parent is None
    assert v2.categories["item-omission"].parent == "missing-required-element"
    assert v2.mapping["missing-required-element"] == ("missing-required-element",)
    assert change_kinds(v1, v2)["missing-required-element"] == "renamed"


def test_split_lists_no_nested_target(tmp_path):
    _, v2 = revise_nested(tmp_path)

    # 6 of 9 failures went to Unit Handling, 3 to Field Omission inside the renamed list category.
    assert v2.categories["specification-misinterpretation"].name == "Unit Handling"
    assert v2.mapping["specification-misinterpretation"] == ("specification-misinterpretation", "field-omission")
