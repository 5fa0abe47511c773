"""Read ``data/``: dataset and model metadata, then every result file, into a ``Results`` record."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any, Iterable, Literal

import numpy as np
import pandas as pd
import yaml

from atlas_builder.ids import slug_problem
from atlas_builder.logs import progress
from atlas_builder.records import (
    RESULT_COLUMNS,
    DatasetInfo,
    ModelInfo,
    Problem,
    Publishing,
    ResultFile,
    Results,
    Source,
)
from atlas_builder.results import schema
from atlas_builder.results.cache import Pack, ResultCache, cache_key, file_digest, pack_key, read_result_frame
from atlas_builder.results.outputs import ResultOutputReader

logger = logging.getLogger(__name__)


class InvalidResultsError(Exception):
    """Raised when ``data/`` has problems; ``problems`` lists every one found."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        shown = "\n".join(str(problem) for problem in problems[:20])
        more = f"\n... and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__(f"{len(problems)} problem(s) in the result data:\n{shown}{more}")


def messages_to_text(messages: list[dict[str, str]]) -> str:
    """Join chat messages into one readable prompt text."""
    return "\n\n".join(f"{message['role']}: {message['content']}" for message in messages)


def read_yaml(path: Path) -> tuple[Any, list[Problem]]:
    """Load one YAML file safely; a syntax error becomes a problem with its line."""
    try:
        with path.open("r", encoding="utf-8") as handle:
            return yaml.safe_load(handle), []
    except UnicodeDecodeError as error:
        return None, [Problem(str(path), None, f"invalid UTF-8 at byte {error.start}", "re-encode the file as UTF-8")]
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        return None, [Problem(str(path), line, f"invalid YAML: {getattr(error, 'problem', error)}", "fix the YAML syntax")]


def _source(obj: dict[str, Any]) -> Source:
    return Source(**{key: obj.get(key) for key in schema.SOURCE_KEYS})


def dataset_from_yaml(obj: dict[str, Any], path: Path) -> DatasetInfo:
    """Build a ``DatasetInfo`` from a validated YAML mapping."""
    publishing = obj.get("publishing") or {}
    return DatasetInfo(
        id=obj["id"],
        name=obj["name"],
        description=obj["description"],
        task_type=obj["task_type"],
        metric=obj["metric"],
        threshold=float(obj["threshold"]),
        source=_source(obj["source"]),
        license=obj["license"],
        aliases=tuple(obj.get("aliases") or ()),
        publishing=Publishing(
            text=publishing.get("text", "full"),
            excerpt_chars=publishing.get("excerpt_chars", 300),
            content_warning=publishing.get("content_warning"),
            reason=publishing.get("reason"),
        ),
        subset=obj.get("subset"),
        citation=obj.get("citation"),
        path=path,
    )


def model_from_yaml(obj: dict[str, Any], path: Path) -> ModelInfo:
    """Build a ``ModelInfo`` from a validated YAML mapping."""
    return ModelInfo(
        id=obj["id"],
        name=obj["name"],
        organization=obj.get("organization"),
        family=obj.get("family"),
        parameters=obj.get("parameters"),
        aliases=tuple(obj.get("aliases") or ()),
        sources=tuple(_source(source) for source in obj.get("sources") or ()),
        license=obj.get("license"),
        description=obj.get("description"),
        path=path,
    )


def load_metadata(data_dir: Path) -> tuple[dict[str, DatasetInfo], dict[str, ModelInfo], list[Problem]]:
    """Read every dataset and model YAML file under ``data_dir``."""
    datasets: dict[str, DatasetInfo] = {}
    models: dict[str, ModelInfo] = {}
    problems: list[Problem] = []
    for path in sorted((data_dir / "datasets").glob("*.yaml")):
        obj, found = read_yaml(path)
        found = found or schema.check_dataset_metadata(obj, str(path), path.stem)
        problems.extend(found)
        if not found:
            datasets[path.stem] = dataset_from_yaml(obj, path)
    for path in sorted((data_dir / "models").glob("*.yaml")):
        obj, found = read_yaml(path)
        found = found or schema.check_model_metadata(obj, str(path), path.stem)
        problems.extend(found)
        if not found:
            models[path.stem] = model_from_yaml(obj, path)
    problems.extend(_alias_clashes(models.values(), "model"))
    problems.extend(_alias_clashes(datasets.values(), "dataset"))
    return datasets, models, problems


