"""Cache of check findings per result file, so a rebuild checks only the files that changed.

The row checks look at one row at a time, so the findings of one result file
depend only on the file's bytes, the dataset's task type and threshold and the
code of the checks. Each file's entry also keeps its rows' votes for the
suspect-reference check, which compares the models of a dataset. That check
reruns from the stored votes whenever any file of its dataset changed, and never
reads an output again.

Adding one model's results therefore checks that model's files only, and
editing a dataset's description checks nothing. A dataset none of whose files
changed is read from one entry that holds all its findings, suspect references
included, so a rebuild reads 35 entries rather than one per result file.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import json
import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd

from atlas_builder.diagnose import checks
from atlas_builder.diagnose.checks import FileFindings, Vote
from atlas_builder.diagnose.checks.base import Row
from atlas_builder.logs import progress
from atlas_builder.records import Diagnosis, Evidence, ResultFile, Results, rows_of_file
from atlas_builder.results.write import atomic_write_bytes

logger = logging.getLogger(__name__)

CACHE_FORMAT = 2
CACHE_DIR_VARIABLE = "ATLAS_CACHE_DIR"  # the same variable as the parsed-result cache; "off" disables both
CHECKS_PACKAGE = Path(__file__).parent / "checks"
PARALLEL_MIN_ROWS = 50_000  # below this, starting worker processes costs more than it saves (an estimate)
ROW_COLUMNS = ("instance_id", "input", "reference", "correct", "metadata")


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


def file_key(results: Results, item: ResultFile, code_version: str) -> str:
    """Return the cache key of one result file's findings.

    It covers what the row checks read: the file's bytes, the ids that the findings carry, the
    dataset's task type (which checks apply) and threshold (which rows are failures). A dataset's
    name, description or licence are not in it, so editing them keeps the findings.
    """
    info = results.datasets[item.dataset]
    payload = json.dumps([code_version, item.dataset, item.model, item.sha256, info.task_type, info.threshold])
    return hashlib.sha256(payload.encode()).hexdigest()


def run_checks_cached(results: Results) -> list[Diagnosis]:
    """Return the findings of every check on ``results``, reading unchanged files' findings from the cache.

    The findings come per dataset in sorted order: the row findings of its files in load order, then
    its suspect references.
    """
    cache_dir = checks_cache_dir()
    code_version = checks_code_version()
    keys = {(item.dataset, item.model): file_key(results, item, code_version) for item in results.files}
    files_of: dict[str, list[ResultFile]] = {dataset: [] for dataset in sorted(results.datasets)}
    for item in results.files:
        files_of[item.dataset].append(item)
    dataset_keys = {dataset: _dataset_key(dataset, [keys[(dataset, item.model)] for item in files])
                    for dataset, files in files_of.items()}

    # A dataset none of whose files changed is read whole from one entry: at 29,050 result files,
    # reading one entry per file cost more than the findings themselves.
    complete: dict[str, list[Diagnosis]] = {}
    # Per file: its findings, and its votes as stored [instance_id, model, answer, correct] lists. The votes
    # become Vote records only for a dataset whose suspect references must be computed again.
    found: dict[tuple[str, str], tuple[list[Diagnosis], list[list[Any]]]] = {}
    missing: list[ResultFile] = []
    for dataset, files in files_of.items():
        whole = _read_dataset(_dataset_path(cache_dir, dataset), dataset_keys[dataset]) if cache_dir else None
        if whole is not None:
            complete[dataset] = whole
            continue
        for item in files:
            cached = _read(_file_path(cache_dir, keys[(item.dataset, item.model)])) if cache_dir else None
            if cached is None:
                missing.append(item)
            else:
                found[(item.dataset, item.model)] = cached
    rows = sum(item.rows for item in missing)
    logger.info("checks: %d of %d datasets and %d of %d other result files from the cache, %d to check (%d rows)",
                len(complete), len(files_of), len(found), len(found) + len(missing), len(missing), rows)

    positions = file_positions(results.rows)
    for item, data in _check_files(results, positions, missing, rows):
        # Findings go through the same JSON round trip as cached ones (tuples in details become lists),
        # so a cold build and a warm one hand identical records to the later stages and their page hashes.
        found[(item.dataset, item.model)] = _decode(json.loads(data))
        if cache_dir is not None:
            _write(_file_path(cache_dir, keys[(item.dataset, item.model)]), data)

    findings: list[Diagnosis] = []
    for dataset, files in files_of.items():
        if dataset in complete:
            findings.extend(complete[dataset])
            continue
        dataset_findings = [finding for item in files for finding in found[(item.dataset, item.model)][0]]
        votes = [found[(item.dataset, item.model)][1] for item in files]
        dataset_findings.extend(_suspects(results, dataset, votes, positions))
        if cache_dir is not None:
            data = json.dumps({"key": dataset_keys[dataset], "findings": [to_json(item) for item in dataset_findings]},
                              ensure_ascii=False, default=str)
            _write(_dataset_path(cache_dir, dataset), data)
        findings.extend(dataset_findings)
    return findings


def _dataset_key(dataset: str, file_keys: list[str]) -> str:
    return hashlib.sha256(json.dumps([dataset, file_keys]).encode()).hexdigest()


def file_positions(rows: pd.DataFrame) -> dict[tuple[str, str], np.ndarray]:
    """Map each (dataset, model) pair to the positions of its rows in ``rows``."""
    if rows.empty:
        return {}
    return {key: np.asarray(value) for key, value in rows.groupby(["dataset", "model"], sort=False).indices.items()}


def file_rows(results: Results, item: ResultFile, positions: np.ndarray) -> Iterator[Row]:
    """Yield the check view of one result file's rows, reading its outputs from disk when ``rows`` holds none."""
    part = results.rows.iloc[rows_of_file(positions)]
    if "output" in part.columns:
        outputs = part["output"].tolist()
    else:
        stored = results.outputs(item.dataset, item.model)
        by_id = dict(zip(stored.index, stored.tolist()))
        outputs = [by_id.get(instance_id, "") for instance_id in part["instance_id"]]
    task_type = results.datasets[item.dataset].task_type
    columns = [part[name].tolist() for name in ROW_COLUMNS]
    for (instance_id, text, reference, correct, metadata), output in zip(zip(*columns), outputs):
        yield Row(
            dataset=item.dataset,
            model=item.model,
            instance_id=instance_id,
            input=text if isinstance(text, str) else "",
            output=output if isinstance(output, str) else "",
            reference=tuple(reference) if reference is not None else (),
            correct=bool(correct),
            metadata=metadata if isinstance(metadata, dict) else {},
            task_type=task_type,
        )


