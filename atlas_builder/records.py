"""Typed records passed between the pipeline stages.

The build runs results -> diagnose -> taxonomy -> analysis -> site. Each stage
takes the records below and returns new ones; no stage reads another stage's
files or internals. Instance rows stay in one pandas DataFrame (columns in
``RESULT_COLUMNS``) because an atlas contains hundreds of thousands of them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Literal, Mapping

import numpy as np
import pandas as pd

#: Columns of ``Results.rows``, one row per (dataset, model, instance).
RESULT_COLUMNS: tuple[str, ...] = (
    "dataset",  # dataset id
    "model",  # model id
    "instance_id",  # instance id, unique within the dataset
    "input",  # prompt as plain text; chat messages are joined as "role: content" blocks
    "messages",  # the chat messages as a list of {"role", "content"} dicts, or None
    "output",  # the model's output text
    "score",  # float score of the dataset's metric
    "reference",  # tuple of acceptable reference answers (may be empty)
    "correct",  # bool: given in the file, or score >= the dataset's threshold
    "metadata",  # dict copied from the result file
    "line",  # 1-based line number in the result file, for error messages
)

TextRule = Literal["full", "excerpt", "hidden"]


@dataclass(frozen=True)
class Source:
    """Provenance of published results or metadata: repository, commit, path and URL."""

    repository: str
    commit: str | None = None
    path: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class Publishing:
    """Rules for how much of a dataset's text the site may show."""

    text: TextRule = "full"
    excerpt_chars: int = 300
    content_warning: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class DatasetInfo:
    """Metadata of one dataset, read from ``data/datasets/<id>.yaml``."""

    id: str
    name: str
    description: str
    task_type: str  # one of TASK_TYPES
    metric: str
    threshold: float  # an instance is correct when score >= threshold
    source: Source
    license: str
    aliases: tuple[str, ...] = ()
    publishing: Publishing = Publishing()
    subset: str | None = None  # how the committed subset was drawn
    citation: str | None = None
    path: Path | None = None


TASK_TYPES: tuple[str, ...] = (
    "multiple_choice",
    "short_answer",
    "math",
    "open_ended",
    "safety",
    "code",
    "tool_use",
)


@dataclass(frozen=True)
class ModelInfo:
    """Metadata of one model, read from ``data/models/<id>.yaml``."""

    id: str
    name: str
    organization: str | None = None
    family: str | None = None
    parameters: str | None = None  # free text such as "70B"; None when unknown
    aliases: tuple[str, ...] = ()
    sources: tuple[Source, ...] = ()
    license: str | None = None
    description: str | None = None
    path: Path | None = None


@dataclass(frozen=True)
class ResultFile:
    """One result file with the hash of its bytes, for caching and provenance."""

    dataset: str
    model: str
    path: Path
    sha256: str
    rows: int


#: Type of ``Results.output_reader``: a callable that returns the outputs of one loaded result file.
OutputReader = Callable[[ResultFile], pd.Series]


class UnknownResultFileError(KeyError):
    """Raised when a (dataset, model) pair has no loaded result file."""

    def __str__(self) -> str:
        # KeyError would print the repr of its argument, quotes and all.
        return str(self.args[0]) if self.args else ""


@dataclass
class Results:
    """Everything the results stage read from ``data/``.

    After ``load_results(..., outputs="disk")``, ``rows`` has no ``output`` column
    and ``output_reader`` reads the outputs back one result file at a time.
    ``outputs`` returns them in both cases.
    """

    data_dir: Path
    datasets: dict[str, DatasetInfo]
    models: dict[str, ModelInfo]
    files: list[ResultFile]
    rows: pd.DataFrame  # columns RESULT_COLUMNS, without "output" when the outputs stay on disk
    output_reader: OutputReader | None = field(default=None, repr=False, compare=False)
    # Lookups that ``outputs`` builds on its first call, each with the rows or files it was built from,
    # so that assigning new rows or files rebuilds them.
    _pair_positions: tuple[pd.DataFrame, dict[tuple[str, str], np.ndarray]] | None = field(
        default=None, init=False, repr=False, compare=False)
    _pair_files: tuple[list[ResultFile], dict[tuple[str, str], ResultFile]] | None = field(
        default=None, init=False, repr=False, compare=False)

    def failures(self) -> pd.DataFrame:
        """Return the rows whose ``correct`` is False."""
        return self.rows[~self.rows["correct"]]

    def outputs(self, dataset: str, model: str) -> pd.Series:
        """Return the outputs of one result file as ``str`` values indexed by ``instance_id``, in file order.

        Slices ``rows`` when it has an ``output`` column, else calls ``output_reader``.
        Raises ``UnknownResultFileError`` for a pair without a loaded result file.
        """
        if "output" in self.rows.columns:
            return self._outputs_in_memory(dataset, model)
        if self.output_reader is None:
            raise ValueError("these Results have no output column and no output_reader. Load them with "
                             "load_results, or pass output_reader when you build Results from other Results")
        if self._pair_files is None or self._pair_files[0] is not self.files:
            self._pair_files = (self.files, {(file.dataset, file.model): file for file in self.files})
        file = self._pair_files[1].get((dataset, model))
        if file is None:
            raise UnknownResultFileError(_unknown_pair_message(dataset, model))
        return self.output_reader(file)

    def outputs_for(self, keys: Iterable[tuple[str, str, str]]) -> dict[tuple[str, str, str], str]:
        """Return the output of each (dataset, model, instance_id) key, reading each result file once.

        Keys whose instance is not in its result file are left out. An unknown
        (dataset, model) pair raises ``UnknownResultFileError``.
        """
        by_pair: dict[tuple[str, str], list[str]] = defaultdict(list)
        for dataset, model, instance_id in keys:
            by_pair[(dataset, model)].append(instance_id)
        found: dict[tuple[str, str, str], str] = {}
        for (dataset, model), instance_ids in by_pair.items():
            outputs = self.outputs(dataset, model)
            for instance_id in instance_ids:
                if instance_id in outputs.index:
                    found[(dataset, model, instance_id)] = outputs[instance_id]
        return found

    def _outputs_in_memory(self, dataset: str, model: str) -> pd.Series:
        if self._pair_positions is None or self._pair_positions[0] is not self.rows:
            positions = self.rows.groupby(["dataset", "model"], sort=False).indices
            self._pair_positions = (self.rows, {tuple(pair): rows for pair, rows in positions.items()})
        positions = self._pair_positions[1].get((dataset, model))
        if positions is None:
            raise UnknownResultFileError(_unknown_pair_message(dataset, model))
        where = rows_of_file(positions)
        instance_ids = self.rows["instance_id"].iloc[where].array
        outputs = self.rows["output"].iloc[where].array
        return pd.Series(outputs, index=pd.Index(instance_ids, name="instance_id"), name="output")


