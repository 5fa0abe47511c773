"""Turn stored judge answers into ``Diagnosis`` records for the build (no litellm, no calls).

A stored answer counts only if its key equals the key of the request that the
current data would produce: the messages are rebuilt from the current result
rows, the stored peer model and the stored check findings, and hashed with the
stored judge model and prompt version. An answer about data that has changed
since (another output, input, reference, or peer output) is left out.

When several answers match one failure (other judges, prompt versions or
findings), the build uses the newest successful answer by ``time``; a later
line of the store wins a tie. A failure with only failed calls gets one
``judge-failure`` diagnosis (the newest), so the build can list it as
undiagnosed with the reason.

``Diagnosis.details`` of a judge diagnosis (all JSON types)::

    criteria:       [{criterion, met, evidence, span: [start, end] | null}]
    first_error:    {criterion (1-based index), criterion_text, evidence, explanation, span}
    reference_flag, ambiguous_flag: bool;  flag_reason: str
    peer_model:     model whose correct output the judge saw, or null
    automatic_findings: [{title, summary}] passed to the judge
    provenance:     {judge, prompt_version, key, time, tokens_in, tokens_out, cost_usd, latency_s, attempts}

``span`` is the character range of the quoted evidence in the failure's
output, found exactly or ignoring case and runs of whitespace; null when the
quote is empty or not in the output. ``Diagnosis.evidence`` holds the located
spans, the first error's first. A ``judge-failure`` diagnosis has details
``{error, error_kind, provenance}``.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from pathlib import Path
from typing import Any, Mapping

from atlas_builder.diagnose.judge.plan import PURPOSE, build_messages
from atlas_builder.diagnose.judge.prompts import DIAGNOSE_PROMPT_VERSION, DIAGNOSE_SCHEMA
from atlas_builder.diagnose.judge.store import STORE_DIR, read_records, request_key
from atlas_builder.records import Diagnosis, Evidence, FailureKey, Results

logger = logging.getLogger(__name__)

#: Answer schema of each prompt version; a version missing here cannot be checked and is skipped.
SCHEMAS: dict[str, dict[str, Any]] = {DIAGNOSE_PROMPT_VERSION: DIAGNOSE_SCHEMA}

_QUOTE_MARKS = "\"'`“”‘’«»"
_ELLIPSIS = re.compile(r"\.\.\.|…")
MIN_PART_CHARS = 8


def _normalise(text: str) -> tuple[str, list[int]]:
    """Lower-case ``text`` and collapse whitespace runs; return it with each character's original offset."""
    chars: list[str] = []
    offsets: list[int] = []
    previous_space = False
    for index, char in enumerate(text):
        if char.isspace():
            if previous_space:
                continue
            chars.append(" ")
            offsets.append(index)
            previous_space = True
            continue
        previous_space = False
        for lowered in char.lower():
            chars.append(lowered)
            offsets.append(index)
    return "".join(chars), offsets


def clean_quote(quote: str) -> str:
    """Strip whitespace and quotation marks around a quote."""
    return quote.strip().strip(_QUOTE_MARKS).strip()


def locate_quote(quote: str, text: str) -> tuple[int, int] | None:
    """Return the (start, end) character span of ``quote`` in ``text``, or None if it is not there.

    Tries an exact match, then one that ignores case and whitespace runs, and
    for a quote shortened with an ellipsis, the span from its first to its last part.
    """
    quote = clean_quote(quote)
    if not quote:
        return None
    start = text.find(quote)
    if start >= 0:
        return start, start + len(quote)
    normal_text, offsets = _normalise(text)
    needles = [_normalise(clean_quote(part))[0].strip() for part in _ELLIPSIS.split(quote)]
    needles = [needle for needle in needles if needle]
    if len(needles) > 1:
        needles = [needle for needle in needles if len(needle) >= MIN_PART_CHARS] or needles
    if not needles:
        return None
    spans = []
    search_from = 0
    for needle in needles:
        found = normal_text.find(needle, search_from)
        if found < 0:
            return None
        end = found + len(needle)
        spans.append((offsets[found], offsets[end - 1] + 1))
        search_from = end
    return spans[0][0], spans[-1][1]


