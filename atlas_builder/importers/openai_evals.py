"""Import an ``oaieval`` JSON Lines log from openai/evals.

The log starts with a ``{"spec": ...}`` line, then one event per line
(``run_id, event_id, sample_id, type, data``), and may end with a
``{"final_report": ...}`` line. Events are grouped by ``sample_id``:

- input and output: the first ``sampling`` event gives the prompt (text or chat
  messages). Its completion function may call the model several times, for
  example chain-of-thought then answer; the output is the ``sampled`` text of
  the last ``sampling`` event whose prompt starts like the first one. Sampling
  events with another prompt belong to a model grader and go to metadata.
- score: a ``match`` event's ``correct`` (1 or 0), else a ``metrics`` event's
  numeric ``score``. A sample without either is skipped with the reason, which
  happens when a run stops before grading or a model-graded eval records only a
  choice letter.
- reference: the ``match`` event's ``expected``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from atlas_builder.importers.common import (
    require_source_file,
    ImportBatch,
    ImportFailed,
    ImportReport,
    finite_number,
    infer_threshold,
    instance_id,
    messages_from,
)

logger = logging.getLogger(__name__)


def read(source: Path, *, model: str, dataset: str, threshold: float | None = None,
         metric: str | None = None, filter_name: str | None = None) -> ImportBatch:
    """Read one oaieval log into an import batch."""
    source = require_source_file(source, "the JSON Lines log that oaieval wrote (--record_path)")
    report = ImportReport("openai-evals", str(source), model, dataset)
    spec, events, bad_lines = _read_lines(source)
    if spec is None:
        raise ImportFailed(f"{source} has no spec line; an oaieval log starts with {{\"spec\": ...}}")
    if bad_lines:
        report.notes.append(f"{bad_lines} lines were not valid JSON events and were left out")

    by_sample: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        by_sample.setdefault(str(event.get("sample_id")), []).append(event)
    rows = []
    for sample_id, sample_events in by_sample.items():
        report.rows_read += 1
        sample_events.sort(key=lambda event: event.get("event_id", 0))
        row = _row(sample_id, sample_events, report)
        if row is not None:
            rows.append(row)

    batch = ImportBatch(rows, report)
    completion_fns = spec.get("completion_fns") or []
    if completion_fns and isinstance(completion_fns[0], str):
        batch.model_metadata = {"name": completion_fns[0], "aliases": [completion_fns[0]]}
    eval_name = spec.get("base_eval") or spec.get("eval_name")
    scores = [row["score"] for row in rows]
    batch.dataset_metadata = {
        "name": eval_name if isinstance(eval_name, str) else None,
        "metric": "accuracy" if any("match" in row["metadata"]["openai_evals"].get("events", []) for row in rows) else "score",
        "threshold": threshold if threshold is not None else infer_threshold(scores, False),
        "aliases": [name for name in (spec.get("eval_name"), spec.get("base_eval")) if isinstance(name, str)],
    }
    return batch


def _read_lines(source: Path) -> tuple[dict[str, Any] | None, list[dict[str, Any]], int]:
    spec, events, bad = None, [], 0
    with source.open("rb") as handle:
        for raw in handle:
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                bad += 1
                continue
            if not isinstance(obj, dict):
                bad += 1
            elif "spec" in obj:
                spec = obj["spec"] if isinstance(obj["spec"], dict) else {}
            elif "final_report" in obj:
                continue
            elif "sample_id" in obj and "type" in obj:
                events.append(obj)
            else:
                bad += 1
    return spec, events, bad


def _sampled_text(data: dict[str, Any]) -> str | None:
    sampled = data.get("sampled")
    if isinstance(sampled, list) and sampled and isinstance(sampled[0], str):
        return sampled[0]
    return sampled if isinstance(sampled, str) else None


def _prompt_head(prompt: Any) -> str:
    if isinstance(prompt, list) and prompt and isinstance(prompt[0], dict):
        return json.dumps(prompt[0], sort_keys=True)
    return str(prompt)[:200]


def _row(sample_id: str, events: list[dict[str, Any]], report: ImportReport) -> dict[str, Any] | None:
    where = f"sample {sample_id!r}"
    key = instance_id(sample_id)
    if key is None:
        report.skip("sample_id is missing or not usable as an id", where)
        return None
    sampling = [event for event in events if event.get("type") == "sampling" and isinstance(event.get("data"), dict)]
    if not sampling:
        report.skip("no sampling event", where)
        return None
    prompt = sampling[0]["data"].get("prompt")
    head = _prompt_head(prompt)
    model_events = [event for event in sampling if _prompt_head(event["data"].get("prompt")) == head]
    grader_events = [event for event in sampling if event not in model_events]
    output = _sampled_text(model_events[-1]["data"])

    score, reference, kinds = None, None, []
    for event in events:
        data = event.get("data") if isinstance(event.get("data"), dict) else {}
        kinds.append(event.get("type"))
        if event.get("type") == "match" and isinstance(data.get("correct"), bool):
            score = 1.0 if data["correct"] else 0.0
            expected = data.get("expected")
            if isinstance(expected, str):
                reference = expected
            elif isinstance(expected, list) and all(isinstance(item, str) for item in expected) and expected:
                reference = expected
        elif event.get("type") == "metrics" and score is None:
            score = finite_number(data.get("score"))
    if score is None:
        has_metrics = "metrics" in kinds
        report.skip("metrics event has no numeric score" if has_metrics else "no match or metrics event (the run stopped before grading?)", where)
        return None
    if output is None:
        report.skip("sampling event has no sampled text", where)
        return None
    if isinstance(prompt, str):
        prompt_value: Any = prompt
    else:
        prompt_value, _ = messages_from(prompt)
        if prompt_value is None:
            report.skip("prompt is neither text nor chat messages", where)
            return None
    meta: dict[str, Any] = {"sample_id": sample_id, "events": sorted({kind for kind in kinds if isinstance(kind, str)})}
    if len(model_events) > 1:
        meta["model_calls"] = len(model_events)
    if grader_events:
        meta["grader_output"] = _sampled_text(grader_events[-1]["data"])
    for event in events:
        if event.get("type") == "metrics" and isinstance(event.get("data"), dict) and "choice" in event["data"]:
            meta["grader_choice"] = event["data"]["choice"]
    row: dict[str, Any] = {"id": key, "input": prompt_value, "output": output, "score": score}
    if reference is not None:
        row["reference"] = reference
    row["metadata"] = {"openai_evals": meta}
    return row