def rows_of_file(positions: np.ndarray) -> slice | np.ndarray:
    """Return a slice for sorted ``positions`` that form one run, else the positions themselves.

    A loaded file's rows are one run. Taking them by slice avoids a gather over the output column,
    an Arrow array with one chunk per file, which cost about 20 ms per file at 2,905 files.
    """
    if len(positions) and positions[-1] - positions[0] + 1 == len(positions):
        return slice(int(positions[0]), int(positions[-1]) + 1)
    return positions


def _unknown_pair_message(dataset: str, model: str) -> str:
    return (f"no result file for dataset {dataset!r} and model {model!r} was loaded; "
            f"expected results/{dataset}/{model}.jsonl in the data folder")


@dataclass(frozen=True)
class Problem:
    """One validation problem, printed as ``path:line: message``."""

    path: str
    line: int | None
    message: str
    fix: str | None = None

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        text = f"{where}: {self.message}"
        return f"{text} ({self.fix})" if self.fix else text


FailureKey = tuple[str, str, str]  # (dataset, model, instance_id)


@dataclass(frozen=True)
class Evidence:
    """A span of a failure's text that supports a diagnosis (character offsets)."""

    field: Literal["output", "input", "reference"]
    start: int
    end: int
    text: str


DiagnosisKind = Literal["check", "judge", "judge-failure"]


@dataclass(frozen=True)
class Diagnosis:
    """One explanation of one failure, by a deterministic check or by the judge.

    ``diagnoser`` is the check's name (``check:<name>``) or the judge model id.
    ``category`` is a taxonomy category id; checks set it directly, judge
    diagnoses get it from the taxonomy stage.
    """

    dataset: str
    model: str
    instance_id: str
    diagnoser: str
    kind: DiagnosisKind
    title: str
    summary: str
    category: str | None = None
    explains_fully: bool = False  # a check that needs no judge for this failure
    evidence: tuple[Evidence, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)
    prompt_version: str | None = None

    @property
    def key(self) -> FailureKey:
        return (self.dataset, self.model, self.instance_id)


@dataclass
class Diagnoses:
    """All diagnoses of a build, with the one that decides each failure's category."""

    items: list[Diagnosis]
    primary: dict[FailureKey, Diagnosis]
    undiagnosed: list[FailureKey]
    suspect_references: dict[tuple[str, str], Mapping[str, Any]] = field(default_factory=dict)
    """(dataset, instance_id) -> evidence that the reference itself is wrong."""
    accidental_passes: list[Diagnosis] = field(default_factory=list)
    """Rows scored correct whose final answer differs from the reference (dataset page material)."""


CategoryKind = Literal["content", "mechanical", "special"]


@dataclass(frozen=True)
class Category:
    """One node of the error taxonomy."""

    id: str
    name: str
    definition: str
    parent: str | None = None
    kind: CategoryKind = "content"
    published_share: float | None = None  # share of analysed failures in the published ErrorAtlas
    name_status: Literal["published", "ours"] = "ours"
    note: str | None = None


@dataclass
class Taxonomy:
    """A versioned taxonomy file: categories by id, and the map from the previous version."""

    version: str
    categories: dict[str, Category]
    previous_version: str | None = None
    mapping: dict[str, tuple[str, ...]] = field(default_factory=dict)
    path: Path | None = None

    def children(self, category_id: str | None) -> list[Category]:
        """Return the categories whose parent is ``category_id`` (None for top level)."""
        return [c for c in self.categories.values() if c.parent == category_id]

    def top_level(self, category_id: str) -> str:
        """Return the id of the top-level ancestor of ``category_id``."""
        current = self.categories[category_id]
        while current.parent is not None:
            current = self.categories[current.parent]
        return current.id
