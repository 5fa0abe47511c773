"""The append-only store of judge answers under ``data/judge/``.

Layout (one JSON object per line, UTF-8, ``\\n``-terminated):

- ``data/judge/<purpose>/<dataset>/<model>.jsonl`` for answers about one
  failure (the record has a ``subject``), mirroring ``data/results/``;
- ``data/judge/<purpose>/<YYYY-MM>.jsonl`` for other answers (for example the
  taxonomy stage's batches), by the UTC month of the call.

Each shard then holds at most one result file's failures or one month's
batches, so files stay small enough to review in git.

Each record is written by one ``os.write`` of the whole line to a file opened
with ``O_APPEND``, then fsynced: at once by ``append``, or in groups by
``append(..., sync=False)`` followed by ``sync()``. A process killed at any
moment (kill -9) leaves either the whole line or a torn last line without a
newline, because a finished ``os.write`` is in the kernel whether or not it was
fsynced; fsync only matters when the machine itself stops. Readers skip a torn or
unparsable line with a warning; before the first append to a shard, a writer
ends a torn last line with ``\\n`` so the next record starts on its own line.
One process writes a store at a time (``JudgeStore.lock`` takes an exclusive
``flock`` on ``data/judge/.lock``).

Record fields (``FORMAT_VERSION`` 1):

``format``, ``key`` (sha256 from ``request_key``), ``core_key`` (sha256 from
``core_key``, or absent: only per-failure diagnosis records written since it
was added have one), ``purpose``, ``judge``
(litellm model name), ``prompt_version``, ``schema_name``, ``subject``
(``{"dataset", "model", "instance_id"}`` or null), ``request`` (what the
caller needs to rebuild the messages, such as the peer model), ``ok``,
``answer`` (the parsed, validated JSON, or null), ``error`` (failure reason
or null), ``error_kind`` (``"transient"``, ``"answer"``, ``"request"`` or
null), ``attempts``, ``tokens_in``, ``tokens_out`` (summed over attempts),
``cost_usd`` (null when the price is unknown), ``latency_s`` (seconds, all
attempts), ``time`` (UTC ISO 8601 of the end of the call), and on a failure
whose last rejected answer had text, ``invalid_answer`` (that text, cut to
``MAX_INVALID_ANSWER_CHARS`` characters, stored for audit only).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Mapping

from atlas_builder.ids import slug_problem

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
STORE_DIR = "judge"
#: Maximum characters of a rejected answer's text kept in a failure record.
MAX_INVALID_ANSWER_CHARS = 2000


def request_key(messages: list[dict[str, Any]], judge: str, prompt_version: str, schema: dict[str, Any]) -> str:
    """Return the sha256 hex digest that identifies one judge request.

    It covers exactly what decides the answer: the messages, the judge model,
    the prompt version and the answer schema (canonical JSON, sorted keys).
    """
    return _json_sha256({"messages": messages, "judge": judge, "prompt_version": prompt_version, "schema": schema})


def core_key(content: Mapping[str, Any], judge: str, prompt_version: str, schema: dict[str, Any]) -> str:
    """Return the sha256 hex digest of a request's content without the parts that may change around it.

    ``content`` holds what the request is about (for a diagnosis: the failure's
    input, output, reference and peer answer, but not the check findings). Two
    requests with the same core key ask the judge the same question, so an
    answer to one is a usable answer to the other.
    """
    return _json_sha256({"content": content, "judge": judge, "prompt_version": prompt_version, "schema": schema})


def _json_sha256(value: Any) -> str:
    """Return the sha256 hex digest of ``value`` as canonical JSON (sorted keys, no spaces, UTF-8)."""
    canonical = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def utc_now() -> str:
    """Return the current UTC time as ISO 8601 with microseconds."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _safe_segment(value: str, what: str) -> str:
    reason = slug_problem(value)
    if reason is not None:
        raise ValueError(f"invalid {what} {value!r} for a store path: {reason}")
    return value


def shard_path(root: Path, purpose: str, subject: dict[str, str] | None, time: str) -> Path:
    """Return the shard file for a record (see the module docstring for the layout)."""
    purpose_dir = root / _safe_segment(purpose, "purpose")
    if subject is not None:
        dataset = _safe_segment(subject["dataset"], "dataset id")
        model = _safe_segment(subject["model"], "model id")
        return purpose_dir / dataset / f"{model}.jsonl"
    return purpose_dir / f"{time[:7]}.jsonl"


@dataclass
class ReadReport:
    """Records read from the store, with counts of the lines that were skipped."""

    records: list[dict[str, Any]] = field(default_factory=list)
    torn_lines: int = 0
    invalid_lines: int = 0


def read_shard(path: Path, report: ReadReport) -> None:
    """Append the valid records of one shard to ``report``, skipping torn and invalid lines."""
    parse_shard(path, path.read_bytes(), report)


def parse_shard(path: Path, data: bytes, report: ReadReport) -> None:
    """Append the valid records in ``data``, the bytes of the shard at ``path``, to ``report``."""
    lines = data.split(b"\n")
    # After split, the last element is b"" when the file ends with a newline; anything else is torn.
    tail = lines.pop()
    if tail.strip():
        report.torn_lines += 1
        logger.warning("%s: skipping a torn last line (%d bytes); a run was probably killed while writing", path, len(tail))
    invalid: list[tuple[int, str]] = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except ValueError as error:
            invalid.append((number, f"invalid JSON: {error}"))
            continue
        if not isinstance(record, dict) or not isinstance(record.get("key"), str) or "ok" not in record:
            invalid.append((number, "not a judge record (no 'key' or 'ok')"))
            continue
        report.records.append(record)
    if invalid:
        # One warning per file, however many lines are bad.
        report.invalid_lines += len(invalid)
        number, reason = invalid[0]
        logger.warning("%s: skipping %d invalid line(s); the first is line %d: %s", path, len(invalid), number, reason)


