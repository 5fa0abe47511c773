"""Import the per-instance CSV of the ErrorMap tool (IBM/ErrorMap).

Columns: ``example_id, model, input_text, output_text, score`` and optionally
``correct_answer``. One file holds one dataset and may hold several models;
rows of other models than ``--model`` are skipped (the ``model`` column is
matched as written or as its slug).

ErrorMap counts a row as a failure when its score is below the dataset
threshold, by default 0.7 times the mean score of the file over all its rows.
The importer computes that threshold (or takes ``--threshold``), writes
``correct`` on every row so the decision survives any later threshold change,
and records the threshold in the dataset metadata it writes.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from pathlib import Path
from typing import Any

from atlas_builder.ids import slugify
from atlas_builder.importers.common import ImportBatch, ImportFailed, ImportReport, instance_id, require_source_file

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("example_id", "model", "input_text", "output_text", "score")
DEFAULT_THRESHOLD_FACTOR = 0.7


def read(source: Path, *, model: str, dataset: str, threshold: float | None = None,
         metric: str | None = None, filter_name: str | None = None) -> ImportBatch:
    """Read one ErrorMap CSV file into an import batch."""
    source = require_source_file(source, "one ErrorMap CSV file")
    report = ImportReport("errormap-csv", str(source), model, dataset)
    try:
        text = source.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ImportFailed(f"{source} is not UTF-8 (byte {error.start}); save the CSV as UTF-8") from error
    csv.field_size_limit(10_000_000)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = [column for column in REQUIRED_COLUMNS if column not in (reader.fieldnames or [])]
    if missing:
        raise ImportFailed(f"{source} lacks the column(s) {', '.join(missing)}; an ErrorMap CSV has {', '.join(REQUIRED_COLUMNS)} "
                           "and optionally correct_answer")

    parsed: list[tuple[int, dict[str, str], float | None]] = []
    all_scores: list[float] = []
    try:
        for number, record in enumerate(reader, start=2):
            score = _number(record.get("score"))
            if score is not None:
                all_scores.append(score)
            parsed.append((number, record, score))
    except csv.Error as error:
        raise ImportFailed(f"{source}: invalid CSV ({error})") from error

    if threshold is None:
        if not all_scores:
            raise ImportFailed(f"{source} has no numeric score; the default threshold is 0.7 x the mean score")
        threshold = DEFAULT_THRESHOLD_FACTOR * sum(all_scores) / len(all_scores)
        report.notes.append(f"threshold {threshold:.6g} = {DEFAULT_THRESHOLD_FACTOR} x the mean score over all "
                            f"{len(all_scores)} rows (set it with --threshold)")

    models_seen = sorted({record.get("model") or "" for _, record, _ in parsed})
    rows = []
    for number, record, score in parsed:
        source_model = record.get("model") or ""
        if len(models_seen) > 1 and not _same_model(source_model, model):
            continue  # another model's row; counted below
        report.rows_read += 1
        where = f"line {number}"
        key = instance_id(record.get("example_id"))
        if key is None or not (record.get("example_id") or "").strip():
            report.skip("example_id is empty", where)
            continue
        if score is None:
            report.skip(f"score {str(record.get('score'))[:30]!r} is not a finite number", where)
            continue
        row: dict[str, Any] = {"id": key, "input": record.get("input_text") or "", "output": record.get("output_text") or "",
                               "score": score, "correct": score >= threshold}
        answer = record.get("correct_answer")
        if answer:
            row["reference"] = answer
        row["metadata"] = {"errormap": {"example_id": record.get("example_id"), "model": source_model}}
        rows.append(row)
    others = len(parsed) - report.rows_read
    if others:
        report.notes.append(f"{others} rows belong to other models in the file ({', '.join(m for m in models_seen if not _same_model(m, model))})")
    if len(models_seen) > 1 and not report.rows_read:
        raise ImportFailed(f"no row of {source} has model {model!r}; the file has {', '.join(models_seen)}")

    batch = ImportBatch(rows, report)
    single = [name for name in models_seen if name and (_same_model(name, model) or len(models_seen) == 1)]
    if single:
        batch.model_metadata = {"name": single[0], "aliases": [single[0]]}
    batch.dataset_metadata = {"metric": "score", "threshold": threshold}
    return batch


def _same_model(name: str, model: str) -> bool:
    """Return True when the CSV's model name is ``model`` as written, as a slug, or as the slug of its last path part."""
    return name == model or slugify(name) == model or slugify(name.rsplit("/", 1)[-1]) == model


def _number(value: Any) -> float | None:
    try:
        number = float(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