def _alias_clashes(items: Iterable[DatasetInfo | ModelInfo], kind: str) -> list[Problem]:
    owner: dict[str, str] = {}
    problems = []
    for item in items:
        for name in (item.id, *item.aliases):
            folded = name.lower()
            if folded in owner and owner[folded] != item.id:
                problems.append(Problem(str(item.path), None, f"{kind} alias {name!r} is also used by {owner[folded]!r}",
                                        "one source name must map to one canonical id; remove one of them"))
            owner.setdefault(folded, item.id)
    return problems


def read_result_file(
    path: Path, dataset: DatasetInfo | None, *, score_range: tuple[float, float] | None = None
) -> tuple[list[dict[str, Any]], list[Problem], str]:
    """Read one result file; return its rows as result-column dicts, its problems and its sha256.

    ``score_range`` is the dataset's declared ``[lowest, highest]`` score, checked when given.
    """
    data = path.read_bytes()
    rows, problems = parse_result_data(data, str(path), dataset, score_range=score_range)
    return rows, problems, hashlib.sha256(data).hexdigest()


def parse_result_data(
    data: bytes, name: str, dataset: DatasetInfo | None, *, score_range: tuple[float, float] | None = None
) -> tuple[list[dict[str, Any]], list[Problem]]:
    """Parse the bytes of one result file; return its valid rows and its problems, which name the file ``name``."""
    if len(data) > schema.MAX_FILE_BYTES:
        return [], [Problem(name, None, f"file is {len(data):,} bytes, over the limit of {schema.MAX_FILE_BYTES:,}",
                            "split the results or commit a documented subset")]
    rows: list[dict[str, Any]] = []
    problems: list[Problem] = []
    first_line_of: dict[str, int] = {}
    crlf_reported = False
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if raw.endswith(b"\r") and not crlf_reported:
            crlf_reported = True
            problems.append(Problem(name, number, "line ends with CRLF (Windows line ending)",
                                    "save the file with LF line endings; the atlas writes and diffs LF only"))
        if not raw.strip():
            continue
        obj, found = schema.parse_result_line(raw, name, number)
        if obj is not None and not found:
            found = schema.check_score_range(obj, name, number, score_range)
        problems.extend(found)
        if obj is None or found:
            continue
        instance_id = obj["id"]
        if instance_id in first_line_of:
            problems.append(Problem(name, number, f"duplicate id {instance_id!r}, first seen on line {first_line_of[instance_id]}",
                                    "give every instance a unique id, or remove the repeated line"))
            continue
        first_line_of[instance_id] = number
        rows.append(_row(obj, number, dataset))
    if not rows and not problems:
        problems.append(Problem(name, 1, "file has no result lines", "write one JSON object per instance, or delete the file"))
    return rows, problems


def _row(obj: dict[str, Any], line: int, dataset: DatasetInfo | None) -> dict[str, Any]:
    raw_input = obj["input"]
    messages = raw_input if isinstance(raw_input, list) else None
    reference = obj.get("reference", ())
    reference = (reference,) if isinstance(reference, str) else tuple(reference)
    score = float(obj["score"])
    if "correct" in obj:
        correct = obj["correct"]
    else:
        correct = dataset is not None and score >= dataset.threshold
    return {
        "instance_id": obj["id"],
        "input": messages_to_text(messages) if messages is not None else raw_input,
        "messages": messages,
        "output": obj["output"],
        "score": score,
        "reference": reference,
        "correct": bool(correct),
        "metadata": obj.get("metadata") or {},
        "line": line,
    }


def result_paths(data_dir: Path) -> list[Path]:
    """Return every ``results/<dataset>/<model>.jsonl`` under ``data_dir``, sorted."""
    return sorted((data_dir / "results").glob("*/*.jsonl"))


#: Environment variable that sets the folder of the parsed-result cache; "off" disables the cache.
CACHE_DIR_VARIABLE = "ATLAS_CACHE_DIR"
DEFAULT_CACHE_DIR = Path(".atlas-cache") / "results"


def result_cache_dir() -> Path | None:
    """Return the folder of the parsed-result cache: ``$ATLAS_CACHE_DIR``, else ``.atlas-cache/results`` here.

    Returns None when ``ATLAS_CACHE_DIR`` is ``off``. A relative default is resolved
    against the current directory when this is called.
    """
    value = os.environ.get(CACHE_DIR_VARIABLE, "").strip()
    if value.lower() == "off":
        return None
    return Path(value).resolve() if value else (Path.cwd() / DEFAULT_CACHE_DIR)


