"""Cache of matched judge answers per store shard, so a rebuild matches only the shards whose inputs changed.

Matching a stored answer renders its request again from the current rows and
hashes it (see ``stored``), which reads the output of every failure and peer
that the store names. The outcome for one shard (``judge/diagnose/<dataset>/<model>.jsonl``)
depends only on:

- the shard's bytes;
- the subject model's result file and the dataset's metadata file, which decide
  the failure rows, their text and the dataset name and task type in the prompt;
- the result files of the peer models that its records name, which decide
  whether each peer answer is still correct and what it says;
- the current check findings of its records' failures, which the prompt shows;
- the code of the judge package, which renders the prompts.

An entry's key covers the first two and the code. The entry stores the peers'
file hashes and a hash of the findings, which a lookup compares with the
current ones. Adding a model's results therefore matches only the new model's
shards and those whose peers or findings changed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from atlas_builder.diagnose.checks_cache import checks_cache_dir, from_json, to_json
from atlas_builder.records import Diagnosis, FailureKey, Results
from atlas_builder.results.write import atomic_write_bytes

logger = logging.getLogger(__name__)

CACHE_FORMAT = 1
JUDGE_PACKAGE = Path(__file__).parent
Pair = tuple[str, str]


def matches_cache_dir() -> Path | None:
    """Return the cache folder: ``judge-matches`` beside the checks cache; None when ``ATLAS_CACHE_DIR`` is off."""
    checks_dir = checks_cache_dir()
    return None if checks_dir is None else checks_dir.parent / "judge-matches"


def judge_code_version() -> str:
    """Return a hash of the judge package's sources and prompt templates."""
    digest = hashlib.sha256(f"format {CACHE_FORMAT}".encode())
    for path in sorted(JUDGE_PACKAGE.rglob("*")):
        if path.is_file() and path.suffix in (".py", ".j2"):
            digest.update(path.relative_to(JUDGE_PACKAGE).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


@dataclass
class Shard:
    """One store shard as read for this build: its path, the (dataset, model) its path names and its cache key."""

    path: Path
    pair: Pair | None  # None for a shard outside the per-failure layout, which is never cached
    key: str | None


@dataclass
class ShardOutcome:
    """Result of matching one shard's records: the chosen diagnoses and the counts for the build's log."""

    diagnoses: list[Diagnosis] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)


class MatchCache:
    """Entries of ``ShardOutcome`` per shard, stored as JSON under ``matches_cache_dir()``."""

    def __init__(self, results: Results, store_dir: Path,
                 current_findings: Mapping[FailureKey, list[dict[str, str]]] | None):
        self.results = results
        self.store_dir = Path(store_dir)
        self.current_findings = current_findings
        self.directory = matches_cache_dir()
        self.code_version = judge_code_version()
        self.file_hashes = {(item.dataset, item.model): item.sha256 for item in results.files}
        self._dataset_hashes: dict[str, str] = {}

    def shard(self, path: Path, data: bytes) -> Shard:
        """Describe the shard at ``path`` whose bytes are ``data``."""
        parts = path.relative_to(self.store_dir).parts
        pair = (parts[0], Path(parts[1]).stem) if len(parts) == 2 and parts[1].endswith(".jsonl") else None
        if pair is None or self.directory is None:
            return Shard(path, pair, None)
        payload = [CACHE_FORMAT, self.code_version, "/".join(parts), hashlib.sha256(data).hexdigest(),
                   self._dataset_hash(pair[0]), self.file_hashes.get(pair)]
        return Shard(path, pair, hashlib.sha256(json.dumps(payload).encode()).hexdigest())

    def _dataset_hash(self, dataset: str) -> str:
        # The metadata file's bytes, because a declared score range decides failures but is not in DatasetInfo.
        if dataset not in self._dataset_hashes:
            info = self.results.datasets.get(dataset)
            digest = hashlib.sha256(json.dumps(None if info is None else dataclasses.asdict(info), default=str,
                                               sort_keys=True).encode())
            if info is not None and info.path is not None:
                try:
                    digest.update(Path(info.path).read_bytes())
                except OSError:
                    digest.update(b"unreadable")
            self._dataset_hashes[dataset] = digest.hexdigest()
        return self._dataset_hashes[dataset]

    def _findings_hash(self, dataset: str, model: str, instance_ids: Iterable[str]) -> str:
        if self.current_findings is None:
            return "no findings given"
        findings = [[instance_id, self.current_findings.get((dataset, model, instance_id), [])]
                    for instance_id in instance_ids]
        return hashlib.sha256(json.dumps(findings, ensure_ascii=False).encode("utf-8")).hexdigest()

    def _path(self, key: str) -> Path:
        assert self.directory is not None
        return self.directory / key[:2] / f"{key}.json"

    def lookup(self, shard: Shard) -> ShardOutcome | None:
        """Return the stored outcome of ``shard``, or None when there is none or its peers or findings changed."""
        if shard.key is None or shard.pair is None:
            return None
        path = self._path(shard.key)
        try:
            entry = json.loads(path.read_bytes())
            peers = entry["peers"]
            if any(self.file_hashes.get((shard.pair[0], model)) != digest for model, digest in peers.items()):
                return None
            if entry["findings"] != self._findings_hash(*shard.pair, entry["subjects"]):
                return None
            return ShardOutcome([from_json(record) for record in entry["diagnoses"]], Counter(entry["counts"]))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            logger.warning("ignoring unreadable judge match cache file %s (%s); it will be rewritten", path, error)
            return None

    def store(self, shard: Shard, records: list[dict[str, Any]], outcome: ShardOutcome) -> None:
        """Write the outcome of matching ``records``, all about ``shard.pair``, as the shard's entry."""
        if shard.key is None or shard.pair is None or self.directory is None:
            return
        dataset, model = shard.pair
        subjects = sorted({str((record.get("subject") or {}).get("instance_id")) for record in records})
        peer_models = sorted({str(peer) for record in records
                              if (peer := (record.get("request") or {}).get("peer_model")) is not None})
        entry = {
            "peers": {peer: self.file_hashes.get((dataset, peer)) for peer in peer_models},
            "subjects": subjects,
            "findings": self._findings_hash(dataset, model, subjects),
            "counts": dict(outcome.counts),
            "diagnoses": [to_json(item) for item in outcome.diagnoses],
        }
        path = self._path(shard.key)
        try:
            atomic_write_bytes(path, json.dumps(entry, ensure_ascii=False, default=str).encode("utf-8"))
        except OSError as error:
            logger.warning("cannot write judge match cache file %s (%s); set ATLAS_CACHE_DIR to a writable folder",
                           path, error)


def round_trip(items: list[Diagnosis]) -> list[Diagnosis]:
    """Return ``items`` after the JSON encoding that cache entries go through (tuples in details become lists).

    A build that matched a shard and one that read its entry then hand identical records to the later stages.
    """
    encoded = json.dumps([to_json(item) for item in items], ensure_ascii=False, default=str)
    return [from_json(record) for record in json.loads(encoded)]
