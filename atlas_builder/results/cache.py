"""Parquet cache of parsed result files, so a rebuild skips parsing and validating files that did not change.

A cache entry is the per-file frame that ``read_result_file`` rows turn into
(columns ``FRAME_COLUMNS``). Its key hashes the file's sha256, the dataset's
threshold (which decides ``correct`` when a line has no ``correct`` field), the
dataset's declared score range (which decides validity) and ``CACHE_FORMAT``. Only files without validation problems are stored, so a hit
means the file is valid.

``load_results`` reads every result file through ``read_result_frame``, with a
cache folder from ``ATLAS_CACHE_DIR`` (default ``.atlas-cache/results`` in the
current directory).

``read_result_frame`` also makes equal prompts share one string object (and
equal chat-message lists one list, equal reference tuples one tuple) across all
files read through the same ``ResultCache``, in columns of dtype object. Every
model of a dataset sees the same prompts, so at 83 models this keeps one copy
of each prompt instead of 83.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from atlas_builder.records import DatasetInfo, Problem
from atlas_builder.results.write import atomic_write_bytes

logger = logging.getLogger(__name__)

#: Change this when the loader's row semantics or the stored column encoding change; old entries are then ignored.
CACHE_FORMAT = "1"

#: Columns of a per-file frame, before the loader adds ``dataset`` and ``model``.
FRAME_COLUMNS = ("instance_id", "input", "messages", "output", "score", "reference", "correct", "metadata", "line")

SCHEMA = pa.schema([
    ("instance_id", pa.string()),
    ("input", pa.string()),
    ("messages", pa.string()),  # the messages as JSON text, or null
    ("output", pa.string()),
    ("score", pa.float64()),
    ("reference", pa.list_(pa.string())),
    ("correct", pa.bool_()),
    ("metadata", pa.string()),  # the metadata object as JSON text
    ("line", pa.int64()),
])


#: A pack: the rows of all files of one dataset, without outputs. Its metadata lists the row count per file.
PACK_SCHEMA = pa.schema([column for column in SCHEMA if column.name != "output"])
PACK_COUNTS = b"atlas_file_rows"
PACK_ENTRIES = b"atlas_file_entries"  # [model, entry key] of each file, so a later load can reuse unchanged files


class Pack(NamedTuple):
    """A dataset's pack as read: its rows, the row count of each file and each file's (model, entry key)."""

    frame: pd.DataFrame
    counts: list[int]
    entries: list[tuple[str, str]] | None  # None in packs written before entry keys were stored


def pack_key(dataset_id: str, entry_keys: list[tuple[str, str]]) -> str:
    """Return the key of a dataset's pack from its files' (model, entry key) pairs in load order."""
    return hashlib.sha256(json.dumps([CACHE_FORMAT, "pack", dataset_id, entry_keys]).encode("utf-8")).hexdigest()


def _table(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """Encode a frame of ``FRAME_COLUMNS`` as an Arrow table of ``schema`` (lists and dicts as JSON text)."""
    columns = {
        "instance_id": frame["instance_id"].tolist(),
        "input": frame["input"].tolist(),
        "messages": [None if messages is None else _json(messages) for messages in frame["messages"]],
        "output": frame["output"].tolist() if "output" in schema.names else None,
        "score": frame["score"].astype("float64").to_numpy(),
        "reference": [list(reference) for reference in frame["reference"]],
        "correct": frame["correct"].astype(bool).to_numpy(),
        "metadata": [_json(metadata) for metadata in frame["metadata"]],
        "line": frame["line"].astype("int64").to_numpy(),
    }
    return pa.table({name: columns[name] for name in schema.names}, schema=schema)


def _write_parquet(path: Path, table: pa.Table) -> None:
    """Write ``table`` to ``path`` through a temporary file, so readers never see a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        pq.write_table(table, temporary, compression="zstd")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def file_digest(path: Path) -> str:
    """Return the sha256 of a file's bytes as hex."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def cache_key(sha256: str, threshold: float, score_range: tuple[float, float] | None = None) -> str:
    """Return the cache key of a result file with content hash ``sha256`` read with this threshold and score range."""
    text = f"{CACHE_FORMAT}\0{sha256}\0{threshold!r}\0{score_range!r}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _object_series(values: list[Any], index: pd.Index | None = None) -> pd.Series:
    # pandas 3 stores a list of str as an Arrow string column, which copies every shared prompt;
    # an object column keeps the shared Python objects.
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return pd.Series(array, dtype=object, index=index)


class ResultCache:
    """A folder of parquet files, one per parsed result file, plus the string pools of one load.

    With ``directory`` None nothing is read or written and only the pools are used.
    """

    def __init__(self, directory: Path | None):
        self.directory = None if directory is None else Path(directory)
        self.hits = 0
        self.misses = 0
        self.used: set[str] = set()
        self._strings: dict[str, str] = {}
        self._messages: dict[str, list[dict[str, str]]] = {}
        self._references: dict[tuple[str, ...], tuple[str, ...]] = {}

    def path(self, key: str) -> Path:
        if self.directory is None:
            raise ValueError("this ResultCache has no directory")
        return self.directory / key[:2] / f"{key}.parquet"

    def load(self, key: str, *, with_output: bool = True) -> pd.DataFrame | None:
        """Return the stored frame for ``key``, or None when there is none or it cannot be read.

        Without ``with_output`` the frame has no ``output`` column and that column is not read.
        """
        columns = [name for name in FRAME_COLUMNS if with_output or name != "output"]
        table = self._read(key, columns)
        if table is None:
            return None
        return self._frame(table, columns)

    def _frame(self, table: pa.Table, columns: list[str]) -> pd.DataFrame:
        """Return the frame of a stored table, with shared prompts, message lists and references."""
        values = {
            "instance_id": table.column("instance_id").to_pandas(),
            "input": _object_series([self._strings.setdefault(text, text) for text in table.column("input").to_pylist()]),
            "messages": _object_series([None if text is None else self._shared_messages(text)
                                        for text in table.column("messages").to_pylist()]),
            "score": table.column("score").to_numpy(),
            "reference": [self._shared_reference(tuple(items)) for items in table.column("reference").to_pylist()],
            "correct": table.column("correct").to_numpy(zero_copy_only=False),
            "metadata": [json.loads(text) for text in table.column("metadata").to_pylist()],
            "line": table.column("line").to_pandas(),
        }
        if "output" in columns:
            # ``output`` goes straight from Arrow into a pandas str column. Going through Python
            # str objects would allocate the largest column twice and leave the heap fragmented.
            values["output"] = table.column("output").to_pandas()
        return pd.DataFrame(values, columns=columns)

    def load_outputs(self, key: str) -> pd.Series | None:
        """Return the stored outputs for ``key`` indexed by ``instance_id``, or None when there is no readable entry."""
        table = self._read(key, ["instance_id", "output"])
        if table is None:
            return None
        return output_series(table.column("instance_id").to_pandas(), table.column("output").to_pandas())

    def _read(self, key: str, columns: list[str]) -> pa.Table | None:
        if self.directory is None:
            return None
        path = self.path(key)
        if not path.exists():
            return None
        try:
            # ParquetFile.read skips the dataset layer of read_table, which costs more than the
            # read itself for the few hundred rows of one result file.
            with pq.ParquetFile(path) as parquet:
                if not parquet.schema_arrow.equals(SCHEMA, check_metadata=False):
                    raise pa.ArrowInvalid(f"unexpected schema {parquet.schema_arrow}")
                return parquet.read(columns=columns, use_threads=False)
        except (OSError, pa.ArrowException) as error:
            logger.warning("ignoring unreadable result cache entry %s (%s); it will be rewritten", path, error)
            return None

    def store(self, key: str, frame: pd.DataFrame) -> None:
        """Write ``frame`` (columns ``FRAME_COLUMNS``) as the entry for ``key``, atomically.

        A cache that cannot be written (read-only folder, full disk) is logged once and then
        left alone, because the load itself does not need it.
        """
        if self.directory is None:
            return
        try:
            self._write(key, frame)
        except OSError as error:
            logger.warning("cannot write the result cache in %s (%s); loading continues without it. "
                           "Set ATLAS_CACHE_DIR to a writable folder to cache parsed result files",
                           self.directory, error)
            self.directory = None

    def _write(self, key: str, frame: pd.DataFrame) -> None:
        _write_parquet(self.path(key), _table(frame, SCHEMA))

    # ---- packs: all rows of one dataset without their outputs, read in one piece -------------
    # Each per-file entry costs a DataFrame and a parquet reader, so thousands of them cost more than
    # their rows do. When no file of a dataset changed, a load without outputs reads its pack.
    # When some did, it reads the dataset's latest pack for the files that did not change.

    def pack_path(self, key: str) -> Path:
        if self.directory is None:
            raise ValueError("this ResultCache has no directory")
        return self.directory / "packs" / key[:2] / f"{key}.parquet"

    def _latest_path(self, dataset_id: str) -> Path:
        assert self.directory is not None
        return self.directory / "packs" / "latest" / f"{dataset_id}.txt"

    def load_pack(self, key: str) -> Pack | None:
        """Return the pack stored for ``key``, or None when there is none or it cannot be read."""
        if self.directory is None:
            return None
        path = self.pack_path(key)
        self.used.add(key)
        if not path.exists():
            return None
        try:
            with pq.ParquetFile(path) as parquet:
                if not parquet.schema_arrow.equals(PACK_SCHEMA, check_metadata=False):
                    raise pa.ArrowInvalid(f"unexpected schema {parquet.schema_arrow}")
                metadata = parquet.schema_arrow.metadata or {}
                counts = json.loads(metadata[PACK_COUNTS])
                entries = json.loads(metadata[PACK_ENTRIES]) if PACK_ENTRIES in metadata else None
                table = parquet.read(use_threads=False)
            if not isinstance(counts, list) or sum(counts) != table.num_rows:
                raise ValueError(f"row counts {counts!r} do not add up to the {table.num_rows} rows")
            if entries is not None and (not isinstance(entries, list) or len(entries) != len(counts)):
                raise ValueError(f"{len(entries)} entry keys for {len(counts)} files")
        except (OSError, ValueError, KeyError, TypeError, pa.ArrowException) as error:
            logger.warning("ignoring unreadable result cache pack %s (%s); it will be rewritten", path, error)
            return None
        return Pack(self._frame(table, list(PACK_SCHEMA.names)), counts,
                    None if entries is None else [tuple(entry) for entry in entries])

    def latest_pack(self, dataset_id: str) -> Pack | None:
        """Return the pack that a load last wrote for ``dataset_id``, or None."""
        if self.directory is None:
            return None
        try:
            key = self._latest_path(dataset_id).read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            return None
        return self.load_pack(key) if len(key) == 64 else None

    def store_pack(self, key: str, dataset_id: str, frames: list[pd.DataFrame], entries: list[tuple[str, str]],
                   counts: list[int]) -> None:
        """Write one dataset's rows as the pack for ``key`` and make it the dataset's latest pack.

        ``frames`` hold the rows of the files in load order, ``entries`` the (model, entry key)
        of each file and ``counts`` its row count.
        """
        if self.directory is None or not frames:
            return
        table = _table(pd.concat(frames, ignore_index=True), PACK_SCHEMA)
        table = table.replace_schema_metadata({PACK_COUNTS: json.dumps(counts), PACK_ENTRIES: json.dumps(entries)})
        try:
            _write_parquet(self.pack_path(key), table)
            atomic_write_bytes(self._latest_path(dataset_id), key.encode("ascii"))
        except OSError as error:
            logger.warning("cannot write the result cache pack %s (%s); loading continues without it",
                           self.pack_path(key), error)

    def share(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Make equal prompts, message lists and references in ``frame`` the same objects as in earlier frames of this load."""
        frame["input"] = _object_series([self._strings.setdefault(text, text) for text in frame["input"]], frame.index)
        frame["messages"] = _object_series([None if messages is None else self._shared_messages(_json(messages))
                                            for messages in frame["messages"]], frame.index)
        frame["reference"] = _object_series([self._shared_reference(reference) for reference in frame["reference"]],
                                            frame.index)
        return frame

    def _shared_reference(self, reference: tuple[str, ...]) -> tuple[str, ...]:
        # Tuples are immutable, so rows can share them safely.
        return self._references.setdefault(reference, reference)

    def _shared_messages(self, text: str) -> list[dict[str, str]]:
        # NOTE: rows share one list object per distinct prompt, so a stage that mutated a
        # row's messages in place would change every row with that prompt; stages must copy first.
        messages = self._messages.get(text)
        if messages is None:
            messages = self._messages[text] = json.loads(text)
        return messages

    def prune(self) -> int:
        """Delete entries that this load did not use; return how many were deleted."""
        removed = 0
        if self.directory is None:
            return removed
        for path in self.directory.glob("*/*.parquet"):
            if path.stem not in self.used:
                path.unlink(missing_ok=True)
                removed += 1
        return removed


