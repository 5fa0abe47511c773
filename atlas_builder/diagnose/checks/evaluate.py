"""Measure the checks against the hand-labelled validation sample.

The sample (``data/validation/checks-sample.jsonl``) holds rows with a
``label`` (the true mechanical cause, a category id, "none", or
"scored-right-by-accident" for right rows) and ``also`` (further true
causes). A check's finding on a row is a true positive when the check's
name is among the row's labels.

Precision counts every sampled row the check fired on, including the rows
drawn because the check fired (the ``flagged:<check>`` strata), so rare
checks get enough findings. Recall counts only the rows drawn without
regard to the checks: the ``random`` stratum for failure checks and the
``correct`` stratum for the scored-right-by-accident check.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from atlas_builder.diagnose.checks import check_row, iter_rows
from atlas_builder.diagnose.checks.registry import CHECK_NAMES
from atlas_builder.diagnose.checks.suspect import find_suspects
from atlas_builder.records import Results

SampleKey = tuple[str, str, str]


def load_sample(path: Path) -> list[dict[str, Any]]:
    """Read the labelled sample; raise ValueError naming the first unlabelled row."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for number, row in enumerate(rows, start=1):
        if not row.get("label"):
            raise ValueError(f"{path}:{number}: row {row['dataset']}/{row['model']}/{row['instance_id']} has no label; "
                             "label it by hand (see docs/labelling-guide.md)")
    return rows


def fired_checks(results: Results, sample: list[dict[str, Any]]) -> dict[SampleKey, set[str]]:
    """Return the names of the checks that fire on each sampled row (suspect-reference needs all rows)."""
    task_types = {dataset_id: info.task_type for dataset_id, info in results.datasets.items()}
    wanted = {(row["dataset"], row["model"], row["instance_id"]) for row in sample}
    all_rows = list(iter_rows(results.rows, task_types))
    fired: dict[SampleKey, set[str]] = {key: set() for key in wanted}
    for row in all_rows:
        key = (row.dataset, row.model, row.instance_id)
        if key in wanted:
            fired[key] = {item.diagnoser.removeprefix("check:") for item in check_row(row)}
    suspects = {(item.dataset, item.instance_id) for item in find_suspects(all_rows)}
    correct = {(row.dataset, row.model, row.instance_id): row.correct for row in all_rows if (row.dataset, row.model, row.instance_id) in wanted}
    for key in wanted:
        if not correct.get(key, True) and (key[0], key[2]) in suspects:
            fired[key].add("suspect-reference")
    missing = wanted - set(correct)
    if missing:
        raise ValueError(f"{len(missing)} sampled rows are not in the results, for example {sorted(missing)[0]}; "
                         "redraw the sample with scripts/checks_sample.py")
    return fired


def measure(sample: list[dict[str, Any]], fired: dict[SampleKey, set[str]]) -> dict[str, dict[str, Any]]:
    """Return TP, FP, FN, precision and recall of every check on the labelled sample."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"tp": 0, "fp": 0, "fn": 0, "recall_tp": 0})
    for row in sample:
        key = (row["dataset"], row["model"], row["instance_id"])
        truth = {row["label"], *(row.get("also") or ())}
        recall_stratum = "correct" if row["stratum"] in ("correct", "flagged:scored-right-by-accident") else "random"
        for name in CHECK_NAMES:
            hit = name in fired[key]
            if hit:
                counts[name]["tp" if name in truth else "fp"] += 1
            if row["stratum"] == recall_stratum and name in truth:
                counts[name]["recall_tp" if hit else "fn"] += 1
    metrics = {}
    for name in CHECK_NAMES:
        item = counts[name]
        found = item["tp"] + item["fp"]
        relevant = item["recall_tp"] + item["fn"]
        metrics[name] = {
            "tp": item["tp"],
            "fp": item["fp"],
            "fn": item["fn"],
            "recall_tp": item["recall_tp"],
            "precision": round(item["tp"] / found, 4) if found else None,
            "recall": round(item["recall_tp"] / relevant, 4) if relevant else None,
        }
    return metrics


def coverage(results: Results, findings: list) -> dict[str, dict[str, Any]]:
    """Return, per dataset, how many failures have a check finding and how many a fully explaining one."""
    failures = results.failures()
    total = failures.groupby("dataset").size().to_dict()
    explained: dict[str, set] = defaultdict(set)
    any_finding: dict[str, set] = defaultdict(set)
    failure_keys = set(zip(failures["dataset"], failures["model"], failures["instance_id"]))
    for item in findings:
        if item.key not in failure_keys or item.diagnoser == "check:suspect-reference":
            continue
        any_finding[item.dataset].add(item.key)
        if item.explains_fully:
            explained[item.dataset].add(item.key)
    table = {}
    for dataset in sorted(total):
        count = int(total[dataset])
        table[dataset] = {
            "failures": count,
            "with_finding": len(any_finding[dataset]),
            "explained_fully": len(explained[dataset]),
            "explained_share": round(len(explained[dataset]) / count, 4) if count else None,
            "finding_share": round(len(any_finding[dataset]) / count, 4) if count else None,
        }
    return table
