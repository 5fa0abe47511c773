"""Data of the failure browser: failure texts in small JSON shards, and per-scope indexes.

Each (dataset, model) pair's failures are cut into shards of ``SHARD_SIZE``
ordered by instance id, written once. A scope (a model, a dataset or a
category) gets a compact columnar index of its failures with their category,
diagnoser and shard position. The browser page loads the index, filters it and
fetches only the shards of the page on screen. Text is
written after the dataset's publishing rule is applied, so hidden text never
reaches the site.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections import defaultdict
from typing import Any, Iterable

import numpy as np

from atlas_builder.analysis import UNCLASSIFIED_LABEL, Analysis
from atlas_builder.records import DatasetInfo, Diagnoses, Diagnosis, Publishing, Results, Taxonomy
from atlas_builder.site.cache import site_code_version
from atlas_builder.site.escape import clean

logger = logging.getLogger(__name__)

SHARD_SIZE = 50
#: Maximum characters of an input or output that the browser shows; the result files keep longer texts whole.
MAX_TEXT_CHARS = 6000
DATA_FOLDER = "failures/data"
SHARD_MANIFEST = f"{DATA_FOLDER}/.shard-hashes.json"
#: Category code in the browser indexes of a failure whose diagnosis has no category yet.
UNCLASSIFIED_CODE = -2


def publish(text: Any, rule: Publishing) -> tuple[str | None, bool]:
    """Apply a publishing rule to one text: return (text or None when hidden, whether it was cut)."""
    if text is None:
        return None, False
    value = clean(text)
    if rule.text == "hidden":
        return None, False
    if rule.text == "excerpt" and len(value) > rule.excerpt_chars:
        return value[: rule.excerpt_chars], True
    if len(value) > MAX_TEXT_CHARS:
        return value[:MAX_TEXT_CHARS], True
    return value, False


def publish_reference(reference: Iterable[str], rule: Publishing) -> list[str] | None:
    """Apply a publishing rule to every reference answer (None when hidden)."""
    if rule.text == "hidden":
        return None
    return [publish(item, rule)[0] or "" for item in reference]


def _evidence(item: Diagnosis, lengths: dict[str, int | None]) -> list[dict[str, Any]]:
    spans = []
    for span in item.evidence:
        limit = lengths.get(span.field)
        if limit is None or span.start >= limit:
            continue
        spans.append({"field": span.field, "start": int(span.start), "end": int(min(span.end, limit))})
    return spans


def _details(item: Diagnosis, rule: Publishing) -> dict[str, Any]:
    """Return the judge details safe to publish: criteria verdicts always, quoted evidence per the rule."""
    details = dict(item.details or {})
    shown: dict[str, Any] = {}
    criteria = details.get("criteria")
    if isinstance(criteria, list):
        shown["criteria"] = [
            {"criterion": clean(entry.get("criterion", ""))[:300], "met": entry.get("met"),
             "evidence": publish(entry.get("evidence"), rule)[0] if entry.get("evidence") else None}
            for entry in criteria if isinstance(entry, dict)
        ]
    for key in ("first_error", "reference_flag"):
        if key in details and details[key] is not None:
            value = details[key]
            shown[key] = publish(value, rule)[0] if isinstance(value, str) else value
    return shown


def failure_record(row: dict, info: DatasetInfo, diagnoses: list[Diagnosis], primary: Diagnosis | None) -> dict:
    """Return the published form of one failure: texts per the dataset's rule, diagnoses, evidence spans."""
    rule = info.publishing
    input_text, input_cut = publish(row["input"], rule)
    output_text, output_cut = publish(row["output"], rule)
    lengths = {"input": len(input_text) if input_text is not None else None,
               "output": len(output_text) if output_text is not None else None,
               "reference": None}
    reference = publish_reference(row["reference"], rule)
    if reference:
        lengths["reference"] = len(reference[0])
    ordered = sorted(diagnoses, key=lambda item: (item is not primary, item.kind, item.diagnoser))
    return {
        "id": row["instance_id"],
        "score": float(row["score"]),
        "input": input_text,
        "output": output_text,
        "reference": reference,
        "cut": bool(input_cut or output_cut),
        "diagnoses": [
            {"diagnoser": clean(item.diagnoser), "kind": item.kind, "title": clean(item.title),
             "summary": clean(item.summary), "category": item.category, "primary": item is primary,
             "evidence": _evidence(item, lengths), "details": _details(item, rule)}
            for item in ordered
        ],
    }


