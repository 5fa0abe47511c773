"""Draw the labelled validation sample of the deterministic checks.

Writes ``data/validation/checks-sample.jsonl``, one JSON object per line:
dataset, model, instance_id, stratum, and the label fields ``label``
(taxonomy category id of the true mechanical cause, or "none"), ``also``
(further mechanical causes) and ``reason`` (one line), which a person fills
in by reading each row (see docs/labelling-guide.md).

Strata, all drawn with a fixed seed:
- ``random``: PER_DATASET failures drawn uniformly from each dataset. Recall
  is measured on this stratum only, because it does not depend on the checks.
- ``flagged:<check>``: up to PER_CHECK further failures on which that check
  fired, so that rare checks have enough findings to measure precision.
- ``correct`` and ``flagged:scored-right-by-accident``: rows scored right,
  for the one check that looks at right rows.

Labels already in the file are kept when a row is drawn again, so rerunning
the script never discards labelling work.

The held-out sample (``--held-out``) holds only the ``random`` stratum,
drawn with another seed and leaving out every row of the development
sample. It was labelled before the checks' output on it was looked at, and it
was not used to change the checks, so its figures are unbiased estimates.

Usage: .venv/bin/python scripts/checks_sample.py [--data data] [--out data/validation/checks-sample.jsonl]
       .venv/bin/python scripts/checks_sample.py --held-out
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from atlas_builder.diagnose.checks import iter_rows, check_row
from atlas_builder.diagnose.checks.extraction import COMPARABLE
from atlas_builder.diagnose.checks.suspect import find_suspects
from atlas_builder.results import load_results

logger = logging.getLogger("checks_sample")

SEED = 20260404
HELD_OUT_SEED = 20260419
PER_DATASET = 45
HELD_OUT_PER_DATASET = 30
PER_CHECK = 8
CORRECT_PER_DATASET = 4
LABEL_FIELDS = ("label", "also", "reason")


def read_keys(path: Path) -> set[tuple[str, str, str]]:
    """Return the (dataset, model, instance_id) keys of a sample file."""
    keys = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            item = json.loads(line)
            keys.add((item["dataset"], item["model"], item["instance_id"]))
    return keys


def draw_held_out(data_dir: Path, exclude: set[tuple[str, str, str]]) -> list[dict]:
    """Return HELD_OUT_PER_DATASET failures per dataset, none of them in ``exclude``, without running the checks."""
    results = load_results(data_dir)
    failures = results.failures()
    rng = np.random.default_rng(HELD_OUT_SEED)
    drawn = []
    for dataset in sorted(results.datasets):
        keys = sorted(key for key in zip(failures["dataset"], failures["model"], failures["instance_id"])
                      if key[0] == dataset and key not in exclude)
        for index in sorted(rng.permutation(len(keys))[:HELD_OUT_PER_DATASET]):
            drawn.append({"dataset": keys[index][0], "model": keys[index][1], "instance_id": keys[index][2], "stratum": "random"})
    return drawn


def draw(data_dir: Path) -> list[dict]:
    """Return the sample rows (without labels) in a stable order."""
    results = load_results(data_dir)
    task_types = {dataset_id: info.task_type for dataset_id, info in results.datasets.items()}
    rows = list(iter_rows(results.rows, task_types))
    rng = np.random.default_rng(SEED)
    fired: dict[tuple[str, str, str], set[str]] = {}
    for row in rows:
        fired[(row.dataset, row.model, row.instance_id)] = {item.diagnoser.removeprefix("check:") for item in check_row(row)}
    suspects = {(item.dataset, item.instance_id) for item in find_suspects(rows)}
    for row in rows:
        if not row.correct and (row.dataset, row.instance_id) in suspects:
            fired[(row.dataset, row.model, row.instance_id)].add("suspect-reference")

    chosen: dict[tuple[str, str, str], str] = {}

    def take(candidates: list, count: int, stratum: str) -> None:
        candidates = [row for row in candidates if (row.dataset, row.model, row.instance_id) not in chosen]
        order = rng.permutation(len(candidates))[:count]
        for index in sorted(order):
            row = candidates[index]
            chosen[(row.dataset, row.model, row.instance_id)] = stratum

    for dataset in sorted(task_types):
        take([row for row in rows if row.dataset == dataset and not row.correct], PER_DATASET, "random")
    names = sorted({name for names in fired.values() for name in names})
    for name in names:
        wanted = [row for row in rows if name in fired[(row.dataset, row.model, row.instance_id)]]
        take(wanted, PER_CHECK, f"flagged:{name}")
    for dataset in sorted(task_types):
        if task_types[dataset] in COMPARABLE:
            take([row for row in rows if row.dataset == dataset and row.correct], CORRECT_PER_DATASET, "correct")

    strata_order = {"random": 0, "correct": 2}
    return [
        {"dataset": key[0], "model": key[1], "instance_id": key[2], "stratum": stratum}
        for key, stratum in sorted(chosen.items(), key=lambda item: (strata_order.get(item[1], 1), item[1], item[0]))
    ]


def merge_labels(drawn: list[dict], path: Path) -> list[dict]:
    """Copy the label fields of rows already in ``path`` onto the freshly drawn rows."""
    old: dict[tuple[str, str, str], dict] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                item = json.loads(line)
                old[(item["dataset"], item["model"], item["instance_id"])] = item
    merged = []
    for item in drawn:
        previous = old.get((item["dataset"], item["model"], item["instance_id"]), {})
        merged.append({**item, **{field: previous.get(field) for field in LABEL_FIELDS}})
    return merged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data"), help="atlas data directory")
    parser.add_argument("--out", type=Path, default=None,
                        help="sample file to write (default: data/validation/checks-sample.jsonl, "
                             "or checks-held-out.jsonl with --held-out)")
    parser.add_argument("--held-out", action="store_true",
                        help="draw the held-out sample: random failures only, another seed, no development rows")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    validation = args.data / "validation"
    if args.held_out:
        out = args.out or validation / "checks-held-out.jsonl"
        drawn = draw_held_out(args.data, read_keys(validation / "checks-sample.jsonl"))
    else:
        out = args.out or validation / "checks-sample.jsonl"
        drawn = draw(args.data)
    args.out = out
    rows = merge_labels(drawn, args.out)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    labelled = sum(row["label"] is not None for row in rows)
    logger.info("wrote %d sample rows (%d labelled) to %s", len(rows), labelled, args.out)


if __name__ == "__main__":
    main()
