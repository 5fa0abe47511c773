"""Import lm-evaluation-harness (0.4.x) per-sample logs: ``samples_<task>_<time>.jsonl`` plus ``results_*.json``.

The source is one samples file, or a folder (searched recursively) that holds
the samples file(s) of exactly one task, as written by ``lm_eval --log_samples``.
How each field maps:

- input: the first request's context (``arguments.gen_args_0.arg_0``). A chat
  API model stores its prompt as a JSON string of messages, which becomes a
  message list; a chat template rendered into text stays text.
- output: for generation tasks, the filtered response of the chosen filter. For
  multiple-choice log-likelihood tasks, the choice the model ranked first (the
  highest log-likelihood). A log-likelihood task with a single continuation
  records no model output, only whether the reference was its greedy
  continuation, so its rows are skipped with that reason.
- score: the per-sample value of the chosen metric (``--metric``, default the
  first metric the samples list). Text values and infinities cannot be scores:
  those rows are skipped with the reason.
- several filters: one row per instance from the chosen filter (``--filter``,
  default the first in the file); the other filters' outputs and metric values
  go into ``metadata.lm_eval.other_filters``.
- older files have no ``filter``/``metrics`` keys: the filter is then "none" and
  the metrics are the numeric keys that are not standard sample keys.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

from atlas_builder.importers.common import (
    check_source_size,
    ImportBatch,
    ImportFailed,
    ImportReport,
    finite_number,
    infer_threshold,
    instance_id,
    messages_from,
    placeholder,
)

logger = logging.getLogger(__name__)

SAMPLE_KEYS = {
    "doc_id", "doc", "target", "arguments", "resps", "filtered_resps", "filter", "metrics",
    "doc_hash", "prompt_hash", "target_hash",
}


def read(source: Path, *, model: str, dataset: str, threshold: float | None = None,
         metric: str | None = None, filter_name: str | None = None) -> ImportBatch:
    """Read one lm-eval task's samples from ``source`` (a samples file or an output folder)."""
    samples_path = _samples_file(source)
    report = ImportReport("lm-eval", str(samples_path), model, dataset)
    results = _results_file(samples_path)
    task = _task_name(samples_path)
    config = (results or {}).get("configs", {}).get(task, {})
    records = _read_records(samples_path, report)

    filters = list(dict.fromkeys(record.get("filter", "none") for record in records))
    chosen_filter = filter_name or (filters[0] if filters else "none")
    if filter_name is not None and filter_name not in filters:
        raise ImportFailed(f"filter {filter_name!r} is not in {samples_path}; it has {', '.join(filters)}")
    if len(filters) > 1:
        report.notes.append(f"{len(filters)} filters in the file ({', '.join(filters)}); rows use {chosen_filter!r}, "
                            "the others are kept in metadata.lm_eval.other_filters (choose with --filter)")

    metrics = _metric_names(records, config)
    if not metrics:
        raise ImportFailed(f"{samples_path} has no per-sample metric values; nothing can be scored")
    chosen_metric = metric or metrics[0]
    if chosen_metric not in metrics:
        raise ImportFailed(f"metric {chosen_metric!r} is not in {samples_path}; it has {', '.join(metrics)}")
    if metric is None and len(metrics) > 1:
        report.notes.append(f"score is {chosen_metric!r}, the first of {', '.join(metrics)} (choose with --metric)")
    lower_is_better = (results or {}).get("higher_is_better", {}).get(task, {}).get(chosen_metric) is False

    by_doc: dict[Any, dict[str, dict[str, Any]]] = {}
    for record in records:
        by_doc.setdefault(record.get("doc_id"), {})[record.get("filter", "none")] = record

    output_type = config.get("output_type")
    rows = []
    for doc_id, per_filter in by_doc.items():
        record = per_filter.get(chosen_filter)
        if record is None:
            report.skip(f"no sample for filter {chosen_filter!r}", f"doc_id {doc_id}")
            continue
        row = _row(record, chosen_metric, output_type, report, threshold, lower_is_better)
        if row is None:
            continue
        others = {name: _filter_summary(other, metrics) for name, other in per_filter.items() if name != chosen_filter}
        if others:
            row["metadata"]["lm_eval"]["other_filters"] = others
        rows.append(row)

    batch = ImportBatch(rows, report, lower_is_better=lower_is_better)
    batch.model_metadata = _model_metadata(results)
    batch.dataset_metadata = _dataset_metadata(task, config, chosen_metric, rows, threshold, lower_is_better, output_type, results)
    return batch


def _samples_file(source: Path) -> Path:
    source = Path(source)
    if source.is_file():
        return source
    if not source.is_dir():
        raise ImportFailed(f"{source} not found; pass an lm-eval output folder or a samples_<task>_<time>.jsonl file")
    found = sorted(source.rglob("samples_*.jsonl"))
    tasks = sorted({_task_name(path) for path in found})
    if not found:
        raise ImportFailed(f"no samples_<task>_<time>.jsonl file under {source}; run lm_eval with --log_samples")
    if len(tasks) > 1:
        raise ImportFailed(f"{source} holds samples of {len(tasks)} tasks ({', '.join(tasks)}); each task is one atlas "
                           "dataset, so pass one samples file per import")
    if len(found) > 1:
        logger.warning("%d samples files for task %s under %s; importing the newest, %s", len(found), tasks[0], source, found[-1])
    return found[-1]


