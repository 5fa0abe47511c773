"""Import one HELM run folder (``benchmark_output/runs/<suite>/<run name>/``).

Files read: ``run_spec.json`` (model, metric specs), ``per_instance_stats.json``
(the per-instance metric values), and either ``scenario_state.json`` or the pair
``display_predictions.json`` + ``display_requests.json`` (prompt and output).
``instances.json`` and ``scenario.json`` are used when present (references,
dataset name).

- score: the main metric. ``--metric`` picks it; by default it is the first
  per-instance stat named by the run spec's metric specs (the ``names`` of a
  basic metric such as ``exact_match``, or the known stat of a scenario metric
  such as ``sst_score`` for SimpleSafetyTests). Stats of perturbed instances
  are ignored. HELM may write several stats entries for one instance; they are
  merged before the metric is looked up.
- output: the predicted text. For multiple-choice runs the predicted letter is
  mapped to the option text (``mapped_output`` or the request state's
  ``output_mapping``) and the letter is kept in metadata.
- reference: every reference tagged ``correct`` (there may be several).
"""

from __future__ import annotations

import json
import logging
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
)

logger = logging.getLogger(__name__)

#: Per-instance stat written by HELM scenario metrics whose spec names no stats.
KNOWN_METRIC_STATS = {
    "SimpleSafetyTestsScoreMetric": "sst_score",
    "HarmBenchScoreMetric": "harm_bench_score",
    "XSTestScoreMetric": "xstest_score",
    "AnthropicRedTeamScoreMetric": "safety_score",
}


def read(source: Path, *, model: str, dataset: str, threshold: float | None = None,
         metric: str | None = None, filter_name: str | None = None) -> ImportBatch:
    """Read a HELM run folder into an import batch."""
    folder = Path(source)
    if folder.is_file():
        folder = folder.parent
    if not (folder / "run_spec.json").is_file():
        raise ImportFailed(f"{folder} has no run_spec.json; pass a HELM run folder such as benchmark_output/runs/v1/<run name>")
    report = ImportReport("helm", str(folder), model, dataset)
    run_spec = _load(folder / "run_spec.json")
    stats = _merged_stats(_load(folder / "per_instance_stats.json") if (folder / "per_instance_stats.json").is_file() else [])
    if not stats:
        raise ImportFailed(f"{folder}/per_instance_stats.json is missing or empty; HELM writes it at the end of a run")
    chosen = metric or _main_metric(run_spec, stats)
    if chosen is None:
        raise ImportFailed(f"no per-instance metric found in {folder}; pass --metric with one of the stat names in per_instance_stats.json")
    if metric is None:
        report.notes.append(f"score is the per-instance stat {chosen!r} (the run spec's first metric; choose with --metric)")

    predictions, references = _predictions(folder, report)
    rows = []
    for key in sorted(predictions, key=lambda item: (str(item[0]), item[1])):
        raw_id, trial = key
        if trial != 0:
            continue  # later train trials repeat the instance with other in-context examples
        report.rows_read += 1
        row = _row(raw_id, predictions[key], references.get(raw_id), stats.get(key, {}), chosen, report)
        if row is not None:
            rows.append(row)
    skipped_trials = sum(1 for _, trial in predictions if trial != 0)
    if skipped_trials:
        report.notes.append(f"{skipped_trials} predictions of train trials after the first were left out (one row per instance)")

    batch = ImportBatch(rows, report)
    adapter = run_spec.get("adapter_spec") or {}
    model_name = adapter.get("model")
    if isinstance(model_name, str):
        batch.model_metadata = {"name": model_name, "aliases": [model_name, model_name.replace("/", "_")],
                                "organization": model_name.split("/", 1)[0] if "/" in model_name else None}
    scenario = _load(folder / "scenario.json") if (folder / "scenario.json").is_file() else {}
    scores = [row["score"] for row in rows]
    batch.dataset_metadata = {
        "name": scenario.get("name") if isinstance(scenario.get("name"), str) else None,
        "description": scenario.get("description") if isinstance(scenario.get("description"), str) else None,
        "task_type": "multiple_choice" if str(adapter.get("method", "")).startswith("multiple_choice") else None,
        "metric": chosen,
        "threshold": threshold if threshold is not None else infer_threshold(scores, False),
        "aliases": [name for name in [str(run_spec.get("name", "")).split(":", 1)[0]] if name],
    }
    url = scenario.get("definition_path")
    if isinstance(url, str) and url.startswith("https://github.com/"):
        parts = url.split("/")
        batch.dataset_metadata["source"] = {"repository": "/".join(parts[3:5]), "url": url}
    return batch


