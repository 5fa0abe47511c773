"""Cache of check findings per dataset, so a rebuild re-checks only the datasets that changed.

Every check looks at one dataset at a time (the suspect-reference check compares
the models of one dataset), so the findings of a dataset depend only on its
result files, its metadata and the code of the checks. The cache key hashes
those three; adding one model's results re-checks one dataset, not the atlas.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Callable

from atlas_builder.records import Diagnosis, Evidence, Results
from atlas_builder.results.write import atomic_write_bytes

logger = logging.getLogger(__name__)

CACHE_FORMAT = 1
CACHE_DIR_VARIABLE = "ATLAS_CACHE_DIR"  # the same variable as the parsed-result cache; "off" disables both
CHECKS_PACKAGE = Path(__file__).parent / "checks"
PARALLEL_MIN_ROWS = 50_000  # below this, starting worker processes costs more than it saves (an estimate)


def checks_cache_dir() -> Path | None:
    """Return the findings cache folder: ``$ATLAS_CACHE_DIR/checks``, else ``.atlas-cache/checks``; None when off."""
    value = os.environ.get(CACHE_DIR_VARIABLE, "").strip()
    if value.lower() == "off":
        return None
    return (Path(value).resolve() if value else Path.cwd() / ".atlas-cache") / "checks"


def checks_code_version() -> str:
    """Return a hash of the checks' source files, so that any edit of a check invalidates the cache."""
    digest = hashlib.sha256(f"format {CACHE_FORMAT}".encode())
    for path in sorted(CHECKS_PACKAGE.rglob("*.py")):
        digest.update(path.relative_to(CHECKS_PACKAGE).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def dataset_key(results: Results, dataset_id: str, code_version: str) -> str:
    """Return the cache key of one dataset's findings: its files' hashes, its metadata and the checks' code."""
    info = dataclasses.asdict(results.datasets[dataset_id])
    info.pop("path", None)
    files = sorted((item.model, item.sha256) for item in results.files if item.dataset == dataset_id)
    payload = json.dumps([code_version, info, files], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def subset(results: Results, dataset_id: str) -> Results:
    """Return the part of ``results`` that belongs to one dataset."""
    return Results(
        data_dir=results.data_dir,
        datasets={dataset_id: results.datasets[dataset_id]},
        models=results.models,
        files=[item for item in results.files if item.dataset == dataset_id],
        rows=results.rows[results.rows["dataset"] == dataset_id],
    )


def to_json(item: Diagnosis) -> dict[str, Any]:
    record = dataclasses.asdict(item)
    record["details"] = dict(item.details)
    return record


def from_json(record: dict[str, Any]) -> Diagnosis:
    record = dict(record)
    record["evidence"] = tuple(Evidence(**span) for span in record.get("evidence", ()))
    return Diagnosis(**record)


def run_checks_cached(results: Results, run_checks: Callable[[Results], list[Diagnosis]]) -> list[Diagnosis]:
    """Return the findings of ``run_checks`` per dataset, reading unchanged datasets from the cache."""
    cache_dir = checks_cache_dir()
    code_version = checks_code_version()
    found: dict[str, list[Diagnosis]] = {}
    missing: list[str] = []
    keys = {dataset_id: dataset_key(results, dataset_id, code_version) for dataset_id in sorted(results.datasets)}
    for dataset_id, key in keys.items():
        path = cache_dir / f"{dataset_id}.json" if cache_dir else None
        cached = _read(path, key) if path else None
        if cached is None:
            missing.append(dataset_id)
        else:
            found[dataset_id] = cached
    logger.info("checks: %d datasets from the cache, %d to check", len(found), len(missing))

    rows_per_dataset = results.rows["dataset"].value_counts()
    rows = int(sum(rows_per_dataset.get(dataset_id, 0) for dataset_id in missing))
    workers = min(len(missing), os.cpu_count() or 1)
    if workers > 1 and rows >= PARALLEL_MIN_ROWS and "fork" in multiprocessing.get_all_start_methods():
        computed = _run_forked(results, run_checks, missing, workers)
    else:
        computed = {dataset_id: run_checks(subset(results, dataset_id)) for dataset_id in missing}

    for dataset_id, items in computed.items():
        data = _encode(keys[dataset_id], items)
        # Findings go through the same JSON round trip as cached ones (tuples in details become lists),
        # so a cold build and a warm one hand identical records to the later stages and their page hashes.
        found[dataset_id] = [from_json(record) for record in json.loads(data)["findings"]]
        if cache_dir is not None:
            _write(cache_dir / f"{dataset_id}.json", data)
    return [item for dataset_id in sorted(found) for item in found[dataset_id]]


_FORKED: tuple[Results, Callable[[Results], list[Diagnosis]]] | None = None


def _check_forked(dataset_id: str) -> list[Diagnosis]:
    if _FORKED is None:
        raise RuntimeError("_check_forked runs only in workers started by _run_forked")
    results, run_checks = _FORKED
    return run_checks(subset(results, dataset_id))


def _run_forked(results: Results, run_checks: Callable[[Results], list[Diagnosis]], dataset_ids: list[str],
                workers: int) -> dict[str, list[Diagnosis]]:
    """Check datasets in forked workers that share the parent's rows instead of receiving a pickled copy."""
    global _FORKED
    _FORKED = (results, run_checks)
    try:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            return dict(zip(dataset_ids, pool.map(_check_forked, dataset_ids)))
    finally:
        _FORKED = None


def _read(path: Path, key: str) -> list[Diagnosis] | None:
    try:
        obj = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        logger.warning("ignoring unreadable checks cache file %s: %s", path, error)
        return None
    if obj.get("key") != key:
        return None
    return [from_json(record) for record in obj["findings"]]


def _encode(key: str, items: list[Diagnosis]) -> str:
    return json.dumps({"key": key, "findings": [to_json(item) for item in items]}, ensure_ascii=False, default=str)


def _write(path: Path, data: str) -> None:
    try:
        atomic_write_bytes(path, data.encode("utf-8"))
    except OSError as error:
        logger.warning("cannot write checks cache file %s (%s); set ATLAS_CACHE_DIR to a writable folder", path, error)
