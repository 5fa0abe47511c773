"""How stable is the taxonomy? Agreement between re-induced runs and between classifiers.

Between two partitions of the same failures (each title weighted by its
failures) this reports the adjusted Rand index and normalised mutual
information (scikit-learn), and the share of categories matched one-to-one:
the Hungarian method finds the most pairs of categories (one from each run)
whose Jaccard overlap of failures is at least ``MATCH_JACCARD``, and the share
is that number of pairs over the larger number of categories.
Classification agreement is Cohen's kappa over titles.

The report is written to ``data/taxonomy/stability.json``.
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from dataclasses import asdict, replace
from datetime import datetime, timezone
from itertools import combinations
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, cohen_kappa_score, normalized_mutual_info_score

from atlas_builder.results.write import atomic_write_bytes
from atlas_builder.taxonomy.induce import Induction, InductionSettings, induce
from atlas_builder.taxonomy.judging import JsonJudge

logger = logging.getLogger(__name__)

REPORT_FILE = "stability.json"
REPORT_FORMAT = 1
#: Two categories of different runs count as the same when their Jaccard overlap of failures is at least this.
MATCH_JACCARD = 0.5
LEVELS = {"top": 1, "leaf": None}


def _aligned(a: Mapping[str, str], b: Mapping[str, str], weights: Mapping[str, int] | None
             ) -> tuple[list[str], list[str], list[int]]:
    titles = sorted(a.keys() & b.keys())
    counts = [int((weights or {}).get(title, 1)) for title in titles]
    return [a[title] for title in titles], [b[title] for title in titles], counts


def matched_share(a: Mapping[str, str], b: Mapping[str, str], weights: Mapping[str, int] | None = None) -> float:
    """Return the share of categories matched one-to-one between two partitions (see the module docstring)."""
    left, right, counts = _aligned(a, b, weights)
    if not left:
        return 0.0
    labels_a, labels_b = sorted(set(left)), sorted(set(right))
    index_a = {label: i for i, label in enumerate(labels_a)}
    index_b = {label: i for i, label in enumerate(labels_b)}
    shared = np.zeros((len(labels_a), len(labels_b)))
    for x, y, weight in zip(left, right, counts):
        shared[index_a[x], index_b[y]] += weight
    size_a, size_b = shared.sum(axis=1), shared.sum(axis=0)
    jaccard = shared / (size_a[:, None] + size_b[None, :] - shared)
    # Maximise the number of pairs over the threshold (not the sum of overlaps), so ties cannot change the count.
    eligible = (jaccard >= MATCH_JACCARD).astype(float)
    rows, cols = linear_sum_assignment(eligible, maximize=True)
    matched = int(eligible[rows, cols].sum())
    return matched / max(len(labels_a), len(labels_b))


def partition_scores(a: Mapping[str, str], b: Mapping[str, str], weights: Mapping[str, int] | None = None
                     ) -> dict[str, float]:
    """Return ARI, NMI and the one-to-one matched share of two title partitions, over the failures of both."""
    left, right, counts = _aligned(a, b, weights)
    if not left:
        raise ValueError("the two partitions share no titles; nothing to compare")
    left_failures, right_failures = np.repeat(left, counts), np.repeat(right, counts)
    return {
        "ari": float(adjusted_rand_score(left_failures, right_failures)),
        "nmi": float(normalized_mutual_info_score(left_failures, right_failures)),
        "matched_share": matched_share(a, b, weights),
    }


def kappa(a: Mapping[str, str], b: Mapping[str, str], weights: Mapping[str, int] | None = None) -> tuple[float, int]:
    """Return Cohen's kappa between two classifications of the same titles, and the number of titles compared."""
    left, right, counts = _aligned(a, b, weights)
    if not left:
        raise ValueError("the two classifications share no titles; nothing to compare")
    if len(set(left) | set(right)) == 1:
        return 1.0, len(left)  # both put everything in one category: full agreement, which sklearn reports as nan
    return float(cohen_kappa_score(left, right, sample_weight=counts if weights else None)), len(left)


def category_consistency(reference: Mapping[str, str], runs: list[Mapping[str, str]],
                         weights: Mapping[str, int] | None = None) -> dict[str, dict[str, float]]:
    """Return, per reference category, the mean share of its failures that a run keeps in one category."""
    members: dict[str, list[str]] = defaultdict(list)
    for title, category in reference.items():
        members[category].append(title)
    result = {}
    for category, titles in sorted(members.items()):
        total = sum((weights or {}).get(title, 1) for title in titles)
        shares = []
        for run in runs:
            placed: Counter = Counter()
            for title in titles:
                if title in run:
                    placed[run[title]] += (weights or {}).get(title, 1)
            if placed:
                shares.append(placed.most_common(1)[0][1] / sum(placed.values()))
        result[category] = {"consistency": float(np.mean(shares)) if shares else None, "members": total}
    return result