def pair_digest(result_sha256: str | None, info: DatasetInfo, items: list[Diagnosis], primary: dict) -> str:
    """Return the SHA-256 of what one (dataset, model) pair's shards are made of.

    That is the result file's bytes, the dataset's threshold and publishing rule,
    the pair's diagnoses (with which one is primary) and the site code.
    """
    described = [[item.instance_id, item.diagnoser, item.kind, item.title, item.summary, item.category,
                  item.explains_fully, [dataclasses.astuple(span) for span in item.evidence], dict(item.details),
                  primary.get(item.key) is item]
                 for item in sorted(items, key=lambda d: (d.instance_id, d.diagnoser, d.kind, d.title))]
    payload = [site_code_version(), result_sha256, info.threshold, dataclasses.asdict(info.publishing), described]
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def write_browser_data(tree, results: Results, diagnoses: Diagnoses, taxonomy: Taxonomy, analysis: Analysis,
                       *, force: bool = False) -> dict[str, int]:
    """Write the shards, the per-scope indexes and the browser's metadata file; return counts.

    A pair whose digest matches the manifest of the previous render keeps its
    shard files (unless ``force``), so a rebuild rewrites only changed pairs.
    """
    by_key: dict[tuple[str, str, str], list[Diagnosis]] = defaultdict(list)
    by_pair: dict[tuple[str, str], list[Diagnosis]] = defaultdict(list)
    for item in diagnoses.items:
        by_key[item.key].append(item)
        by_pair[(item.dataset, item.model)].append(item)
    file_hashes = {(item.dataset, item.model): item.sha256 for item in results.files}
    try:
        previous = json.loads(tree.path(SHARD_MANIFEST).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        previous = {}
    manifest: dict[str, str] = {}
    reused = 0

    failures = analysis.failures
    # Same keys and order as analysis.failures, so both can be cut by the same positions. Outputs are
    # read per pair below, and only for pairs whose shards are written, because ``rows`` may have none.
    texts_all = (results.failures()[["dataset", "model", "instance_id", "input", "reference", "score"]]
                 .sort_values(["dataset", "model", "instance_id"], kind="stable").reset_index(drop=True))
    # failures is sorted by dataset, model, instance_id: position within its pair gives shard and offset.
    position = failures.groupby(["dataset", "model"], sort=False).cumcount().to_numpy()
    table = failures.assign(shard=position // SHARD_SIZE, offset=position % SHARD_SIZE)

    shards = 0
    # Plain lists: indexing them per pair is far cheaper than DataFrame slices (arrow-backed strings).
    columns = {name: texts_all[name].tolist() for name in texts_all.columns}
    for (dataset, model), positions in sorted(table.groupby(["dataset", "model"], sort=True).indices.items()):
        info = results.datasets[dataset]
        digest = pair_digest(file_hashes.get((dataset, model)), info, by_pair.get((dataset, model), []), diagnoses.primary)
        manifest[f"{dataset}/{model}"] = digest
        names = [f"{DATA_FOLDER}/shards/{dataset}/{model}/{number:04d}.json"
                 for number in range((len(positions) + SHARD_SIZE - 1) // SHARD_SIZE)]
        if not force and previous.get(f"{dataset}/{model}") == digest and all(tree.path(name).exists() for name in names):
            for name in names:
                tree.mark(name)
            shards += len(names)
            reused += len(names)
            continue
        texts = [{name: values[i] for name, values in columns.items()} for i in positions]
        pair_outputs = results.outputs(dataset, model).loc[[text_row["instance_id"] for text_row in texts]].tolist()
        for text_row, output in zip(texts, pair_outputs):
            text_row["output"] = output
        records = [failure_record(text_row, info, by_key.get((dataset, model, text_row["instance_id"]), []),
                                  diagnoses.primary.get((dataset, model, text_row["instance_id"])))
                   for text_row in texts]
        for number in range(0, len(records), SHARD_SIZE):
            payload = json.dumps(records[number: number + SHARD_SIZE], ensure_ascii=False, separators=(",", ":"))
            tree.write(f"{DATA_FOLDER}/shards/{dataset}/{model}/{number // SHARD_SIZE:04d}.json", payload)
            shards += 1

    datasets = sorted(results.datasets)
    models = sorted(results.models)
    categories = list(taxonomy.categories)
    diagnosers = sorted(table["diagnoser"].dropna().unique())
    codes = {
        "d": table["dataset"].map({name: i for i, name in enumerate(datasets)}).to_numpy(),
        "m": table["model"].map({name: i for i, name in enumerate(models)}).to_numpy(),
        # -1: not diagnosed; UNCLASSIFIED_CODE: diagnosed, but the diagnosis has no category yet.
        "c": np.where(table["category"].isna() & table["diagnoser"].notna(), UNCLASSIFIED_CODE,
                      table["category"].map({name: i for i, name in enumerate(categories)}).fillna(-1)).astype(int),
        "g": table["diagnoser"].map({name: i for i, name in enumerate(diagnosers)}).fillna(-1).astype(int).to_numpy(),
    }

    def index_payload(mask) -> str:
        part = table[mask]
        return json.dumps({
            "d": codes["d"][mask].tolist(), "m": codes["m"][mask].tolist(), "i": part["instance_id"].tolist(),
            "c": codes["c"][mask].tolist(), "g": codes["g"][mask].tolist(),
            "s": part["shard"].tolist(), "o": part["offset"].tolist(),
        }, separators=(",", ":"))

    indexes = 0
    for scope, column in (("model", "model"), ("dataset", "dataset")):
        for name, positions in table.groupby(column, sort=True).indices.items():
            mask = np.zeros(len(table), dtype=bool)
            mask[positions] = True
            tree.write(f"{DATA_FOLDER}/index/{scope}/{name}.json", index_payload(mask))
            indexes += 1
    for category_id in categories:
        subtree = descendants(taxonomy, category_id)
        mask = table["category"].isin(subtree).to_numpy()
        tree.write(f"{DATA_FOLDER}/index/category/{category_id}.json", index_payload(mask))
        indexes += 1

    meta = {
        "datasets": [{"id": name, "name": clean(results.datasets[name].name),
                      "publishing": results.datasets[name].publishing.text,
                      "excerpt_chars": results.datasets[name].publishing.excerpt_chars,
                      "reason": clean(results.datasets[name].publishing.reason or ""),
                      "warning": clean(results.datasets[name].publishing.content_warning or "")} for name in datasets],
        "models": [{"id": name, "name": clean(results.models[name].name)} for name in models],
        "categories": [{"id": name, "name": clean(taxonomy.categories[name].name),
                        "within": sorted(descendants(taxonomy, name))} for name in categories],
        "diagnosers": [clean(name) for name in diagnosers],
        "unclassified_code": UNCLASSIFIED_CODE, "unclassified_label": UNCLASSIFIED_LABEL,
        "shard_size": SHARD_SIZE,
    }
    tree.write(f"{DATA_FOLDER}/meta.json", json.dumps(meta, ensure_ascii=False, separators=(",", ":")))
    tree.write(SHARD_MANIFEST, json.dumps(manifest, sort_keys=True, indent=0))
    logger.info("failure browser: %d shards (%d unchanged pairs' shards kept), %d indexes", shards, reused, indexes)
    return {"shards": shards, "indexes": indexes}


def descendants(taxonomy: Taxonomy, category_id: str) -> set[str]:
    """Return ``category_id`` and every category below it."""
    found = {category_id}
    frontier = [category_id]
    while frontier:
        current = frontier.pop()
        for child in taxonomy.children(current):
            if child.id not in found:
                found.add(child.id)
                frontier.append(child.id)
    return found
