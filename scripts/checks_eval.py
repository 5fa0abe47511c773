"""Compute each check's precision and recall on the labelled sample, and the share of failures the checks explain.

Writes ``data/validation/checks-metrics.json`` and prints Markdown tables for
docs/checks.md.

Usage: .venv/bin/python scripts/checks_eval.py [--data data]
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from atlas_builder.diagnose.checks import run_checks
from atlas_builder.diagnose.checks.evaluate import coverage, fired_checks, load_sample, measure
from atlas_builder.results import load_results


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data"), help="atlas data directory")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    results = load_results(args.data)
    sample = load_sample(args.data / "validation" / "checks-sample.jsonl")
    metrics = measure(sample, fired_checks(results, sample))
    shares = coverage(results, run_checks(results))
    out = args.data / "validation" / "checks-metrics.json"
    out.write_text(json.dumps({"sample_rows": len(sample), "checks": metrics, "coverage": shares}, indent=2) + "\n", encoding="utf-8")

    print("| check | TP | FP | FN | precision | recall |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, item in metrics.items():
        print(f"| {name} | {item['tp']} | {item['fp']} | {item['fn']} | {percent(item['precision'])} | {percent(item['recall'])} |")
    print()
    print("| dataset | failures | with a finding | explained fully | share explained |")
    print("|---|---:|---:|---:|---:|")
    for dataset, item in shares.items():
        print(f"| {dataset} | {item['failures']:,} | {item['with_finding']:,} | {item['explained_fully']:,} | {percent(item['explained_share'])} |")
    failures = sum(item["failures"] for item in shares.values())
    explained = sum(item["explained_fully"] for item in shares.values())
    print(f"| all | {failures:,} | {sum(item['with_finding'] for item in shares.values()):,} | {explained:,} | {percent(explained / failures)} |")


if __name__ == "__main__":
    main()