def _load(path: Path) -> Any:
    check_source_size(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise ImportFailed(f"{path} is not valid JSON: {error}") from error


def _merged_stats(entries: Any) -> dict[tuple[str, int], dict[str, float]]:
    """Return the unperturbed per-instance stat means by (instance id, train trial), merging repeated entries."""
    merged: dict[tuple[str, int], dict[str, float]] = {}
    if not isinstance(entries, list):
        return merged
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("perturbation"):
            continue
        key = (entry.get("instance_id"), entry.get("train_trial_index", 0))
        values = merged.setdefault(key, {})
        for stat in entry.get("stats") or []:
            name = stat.get("name") or {}
            if name.get("perturbation") or not isinstance(name.get("name"), str):
                continue
            mean = stat.get("mean")
            if mean is None and stat.get("count"):
                mean = stat.get("sum", 0) / stat["count"]
            number = finite_number(mean)
            if number is not None:
                values.setdefault(name["name"], number)
    return merged


def _main_metric(run_spec: dict[str, Any], stats: dict[tuple[str, int], dict[str, float]]) -> str | None:
    present = set().union(*stats.values()) if stats else set()
    for spec in run_spec.get("metric_specs") or []:
        names = (spec.get("args") or {}).get("names") or []
        for name in names:
            if name in present:
                return name
        short = str(spec.get("class_name", "")).rsplit(".", 1)[-1]
        if KNOWN_METRIC_STATS.get(short) in present:
            return KNOWN_METRIC_STATS[short]
    return "exact_match" if "exact_match" in present else None


def _predictions(folder: Path, report: ImportReport) -> tuple[dict[tuple[str, int], dict[str, Any]], dict[str, list[str]]]:
    """Return prompt/output/mapping by (instance id, trial), and the correct references by instance id."""
    predictions: dict[tuple[str, int], dict[str, Any]] = {}
    references: dict[str, list[str]] = {}
    state_path = folder / "scenario_state.json"
    if state_path.is_file():
        state = _load(state_path)
        for request_state in state.get("request_states") or []:
            instance = request_state.get("instance") or {}
            key = (instance.get("id"), request_state.get("train_trial_index", 0))
            completions = ((request_state.get("result") or {}).get("completions")) or []
            predicted = completions[0].get("text") if completions and isinstance(completions[0], dict) else None
            mapping = request_state.get("output_mapping") or {}
            if key in predictions:
                continue  # multiple_choice_separate methods write one request per option; the first carries the prompt
            predictions[key] = {"prompt": (request_state.get("request") or {}).get("prompt"), "predicted": predicted,
                                "mapped": mapping.get(predicted.strip()) if isinstance(predicted, str) else None,
                                "mapping": mapping}
            references[instance.get("id")] = _correct(instance)
        report.notes.append("read prompts and outputs from scenario_state.json")
        return predictions, references
    predictions_path, requests_path = folder / "display_predictions.json", folder / "display_requests.json"
    if not (predictions_path.is_file() and requests_path.is_file()):
        raise ImportFailed(f"{folder} has neither scenario_state.json nor display_predictions.json + display_requests.json")
    prompts = {(item.get("instance_id"), item.get("train_trial_index", 0)): (item.get("request") or {}).get("prompt")
               for item in _load(requests_path) if isinstance(item, dict)}
    for item in _load(predictions_path):
        if not isinstance(item, dict):
            continue
        key = (item.get("instance_id"), item.get("train_trial_index", 0))
        predictions[key] = {"prompt": prompts.get(key), "predicted": item.get("predicted_text"),
                            "mapped": item.get("mapped_output"), "mapping": {}}
    instances_path = folder / "instances.json"
    if instances_path.is_file():
        for instance in _load(instances_path):
            if isinstance(instance, dict):
                references[instance.get("id")] = _correct(instance)
    return predictions, references


def _correct(instance: dict[str, Any]) -> list[str]:
    return [ref["output"]["text"] for ref in instance.get("references") or []
            if "correct" in (ref.get("tags") or []) and isinstance((ref.get("output") or {}).get("text"), str)]


def _row(raw_id: Any, prediction: dict[str, Any], references: list[str] | None, stats: dict[str, float],
         metric: str, report: ImportReport) -> dict[str, Any] | None:
    where = f"instance {raw_id!r}"
    key = instance_id(raw_id)
    if key is None:
        report.skip("instance id is missing or not usable as an id", where)
        return None
    if metric not in stats:
        report.skip(f"no per-instance {metric!r} stat", where)
        return None
    prompt, predicted = prediction.get("prompt"), prediction.get("predicted")
    if not isinstance(prompt, str):
        report.skip("no prompt in the request", where)
        return None
    if not isinstance(predicted, str):
        report.skip("no predicted text", where)
        return None
    meta: dict[str, Any] = {"instance_id": raw_id}
    output = predicted
    if isinstance(prediction.get("mapped"), str):
        output = prediction["mapped"]
        meta["predicted_letter"] = predicted
    if prediction.get("mapping"):
        meta["options"] = prediction["mapping"]
    meta["stats"] = {name: value for name, value in stats.items() if name != metric and not name.startswith(("num_", "training_", "finish_reason"))}
    row: dict[str, Any] = {"id": key, "input": prompt, "output": output, "score": stats[metric]}
    if references:
        row["reference"] = references if len(references) > 1 else references[0]
    row["metadata"] = {"helm": meta}
    return row
