"""Analysis stage: failure signatures, comparisons, dataset profiles and category counts.

Entry point: ``analyse(results, diagnoses, taxonomy) -> Analysis``. Every table
is computed with vectorised pandas/numpy group-bys so the stage stays fast at
hundreds of thousands of failures.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from atlas_builder.analysis.compare import Comparison, compare_models
from atlas_builder.analysis.profiles import accuracy_table, dataset_mix
from atlas_builder.analysis.signature import (
    MIN_DIAGNOSED,
    category_counts,
    nearest_models,
    pair_totals,
    signatures,
)
from atlas_builder.records import Diagnoses, Results, Taxonomy

logger = logging.getLogger(__name__)

FALLBACK_CATEGORY = "other"

#: Label of failures whose primary diagnosis has no category yet (a judge answer whose title the
#: taxonomy stage has not classified). They are neither undiagnosed nor in the Other category.
UNCLASSIFIED_LABEL = "not yet classified"


@dataclass
class Analysis:
    """Every aggregate the site shows.

    ``failures`` has one row per failure: dataset, model, instance_id,
    category (assigned id, None when undiagnosed or not yet classified), group
    (the signature category it counts towards), diagnoser and kind of the
    primary diagnosis. A row with a diagnoser but no category is not yet
    classified (``UNCLASSIFIED_LABEL``) and no signature counts it.
    """

    failures: pd.DataFrame = field(default_factory=pd.DataFrame)
    totals: pd.DataFrame = field(default_factory=pd.DataFrame)
    accuracy: pd.DataFrame = field(default_factory=pd.DataFrame)
    signature: pd.DataFrame = field(default_factory=pd.DataFrame)
    signature_categories: list[str] = field(default_factory=list)
    nearest: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    comparison: Comparison | None = None
    mix: pd.DataFrame = field(default_factory=pd.DataFrame)
    coverage: dict[str, Any] = field(default_factory=dict)
    stability: Any = None
    min_diagnosed: int = MIN_DIAGNOSED


def failure_table(results: Results, diagnoses: Diagnoses, taxonomy: Taxonomy) -> pd.DataFrame:
    """Return one row per failure with the category and diagnoser of its primary diagnosis."""
    failed = results.failures()[["dataset", "model", "instance_id"]].reset_index(drop=True)
    primary = diagnoses.primary
    unknown: Counter[str] = Counter()
    unclassified = 0
    records = []
    for key, item in primary.items():
        category = item.category
        if category is None:
            unclassified += 1
        elif category not in taxonomy.categories:
            unknown[str(category)] += 1
            category = FALLBACK_CATEGORY if FALLBACK_CATEGORY in taxonomy.categories else None
        records.append((*key, category, item.diagnoser, item.kind))
    if unknown:
        logger.warning("%d diagnoses have no category of taxonomy v%s (%s); counted as %r",
                       sum(unknown.values()), taxonomy.version, ", ".join(f"{name}: {n}" for name, n in unknown.most_common(5)),
                       FALLBACK_CATEGORY)
    if unclassified:
        logger.warning("%d diagnoses have no category yet; shown as %r and left out of signatures "
                       "(run the taxonomy stage to classify them)", unclassified, UNCLASSIFIED_LABEL)
    diagnosed = pd.DataFrame.from_records(records, columns=["dataset", "model", "instance_id", "category", "diagnoser", "kind"])
    table = failed.merge(diagnosed, on=["dataset", "model", "instance_id"], how="left")
    table["group"] = table["category"].map(signature_groups(taxonomy))
    table = table.astype({"category": object, "group": object, "diagnoser": object, "kind": object})
    return table.sort_values(["dataset", "model", "instance_id"], kind="stable").reset_index(drop=True)


def signature_categories(taxonomy: Taxonomy) -> list[str]:
    """Return the categories that signatures count, in taxonomy order.

    These are the top-level categories, except that a mechanical top-level
    category with children (such as output mechanics) is replaced by its
    children: empty, truncated or refused outputs are different failures and
    checks tell them apart with certainty. Suspect references are left out
    because they describe the dataset, not the model.
    """
    chosen = []
    for category in taxonomy.children(None):
        if category.id == "suspect-reference":
            continue
        children = taxonomy.children(category.id)
        if category.kind == "mechanical" and children:
            chosen.extend(child.id for child in children)
        else:
            chosen.append(category.id)
    return chosen


def signature_groups(taxonomy: Taxonomy) -> dict[str, str]:
    """Map every category id to the signature category it counts towards (its nearest listed ancestor)."""
    listed = set(signature_categories(taxonomy))
    groups = {}
    for category_id in taxonomy.categories:
        current = taxonomy.categories[category_id]
        while current.id not in listed and current.parent is not None:
            current = taxonomy.categories[current.parent]
        if current.id in listed:
            groups[category_id] = current.id
        else:
            # A failure filed under a mechanical parent itself fits none of its children.
            groups[category_id] = FALLBACK_CATEGORY if FALLBACK_CATEGORY in listed else current.id
    return groups


def analyse(results: Results, diagnoses: Diagnoses, taxonomy: Taxonomy, *, data_dir: Path | None = None) -> Analysis:
    """Compute every aggregate the site shows."""
    failures = failure_table(results, diagnoses, taxonomy)
    rows = results.rows[["dataset", "model", "instance_id", "correct"]]
    totals = pair_totals(rows, failures)
    top_categories = signature_categories(taxonomy)
    counts = category_counts(failures, "group", top_categories)
    signature = signatures(totals, counts)
    comparison = compare_models(rows, failures, top_categories)

    by_diagnoser = failures["diagnoser"].value_counts().sort_index()
    findings = Counter(item.diagnoser for item in diagnoses.items)
    coverage = {
        "models": int(rows["model"].nunique()),
        "datasets": int(rows["dataset"].nunique()),
        "instances": int(len(rows)),
        "failures": int(len(failures)),
        "diagnosed": int(failures["category"].notna().sum()),
        "undiagnosed": len(diagnoses.undiagnosed),
        "unclassified": int((failures["category"].isna() & failures["diagnoser"].notna()).sum()),
        "by_diagnoser": {str(name): int(n) for name, n in by_diagnoser.items()},
        "by_kind": {str(name): int(n) for name, n in failures["kind"].value_counts().sort_index().items()},
        "findings_by_diagnoser": dict(sorted(findings.items())),
        "suspect_references": len(diagnoses.suspect_references),
    }
    return Analysis(
        failures=failures, totals=totals, accuracy=accuracy_table(totals), signature=signature,
        signature_categories=top_categories, nearest=nearest_models(signature), comparison=comparison,
        mix=dataset_mix(counts), coverage=coverage, stability=load_stability(data_dir or results.data_dir),
    )


def load_stability(data_dir: Path) -> Any:
    """Return the taxonomy stage's agreement figures, or None when that stage has not measured them."""
    try:
        from atlas_builder.taxonomy import stability_summary  # type: ignore[attr-defined]
    except ImportError:
        return None
    try:
        return stability_summary(data_dir)
    except FileNotFoundError:
        return None


__all__ = ["UNCLASSIFIED_LABEL", "Analysis", "Comparison", "analyse"]