def _task_name(path: Path) -> str:
    """Return the task of ``samples_<task>_<timestamp>.jsonl`` (the timestamp contains no underscore)."""
    stem = path.stem
    if stem.startswith("samples_"):
        stem = stem[len("samples_"):]
    return stem.rsplit("_", 1)[0] if "_" in stem else stem


def _results_file(samples_path: Path) -> dict[str, Any] | None:
    """Return the aggregated results JSON written next to the samples, when one mentions this task."""
    task = _task_name(samples_path)
    stamp = samples_path.stem.rsplit("_", 1)[-1]
    candidates = sorted(samples_path.parent.glob("*.json"), key=lambda path: (stamp not in path.name, path.name))
    for path in candidates:
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            continue
        if isinstance(obj, dict) and task in (obj.get("configs") or {}):
            return obj
    return None


def _read_records(path: Path, report: ImportReport) -> list[dict[str, Any]]:
    check_source_size(path, "import a --limit run or split it")
    records = []
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            report.rows_read += 1
            try:
                # lm-eval writes Python's json, which emits bare NaN and Infinity for such metric values.
                record = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as error:
                report.skip(f"line is not valid JSON ({type(error).__name__})", f"line {number}")
                continue
            if not isinstance(record, dict) or "doc_id" not in record:
                report.skip("line is not an lm-eval sample (no doc_id)", f"line {number}")
                continue
            records.append(record)
    return records


def _metric_names(records: list[dict[str, Any]], config: dict[str, Any]) -> list[str]:
    for record in records:
        if isinstance(record.get("metrics"), list) and record["metrics"]:
            return [name for name in record["metrics"] if isinstance(name, str)]
    listed = [item.get("metric") for item in config.get("metric_list", []) if isinstance(item, dict)]
    present = set().union(*(record.keys() for record in records)) if records else set()
    names = [name for name in listed if isinstance(name, str) and name in present]
    if names:
        return names
    # Older files: every non-standard key whose value is a number in some sample is a metric.
    candidates = []
    for record in records:
        for key, value in record.items():
            if key not in SAMPLE_KEYS and key not in candidates and isinstance(value, (int, float)) and not isinstance(value, bool):
                candidates.append(key)
    return candidates


def _prompt(record: dict[str, Any]) -> tuple[str | list[dict[str, str]] | None, dict[str, Any]]:
    """Return the prompt of the first request and notes about its form."""
    arguments = record.get("arguments")
    first = None
    if isinstance(arguments, dict) and arguments:
        first = next(iter(arguments.values()))
    elif isinstance(arguments, list) and arguments:  # very old files store a list of [context, ...] lists
        first = {"arg_0": arguments[0][0] if isinstance(arguments[0], list) and arguments[0] else None}
    context = first.get("arg_0") if isinstance(first, dict) else None
    if isinstance(context, list) and len(context) == 1 and isinstance(context[0], str):
        context = context[0]
    if not isinstance(context, str):
        return None, {}
    stripped = context.lstrip()
    if stripped.startswith("[{"):
        try:
            parsed = json.loads(stripped)
        except ValueError:
            parsed = None
        messages, omitted = messages_from(parsed)
        if messages is not None:
            notes: dict[str, Any] = {"prompt_form": "chat messages (JSON string in the log)"}
            if omitted:
                notes["omitted_content"] = omitted
            return messages, notes
    return context, {}


def _choices(record: dict[str, Any]) -> list[str]:
    arguments = record.get("arguments")
    if not isinstance(arguments, dict):
        return []
    choices = []
    for value in arguments.values():
        if isinstance(value, dict) and isinstance(value.get("arg_1"), str):
            choices.append(value["arg_1"])
    return choices


def _loglikelihoods(record: dict[str, Any]) -> list[float] | None:
    """Return one log-likelihood per choice from ``filtered_resps`` (``[[ll, is_greedy], ...]``), or None."""
    values = record.get("filtered_resps")
    if not isinstance(values, list):
        return None
    out = []
    for value in values:
        if isinstance(value, list) and len(value) == 1 and isinstance(value[0], list):
            value = value[0]  # older files nest one more level
        first = value[0] if isinstance(value, list) and value else value
        try:
            out.append(float(first))
        except (TypeError, ValueError):
            return None
    return out


def _generation(record: dict[str, Any]) -> str | None:
    values = record.get("filtered_resps")
    if isinstance(values, list) and values:
        first = values[0]
        if isinstance(first, list) and first and isinstance(first[0], str):
            first = first[0]
        if isinstance(first, str):
            return first
    return None


