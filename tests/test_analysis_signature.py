"""Signatures, population values, comparisons and profiles on small made-up results."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atlas_builder.analysis import analyse
from atlas_builder.analysis.compare import ANY_FAILURE
from atlas_builder.analysis.profiles import pick_examples
from atlas_builder.records import (
    Category,
    DatasetInfo,
    Diagnoses,
    Diagnosis,
    ModelInfo,
    Results,
    Source,
    Taxonomy,
)

TAXONOMY = Taxonomy(version="1", categories={
    "logic": Category("logic", "Logic", "Reasoning breaks."),
    "math": Category("math", "Math", "Computation is wrong."),
    "slip": Category("slip", "Slip", "One step is wrong.", parent="math"),
    "other": Category("other", "Other", "Unplaced.", kind="special"),
    "suspect-reference": Category("suspect-reference", "Suspect", "Reference wrong.", kind="special"),
})


def make_atlas(spec: dict[tuple[str, str], list[str | None]], diagnosed: bool = True) -> tuple[Results, Diagnoses]:
    """Build Results and Diagnoses: spec maps (dataset, model) to per-instance outcomes.

    An outcome is "ok" (correct), a category id (failure diagnosed in it) or None (undiagnosed failure).
    """
    rows, items = [], []
    for (dataset, model), outcomes in spec.items():
        for number, outcome in enumerate(outcomes):
            instance = f"i{number:04d}"
            correct = outcome == "ok"
            rows.append({"dataset": dataset, "model": model, "instance_id": instance, "input": "q", "messages": None,
                         "output": "a", "score": float(correct), "reference": ("r",), "correct": correct,
                         "metadata": {}, "line": number + 1})
            if not correct and outcome is not None and diagnosed:
                items.append(Diagnosis(dataset, model, instance, "judge:test", "judge", "t", "s", category=outcome))
    frame = pd.DataFrame(rows)
    datasets = {d: DatasetInfo(d, d, "", "math", "em", 1.0, Source("x/y"), "CC0") for d in frame["dataset"].unique()}
    models = {m: ModelInfo(m, m) for m in frame["model"].unique()}
    results = Results(Path("."), datasets, models, [], frame)
    primary = {item.key: item for item in items}
    failed = frame[~frame["correct"]]
    undiagnosed = [key for key in zip(failed["dataset"], failed["model"], failed["instance_id"]) if key not in primary]
    return results, Diagnoses(items, primary, undiagnosed)


def row(signature: pd.DataFrame, model: str, category: str) -> pd.Series:
    return signature[(signature["model"] == model) & (signature["category"] == category)].iloc[0]


def test_signature_counts_and_shares():
    results, diagnoses = make_atlas({
        ("d1", "a"): ["logic"] * 30 + ["math"] * 10 + ["ok"] * 60,
        ("d1", "b"): ["logic"] * 10 + ["slip"] * 30 + ["ok"] * 60,
    })
    analysis = analyse(results, diagnoses, TAXONOMY, data_dir=Path("."))
    logic = row(analysis.signature, "a", "logic")
    assert logic["k"] == 30
    assert logic["diagnosed"] == 40
    assert logic["share"] == pytest.approx(0.75)
    assert logic["rate"] == pytest.approx(0.30)
    # The population of "a" is "b" alone: 10 of 40 diagnosed failures.
    assert logic["pop_share"] == pytest.approx(0.25)
    assert logic["flag"] == "over"
    # Subcategories count towards their top-level category.
    assert row(analysis.signature, "b", "math")["k"] == 30


def test_population_uses_same_datasets_only():
    results, diagnoses = make_atlas({
        ("d1", "a"): ["logic"] * 25 + ["ok"] * 75,
        ("d1", "b"): ["logic"] * 25 + ["ok"] * 75,
        ("d2", "b"): ["math"] * 50 + ["ok"] * 50,
        ("d2", "c"): ["math"] * 50 + ["ok"] * 50,
    })
    analysis = analyse(results, diagnoses, TAXONOMY, data_dir=Path("."))
    # "a" ran only on d1, where the other model ("b") failed only in logic.
    assert row(analysis.signature, "a", "logic")["pop_share"] == pytest.approx(1.0)
    assert row(analysis.signature, "a", "math")["pop_share"] == pytest.approx(0.0)
    assert row(analysis.signature, "a", "logic")["flag"] == ""


def test_small_signature_suppressed():
    results, diagnoses = make_atlas({
        ("d1", "a"): ["logic"] * 5 + ["ok"] * 95,
        ("d1", "b"): ["math"] * 40 + ["ok"] * 60,
    })
    analysis = analyse(results, diagnoses, TAXONOMY, data_dir=Path("."))
    assert set(analysis.signature.loc[analysis.signature["model"] == "a", "flag"]) == {"suppressed"}
    assert "a" not in analysis.nearest


def test_undiagnosed_failures_left_out_of_shares():
    results, diagnoses = make_atlas({
        ("d1", "a"): ["logic"] * 20 + [None] * 30 + ["ok"] * 50,
        ("d1", "b"): ["math"] * 20 + ["ok"] * 80,
    })
    analysis = analyse(results, diagnoses, TAXONOMY, data_dir=Path("."))
    logic = row(analysis.signature, "a", "logic")
    assert logic["diagnosed"] == 20
    assert logic["failures"] == 50
    assert logic["share"] == pytest.approx(1.0)
    assert analysis.coverage["undiagnosed"] == 30


def test_unknown_category_counted_as_other(caplog):
    results, diagnoses = make_atlas({("d1", "a"): ["nonsense"] * 25 + ["ok"] * 5, ("d1", "b"): ["logic"] * 25})
    analysis = analyse(results, diagnoses, TAXONOMY, data_dir=Path("."))
    assert row(analysis.signature, "a", "other")["k"] == 25
    assert "no category of taxonomy" in caplog.text


def test_comparison_on_shared_instances_only():
    results, diagnoses = make_atlas({
        ("d1", "a"): ["logic"] * 40 + ["ok"] * 60,
        ("d1", "b"): ["ok"] * 100,
        ("d2", "a"): ["math"] * 50,
    })
    analysis = analyse(results, diagnoses, TAXONOMY, data_dir=Path("."))
    pair = analysis.comparison.pair("a", "b")
    assert pair["shared"] == 100
    rows = {r["category"]: r for r in pair["rows"]}
    assert rows["logic"]["a"] == 40
    assert rows["logic"]["b"] == 0
    assert rows["math"]["a"] == 0  # d2 is not shared with b
    assert rows[ANY_FAILURE]["a"] == 40
    assert rows["logic"]["p"] < 0.001
    assert rows["math"]["p"] == pytest.approx(1.0)


def test_nearest_models_ranked_by_similarity():
    results, diagnoses = make_atlas({
        ("d1", "a"): ["logic"] * 30 + ["math"] * 10,
        ("d1", "b"): ["logic"] * 29 + ["math"] * 11,
        ("d1", "c"): ["logic"] * 2 + ["math"] * 38,
    })
    analysis = analyse(results, diagnoses, TAXONOMY, data_dir=Path("."))
    assert [name for name, _ in analysis.nearest["a"]] == ["b", "c"]


def test_dataset_mix_against_atlas_average():
    results, diagnoses = make_atlas({
        ("d1", "a"): ["logic"] * 30,
        ("d2", "a"): ["math"] * 10,
    })
    analysis = analyse(results, diagnoses, TAXONOMY, data_dir=Path("."))
    mix = analysis.mix.set_index(["dataset", "category"])
    assert mix.loc[("d1", "logic"), "share"] == pytest.approx(1.0)
    assert mix.loc[("d1", "logic"), "atlas_share"] == pytest.approx(0.75)
    assert mix.loc[("d1", "logic"), "diff"] == pytest.approx(0.25)


def test_examples_reproducible():
    results, diagnoses = make_atlas({("d1", "a"): ["logic"] * 30, ("d1", "b"): ["logic"] * 30})
    analysis = analyse(results, diagnoses, TAXONOMY, data_dir=Path("."))
    first = pick_examples(analysis.failures, {"logic"})
    second = pick_examples(analysis.failures.sample(frac=1.0, random_state=3), {"logic"})
    assert list(first["instance_id"]) == list(second["instance_id"])
    assert set(first["model"]) == {"a", "b"}


outcome = st.sampled_from(["ok", "logic", "math", "slip", None])


@given(st.dictionaries(st.tuples(st.sampled_from(["d1", "d2"]), st.sampled_from(["a", "b", "c"])),
                       st.lists(outcome, min_size=1, max_size=40), min_size=1, max_size=6))
@settings(max_examples=40, deadline=None)
def test_signature_invariants(spec):
    results, diagnoses = make_atlas(spec)
    analysis = analyse(results, diagnoses, TAXONOMY, data_dir=Path("."))
    signature = analysis.signature
    for model, part in signature.groupby("model"):
        assert part["k"].sum() == part["diagnosed"].iloc[0]
        if part["diagnosed"].iloc[0] > 0:
            assert part["share"].sum() == pytest.approx(1.0)
    valid = signature["share"].notna()
    assert (signature.loc[valid, "share_lo"] <= signature.loc[valid, "share"] + 1e-12).all()
    assert (signature.loc[valid, "share"] <= signature.loc[valid, "share_hi"] + 1e-12).all()
    over = signature["flag"] == "over"
    assert (signature.loc[over, "share_lo"] > signature.loc[over, "pop_share"]).all()
    assert analysis.coverage["failures"] == analysis.coverage["diagnosed"] + analysis.coverage["undiagnosed"]
    comparison = analysis.comparison
    assert np.array_equal(comparison.shared, comparison.shared.T)
