"""Compute each check's precision and recall on the labelled samples, and the share of failures the checks explain.

Writes ``data/validation/checks-metrics.json`` with one entry per sample
("development": the sample the checks were corrected on; "held_out": the
sample drawn afterwards with another seed) plus the coverage table, keeps
any other top-level entries already in the file (such as the held-out
figures first measured before the checks were changed), and prints the
Markdown tables for docs/checks.md.

Usage: .venv/bin/python scripts/checks_eval.py [--data data] [--docs docs/checks.md]
"""

from __future__ import annotations

import argparse
import json
import logging
import re
from pathlib import Path

from atlas_builder.diagnose.checks import run_checks
from atlas_builder.diagnose.checks.evaluate import coverage, fired_checks, load_sample, measure
from atlas_builder.results import load_results

SAMPLES = {"development": "checks-sample.jsonl", "held_out": "checks-held-out.jsonl"}


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def metrics_table(metrics: dict) -> str:
    lines = ["| check | TP | FP | FN | precision | recall |", "|---|---:|---:|---:|---:|---:|"]
    for name, item in metrics.items():
        lines.append(f"| {name} | {item['tp']} | {item['fp']} | {item['fn']} | {percent(item['precision'])} | {percent(item['recall'])} |")
    return "\n".join(lines)


def coverage_table(shares: dict) -> str:
    lines = ["| dataset | failures | with a finding | explained fully | share explained |", "|---|---:|---:|---:|---:|"]
    for dataset, item in shares.items():
        lines.append(f"| {dataset} | {item['failures']:,} | {item['with_finding']:,} | {item['explained_fully']:,} | "
                     f"{percent(item['explained_share'])} |")
    failures = sum(item["failures"] for item in shares.values())
    explained = sum(item["explained_fully"] for item in shares.values())
    with_finding = sum(item["with_finding"] for item in shares.values())
    lines.append(f"| all | {failures:,} | {with_finding:,} | {explained:,} | {percent(explained / failures if failures else None)} |")
    return "\n".join(lines)


def fill_blocks(text: str, tables: dict[str, str]) -> str:
    """Replace the body of each ``<!-- checks-eval:NAME -->`` ... ``<!-- /checks-eval:NAME -->`` block; raise when one is missing."""
    for name, table in tables.items():
        pattern = re.compile(rf"(<!-- checks-eval:{re.escape(name)} -->\n).*?(<!-- /checks-eval:{re.escape(name)} -->)", re.DOTALL)
        if not pattern.search(text):
            raise SystemExit(f"the docs file has no <!-- checks-eval:{name} --> block; add the two marker lines")
        text = pattern.sub(lambda match: match.group(1) + table + "\n" + match.group(2), text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data"), help="atlas data directory")
    parser.add_argument("--docs", type=Path, default=None,
                        help="Markdown file whose marked table blocks are rewritten (docs/checks.md)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    results = load_results(args.data)
    out = args.data / "validation" / "checks-metrics.json"
    recorded = json.loads(out.read_text(encoding="utf-8")) if out.exists() else {}
    tables = {}
    for key, file_name in SAMPLES.items():
        path = args.data / "validation" / file_name
        if not path.exists():
            continue
        sample = load_sample(path)
        metrics = measure(sample, fired_checks(results, sample))
        recorded[key] = {"sample": file_name, "sample_rows": len(sample), "checks": metrics}
        tables[key] = metrics_table(metrics)
    if "held_out_first_measured" in recorded:
        tables["held_out_first_measured"] = metrics_table(recorded["held_out_first_measured"]["checks"])
    shares = coverage(results, run_checks(results))
    recorded["coverage"] = shares
    tables["coverage"] = coverage_table(shares)
    for stale in ("sample_rows", "checks"):  # the layout before the held-out sample existed
        recorded.pop(stale, None)
    out.write_text(json.dumps(recorded, indent=2) + "\n", encoding="utf-8")
    if args.docs is not None:
        args.docs.write_text(fill_blocks(args.docs.read_text(encoding="utf-8"), tables), encoding="utf-8")
    for name, table in tables.items():
        print(f"{name}:\n\n{table}\n")


if __name__ == "__main__":
    main()