def iter_shards(root: Path, purpose: str | None = None) -> Iterator[Path]:
    """Yield every shard under ``root`` (optionally only one purpose), sorted."""
    base = root / purpose if purpose else root
    if base.is_dir():
        yield from sorted(base.rglob("*.jsonl"))


def read_records(root: Path, purpose: str | None = None) -> ReadReport:
    """Read every record under ``root`` (``data/judge``), optionally of one purpose."""
    report = ReadReport()
    for path in iter_shards(root, purpose):
        read_shard(path, report)
    return report


def record_settles(record: dict[str, Any] | None, retry_failed: bool = False) -> bool:
    """Tell whether a stored record settles its request, so that no call is needed.

    An answer always does. A failure does unless it was transient (the judge
    never answered: rate limit, timeout, connection or server error) or
    ``retry_failed`` asks to try every failure again.
    """
    if record is None:
        return False
    if record.get("ok"):
        return True
    return not retry_failed and record.get("error_kind") != "transient"


def _keep_newest(index: dict[str, dict[str, Any]], key: str, record: dict[str, Any]) -> None:
    previous = index.get(key)
    # A successful answer is never replaced by a later failure of the same request.
    if previous is not None and previous.get("ok") and not record.get("ok"):
        return
    index[key] = record


class StoreLockedError(RuntimeError):
    """Raised when another process holds the store's write lock."""


class JudgeStore:
    """Append-only writer and in-memory index of the judge store at ``root``.

    ``get(key)`` returns the newest record for a key, and ``get_core(core_key)``
    the newest record for a core key (an answer if one exists). Appends are safe from
    several threads of one process; ``lock()`` keeps other processes out.
    """

    def __init__(self, root: Path):
        self.root = Path(root)
        self._index: dict[str, dict[str, Any]] = {}
        self._core_index: dict[str, dict[str, Any]] = {}
        self._fds: dict[Path, int] = {}
        self._mutex = threading.Lock()
        self._lock_fd: int | None = None
        self._dirty: set[int] = set()
        self.report = read_records(self.root)
        for record in self.report.records:
            self._remember(record)
        logger.debug("judge store %s: %d records, %d keys", self.root, len(self.report.records), len(self._index))

    @classmethod
    def for_data(cls, data_dir: Path) -> "JudgeStore":
        """Open the store of a data folder (``<data_dir>/judge``)."""
        return cls(Path(data_dir) / STORE_DIR)

    def _remember(self, record: dict[str, Any]) -> None:
        _keep_newest(self._index, record["key"], record)
        core = record.get("core_key")
        if isinstance(core, str):
            _keep_newest(self._core_index, core, record)

    def get(self, key: str) -> dict[str, Any] | None:
        """Return the record that decides ``key`` (an answer if one exists), or None."""
        return self._index.get(key)

    def get_core(self, core: str) -> dict[str, Any] | None:
        """Return the newest record with core key ``core`` (an answer if one exists), or None."""
        return self._core_index.get(core)

    def recorded_cost(self, judge: str) -> float:
        """Return the summed ``cost_usd`` of the records of ``judge`` read when the store was opened.

        Records of unknown cost add nothing; records appended since are not counted.
        """
        return sum(float(record.get("cost_usd") or 0.0) for record in self.report.records
                   if record.get("judge") == judge)

    def __len__(self) -> int:
        return len(self._index)

    def lock(self) -> None:
        """Take an exclusive, non-blocking lock so that one process writes at a time."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreLockedError(
                f"another process is writing the judge store {self.root}; wait for it to finish or stop it"
            ) from None
        self._lock_fd = fd

    def _open(self, path: Path) -> int:
        fd = self._fds.get(path)
        if fd is not None:
            return fd
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        size = os.fstat(fd).st_size
        if size:
            with open(path, "rb") as handle:
                handle.seek(size - 1)
                if handle.read(1) != b"\n":
                    # End a torn line left by a killed run, so the next record stays parsable.
                    os.write(fd, b"\n")
        self._fds[path] = fd
        return fd

    def append(self, record: dict[str, Any], *, sync: bool = True) -> Path:
        """Write one record as one line (a single ``os.write``) and index it.

        With ``sync`` the line is fsynced before this returns; otherwise the
        next ``sync()`` (or ``close()``) fsyncs it.
        """
        record = {"format": FORMAT_VERSION, **record}
        record.setdefault("time", utc_now())
        line = (json.dumps(record, ensure_ascii=False, allow_nan=False, separators=(",", ":")) + "\n").encode("utf-8")
        path = shard_path(self.root, record["purpose"], record.get("subject"), record["time"])
        with self._mutex:
            fd = self._open(path)
        written = os.write(fd, line)
        if written != len(line):
            # Linux writes a line of this size to a regular file whole unless the disk is full or fails.
            # The partial line is then torn, and the next writer ends it with a newline.
            raise OSError(f"short write to {path}: {written} of {len(line)} bytes")
        with self._mutex:
            self._remember(record)
            if not sync:
                self._dirty.add(fd)
        if sync:
            os.fsync(fd)
        return path

    @property
    def needs_sync(self) -> bool:
        """True when appended lines wait for an fsync."""
        with self._mutex:
            return bool(self._dirty)

    def sync(self) -> None:
        """Fsync every shard with lines appended by ``append(..., sync=False)``."""
        with self._mutex:
            pending = list(self._dirty)
            self._dirty.clear()
        for fd in pending:
            os.fsync(fd)

    def close(self) -> None:
        """Fsync and close open shards, and release the lock."""
        self.sync()
        with self._mutex:
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> "JudgeStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
