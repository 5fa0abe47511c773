"""Import Inspect AI evaluation logs: ``.json`` logs (format versions 1-3) and ``.eval`` zip logs.

The source is one log file. A ``.eval`` file is a zip archive with
``header.json`` (or ``_journal/start.json`` while a run is still open) and one
``samples/<id>_epoch_<n>.json`` per sample; a ``.json`` log holds the header and
a ``samples`` list in one object. Version 1 logs and header-only logs carry no
samples, so they import nothing and say so.

How each field maps:

- input: the sample's ``input`` (text, or chat messages with text parts joined).
- output: ``output.completion``, else the text of the first choice's message.
- score: the value of the chosen scorer (``--metric``, default the first scorer
  of the log). Inspect's letters map as its ``value_to_float`` does:
  ``C`` = 1, ``I`` = 0, ``P`` (partial) = 0.5, ``N`` (no answer) = 0; numbers stay.
- reference: the sample's ``target``; for a multiple-choice sample with a
  letter target, the option text is added as a second accepted answer.

Errored samples and samples without a score for the chosen scorer are skipped
with the reason. A cancelled or errored run imports the samples it finished.
"""

from __future__ import annotations

import json
import logging
import math
import zipfile
from pathlib import Path
from typing import Any

from atlas_builder.importers.common import (
    require_source_file,
    ImportBatch,
    ImportFailed,
    ImportReport,
    infer_threshold,
    instance_id,
    messages_from,
    text_of,
)

logger = logging.getLogger(__name__)

LETTER_SCORES = {"C": 1.0, "I": 0.0, "P": 0.5, "N": 0.0}
TEXT_SCORES = {"yes": 1.0, "true": 1.0, "correct": 1.0, "no": 0.0, "false": 0.0, "incorrect": 0.0}
MAX_MEMBER_BYTES = 200_000_000  # an uncompressed zip member larger than this is refused (zip bomb guard)


def read(source: Path, *, model: str, dataset: str, threshold: float | None = None,
         metric: str | None = None, filter_name: str | None = None) -> ImportBatch:
    """Read one Inspect log file into an import batch."""
    source = require_source_file(source, "one Inspect log file (.json or .eval)")
    report = ImportReport("inspect", str(source), model, dataset)
    header, samples = _read_eval(source) if zipfile.is_zipfile(source) else _read_json(source)

    version = header.get("version")
    status = header.get("status")
    if status not in (None, "success"):
        report.notes.append(f"the run's status is {status!r}: only the samples it finished are in the log")
    if not samples:
        report.notes.append(f"the log (format version {version}) holds no samples: it is header-only or the run stopped before any sample")

    scorer = metric or _first_scorer(header, samples)
    if metric is None and scorer is not None:
        names = _scorer_names(header, samples)
        if len(names) > 1:
            report.notes.append(f"score is scorer {scorer!r}, the first of {', '.join(names)} (choose with --metric)")

    epochs = {sample.get("epoch", 1) for sample in samples}
    rows = []
    for sample in samples:
        report.rows_read += 1
        row = _row(sample, scorer, report, multi_epoch=len(epochs) > 1)
        if row is not None:
            rows.append(row)

    batch = ImportBatch(rows, report)
    evaluation = header.get("eval") or {}
    model_name = evaluation.get("model")
    batch.model_metadata = {"name": model_name, "aliases": [model_name]} if isinstance(model_name, str) else {}
    if isinstance(model_name, str) and "/" in model_name:
        batch.model_metadata["organization"] = model_name.split("/", 1)[0]
    task = evaluation.get("task")
    location = (evaluation.get("dataset") or {}).get("location")
    scores = [row["score"] for row in rows]
    batch.dataset_metadata = {
        "name": task if isinstance(task, str) else None,
        "metric": scorer,
        "threshold": threshold if threshold is not None else infer_threshold(scores, False),
        "aliases": [task] if isinstance(task, str) else [],
    }
    if isinstance(location, str) and location.startswith(("http://", "https://")):
        batch.dataset_metadata["source"] = {"repository": None, "url": location}
    return batch


