"""Judge answers without a category are "not yet classified": not undiagnosed, not the Other category."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pandas as pd
import pytest

from atlas_builder.analysis import UNCLASSIFIED_LABEL, analyse
from atlas_builder.records import Diagnoses
from atlas_builder.results import load_results
from atlas_builder.site.failures import UNCLASSIFIED_CODE, write_browser_data
from atlas_builder.taxonomy.load import load_taxonomy

FIXTURE = Path(__file__).parent / "fixtures" / "site"
sys.path.insert(0, str(FIXTURE))
from synthetic import fixture_diagnoses  # noqa: E402


class MemoryTree:
    def __init__(self):
        self.files: dict[str, str] = {}

    def write(self, relative: str, data) -> bool:
        self.files[relative] = data
        return True

    def path(self, relative: str):
        from pathlib import Path

        # Nothing is on disk, so the shard manifest is never found and every shard is written.
        return Path("/nonexistent-memory-tree") / relative

    def mark(self, relative: str) -> None:
        raise AssertionError(f"{relative} was kept although nothing was written before")


def without_categories(diagnoses: Diagnoses, keys: set) -> Diagnoses:
    """Return ``diagnoses`` with the primary judge diagnosis of ``keys`` stripped of its category."""
    primary = {key: dataclasses.replace(item, category=None) if key in keys else item
               for key, item in diagnoses.primary.items()}
    return dataclasses.replace(diagnoses, primary=primary)


@pytest.fixture(scope="module")
def unclassified_build():
    results = load_results(FIXTURE / "data")
    taxonomy = load_taxonomy(FIXTURE / "data")
    diagnoses = fixture_diagnoses(results)
    keys = {key for key, item in diagnoses.primary.items() if item.kind == "judge"}
    keys = set(sorted(keys)[:5])
    diagnoses = without_categories(diagnoses, keys)
    return results, diagnoses, taxonomy, analyse(results, diagnoses, taxonomy), keys


def test_unclassified_not_counted_as_other(unclassified_build):
    _, _, _, analysis, keys = unclassified_build
    failures = analysis.failures.set_index(["dataset", "model", "instance_id"])
    for key in keys:
        assert pd.isna(failures.loc[key, "category"])
        assert pd.isna(failures.loc[key, "group"])
        assert failures.loc[key, "diagnoser"] == "judge:made-up-model"
    assert (analysis.failures["category"] == "other").sum() == 0
    assert (analysis.failures["group"] == "other").sum() == 0


def test_unclassified_counted_in_coverage(unclassified_build):
    _, diagnoses, _, analysis, keys = unclassified_build
    assert analysis.coverage["unclassified"] == len(keys)
    assert analysis.coverage["undiagnosed"] == len(diagnoses.undiagnosed)
    assert analysis.coverage["diagnosed"] == len(diagnoses.primary) - len(keys)


def test_browser_index_marks_unclassified(unclassified_build):
    results, diagnoses, taxonomy, analysis, keys = unclassified_build
    tree = MemoryTree()
    write_browser_data(tree, results, diagnoses, taxonomy, analysis)
    meta = json.loads(tree.files["failures/data/meta.json"])
    assert meta["unclassified_label"] == UNCLASSIFIED_LABEL
    assert meta["unclassified_code"] == UNCLASSIFIED_CODE
    dataset, model, instance_id = sorted(keys)[0]
    index = json.loads(tree.files[f"failures/data/index/model/{model}.json"])
    position = [n for n in range(len(index["i"])) if index["i"][n] == instance_id
                and meta["datasets"][index["d"][n]]["id"] == dataset][0]
    assert index["c"][position] == UNCLASSIFIED_CODE
    other = json.loads(tree.files["failures/data/index/category/other.json"])
    assert instance_id not in other["i"]