def _check_files(results: Results, positions: dict[tuple[str, str], np.ndarray], items: list[ResultFile],
                 rows: int) -> Iterator[tuple[ResultFile, str]]:
    """Check ``items`` and yield each with its findings encoded as JSON, in forked workers for many rows."""
    workers = min(len(items), os.cpu_count() or 1)
    if workers > 1 and rows >= PARALLEL_MIN_ROWS and "fork" in multiprocessing.get_all_start_methods():
        encoded = _run_forked(results, positions, items, workers)
    else:
        encoded = (_check_one(results, positions, item) for item in items)
    yield from zip(items, progress(encoded, total=len(items), desc="checks", unit="file"))


def _check_one(results: Results, positions: dict[tuple[str, str], np.ndarray], item: ResultFile) -> str:
    return _encode(checks.check_file(file_rows(results, item, positions[(item.dataset, item.model)])))


_FORKED: tuple[Results, dict[tuple[str, str], np.ndarray], list[ResultFile]] | None = None


def _check_forked(index: int) -> str:
    if _FORKED is None:
        raise RuntimeError("_check_forked runs only in workers started by _run_forked")
    results, positions, items = _FORKED
    return _check_one(results, positions, items[index])


def _run_forked(results: Results, positions: dict[tuple[str, str], np.ndarray], items: list[ResultFile],
                workers: int) -> Iterator[str]:
    """Check files in forked workers that share the parent's rows instead of receiving a pickled copy."""
    global _FORKED
    _FORKED = (results, positions, items)
    # A garbage collection in a worker would write to every container object it inherited and so copy
    # the parent's pages, one private copy per worker. Frozen objects are skipped by the collector.
    gc.freeze()
    try:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            chunk = max(1, len(items) // (workers * 16))
            yield from pool.map(_check_forked, range(len(items)), chunksize=chunk)
    finally:
        gc.unfreeze()
        _FORKED = None


def _suspects(results: Results, dataset: str, votes: list[list[list[Any]]],
              positions: dict[tuple[str, str], np.ndarray]) -> list[Diagnosis]:
    """Return one dataset's suspect references from its files' stored votes, after the same JSON round trip."""
    first_rows = _first_row_lookup(results, dataset, positions)
    records = [Vote(*vote) for file_votes in votes for vote in file_votes]
    data = json.dumps([to_json(item) for item in checks.dataset_suspects(dataset, records, first_rows)],
                      ensure_ascii=False, default=str)
    return [from_json(record) for record in json.loads(data)]


def _first_row_lookup(results: Results, dataset: str, positions: dict[tuple[str, str], np.ndarray]):
    """Return a function that gives the first row of an instance of ``dataset``, without its output."""
    task_type = results.datasets[dataset].task_type
    rows = results.rows
    first: dict[str, int] = {}
    for item in results.files:
        if item.dataset != dataset:
            continue
        where = positions[(item.dataset, item.model)]
        instance_ids = rows["instance_id"].iloc[rows_of_file(where)].tolist()
        for instance_id, position in zip(instance_ids, where.tolist()):
            first.setdefault(instance_id, position)
    columns = {name: rows.columns.get_loc(name) for name in ("model", "input", "reference", "correct", "metadata")}

    def first_row(instance_id: str) -> Row:
        position = first[instance_id]
        text, reference, metadata = (rows.iat[position, columns[name]] for name in ("input", "reference", "metadata"))
        return Row(dataset=dataset, model=rows.iat[position, columns["model"]], instance_id=instance_id,
                   input=text if isinstance(text, str) else "", output="",
                   reference=tuple(reference) if reference is not None else (),
                   correct=bool(rows.iat[position, columns["correct"]]),
                   metadata=metadata if isinstance(metadata, dict) else {}, task_type=task_type)

    return first_row


def to_json(item: Diagnosis) -> dict[str, Any]:
    record = dataclasses.asdict(item)
    record["details"] = dict(item.details)
    return record


def from_json(record: dict[str, Any]) -> Diagnosis:
    record = dict(record)
    record["evidence"] = tuple(Evidence(**span) for span in record.get("evidence", ()))
    return Diagnosis(**record)


def _file_path(cache_dir: Path, key: str) -> Path:
    return cache_dir / "files" / key[:2] / f"{key}.json"


def _encode(result: FileFindings) -> str:
    votes = [[vote.instance_id, vote.model, vote.answer, vote.correct] for vote in result.votes]
    return json.dumps({"findings": [to_json(item) for item in result.findings], "votes": votes},
                      ensure_ascii=False, default=str)


def _decode(obj: dict[str, Any]) -> tuple[list[Diagnosis], list[list[Any]]]:
    votes = obj["votes"]
    if not isinstance(votes, list) or not all(isinstance(vote, list) and len(vote) == 4 for vote in votes):
        raise ValueError("votes are not [instance_id, model, answer, correct] lists")
    return [from_json(record) for record in obj["findings"]], votes


def _read(path: Path) -> tuple[list[Diagnosis], list[list[Any]]] | None:
    # The key is the file name, so an entry that exists belongs to the file's current content.
    try:
        return _decode(json.loads(path.read_bytes()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as error:
        logger.warning("ignoring unreadable checks cache file %s (%s); it will be rewritten", path, error)
        return None


def _dataset_path(cache_dir: Path, dataset: str) -> Path:
    return cache_dir / "datasets" / f"{dataset}.json"


def _read_dataset(path: Path, key: str) -> list[Diagnosis] | None:
    try:
        obj = json.loads(path.read_bytes())
        if obj.get("key") != key:
            return None
        return [from_json(record) for record in obj["findings"]]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        logger.warning("ignoring unreadable checks cache file %s (%s); it will be rewritten", path, error)
        return None


def _write(path: Path, data: str) -> None:
    try:
        atomic_write_bytes(path, data.encode("utf-8"))
    except OSError as error:
        logger.warning("cannot write checks cache file %s (%s); set ATLAS_CACHE_DIR to a writable folder", path, error)
