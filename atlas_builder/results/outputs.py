"""Read the model outputs of a loaded result file again, for ``Results`` loaded with ``outputs="disk"``.

Model outputs are most of the text of an atlas, and few steps of a build need
them, so ``load_results(..., outputs="disk")`` leaves them out of ``Results.rows``.
A ``ResultOutputReader`` then reads one result file's outputs when a step
requests them. It reads the file's parquet cache entry, which is keyed by the
sha256 of the loaded bytes. Without an entry it parses the file again, after
checking that the file's sha256 is still the loaded one.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from atlas_builder.records import DatasetInfo, ResultFile
from atlas_builder.results.cache import ResultCache, cache_key, output_series


class ResultFileChangedError(Exception):
    """Raised when a result file's bytes are no longer the ones that were loaded, so its outputs cannot be read."""


class ResultOutputReader:
    """Reads the outputs of one loaded result file: from the parsed-result cache, else from the file.

    ``datasets`` and ``score_ranges`` are the ones the load used, because they
    decide the cache key and which lines are valid rows.
    """

    def __init__(self, cache_dir: Path | None, datasets: dict[str, DatasetInfo],
                 score_ranges: dict[str, tuple[float, float]]):
        self.cache = ResultCache(cache_dir)
        self.datasets = datasets
        self.score_ranges = score_ranges

    def __call__(self, file: ResultFile) -> pd.Series:
        """Return the outputs of ``file`` as ``str`` values indexed by ``instance_id``, in file order.

        Raises ``ResultFileChangedError`` when the entry is not in the cache and the
        file was changed or removed after it was loaded.
        """
        dataset = self.datasets[file.dataset]
        score_range = self.score_ranges.get(file.dataset)
        cached = self.cache.load_outputs(cache_key(file.sha256, dataset.threshold, score_range))
        if cached is not None:
            return cached
        return self._parse(file, dataset, score_range)

    def _parse(self, file: ResultFile, dataset: DatasetInfo, score_range: tuple[float, float] | None) -> pd.Series:
        from atlas_builder.results.load import parse_result_data  # imported here because load.py imports this module

        try:
            data = Path(file.path).read_bytes()
        except FileNotFoundError as error:
            raise ResultFileChangedError(
                f"result file {file.path} was removed after it was loaded, so its outputs cannot be read; "
                "restore it or rerun the build") from error
        digest = hashlib.sha256(data).hexdigest()
        if digest != file.sha256:
            raise ResultFileChangedError(
                f"result file {file.path} changed after it was loaded (sha256 {digest[:12]}, loaded {file.sha256[:12]}), "
                "so its outputs no longer match the loaded rows; rerun the build")
        # The same bytes, dataset and score range give the same valid rows as the load.
        rows, _ = parse_result_data(data, str(file.path), dataset, score_range=score_range)
        return output_series([row["instance_id"] for row in rows], [row["output"] for row in rows])
