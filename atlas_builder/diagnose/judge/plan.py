"""Choose which failures the judge diagnoses and build each one's request.

Selection, in order:

1. failures (rows with ``correct`` False), optionally only some datasets or models;
2. a reproducible sample per model × dataset: with ratio R, the
   ``ceil(R × n)`` failures whose ``stable_hash(seed, dataset, instance_id)``
   is smallest. The hash does not depend on the model, so models that failed
   the same instance tend to be sampled on it together, and a larger R keeps
   every instance that a smaller R chose for the same failures;
3. sampled failures that a deterministic check explains fully are skipped
   unless ``include_explained``; partial check findings go into the prompt.

The correct answer from another model (the "peer") is the output of the
model, among those whose row on the same (dataset, instance_id) is correct,
with the smallest ``stable_hash(seed, "peer", dataset, instance_id, model)``.

Each request has two store keys: the exact key of its messages, and a core key
(``store.core_key``) of ``core_content``: everything the prompt shows except
the check findings. An answer found under the core key only was made when the
checks reported other findings; ``run.pending_requests`` does not send such a
request again unless asked.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from atlas_builder.diagnose.judge.prompts import DIAGNOSE_PROMPT_VERSION, DIAGNOSE_SCHEMA, diagnosis_messages
from atlas_builder.diagnose.judge.store import core_key, request_key
from atlas_builder.records import Diagnosis, FailureKey, Results

PURPOSE = "diagnose"


def stable_hash(seed: int | str, *parts: str) -> int:
    """Return a 64-bit hash of ``seed`` and ``parts`` that is the same in every process and Python version."""
    text = "\x1f".join([str(seed), *parts])
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


@dataclass(frozen=True)
class DiagnosisOptions:
    """Which failures to send and what the judge sees."""

    sample_ratio: float = 1.0  # fraction of failures per model × dataset, in (0, 1]
    seed: int = 42
    peer_answer: bool = True  # include a correct output from another model when one exists
    include_explained: bool = False  # also send failures a check explains fully
    datasets: tuple[str, ...] = ()  # only these datasets (all when empty)
    models: tuple[str, ...] = ()  # only these models (all when empty)
    prompt_version: str = DIAGNOSE_PROMPT_VERSION

    def __post_init__(self) -> None:
        if not 0 < self.sample_ratio <= 1:
            raise ValueError(f"sample_ratio must be in (0, 1], got {self.sample_ratio}")


@dataclass(frozen=True)
class DiagnosisRequest:
    """The request for one failure: whom it is about and the rendered messages."""

    dataset: str
    model: str
    instance_id: str
    messages: list[dict[str, str]]
    peer_model: str | None
    findings: tuple[Mapping[str, str], ...] = ()
    prompt_version: str = DIAGNOSE_PROMPT_VERSION
    core_content: Mapping[str, Any] = field(default_factory=dict)  # see ``core_content``

    @property
    def subject(self) -> dict[str, str]:
        return {"dataset": self.dataset, "model": self.model, "instance_id": self.instance_id}

    def key(self, judge: str) -> str:
        """Return the exact store key of this request to ``judge``."""
        return request_key(self.messages, judge, self.prompt_version, DIAGNOSE_SCHEMA)

    def core_key(self, judge: str) -> str:
        """Return the store key of this request to ``judge`` without the check findings."""
        return core_key(self.core_content, judge, self.prompt_version, DIAGNOSE_SCHEMA)

    @property
    def request_info(self) -> dict[str, Any]:
        """What ``stored_diagnoses`` needs, besides the result rows, to rebuild the messages."""
        return {"peer_model": self.peer_model, "findings": [dict(item) for item in self.findings]}


@dataclass
class Plan:
    """The requests to send, with the counts that explain how they were chosen."""

    requests: list[DiagnosisRequest]
    failures: int  # failures after the dataset and model filters
    sampled: int  # failures left after sampling
    explained: int  # sampled failures skipped because a check explains them fully
    without_peer: int = 0  # requests with no correct answer from another model
    per_pair: dict[tuple[str, str], int] = field(default_factory=dict)  # (dataset, model) -> requests


def finding_text(item: Diagnosis) -> dict[str, str]:
    """Return the part of a check finding that the prompt shows."""
    return {"title": item.title, "summary": item.summary}


def split_findings(check_findings: Iterable[Diagnosis]) -> tuple[set[FailureKey], dict[FailureKey, list[dict[str, str]]]]:
    """Return the failures a check explains fully, and the prompt text of the other check findings per failure."""
    full: set[FailureKey] = set()
    partial: dict[FailureKey, list[dict[str, str]]] = defaultdict(list)
    for item in check_findings:
        if item.kind != "check":
            continue
        if item.explains_fully:
            full.add(item.key)
        else:
            partial[item.key].append(finding_text(item))
    return full, dict(partial)


def peer_outputs(results: Results) -> dict[tuple[str, str], dict[str, str]]:
    """Map (dataset, instance_id) to {model: output} over the correct rows."""
    rows = results.rows
    correct = rows[rows["correct"]]
    table: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
    for dataset, model, instance_id, output in zip(
        correct["dataset"], correct["model"], correct["instance_id"], correct["output"]
    ):
        table[(dataset, instance_id)][model] = output
    return table


def choose_peer(candidates: Mapping[str, str], seed: int, dataset: str, instance_id: str) -> str | None:
    """Return the peer model for one instance (see the module docstring), or None without candidates."""
    if not candidates:
        return None
    return min(candidates, key=lambda model: (stable_hash(seed, "peer", dataset, instance_id, model), model))


def sample_failures(keys: Iterable[FailureKey], ratio: float, seed: int) -> list[FailureKey]:
    """Return the reproducible per model × dataset sample of ``keys`` (see the module docstring)."""
    groups: dict[tuple[str, str], list[FailureKey]] = defaultdict(list)
    for key in keys:
        groups[(key[0], key[1])].append(key)
    chosen: list[FailureKey] = []
    for pair in sorted(groups):
        members = groups[pair]
        if ratio >= 1:
            chosen.extend(sorted(members))
            continue
        # Rounded first, so that 0.07 x 100 (7.000000000000001 in floating point) samples 7, not 8.
        count = math.ceil(round(ratio * len(members), 9))
        ranked = sorted(members, key=lambda key: (stable_hash(seed, key[0], key[2]), key[2]))
        chosen.extend(sorted(ranked[:count]))
    return chosen


def core_content(results: Results, row: Mapping[str, Any], peer_output: str | None) -> dict[str, Any]:
    """Return what the diagnosis prompt shows about one failure, except the check findings."""
    info = results.datasets.get(row["dataset"])
    return {
        "task_type": info.task_type if info else "unknown",
        "dataset_name": info.name if info else row["dataset"],
        "input": row["input"],
        "reference": [str(item) for item in row["reference"] or ()],
        "output": row["output"],
        "peer_output": peer_output,
    }


def build_messages(
    results: Results,
    row: Mapping[str, Any],
    peer_output: str | None,
    findings: Iterable[Mapping[str, str]],
    prompt_version: str,
) -> list[dict[str, str]]:
    """Render the request messages for one failure row."""
    content = core_content(results, row, peer_output)
    return diagnosis_messages(
        task_type=content["task_type"],
        dataset_name=content["dataset_name"],
        input_text=content["input"],
        reference=content["reference"],
        output=content["output"],
        peer_output=peer_output,
        findings=findings,
        prompt_version=prompt_version,
    )


def plan_diagnoses(results: Results, options: DiagnosisOptions, check_findings: Iterable[Diagnosis] = ()) -> Plan:
    """Choose the failures to diagnose and render their requests (no judge call)."""
    failures = results.failures()
    if options.datasets:
        failures = failures[failures["dataset"].isin(options.datasets)]
    if options.models:
        failures = failures[failures["model"].isin(options.models)]
    rows = {
        (row["dataset"], row["model"], row["instance_id"]): row
        for row in failures.to_dict("records")
    }
    sampled = sample_failures(rows, options.sample_ratio, options.seed)

    full, partial = split_findings(check_findings)

    peers = peer_outputs(results) if options.peer_answer else {}
    requests: list[DiagnosisRequest] = []
    explained = without_peer = 0
    per_pair: dict[tuple[str, str], int] = defaultdict(int)
    for key in sampled:
        if key in full and not options.include_explained:
            explained += 1
            continue
        row = rows[key]
        candidates = peers.get((key[0], key[2]), {})
        peer_model = choose_peer(candidates, options.seed, key[0], key[2]) if options.peer_answer else None
        if peer_model is None:
            without_peer += 1
        findings = tuple(partial.get(key, ()))
        peer_output = candidates.get(peer_model) if peer_model else None
        messages = build_messages(results, row, peer_output, findings, options.prompt_version)
        requests.append(DiagnosisRequest(key[0], key[1], key[2], messages, peer_model, findings, options.prompt_version,
                                         core_content(results, row, peer_output)))
        per_pair[(key[0], key[1])] += 1
    return Plan(requests, failures=len(rows), sampled=len(sampled), explained=explained,
                without_peer=without_peer, per_pair=dict(per_pair))
