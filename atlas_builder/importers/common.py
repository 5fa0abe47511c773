"""Shared parts of the importers: the import report, the batch they return, and the writer into ``data/``.

An importer reads another tool's output and returns an ``ImportBatch``: result
objects in the atlas format plus the model and dataset metadata it could infer.
``write_batch`` validates the batch, merges it with what is already stored and
writes every file atomically. Importers never write files themselves.

Metadata that cannot be inferred is not invented. A missing metadata file is
written with ``TODO: ...`` placeholders for the required keys that are still
unknown; ``atlas validate`` rejects each placeholder with the fix it names, so
a pull request cannot pass CI until the submitter fills them in. An existing
metadata file is never changed.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from atlas_builder.ids import slug_problem, slugify
from atlas_builder.records import TASK_TYPES
from atlas_builder.results import schema
from atlas_builder.results.write import atomic_write_bytes, result_line, write_yaml

logger = logging.getLogger(__name__)

TODO = schema.PLACEHOLDER_PREFIX


MAX_SOURCE_BYTES = 500_000_000  # a larger source file is rejected before it is read into memory


class ImportFailed(Exception):
    """Raised when a source cannot be imported at all; the message names the file and the fix."""


def check_source_size(path: Path, fix: str = "split the run into smaller files") -> None:
    """Raise ``ImportFailed`` when ``path`` is larger than ``MAX_SOURCE_BYTES``."""
    if path.stat().st_size > MAX_SOURCE_BYTES:
        raise ImportFailed(f"{path} is over {MAX_SOURCE_BYTES:,} bytes; {fix}")


def require_source_file(source: Path, expected: str) -> Path:
    """Return ``source`` as a Path after checking that it is a file within the size limit."""
    source = Path(source)
    if not source.is_file():
        raise ImportFailed(f"{source} not found; pass {expected}")
    check_source_size(source)
    return source


@dataclass
class ImportReport:
    """Rows read, written and skipped by one import, with notes and files, for the command's output."""

    format: str
    source: str
    model: str
    dataset: str
    rows_read: int = 0
    rows_written: int = 0
    rows_kept: int = 0  # rows already stored and left in place by a merge
    skipped: Counter = field(default_factory=Counter)  # reason -> count
    skipped_examples: dict[str, str] = field(default_factory=dict)  # reason -> first source row it hit
    notes: list[str] = field(default_factory=list)
    files_written: list[str] = field(default_factory=list)
    todo: list[str] = field(default_factory=list)  # "path: key (what to write)" the submitter must fill in

    def skip(self, reason: str, where: str | None = None) -> None:
        """Count one source row that was not imported, with the reason shown to the submitter."""
        self.skipped[reason] += 1
        if where is not None:
            self.skipped_examples.setdefault(reason, where)

    @property
    def rows_skipped(self) -> int:
        return sum(self.skipped.values())

    def lines(self) -> list[str]:
        """Return the report as the lines ``atlas import`` prints."""
        out = [
            f"{self.format} import of {self.source} as dataset {self.dataset!r}, model {self.model!r}",
            f"  rows read:    {self.rows_read:,}",
            f"  rows written: {self.rows_written:,}" + (f" (plus {self.rows_kept:,} already stored rows kept)" if self.rows_kept else ""),
            f"  rows skipped: {self.rows_skipped:,}",
        ]
        for reason, count in self.skipped.most_common():
            example = self.skipped_examples.get(reason)
            out.append(f"    {count:,} x {reason}" + (f" (first: {example})" if example else ""))
        out.extend(f"  note: {note}" for note in self.notes)
        out.extend(f"  wrote {path}" for path in self.files_written)
        if self.todo:
            out.append("  metadata you must fill in before the pull request passes `atlas validate`:")
            out.extend(f"    {item}" for item in self.todo)
        return out


@dataclass
class ImportBatch:
    """The output of one importer, before it is validated and written."""

    rows: list[dict[str, Any]]
    report: ImportReport
    model_metadata: dict[str, Any] = field(default_factory=dict)
    dataset_metadata: dict[str, Any] = field(default_factory=dict)
    lower_is_better: bool = False  # the metric counts lower scores as better


def placeholder(what: str) -> str:
    """Return the placeholder text written for a required metadata value that could not be inferred."""
    return f"{TODO}: {what}"