def load_results(data_dir: Path, *, strict: bool = True, use_cache: bool = True,
                 outputs: Literal["memory", "disk"] = "memory") -> Results:
    """Read and validate everything under ``data_dir``.

    With ``strict`` any problem raises ``InvalidResultsError``; otherwise the
    problems are logged and the bad files or lines are left out.

    With ``use_cache`` (and ``ATLAS_CACHE_DIR`` not ``off``) every valid result
    file is kept as parquet in ``result_cache_dir()``, keyed by its sha256, so the
    next load reads unchanged files without parsing or validating them again.
    Either way equal prompts, message lists and references share one object
    across rows, because every model of a dataset repeats the same prompts.

    With ``outputs="disk"`` the returned ``rows`` has no ``output`` column, and
    ``Results.outputs`` reads one result file's outputs at a time through a
    ``ResultOutputReader``: from the cache entry, else by parsing the file again.
    """
    if outputs not in ("memory", "disk"):
        raise ValueError(f"invalid outputs mode {outputs!r}; use 'memory' or 'disk'")
    with_output = outputs == "memory"
    data_dir = Path(data_dir)
    datasets, models, problems = load_metadata(data_dir)
    files: list[ResultFile] = []
    frames: list[pd.DataFrame] = []
    paths = result_paths(data_dir)
    directory = result_cache_dir() if use_cache else None
    # NOTE: nothing prunes the entries of changed or removed files, because one cache folder may
    # serve several data folders. Deleting the folder reclaims the space.
    result_cache = ResultCache(directory)
    logger.info("reading %d result files from %s (cache: %s)", len(paths), data_dir / "results", directory or "off")
    ranges = score_ranges(data_dir)
    by_dataset: dict[str, list[Path]] = {}
    for path in paths:
        by_dataset.setdefault(path.parent.name, []).append(path)
    packs = partial_packs = 0
    for dataset_id, dataset_paths in progress(by_dataset.items(), total=len(by_dataset), desc="reading results",
                                              unit="dataset"):
        named: list[tuple[Path, str]] = []
        for path in dataset_paths:
            found = _file_name_problems(path, dataset_id, path.stem, datasets, models)
            if found:
                problems.extend(found)
            else:
                named.append((path, path.stem))
        if not named:
            continue
        info, score_range = datasets[dataset_id], ranges.get(dataset_id)
        # Packs leave the outputs out, so only a load that keeps outputs on disk reads them.
        use_pack = not with_output and result_cache.directory is not None
        digests = [file_digest(path) for path, _ in named] if use_pack else [None] * len(named)
        entries = [(model_id, cache_key(digest, info.threshold, score_range))
                   for (_, model_id), digest in zip(named, digests)] if use_pack else []
        key = pack_key(dataset_id, entries) if use_pack else ""
        pack = result_cache.load_pack(key) if use_pack else None
        if pack is not None and len(pack.counts) == len(named):
            packs += 1
            result_cache.hits += len(named)
            for (path, model_id), digest, count, (_, entry_key) in zip(named, digests, pack.counts, entries):
                result_cache.used.add(entry_key)
                files.append(ResultFile(dataset_id, model_id, path, digest, count))
            frames.append(pack.frame)  # _concat takes each file's row count from ``files``
            continue

        # Files that did not change since the dataset's latest pack come from that pack, as runs of rows.
        earlier = result_cache.latest_pack(dataset_id) if use_pack else None
        in_earlier = _pack_slices(earlier) if earlier is not None else {}
        parts: list[pd.DataFrame | tuple[int, int]] = []  # a frame read singly, or a span of the earlier pack
        counts: list[int] = []
        complete = True
        read_singly = reused_rows = 0
        for (path, model_id), digest, entry in zip(named, digests, entries or [None] * len(named)):
            span = in_earlier.get(entry) if entry is not None else None
            if span is not None:
                start, end = span
                result_cache.hits += 1
                result_cache.used.add(entry[1])
                reused_rows += end - start
                parts.append(span)
                counts.append(end - start)
                files.append(ResultFile(dataset_id, model_id, path, digest, end - start))
            else:
                frame, found, digest = read_result_frame(path, info, result_cache, score_range=score_range,
                                                         with_output=with_output, digest=digest)
                problems.extend(found)
                complete = complete and not found and frame is not None
                read_singly += 1
                if frame is None:
                    continue
                parts.append(frame)
                counts.append(len(frame))
                files.append(ResultFile(dataset_id, model_id, path, digest, len(frame)))
        if reused_rows:
            partial_packs += 1
        dataset_frames = _join_runs(parts, earlier.frame if earlier is not None else None)
        frames.extend(dataset_frames)
        # A new pack costs a write of the whole dataset, so one or a few new files (a new model) are
        # read singly from then on, until they pass a tenth of the dataset's files or rows.
        stale = earlier is None or read_singly > len(named) // 10 or reused_rows < 0.9 * len(earlier.frame)
        if use_pack and complete and stale:
            result_cache.store_pack(key, dataset_id, dataset_frames, entries, counts)
    if problems:
        if strict:
            raise InvalidResultsError(problems)
        for problem in problems:
            logger.warning("%s", problem)
    logger.info("result cache: %d files read from the cache (%d datasets as one pack each, %d partly from an "
                "earlier pack), %d parsed", result_cache.hits, packs, partial_packs, result_cache.misses)
    columns = [name for name in RESULT_COLUMNS if with_output or name != "output"]
    rows_frame = _concat(frames, files, columns)
    logger.info("read %d instances: %d datasets, %d models (outputs in %s)", len(rows_frame), len(datasets),
                len(models), outputs)
    reader = None if with_output else ResultOutputReader(directory, datasets, ranges)
    return Results(data_dir=data_dir, datasets=datasets, models=models, files=files, rows=rows_frame,
                   output_reader=reader)


