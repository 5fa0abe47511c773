"""Importers: convert other evaluation tools' per-instance output into the atlas result format.

Entry point: ``import_results(format, source, *, model, dataset, data_dir) -> ImportReport``.
Each format has one module with a ``read(...) -> ImportBatch`` function;
``common.write_batch`` validates the batch and writes it under ``data_dir``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from atlas_builder.importers import errormap_csv, helm, inspect_logs, lm_eval, openai_evals
from atlas_builder.importers.common import ImportBatch, ImportFailed, ImportReport, write_batch

#: Format name (as typed on the command line) -> reader.
FORMATS: dict[str, Callable[..., ImportBatch]] = {
    "errormap-csv": errormap_csv.read,
    "lm-eval": lm_eval.read,
    "helm": helm.read,
    "inspect": inspect_logs.read,
    "openai-evals": openai_evals.read,
}


def import_results(format: str, source: Path, *, model: str, dataset: str, data_dir: Path,
                   replace: bool = False, threshold: float | None = None, metric: str | None = None,
                   filter_name: str | None = None) -> ImportReport:
    """Convert ``source`` from ``format`` and write it into ``data_dir``; return what was read, written and skipped.

    Raises ``ImportFailed`` (nothing written) when the source is unreadable,
    no row survives, or stored rows with the same ids differ and ``replace`` is off.
    """
    reader = FORMATS.get(format)
    if reader is None:
        raise ImportFailed(f"unknown format {format!r}; use one of {', '.join(FORMATS)}")
    batch = reader(Path(source), model=model, dataset=dataset, threshold=threshold, metric=metric, filter_name=filter_name)
    return write_batch(batch, Path(data_dir), replace=replace)


__all__ = ["FORMATS", "ImportFailed", "ImportReport", "import_results"]