def _row(record: dict[str, Any], metric: str, output_type: str | None, report: ImportReport,
         threshold: float | None, lower_is_better: bool) -> dict[str, Any] | None:
    where = f"doc_id {record.get('doc_id')}"
    key = instance_id(record.get("doc_id"))
    if key is None:
        report.skip("doc_id is missing or not usable as an id", where)
        return None
    value = record.get(metric)
    score = finite_number(value)
    if score is None:
        shown = "missing" if value is None else (str(value) if isinstance(value, float) and not math.isfinite(value) else f"{type(value).__name__} {str(value)[:30]!r}")
        report.skip(f"metric {metric!r} is {shown}, not a finite number", where)
        return None

    prompt, prompt_notes = _prompt(record)
    if prompt is None:
        report.skip("no prompt in arguments", where)
        return None

    choices = _choices(record)
    lls = _loglikelihoods(record) if choices else None
    meta: dict[str, Any] = {"doc_id": record.get("doc_id"), "filter": record.get("filter", "none"), **prompt_notes}
    # Files without their results JSON do not name the output type; log-likelihood samples have choices and numbers.
    scored_by_loglikelihood = output_type in ("loglikelihood", "multiple_choice") or (
        output_type is None and lls is not None and len(choices) >= 1
    )
    if scored_by_loglikelihood:
        if lls is None or len(lls) != len(choices):
            report.skip("log-likelihood sample without one log-likelihood per choice", where)
            return None
        if len(choices) == 1:
            report.skip("log-likelihood task with a single continuation records no model output "
                        "(re-run it as a generation task to import it)", where)
            return None
        best = max(range(len(lls)), key=lambda index: lls[index])
        output = choices[best]
        meta.update({"output_kind": "choice ranked first by log-likelihood", "choices": choices,
                     "loglikelihoods": lls, "chosen_index": best})
    elif output_type == "loglikelihood_rolling":
        report.skip("perplexity task (loglikelihood_rolling) has no model output", where)
        return None
    else:
        output = _generation(record)
        if output is None:
            report.skip("no generated text in filtered_resps", where)
            return None

    row: dict[str, Any] = {"id": key, "input": prompt, "output": output, "score": score}
    reference = _reference(record, choices)
    if reference is not None:
        row["reference"] = reference
    if threshold is not None and lower_is_better:
        row["correct"] = score <= threshold
    extra = {name: record[name] for name in record if name not in SAMPLE_KEYS and name != metric and _jsonable(record[name])}
    if extra:
        meta["other_metrics"] = extra
    row["metadata"] = {"lm_eval": meta}
    return row


def _jsonable(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, (str, int, bool)) or value is None


def _reference(record: dict[str, Any], choices: list[str]) -> str | None:
    target = record.get("target")
    if isinstance(target, bool):
        return None
    if isinstance(target, int) and len(choices) > 1 and 0 <= target < len(choices):
        return choices[target]  # multiple-choice targets are the index of the gold choice
    if isinstance(target, (int, float)) and math.isfinite(target):
        return str(target)
    if isinstance(target, str) and target.strip():
        return target
    return None


def _filter_summary(record: dict[str, Any], metrics: list[str]) -> dict[str, Any]:
    summary: dict[str, Any] = {"output": _generation(record)}
    for name in metrics:
        value = finite_number(record.get(name))
        if value is not None:
            summary[name] = value
    return summary


def _model_metadata(results: dict[str, Any] | None) -> dict[str, Any]:
    if not results:
        return {}
    name = results.get("model_name")
    config = results.get("config") or {}
    meta: dict[str, Any] = {"name": name if isinstance(name, str) else None}
    if isinstance(name, str):
        meta["aliases"] = [name]
        if "/" in name and not name.startswith("/"):
            meta["organization"] = name.split("/", 1)[0]
    count = config.get("model_num_parameters")
    if isinstance(count, int) and not isinstance(count, bool) and count > 0:
        meta["parameters"] = f"{count / 1e9:.2f}B" if count >= 1e9 else f"{count / 1e6:.0f}M"
    return meta


def _dataset_metadata(task: str, config: dict[str, Any], metric: str, rows: list[dict[str, Any]],
                      threshold: float | None, lower_is_better: bool, output_type: str | None,
                      results: dict[str, Any] | None) -> dict[str, Any]:
    scores = [row["score"] for row in rows]
    chosen = threshold if threshold is not None else infer_threshold(scores, lower_is_better)
    meta: dict[str, Any] = {
        "name": task,
        "task_type": "multiple_choice" if output_type == "multiple_choice" else None,
        "metric": metric,
        "threshold": chosen,
        "aliases": [task],
    }
    path = config.get("dataset_path")
    if isinstance(path, str) and path.count("/") == 1 and not path.startswith(("/", ".")):
        # A Hugging Face dataset id: the repository stays for the submitter, the url is known.
        meta["source"] = {"repository": placeholder("owner/name of the repository the dataset came from"),
                          "url": f"https://huggingface.co/datasets/{path}"}
    version = (results or {}).get("lm_eval_version")
    if isinstance(version, str):
        meta["description"] = placeholder(f"describe the task (imported from lm-evaluation-harness {version}, task {task})")
    return meta