def _pack_slices(pack: Pack) -> dict[tuple[str, str], tuple[int, int]]:
    """Map each (model, entry key) of ``pack`` to the (start, end) positions of its rows in the pack's frame."""
    if pack.entries is None:
        return {}
    ends = np.cumsum(pack.counts).tolist()
    return {tuple(entry): (end - count, end) for entry, count, end in zip(pack.entries, pack.counts, ends)}


def _join_runs(parts: list[pd.DataFrame | tuple[int, int]], pack_frame: pd.DataFrame | None) -> list[pd.DataFrame]:
    """Turn ``parts`` into frames, with one slice of ``pack_frame`` per run of adjacent spans.

    The final concat then joins a few frames per dataset rather than one per file.
    """
    joined: list[pd.DataFrame] = []
    run: tuple[int, int] | None = None
    for part in parts:
        if isinstance(part, tuple) and run is not None and run[1] == part[0]:
            run = (run[0], part[1])
            continue
        if run is not None:
            joined.append(pack_frame.iloc[run[0]:run[1]])
            run = None
        if isinstance(part, tuple):
            run = part
        else:
            joined.append(part)
    if run is not None:
        joined.append(pack_frame.iloc[run[0]:run[1]])
    return joined


def _concat(frames: list[pd.DataFrame], files: list[ResultFile], columns: list[str]) -> pd.DataFrame:
    """Join the per-file frames and add the ``dataset`` and ``model`` columns in one step each."""
    if not frames:
        return pd.DataFrame(columns=columns)
    rows = pd.concat(frames, ignore_index=True)
    # A frame may hold several files (a pack), so the counts come from the files, in the same order.
    counts = [file.rows for file in files]
    rows.insert(0, "model", np.repeat(np.array([file.model for file in files], dtype=object), counts))
    rows.insert(0, "dataset", np.repeat(np.array([file.dataset for file in files], dtype=object), counts))
    return rows[columns]


def _file_name_problems(path: Path, dataset_id: str, model_id: str, datasets: dict, models: dict) -> list[Problem]:
    problems = []
    for kind, value in (("dataset", dataset_id), ("model", model_id)):
        reason = slug_problem(value)
        if reason is not None:
            problems.append(Problem(str(path), None, f"invalid {kind} id {value!r} in the path: {reason}", f"rename the {kind} to a lowercase slug"))
    if problems:
        return problems
    root = path.parent.parent.parent
    for kind, value, known in (("dataset", dataset_id, datasets), ("model", model_id, models)):
        if value in known:
            continue
        metadata = root / f"{kind}s" / f"{value}.yaml"
        if metadata.exists():
            problems.append(Problem(str(path), None, f"{kind} {value!r} has invalid metadata in {metadata}",
                                    "fix the problems reported for that file"))
        else:
            problems.append(Problem(str(path), None, f"{kind} {value!r} has no metadata", f"add {metadata}"))
    return problems