def _summary(pairs: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not pairs:
        return None
    out: dict[str, Any] = {"pairs": len(pairs)}
    for metric in ("ari", "nmi", "matched_share"):
        values = [pair[metric] for pair in pairs]
        out[metric] = {"mean": float(np.mean(values)), "min": float(np.min(values))}
    return out


async def measure_stability(
    judge: JsonJudge,
    counts: Counter,
    settings: InductionSettings,
    runs: int,
    *,
    taxonomy_version: str,
    variant_judge: JsonJudge | None = None,
    variant_prompt_set: str | None = None,
    variant_runs: int = 1,
    reference: Mapping[str, str] | None = None,
    classifications: Mapping[str, Mapping[str, str]] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Re-induce ``runs`` times with seeds ``settings.seed + i`` and report the agreement.

    With ``variant_judge`` or ``variant_prompt_set``, ``variant_runs`` more runs
    use them, and their agreement with the main runs is reported apart.
    ``reference`` (title -> category of the published version) is the
    partition whose categories get a consistency figure; without it, the first
    run's. ``classifications`` maps a label (a judge, or "hand labels") to
    title -> category; kappa is reported between the first and each other.
    """
    if runs < 2:
        raise ValueError(f"stability needs at least 2 runs to compare, got {runs}")
    inductions: list[tuple[str, Induction]] = []
    for index in range(runs):
        run_settings = replace(settings, seed=settings.seed + index)
        inductions.append((f"seed {run_settings.seed}", await induce(judge, counts, run_settings)))
        if progress:
            progress(f"run {index + 1} of {runs} done")
    main_count = len(inductions)
    if variant_judge is not None or variant_prompt_set is not None:
        for index in range(variant_runs):
            run_settings = replace(settings, seed=settings.seed + index,
                                   prompt_set=variant_prompt_set or settings.prompt_set)
            run_judge = variant_judge or judge
            label = f"variant {run_judge.model}/{run_settings.prompt_set} seed {run_settings.seed}"
            inductions.append((label, await induce(run_judge, counts, run_settings)))
    weights = dict(counts)

    levels: dict[str, Any] = {}
    variant: dict[str, Any] = {}
    pair_rows = []
    for level, depth in LEVELS.items():
        partitions = [induction.partition(depth) for _, induction in inductions]
        main_pairs, variant_pairs = [], []
        for i, j in combinations(range(len(inductions)), 2):
            if i >= main_count:
                continue
            scores = {"a": i, "b": j, "level": level, **partition_scores(partitions[i], partitions[j], weights)}
            pair_rows.append(scores)
            (main_pairs if j < main_count else variant_pairs).append(scores)
        levels[level] = _summary(main_pairs)
        variant[level] = _summary(variant_pairs)

    leaf_runs = [induction.partition(None) for _, induction in inductions[:main_count]]
    top_runs = [induction.partition(1) for _, induction in inductions[:main_count]]
    if reference:
        categories = category_consistency(reference, top_runs, weights)
        reference_label = f"published v{taxonomy_version}"
    else:
        categories = category_consistency(top_runs[0], top_runs[1:], weights)
        reference_label = inductions[0][0]

    kappas = []
    if classifications and len(classifications) >= 2:
        labels = list(classifications)
        for other in labels[1:]:
            value, items = kappa(classifications[labels[0]], classifications[other])
            kappas.append({"between": [labels[0], other], "kappa": value, "items": items})

    return {
        "format": REPORT_FORMAT,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "taxonomy_version": taxonomy_version,
        "titles": len(counts),
        "failures": int(sum(counts.values())),
        "settings": asdict(settings),
        "runs": [
            {"label": label, "judge": induction.judge, "seed": induction.settings.seed,
             "prompt_set": induction.settings.prompt_set, "main": index < main_count,
             "categories": len(induction.categories),
             "top_level": sorted(c.name for c in induction.categories.values() if c.depth == 1)}
            for index, (label, induction) in enumerate(inductions)
        ],
        "levels": levels,
        "variant": variant if any(variant.values()) else None,
        "pairs": pair_rows,
        "kappa": kappas,
        "consistency_reference": reference_label,
        "categories": categories,
        "leaf_categories_per_run": [len(set(run.values())) for run in leaf_runs],
    }


def report_path(data_dir: Path) -> Path:
    """Return the path of the stability report."""
    return Path(data_dir) / "taxonomy" / REPORT_FILE


def write_report(report: dict[str, Any], data_dir: Path) -> Path:
    """Write the stability report as indented JSON, atomically."""
    path = report_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, (json.dumps(report, indent=2, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8"))
    return path


def stability_summary(data_dir: Path) -> dict[str, Any] | None:
    """Return the figures the site shows from the last stability report, or None when there is none.

    Keys are described in the ``atlas_builder.taxonomy`` docstring. A report
    that cannot be read is logged and treated as missing.
    """
    path = report_path(data_dir)
    if not path.exists():
        return None
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
        return {
            "taxonomy_version": report["taxonomy_version"],
            "runs": sum(1 for run in report["runs"] if run.get("main", True)),
            "failures": report["failures"],
            "levels": report["levels"],
            "variant": report.get("variant"),
            "kappa": report.get("kappa", []),
            "categories": report.get("categories", {}),
            "consistency_reference": report.get("consistency_reference"),
            "created": report.get("created"),
        }
    except (ValueError, KeyError, TypeError) as error:
        logger.warning("%s is not a valid stability report (%s); rerun `atlas taxonomy stability`", path, error)
        return None