def _read_json(source: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    try:
        # Inspect writes Python's json, so NaN appears as a bare constant; json.loads accepts it.
        obj = json.loads(source.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise ImportFailed(f"{source} is not a valid Inspect log: invalid JSON ({error}); pass the .json or .eval log Inspect wrote") from error
    if not isinstance(obj, dict) or "eval" not in obj:
        raise ImportFailed(f"{source} is not an Inspect log: it has no 'eval' header")
    samples = obj.get("samples") or []
    if not isinstance(samples, list):
        raise ImportFailed(f"{source}: 'samples' is not a list")
    return obj, [sample for sample in samples if isinstance(sample, dict)]


def _read_eval(source: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    try:
        archive = zipfile.ZipFile(source)
    except zipfile.BadZipFile as error:
        raise ImportFailed(f"{source} is not a valid .eval log: {error}") from error
    with archive:
        names = archive.namelist()
        header_name = "header.json" if "header.json" in names else "_journal/start.json" if "_journal/start.json" in names else None
        if header_name is None:
            raise ImportFailed(f"{source} is not an Inspect .eval log: it has neither header.json nor _journal/start.json")
        header = _member(archive, header_name, source)
        samples = []
        for name in sorted(name for name in names if name.startswith("samples/") and name.endswith(".json")):
            sample = _member(archive, name, source)
            if isinstance(sample, dict):
                samples.append(sample)
    samples.sort(key=lambda sample: (str(sample.get("id")), sample.get("epoch", 1)))
    return header if isinstance(header, dict) else {}, samples


def _member(archive: zipfile.ZipFile, name: str, source: Path) -> Any:
    info = archive.getinfo(name)
    if info.file_size > MAX_MEMBER_BYTES:
        raise ImportFailed(f"{source}: member {name} unpacks to {info.file_size:,} bytes, over {MAX_MEMBER_BYTES:,}")
    try:
        return json.loads(archive.read(name).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, zipfile.BadZipFile) as error:
        raise ImportFailed(f"{source}: member {name} is not valid JSON ({error})") from error


def _scorer_names(header: dict[str, Any], samples: list[dict[str, Any]]) -> list[str]:
    results = header.get("results") or {}
    names = []
    for entry in results.get("scores") or results.get("scorers") or []:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            names.append(entry["name"])
    single = results.get("scorer")  # version 1 logs have one scorer
    if isinstance(single, dict) and isinstance(single.get("name"), str):
        names.append(single["name"])
    for sample in samples:
        for name in (sample.get("scores") or {}):
            if name not in names:
                names.append(name)
    return list(dict.fromkeys(names))


def _first_scorer(header: dict[str, Any], samples: list[dict[str, Any]]) -> str | None:
    names = _scorer_names(header, samples)
    return names[0] if names else None


def score_value(value: Any) -> float | None:
    """Convert an Inspect score value to a number, as Inspect's ``value_to_float`` does; None when impossible."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        text = value.strip()
        if text in LETTER_SCORES:
            return LETTER_SCORES[text]
        if text.lower() in TEXT_SCORES:
            return TEXT_SCORES[text.lower()]
        try:
            number = float(text)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _resolve(text: str, attachments: dict[str, Any]) -> str:
    """Replace an ``attachment://<hash>`` reference (format version 2+) with the stored text."""
    if text.startswith("attachment://"):
        stored = attachments.get(text[len("attachment://"):])
        if isinstance(stored, str):
            return stored
    return text


def _input(sample: dict[str, Any], attachments: dict[str, Any]) -> tuple[Any, list[str]]:
    raw = sample.get("input")
    if isinstance(raw, str):
        return _resolve(raw, attachments), []
    messages, omitted = messages_from(raw)
    if messages is None:
        return None, []
    for message in messages:
        message["content"] = _resolve(message["content"], attachments)
    return messages, omitted


def _output(sample: dict[str, Any], attachments: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    output = sample.get("output") or {}
    notes: dict[str, Any] = {}
    choices = output.get("choices") or []
    message = choices[0].get("message") if choices and isinstance(choices[0], dict) else None
    if isinstance(message, dict):
        if message.get("tool_calls"):
            notes["tool_calls"] = [call.get("function") for call in message["tool_calls"] if isinstance(call, dict)]
        if choices[0].get("stop_reason"):
            notes["stop_reason"] = choices[0]["stop_reason"]
    completion = output.get("completion")
    if isinstance(completion, str) and completion:
        return _resolve(completion, attachments), notes
    if isinstance(message, dict):
        text, omitted = text_of(message.get("content"))
        if omitted:
            notes["omitted_output_content"] = omitted
        return _resolve(text, attachments), notes
    if isinstance(completion, str):
        return completion, notes
    return None, notes


def _reference(sample: dict[str, Any]) -> list[str] | str | None:
    target = sample.get("target")
    choices = sample.get("choices")
    if isinstance(target, list):
        values = [item for item in target if isinstance(item, str)]
        return values or None
    if not isinstance(target, str) or not target.strip():
        return None
    letter = target.strip()
    if isinstance(choices, list) and len(letter) == 1 and "A" <= letter <= "Z":
        index = ord(letter) - ord("A")
        if index < len(choices) and isinstance(choices[index], str):
            return [target, choices[index]]
    return target


def _row(sample: dict[str, Any], scorer: str | None, report: ImportReport, *, multi_epoch: bool) -> dict[str, Any] | None:
    raw_id = sample.get("id")
    epoch = sample.get("epoch", 1)
    where = f"sample {raw_id!r} epoch {epoch}"
    key = instance_id(raw_id)
    if key is None:
        report.skip("sample id is missing or not usable as an id", where)
        return None
    if multi_epoch:
        key = f"{key}-epoch{epoch}"
    if sample.get("error"):
        error = sample["error"]
        message = error.get("message") if isinstance(error, dict) else str(error)
        report.skip("sample errored during the run", f"{where}: {str(message)[:80]}")
        return None
    scores = sample.get("scores") or {}
    if scorer is None or scorer not in scores:
        report.skip("sample has no score" + (f" from scorer {scorer!r}" if scorer else ""), where)
        return None
    entry = scores[scorer]
    value = entry.get("value") if isinstance(entry, dict) else entry
    score = score_value(value)
    if score is None:
        report.skip(f"score value {str(value)[:30]!r} is not a number or C/I/P/N letter", where)
        return None

    attachments = sample.get("attachments") or {}
    prompt, omitted = _input(sample, attachments)
    if prompt is None:
        report.skip("sample input is neither text nor chat messages", where)
        return None
    output, notes = _output(sample, attachments)
    if output is None:
        report.skip("sample has no model output", where)
        return None

    meta: dict[str, Any] = {"sample_id": raw_id, "epoch": epoch, "scorer": scorer, "value": value, **notes}
    if isinstance(entry, dict):
        for name in ("answer", "explanation"):
            if isinstance(entry.get(name), str):
                meta[name] = entry[name]
    if isinstance(sample.get("choices"), list):
        meta["choices"] = sample["choices"]
    if omitted:
        meta["omitted_input_content"] = omitted
    if isinstance(sample.get("metadata"), dict) and sample["metadata"]:
        meta["sample_metadata"] = sample["metadata"]
    row: dict[str, Any] = {"id": key, "input": prompt, "output": output, "score": score}
    reference = _reference(sample)
    if reference is not None:
        row["reference"] = reference
    row["metadata"] = {"inspect": _finite(meta)}
    return row


def _finite(value: Any) -> Any:
    """Replace NaN and infinities inside metadata with None; JSON Lines in the atlas carry finite numbers only."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(key): _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value