def output_series(instance_ids: Any, outputs: Any) -> pd.Series:
    """Return ``outputs`` as a Series named "output" with an index named "instance_id" (the form of ``Results.outputs``).

    Both arguments are sequences in file order. A Series argument is taken by position, not aligned by its index.
    """
    if isinstance(instance_ids, pd.Series):
        instance_ids = instance_ids.array
    if isinstance(outputs, pd.Series):
        outputs = outputs.array
    return pd.Series(outputs, index=pd.Index(instance_ids, name="instance_id"), name="output")


def read_result_frame(
    path: Path, dataset: DatasetInfo, cache: ResultCache | None, *, score_range: tuple[float, float] | None = None,
    with_output: bool = True, digest: str | None = None,
) -> tuple[pd.DataFrame | None, list[Problem], str]:
    """Read one result file as a frame (``FRAME_COLUMNS``), from ``cache`` when its bytes were read before.

    Returns the frame (None when the file has no valid rows), its problems and
    its sha256, like ``read_result_file``. Without a cache it only parses.
    Without ``with_output`` the frame has no ``output`` column, but a new cache
    entry still stores the outputs. ``digest``, when given, is the sha256 of the
    file's bytes that the caller has just computed.
    """
    from atlas_builder.results.load import read_result_file  # imported here so that load.py can import this module

    if cache is None:
        rows, problems, digest = read_result_file(path, dataset, score_range=score_range)
        frame = pd.DataFrame.from_records(rows, columns=list(FRAME_COLUMNS)) if rows else None
        return _without_output(frame, with_output), problems, digest

    if digest is None:
        digest = file_digest(path)
    key = cache_key(digest, dataset.threshold, score_range)
    cache.used.add(key)
    frame = cache.load(key, with_output=with_output)
    if frame is not None:
        cache.hits += 1
        return frame, [], digest

    cache.misses += 1
    rows, problems, digest = read_result_file(path, dataset, score_range=score_range)
    if not rows:
        return None, problems, digest
    frame = cache.share(pd.DataFrame.from_records(rows, columns=list(FRAME_COLUMNS)))
    key = cache_key(digest, dataset.threshold, score_range)  # the file may have changed since it was hashed above
    cache.used.add(key)
    if not problems:
        cache.store(key, frame)
    return _without_output(frame, with_output), problems, digest


def _without_output(frame: pd.DataFrame | None, with_output: bool) -> pd.DataFrame | None:
    if frame is None or with_output:
        return frame
    return frame.drop(columns="output")
