"""Compute each check's precision and recall on the labelled samples, and the share of failures the checks explain.

Writes ``data/validation/checks-metrics.json`` with one entry per sample
("development": the sample the checks were corrected on; "held_out": the
sample drawn afterwards with another seed) plus the coverage table, keeps
any other top-level entries already in the file (such as the held-out
figures first measured before the checks were changed), and prints the
Markdown tables for docs/checks.md.

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

SAMPLES = {"development": "checks-sample.jsonl", "held_out": "checks-held-out.jsonl"}


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def print_metrics(metrics: dict) -> None:
    print("| check | TP | FP | FN | precision | recall |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, item in metrics.items():
        print(f"| {name} | {item['tp']} | {item['fp']} | {item['fn']} | {percent(item['precision'])} | {percent(item['recall'])} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data"), help="atlas data directory")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    results = load_results(args.data)
    out = args.data / "validation" / "checks-metrics.json"
    recorded = json.loads(out.read_text(encoding="utf-8")) if out.exists() else {}
    for key, file_name in SAMPLES.items():
        path = args.data / "validation" / file_name
        if not path.exists():
            continue
        sample = load_sample(path)
        metrics = measure(sample, fired_checks(results, sample))
        recorded[key] = {"sample": file_name, "sample_rows": len(sample), "checks": metrics}
        print(f"{key} ({file_name}, {len(sample)} rows):")
        print()
        print_metrics(metrics)
        print()
    shares = coverage(results, run_checks(results))
    recorded["coverage"] = shares
    for stale in ("sample_rows", "checks"):  # the layout before the held-out sample existed
        recorded.pop(stale, None)
    out.write_text(json.dumps(recorded, indent=2) + "\n", encoding="utf-8")

    print("| dataset | failures | with a finding | explained fully | share explained |")
    print("|---|---:|---:|---:|---:|")
    for dataset, item in shares.items():
        print(f"| {dataset} | {item['failures']:,} | {item['with_finding']:,} | {item['explained_fully']:,} | {percent(item['explained_share'])} |")
    failures = sum(item["failures"] for item in shares.values())
    explained = sum(item["explained_fully"] for item in shares.values())
    print(f"| all | {failures:,} | {sum(item['with_finding'] for item in shares.values()):,} | {explained:,} | {percent(explained / failures)} |")


if __name__ == "__main__":
    main()
