"""Turn stored judge answers into ``Diagnosis`` records for the build (no litellm, no calls).

A stored answer counts only if it is about the failure as the current data
shows it. With the current check findings given, the messages are rebuilt
from the current result rows, the stored peer model and those findings, and
their key (with the stored judge model and prompt version) must equal the
stored key. Otherwise the record's core key (``plan.core_content``: everything
the prompt shows except the findings) must equal the current one, and the
diagnosis gets ``details["findings_changed"] = True`` when findings were
given, because the checks then report other findings than the judge saw. A
record without a core key (written before core keys existed) gets no such
fallback: its messages are rebuilt with its stored findings and must match its
key. An answer about a changed input, output, reference or peer answer is left
out.

When several answers match one failure (other judges, prompt versions or
findings), the build uses a successful answer, preferring one made with the
current findings, then the newest by ``time``; a later line of the store wins
a tie. A failure with only failed calls gets one
``judge-failure`` diagnosis (the newest), so the build can list it as
undiagnosed with the reason.

``Diagnosis.details`` of a judge diagnosis (all JSON types)::

    criteria:       [{criterion, met, evidence, span: [start, end] | null}]
    first_error:    {criterion (1-based index), criterion_text, evidence, explanation, span}
    reference_flag, ambiguous_flag: bool;  flag_reason: str
    peer_model:     model whose correct output the judge saw, or null
    automatic_findings: [{title, summary}] passed to the judge
    findings_changed: True when the checks now report other findings (only present then)
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
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from atlas_builder.diagnose.judge.plan import PURPOSE, build_messages, core_content, split_findings
from atlas_builder.diagnose.judge.prompts import DIAGNOSE_PROMPT_VERSION, DIAGNOSE_SCHEMA
from atlas_builder.diagnose.judge.store import (STORE_DIR, ReadReport, core_key, iter_shards, parse_shard,
                                                request_key)
from atlas_builder.diagnose.judge.stored_cache import MatchCache, Pair, Shard, ShardOutcome, round_trip
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


def stored_diagnoses(
    results: Results, data_dir: Path, check_findings: Iterable[Diagnosis] | None = None
) -> list[Diagnosis]:
    """Return one judge diagnosis (or judge failure) per failure with a matching stored answer.

    ``check_findings`` are the current deterministic check results; with them,
    answers made with other findings are marked ``findings_changed``. A shard
    whose inputs did not change since an earlier build is read from the match
    cache (``stored_cache``) rather than matched again.
    """
    store_dir = Path(data_dir) / STORE_DIR
    paths = list(iter_shards(store_dir, PURPOSE))
    if not paths:
        return []
    current_findings = split_findings(check_findings)[1] if check_findings is not None else None
    cache = MatchCache(results, store_dir / PURPOSE, current_findings)

    cached: dict[Pair, tuple[Shard, ShardOutcome]] = {}
    parsed: list[tuple[Shard, list[dict[str, Any]]]] = []
    for path in paths:
        data = path.read_bytes()
        shard = cache.shard(path, data)
        outcome = cache.lookup(shard)
        if outcome is not None and shard.pair is not None:
            cached[shard.pair] = (shard, outcome)
            continue
        parsed.append((shard, _parse(path, data)))

    # Records about another shard's failures compete with that shard's records for the same failures,
    # so both shards are matched together and neither outcome is cached.
    pairs = [(shard, _record_pairs(records)) for shard, records in parsed]
    foreign = {pair for shard, shard_pairs in pairs for pair in shard_pairs if pair != shard.pair}
    storable = {id(shard) for shard, shard_pairs in pairs if shard.pair is not None and shard.pair not in foreign
                and shard_pairs <= {shard.pair}}
    for pair in foreign & set(cached):
        shard, _ = cached.pop(pair)
        parsed.append((shard, _parse(shard.path, shard.path.read_bytes())))
    # Store order decides ties between answers, so the shards are matched in path order.
    parsed.sort(key=lambda item: item[0].path)

    outcomes = _match_shards(results, parsed, current_findings)
    for index, (shard, records) in enumerate(parsed):
        if id(shard) in storable:
            cache.store(shard, records, outcomes[index])

    diagnoses: list[Diagnosis] = []
    counts: Counter = Counter()
    for outcome in [*(outcome for _, outcome in cached.values()), *outcomes]:
        diagnoses.extend(outcome.diagnoses)
        counts.update(outcome.counts)
    logger.info("judge answers: %d of %d store shards read from the match cache, %d matched",
                len(cached), len(cached) + len(parsed), len(parsed))
    if counts["content_changed"] or counts["peer_gone"] or counts["unknown_version"]:
        logger.info(
            "left out stored judge answers: %d whose failure's input, output, reference or dataset changed, "
            "%d whose peer answer is gone or no longer correct, %d with an unknown prompt version",
            counts["content_changed"], counts["peer_gone"], counts["unknown_version"],
        )
    if counts["findings_changed"]:
        logger.info(
            "kept %d stored judge answers made when the checks reported other findings (details.findings_changed); "
            "'atlas diagnose --refresh-changed-findings' asks the judge again", counts["findings_changed"],
        )
    diagnoses.sort(key=lambda item: item.key)
    return diagnoses


def _parse(path: Path, data: bytes) -> list[dict[str, Any]]:
    report = ReadReport()
    parse_shard(path, data, report)
    return report.records


def _record_pairs(records: list[dict[str, Any]]) -> set[Pair]:
    """Return the (dataset, model) pairs that ``records`` are about."""
    pairs = set()
    for record in records:
        subject = record.get("subject") or {}
        pairs.add((subject.get("dataset"), subject.get("model")))
    return pairs


def _match_shards(
    results: Results,
    shards: list[tuple[Shard, list[dict[str, Any]]]],
    current_findings: dict[FailureKey, list[dict[str, str]]] | None,
) -> list[ShardOutcome]:
    """Match the records of ``shards`` against the current rows and return one outcome per shard, in order.

    A failure's diagnosis goes to the outcome of the shard that contains the chosen record.
    """
    outcomes = [ShardOutcome() for _ in shards]
    records = [record for _, shard_records in shards for record in shard_records]
    if not records:
        return outcomes
    owners = [index for index, (_, shard_records) in enumerate(shards) for _ in shard_records]
    failures, correct_outputs = _subject_rows(results, records)

    # failure -> [(findings changed, order, record)]
    by_failure: dict[FailureKey, list[tuple[bool, int, dict[str, Any]]]] = defaultdict(list)
    for order, record in enumerate(records):
        counts = outcomes[owners[order]].counts
        subject = record.get("subject") or {}
        key = (subject.get("dataset"), subject.get("model"), subject.get("instance_id"))
        row = failures.get(key)
        if row is None:
            continue
        schema = SCHEMAS.get(record.get("prompt_version"))
        if schema is None:
            counts["unknown_version"] += 1
            continue
        request = record.get("request") or {}
        peer_model = request.get("peer_model")
        peer_output = None
        if peer_model is not None:
            peer_output = correct_outputs.get((key[0], peer_model, key[2]))
            if peer_output is None:
                counts["peer_gone"] += 1  # the peer's row is gone or no longer correct
                continue
        matches = _match_record(record, results, row, peer_output, schema,
                                None if current_findings is None else current_findings.get(key, []))
        if matches is None:
            counts["content_changed"] += 1
            continue
        by_failure[key].append((matches == "findings changed", order, record))

    for key, candidates in by_failure.items():
        answers = [item for item in candidates if item[2].get("ok")]
        pool = answers or candidates
        changed, order, newest = max(pool, key=lambda item: (not item[0], str(item[2].get("time", "")), item[1]))
        outcome = outcomes[owners[order]]
        try:
            item = judge_diagnosis(newest, failures[key]["output"]) if newest.get("ok") else failure_diagnosis(newest)
        except (KeyError, TypeError, IndexError) as error:
            logger.warning("judge record %s for %s is malformed (%r); skipping it", newest.get("key"), "/".join(key), error)
            continue
        if changed:
            item.details["findings_changed"] = True
            outcome.counts["findings_changed"] += 1
        outcome.diagnoses.append(item)
    for outcome in outcomes:
        outcome.diagnoses = round_trip(outcome.diagnoses)
    return outcomes


def _subject_rows(
    results: Results, records: list[dict[str, Any]]
) -> tuple[dict[FailureKey, dict[str, Any]], dict[FailureKey, str]]:
    """Return the failure rows (with outputs) that ``records`` are about, and the outputs of their correct peer rows.

    Only the rows and outputs that records name are read, because ``results.rows``
    may contain every row of the atlas and no outputs (``load_results(..., outputs="disk")``).
    """
    subjects: set[FailureKey] = set()
    peers: set[FailureKey] = set()
    for record in records:
        subject = record.get("subject") or {}
        key = (subject.get("dataset"), subject.get("model"), subject.get("instance_id"))
        subjects.add(key)
        peer_model = (record.get("request") or {}).get("peer_model")
        if peer_model is not None:
            peers.add((key[0], peer_model, key[2]))

    rows = results.rows
    positions = _positions_of(rows, subjects, correct=False)
    columns = [name for name in rows.columns if name != "output"]
    selected = rows.iloc[list(positions.values())][columns].to_dict("records")
    failures = dict(zip(positions, selected))
    correct_keys = list(_positions_of(rows, peers, correct=True))
    # One call for both, so that a file with subjects and peers is read once.
    outputs = results.outputs_for([*failures, *correct_keys])
    for key, row in failures.items():
        row["output"] = outputs[key]
    return failures, {key: outputs[key] for key in correct_keys}


def _positions_of(rows: pd.DataFrame, keys: set[FailureKey], *, correct: bool) -> dict[FailureKey, int]:
    """Return the position in ``rows`` of each (dataset, model, instance_id) in ``keys`` whose row has this ``correct``."""
    if not keys:
        return {}
    # Narrow to the datasets and models of ``keys`` first, so that the Python loop below runs over few rows.
    candidates = ((rows["correct"] == correct) & rows["dataset"].isin({key[0] for key in keys})
                  & rows["model"].isin({key[1] for key in keys})).to_numpy()
    found: dict[FailureKey, int] = {}
    for position, key in zip(np.flatnonzero(candidates),
                             zip(rows["dataset"][candidates], rows["model"][candidates], rows["instance_id"][candidates])):
        if key in keys:
            found[key] = int(position)
    return found


def _match_record(
    record: Mapping[str, Any],
    results: Results,
    row: Mapping[str, Any],
    peer_output: str | None,
    schema: dict[str, Any],
    current_findings: list[dict[str, str]] | None,
) -> str | None:
    """Tell how a stored record matches the failure today: "same", "findings changed" or None (no match)."""
    judge, version = record["judge"], record["prompt_version"]
    if current_findings is not None:
        messages = build_messages(results, row, peer_output, current_findings, version)
        if request_key(messages, judge, version, schema) == record["key"]:
            return "same"
    stored_core = record.get("core_key")
    if isinstance(stored_core, str):
        matched = core_key(core_content(results, row, peer_output), judge, version, schema) == stored_core
    else:
        stored_findings = (record.get("request") or {}).get("findings") or ()
        messages = build_messages(results, row, peer_output, stored_findings, version)
        matched = request_key(messages, judge, version, schema) == record["key"]
    if not matched:
        return None
    return "same" if current_findings is None else "findings changed"