def score_ranges(data_dir: Path) -> dict[str, tuple[float, float]]:
    """Return the declared ``score_range`` of every dataset under ``data_dir`` that has a valid one."""
    ranges = {}
    for path in sorted((Path(data_dir) / "datasets").glob("*.yaml")):
        obj, found = read_yaml(path)
        declared = None if found else schema.declared_score_range(obj)
        if declared is not None:
            ranges[path.stem] = declared
    return ranges


#: The folders of ``data/`` that ``validate_paths`` owns; other folders belong to other stages.
CHECKED_FOLDERS = ("results", "datasets", "models")
WRONG_PLACE_FIX = ("result files go in data/results/<dataset>/<model>.jsonl and metadata in "
                   "data/datasets/<id>.yaml or data/models/<id>.yaml")
MAX_YAML_BYTES = 1_000_000


def validate_paths(paths: Iterable[Path], data_dir: Path | None = None) -> list[Problem]:
    """Validate result and metadata files without loading them into a ``Results``.

    Metadata is read from ``data_dir`` (or the ``data/`` folder that contains
    each file) so that thresholds, score ranges and ids can be checked. A
    directory is walked: for a data root only its results/, datasets/ and
    models/ folders. Every file found, and every file named explicitly, must be
    a result file or a metadata file in its expected place; anything else is a
    problem, so a stray file cannot slip through unchecked. Nothing is written.
    """
    problems: list[Problem] = []
    roots: dict[Path | None, tuple[dict, dict, dict]] = {}
    for path in _expand(paths, problems):
        root = Path(data_dir) if data_dir is not None else _data_root(path)
        if root not in roots:
            datasets, models, _ = load_metadata(root) if root else ({}, {}, [])
            roots[root] = (datasets, models, score_ranges(root) if root else {})
        problems.extend(_validate_file(path, *roots[root]))
    return problems


def _expand(paths: Iterable[Path], problems: list[Problem]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            if any((path / folder).is_dir() for folder in CHECKED_FOLDERS):
                children = [child for folder in CHECKED_FOLDERS for child in sorted((path / folder).rglob("*"))]
            elif path.name in CHECKED_FOLDERS or path.parent.name == "results":
                children = sorted(path.rglob("*"))
            else:
                children = sorted(child for child in path.rglob("*") if child.suffix in (".jsonl", ".yaml", ".yml"))
            files.extend(child for child in children if child.is_file())
        elif not path.exists():
            problems.append(Problem(str(path), None, "file not found", "check the path"))
        else:
            files.append(path)
    return files


def file_kind(path: Path) -> str | None:
    """Return "result", "dataset" or "model" for a path in its expected place, else None."""
    if path.suffix == ".jsonl" and path.parent.parent.name == "results":
        return "result"
    if path.suffix == ".yaml" and path.parent.name == "datasets":
        return "dataset"
    if path.suffix == ".yaml" and path.parent.name == "models":
        return "model"
    return None


def _validate_file(path: Path, datasets: dict, models: dict, ranges: dict) -> list[Problem]:
    kind = file_kind(path)
    if kind is None:
        return [Problem(str(path), None, "not a result file or a metadata file in its expected place", WRONG_PLACE_FIX)]
    if kind == "result":
        found = _file_name_problems(path, path.parent.name, path.stem, datasets, models)
        _, more, _ = read_result_file(path, datasets.get(path.parent.name), score_range=ranges.get(path.parent.name))
        return found + more
    size = path.stat().st_size
    if size > MAX_YAML_BYTES:
        return [Problem(str(path), None, f"metadata file is {size:,} bytes, over the limit of {MAX_YAML_BYTES:,}",
                        "keep metadata to a short description; link long documents")]
    obj, found = read_yaml(path)
    if found:
        return found
    reason = slug_problem(path.stem)
    if reason is not None:
        return [Problem(str(path), None, f"invalid {kind} id {path.stem!r} in the file name: {reason}",
                        "rename the file to a lowercase slug")]
    check = schema.check_dataset_metadata if kind == "dataset" else schema.check_model_metadata
    return check(obj, str(path), path.stem)


def _data_root(path: Path) -> Path | None:
    for parent in path.resolve().parents:
        if any((parent / folder).is_dir() for folder in CHECKED_FOLDERS):
            return parent
    return None
