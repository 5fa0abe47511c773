"""Write the Markdown summary of a pull request's preview: the submitted models' failures and their draft signature.

Usage: python .github/scripts/preview_summary.py CHANGED_FILES DIAGNOSES_JSONL DATA_DIR > summary.md

CHANGED_FILES lists the changed paths under data/ (one per line); DIAGNOSES_JSONL
is the output of `atlas export diagnoses`, which after an offline build holds
the deterministic check findings and the judge answers already stored.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

from atlas_builder.results import load_results


def submitted_models(changed: list[str]) -> set[tuple[str, str]]:
    """Return (dataset, model) of every changed result file ``data/results/<dataset>/<model>.jsonl``."""
    pairs = set()
    for line in changed:
        parts = Path(line.strip()).parts
        if len(parts) == 4 and parts[:2] == ("data", "results") and parts[3].endswith(".jsonl"):
            pairs.add((parts[2], parts[3][: -len(".jsonl")]))
    return pairs


def cell(text: object) -> str:
    """Escape a value for a Markdown table cell; submitted names must not become markup."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace("\n", " ")[:120]


def main() -> int:
    changed = Path(sys.argv[1]).read_text(encoding="utf-8").splitlines()
    diagnoses = [json.loads(line) for line in Path(sys.argv[2]).read_text(encoding="utf-8").splitlines() if line.strip()]
    results = load_results(Path(sys.argv[3]))
    pairs = submitted_models(changed)
    print("## Preview of the submitted results\n")
    if not pairs:
        print("No result file changed; the preview build covers the whole atlas.")
        return 0
    rows = results.rows
    print("| dataset | model | instances | failures | explained by checks |")
    print("|---|---|---:|---:|---:|")
    for dataset, model in sorted(pairs):
        subset = rows[(rows["dataset"] == dataset) & (rows["model"] == model)]
        failures = int((~subset["correct"]).sum())
        explained = sum(1 for item in diagnoses if item["dataset"] == dataset and item["model"] == model)
        print(f"| {cell(dataset)} | {cell(model)} | {len(subset):,} | {failures:,} | {explained:,} |")
    print("\n### Draft signature (deterministic checks and stored judge answers only)\n")
    categories = Counter(
        item.get("category_name") or item.get("category") or "uncategorised"
        for item in diagnoses if (item["dataset"], item["model"]) in pairs
    )
    if not categories:
        print("No failure is explained yet; the judge runs after merge (see the diagnose workflow).")
    total = sum(categories.values())
    for name, count in categories.most_common(15):
        print(f"- {cell(name)}: {count:,} ({count / total:.0%})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