def _provenance(record: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("judge", "prompt_version", "key", "time", "tokens_in", "tokens_out", "cost_usd", "latency_s", "attempts")
    return {key: record.get(key) for key in keys}


def judge_diagnosis(record: Mapping[str, Any], output: str) -> Diagnosis:
    """Build the ``judge`` diagnosis of one stored answer about a failure whose output is ``output``."""
    answer = record["answer"]
    subject = record["subject"]
    criteria = []
    for item in answer["criteria"]:
        span = locate_quote(item["evidence"], output)
        criteria.append({**item, "span": list(span) if span else None})
    first = answer["first_error"]
    index = first["criterion"]
    first_span = locate_quote(first["evidence"], output)
    first_error = {
        "criterion": index,
        "criterion_text": answer["criteria"][index - 1]["criterion"] if 1 <= index <= len(answer["criteria"]) else None,
        "evidence": first["evidence"],
        "explanation": first["explanation"],
        "span": list(first_span) if first_span else None,
    }
    spans: list[tuple[int, int]] = []
    candidates = [first_span] + [tuple(item["span"]) if item["span"] else None for item in criteria if not item["met"]]
    for span in candidates:
        if span is not None and tuple(span) not in spans:
            spans.append(tuple(span))
    evidence = tuple(Evidence("output", start, end, output[start:end]) for start, end in spans)
    request = record.get("request") or {}
    return Diagnosis(
        dataset=subject["dataset"],
        model=subject["model"],
        instance_id=subject["instance_id"],
        diagnoser=record["judge"],
        kind="judge",
        title=answer["error_title"].strip(),
        summary=answer["error_summary"].strip(),
        evidence=evidence,
        details={
            "criteria": criteria,
            "first_error": first_error,
            "reference_flag": bool(answer["reference_flag"]),
            "ambiguous_flag": bool(answer["ambiguous_flag"]),
            "flag_reason": answer.get("flag_reason", ""),
            "peer_model": request.get("peer_model"),
            "automatic_findings": list(request.get("findings") or []),
            "provenance": _provenance(record),
        },
        prompt_version=record["prompt_version"],
    )


def failure_diagnosis(record: Mapping[str, Any]) -> Diagnosis:
    """Build the ``judge-failure`` diagnosis of one stored failed call."""
    subject = record["subject"]
    return Diagnosis(
        dataset=subject["dataset"],
        model=subject["model"],
        instance_id=subject["instance_id"],
        diagnoser=record["judge"],
        kind="judge-failure",
        title="Judge call failed",
        summary=str(record.get("error") or "unknown error"),
        details={"error": record.get("error"), "error_kind": record.get("error_kind"), "provenance": _provenance(record)},
        prompt_version=record["prompt_version"],
    )


def stored_diagnoses(results: Results, data_dir: Path) -> list[Diagnosis]:
    """Return one judge diagnosis (or judge failure) per failure with a matching stored answer."""
    report = read_records(Path(data_dir) / STORE_DIR, PURPOSE)
    if not report.records:
        return []
    failures = {
        (row["dataset"], row["model"], row["instance_id"]): row
        for row in results.failures().to_dict("records")
    }
    correct = results.rows[results.rows["correct"]]
    correct_outputs = {
        (dataset, instance_id, model): output
        for dataset, model, instance_id, output in zip(
            correct["dataset"], correct["model"], correct["instance_id"], correct["output"]
        )
    }

    by_failure: dict[FailureKey, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    stale = unknown_version = 0
    for order, record in enumerate(report.records):
        subject = record.get("subject") or {}
        key = (subject.get("dataset"), subject.get("model"), subject.get("instance_id"))
        row = failures.get(key)
        if row is None:
            continue
        schema = SCHEMAS.get(record.get("prompt_version"))
        if schema is None:
            unknown_version += 1
            continue
        request = record.get("request") or {}
        peer_model = request.get("peer_model")
        peer_output = None
        if peer_model is not None:
            peer_output = correct_outputs.get((key[0], key[2], peer_model))
            if peer_output is None:
                stale += 1  # the peer's row is gone or no longer correct
                continue
        messages = build_messages(results, row, peer_output, request.get("findings") or (), record["prompt_version"])
        if request_key(messages, record["judge"], record["prompt_version"], schema) != record["key"]:
            stale += 1
            continue
        by_failure[key].append((order, record))

    diagnoses: list[Diagnosis] = []
    for key, candidates in by_failure.items():
        answers = [item for item in candidates if item[1].get("ok")]
        pool = answers or candidates
        _, newest = max(pool, key=lambda item: (str(item[1].get("time", "")), item[0]))
        try:
            diagnoses.append(judge_diagnosis(newest, failures[key]["output"]) if newest.get("ok") else failure_diagnosis(newest))
        except (KeyError, TypeError, IndexError) as error:
            logger.warning("judge record %s for %s is malformed (%r); skipping it", newest.get("key"), "/".join(key), error)
    if stale or unknown_version:
        logger.info(
            "left out %d stored judge answers about changed data and %d with an unknown prompt version",
            stale, unknown_version,
        )
    diagnoses.sort(key=lambda item: item.key)
    return diagnoses