def finite_number(value: Any) -> float | None:
    """Return ``value`` as a finite float, or None for booleans, text, NaN and infinities."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def instance_id(raw: Any) -> str | None:
    """Turn a source's instance id into an atlas id, or None when nothing usable is left.

    Numbers become their decimal text; other text is slugified, so ``MMLU/Q 12``
    becomes ``mmlu-q-12``. The original id is kept in the row's metadata by the importers.
    """
    if isinstance(raw, bool) or raw is None:
        return None
    if isinstance(raw, int):
        return str(raw) if raw >= 0 else f"minus-{-raw}"
    text = str(raw)
    if slug_problem(text) is None:
        return text
    slug = slugify(text)
    return None if slug == "unnamed" and text.strip().lower() != "unnamed" else slug


def text_of(content: Any) -> tuple[str, list[str]]:
    """Join the text of a chat message's content; return the text and the kinds of parts left out.

    Content is a string, or a list of parts such as ``{"type": "text", "text": ...}``
    and ``{"type": "image", ...}``. Non-text parts are not turned into text; their
    kinds are returned so the importer can record them in the row's metadata.
    """
    if content is None:
        return "", []
    if isinstance(content, str):
        return content, []
    if not isinstance(content, list):
        return str(content), []
    texts, omitted = [], []
    for part in content:
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, dict) and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif isinstance(part, dict) and isinstance(part.get("reasoning"), str):
            omitted.append("reasoning")
        else:
            omitted.append(str(part.get("type", "unknown")) if isinstance(part, dict) else type(part).__name__)
    return "\n".join(texts), omitted


def messages_from(raw: Any) -> tuple[list[dict[str, str]] | None, list[str]]:
    """Convert a list of chat messages to atlas messages; return None when ``raw`` is not such a list."""
    if not isinstance(raw, list) or not raw:
        return None, []
    messages, omitted = [], []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("role"), str):
            return None, []
        text, left_out = text_of(item.get("content"))
        omitted.extend(left_out)
        messages.append({"role": item["role"], "content": text})
    return messages, omitted


def infer_threshold(scores: list[float], lower_is_better: bool) -> float | None:
    """Return 1 when the scores are all 0 or 1, both occur and higher is better (a 0/1 metric), else None.

    Scores that are all 0 (or all 1) could come from any scale, so they give no threshold.
    """
    if not lower_is_better and set(scores) == {0.0, 1.0}:
        return 1.0
    return None


def result_path(data_dir: Path, dataset: str, model: str) -> Path:
    return Path(data_dir) / "results" / dataset / f"{model}.jsonl"


def _check_ids(model: str, dataset: str) -> None:
    for kind, value in (("model", model), ("dataset", dataset)):
        reason = slug_problem(value)
        if reason is not None:
            raise ImportFailed(f"invalid --{kind} {value!r}: {reason}; pass a lowercase slug such as 'llama-3-8b-instruct'")


def _validate_rows(batch: ImportBatch, target: Path) -> list[dict[str, Any]]:
    """Drop rows that fail the atlas checks or repeat an id, counting each as skipped; return the rest."""
    report = batch.report
    kept, seen = [], set()
    for row in batch.rows:
        problems = schema.check_result_object(row, str(target), 0)
        if not problems:
            problems = schema.parse_result_line(result_line(row).encode("utf-8"), str(target), 0)[1]
        if problems:
            report.skip(f"invalid after conversion: {problems[0].message}", row.get("id") if isinstance(row.get("id"), str) else None)
            continue
        if row["id"] in seen:
            report.skip("repeats an instance id already imported from this source", row["id"])
            continue
        seen.add(row["id"])
        kept.append(row)
    return kept


def _stored_rows(path: Path) -> dict[str, str]:
    """Return the stored lines of ``path`` by instance id; raise when the stored file is itself invalid."""
    stored: dict[str, str] = {}
    for number, raw in enumerate(path.read_bytes().split(b"\n"), start=1):
        if not raw.strip():
            continue
        obj, problems = schema.parse_result_line(raw, str(path), number)
        if obj is None or problems or obj["id"] in stored:
            raise ImportFailed(f"{path}:{number}: the stored result file is invalid, so it cannot be merged safely; "
                               f"run `atlas validate {path}` and fix it, or pass --replace to overwrite it")
        stored[obj["id"]] = raw.decode("utf-8").rstrip("\r")
    return stored


def _merge(batch_rows: list[dict[str, Any]], path: Path, replace: bool, report: ImportReport) -> list[str]:
    """Return the lines to write: the imported rows merged into the stored file, or replacing it."""
    new_lines = {row["id"]: result_line(row) for row in batch_rows}
    if replace or not path.exists():
        if path.exists():
            report.notes.append(f"--replace: the stored {path} was replaced")
        return list(new_lines.values())
    stored = _stored_rows(path)
    conflicts = [key for key, line in new_lines.items() if key in stored and json.loads(stored[key]) != json.loads(line)]
    if conflicts:
        shown = ", ".join(repr(key) for key in conflicts[:5])
        raise ImportFailed(
            f"{path} already stores {len(conflicts):,} of these instances with different content (ids {shown}"
            f"{', ...' if len(conflicts) > 5 else ''}); nothing was written. Pass --replace to replace the stored file "
            "with this import, or import into another --model id if this is a different run"
        )
    added = [key for key in new_lines if key not in stored]
    report.rows_kept = len(stored)
    report.notes.append(f"merged into the stored file: {len(added):,} new instances, {len(new_lines) - len(added):,} identical ones already stored")
    merged = dict(stored)
    merged.update({key: new_lines[key] for key in added})
    return list(merged.values())


#: Instruction per required key, written into the placeholder when an importer cannot infer the value.
PLACEHOLDER_HINTS = {
    "name": "the display name",
    "description": "one or two sentences on what the dataset tests and how the subset was drawn",
    "task_type": f"one of {', '.join(TASK_TYPES)}",
    "metric": "the metric the score column holds, such as exact_match",
    "threshold": "the score at or above which an instance counts as correct (1 for 0/1 scores)",
    "source": "a mapping {repository: owner/name, commit: <sha>, url: <link>} naming where the results came from",
    "license": "the licence of the dataset text, such as MIT or CC-BY-4.0",
}


def _metadata_file(path: Path, obj: dict[str, Any], required: tuple[str, ...], optional: tuple[str, ...],
                   check, report: ImportReport) -> None:
    """Write a metadata file when none exists, with placeholders for the required keys that are unknown."""
    if path.exists():
        report.notes.append(f"kept the existing {path}")
        return
    for key in required:
        if obj.get(key) in (None, ""):
            obj[key] = placeholder(PLACEHOLDER_HINTS.get(key, f"write the {key}"))
    order = [key for key in required + optional if key in obj] + [key for key in obj if key not in required + optional]
    obj = {key: obj[key] for key in order}
    problems = [problem for problem in check(obj, str(path), path.stem)
                if "placeholder" not in problem.message]
    if problems:
        raise ImportFailed(f"the inferred metadata for {path} is invalid ({problems[0].message}); this is a bug in the importer")
    write_yaml(path, obj)
    report.files_written.append(str(path))
    for problem in schema.placeholder_problems(obj, str(path)):
        report.todo.append(f"{path}: {problem.message.split(' is still')[0]} ({problem.fix})")


def write_batch(batch: ImportBatch, data_dir: Path, *, replace: bool = False) -> ImportReport:
    """Validate ``batch`` and write it under ``data_dir``; return its report. Nothing is written on failure."""
    report = batch.report
    _check_ids(report.model, report.dataset)
    target = result_path(data_dir, report.dataset, report.model)
    rows = _validate_rows(batch, target)
    if not rows:
        raise ImportFailed("\n".join(report.lines()[1:]) + f"\nno rows left to import from {report.source}; nothing was written")
    lines = _merge(rows, target, replace, report)

    dataset_path = Path(data_dir) / "datasets" / f"{report.dataset}.yaml"
    model_path = Path(data_dir) / "models" / f"{report.model}.yaml"
    dataset_meta = {"id": report.dataset, **{k: v for k, v in batch.dataset_metadata.items() if v not in (None, "", [])}}
    model_meta = {"id": report.model, **{k: v for k, v in batch.model_metadata.items() if v not in (None, "", [])}}
    if batch.lower_is_better and not any("correct" in row for row in rows):
        dataset_meta["threshold"] = placeholder(
            "the metric is lower-is-better, which a threshold cannot express; re-import with --threshold X to write "
            "'correct' per row, then set threshold to the lowest score that counts as correct"
        )

    # Validate and write the metadata first: a failure there leaves the result file untouched.
    _metadata_file(dataset_path, dataset_meta, schema.DATASET_KEYS_REQUIRED, schema.DATASET_KEYS_OPTIONAL,
                   schema.check_dataset_metadata, report)
    _metadata_file(model_path, model_meta, schema.MODEL_KEYS_REQUIRED, schema.MODEL_KEYS_OPTIONAL,
                   schema.check_model_metadata, report)
    atomic_write_bytes(target, ("\n".join(lines) + "\n").encode("utf-8"))
    report.files_written.insert(0, str(target))
    report.rows_written = len(rows)
    logger.info("imported %d rows into %s", len(rows), target)
    return report


def dump_yaml(obj: dict[str, Any]) -> str:
    """Return ``obj`` as the block-style YAML that ``write_yaml`` writes (for previews and tests)."""
    return yaml.safe_dump(obj, sort_keys=False, allow_unicode=True, width=100)
