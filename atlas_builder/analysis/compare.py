"""Model-vs-model comparison on the instances both models were run on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse
from scipy import stats as scipy_stats

from atlas_builder.analysis.stats import holm_adjust_columns, two_proportion_p

#: Row label of the overall failure rate in comparison tables.
ANY_FAILURE = "any-failure"


@dataclass
class Comparison:
    """Counts for every ordered model pair on their shared instances.

    ``shared[a, b]`` is the number of instances both models were run on.
    ``k[c, a, b]`` counts the failures of model ``a`` in category ``c`` on the
    instances shared with ``b`` (row ``ANY_FAILURE`` counts every failure).
    ``p[c, a, b]`` is the two-proportion p-value of ``k[c, a, b] / shared``
    against ``k[c, b, a] / shared``, Holm-adjusted across the categories of the pair.
    """

    models: list[str]
    categories: list[str]
    shared: np.ndarray
    k: np.ndarray
    p: np.ndarray

    def pair(self, a: str, b: str) -> dict:
        """Return the comparison of ``a`` and ``b`` as plain numbers (JSON-ready)."""
        i, j = self.models.index(a), self.models.index(b)
        return {
            "shared": int(self.shared[i, j]),
            "rows": [
                {"category": category, "a": int(self.k[c, i, j]), "b": int(self.k[c, j, i]),
                 "p": None if np.isnan(self.p[c, i, j]) else float(self.p[c, i, j])}
                for c, category in enumerate(self.categories)
            ],
        }


def compare_models(rows: pd.DataFrame, failures: pd.DataFrame, categories: list[str]) -> Comparison:
    """Count failures per category for every model pair on shared instances, with tests.

    ``rows`` has dataset, model, instance_id; ``failures`` has the same keys and
    ``group`` (the signature category, NaN for undiagnosed failures).
    """
    instance_codes, _ = pd.factorize(pd.MultiIndex.from_arrays([rows["dataset"], rows["instance_id"]]))
    models = sorted(rows["model"].unique())
    model_index = {name: i for i, name in enumerate(models)}
    model_codes = rows["model"].map(model_index).to_numpy()
    n_instances, n_models = int(instance_codes.max()) + 1 if len(rows) else 0, len(models)

    present = sparse.csr_matrix((np.ones(len(rows)), (instance_codes, model_codes)), shape=(n_instances, n_models))
    shared = (present.T @ present).toarray()

    lookup = pd.Series(instance_codes, index=pd.MultiIndex.from_arrays([rows["dataset"], rows["model"], rows["instance_id"]]))
    fail_codes = lookup.reindex(pd.MultiIndex.from_arrays([failures["dataset"], failures["model"], failures["instance_id"]])).to_numpy()
    fail_models = failures["model"].map(model_index).to_numpy()
    labels = [ANY_FAILURE, *categories]
    k = np.zeros((len(labels), n_models, n_models))
    for c, label in enumerate(labels):
        mask = np.ones(len(failures), dtype=bool) if label == ANY_FAILURE else (failures["group"] == label).to_numpy()
        if not mask.any():
            continue
        failed = sparse.csr_matrix((np.ones(int(mask.sum())), (fail_codes[mask].astype(int), fail_models[mask])),
                                   shape=(n_instances, n_models))
        k[c] = (failed.T @ present).toarray()
    p = pair_p_values(shared, k)
    return Comparison(models=models, categories=labels, shared=shared.astype(int), k=k.astype(int), p=p)


def pair_p_values(shared: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Return Holm-adjusted two-proportion p-values for every pair and category (NaN on the diagonal)."""
    n = shared.astype(float)
    ka, kb = k, np.transpose(k, (0, 2, 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        pooled = (ka + kb) / (2 * n)
        se = np.sqrt(pooled * (1 - pooled) * (2 / n))
        z = (ka - kb) / n / se
        p = 2 * scipy_stats.norm.sf(np.abs(z))
    p = np.where((ka == kb), 1.0, p)
    expected_small = np.minimum(n * pooled, n * (1 - pooled)) < 5
    # Small expected counts: Fisher's exact test. Rare categories make these cells common, so each
    # distinct (k_a, k_b, n) is computed once and the mirrored pair (j, i) reuses it.
    cache: dict[tuple[int, int, int], float] = {}
    for c, i, j in zip(*np.nonzero(expected_small & (ka != kb))):
        counts = (int(ka[c, i, j]), int(kb[c, i, j]), int(n[i, j]))
        key = (min(counts[0], counts[1]), max(counts[0], counts[1]), counts[2])
        if key not in cache:
            cache[key] = two_proportion_p(counts[0], counts[2], counts[1], counts[2])
        p[c, i, j] = cache[key]
    p = np.where(n[None, :, :] > 0, p, np.nan)
    for i in range(n.shape[0]):
        p[:, i, i] = np.nan
    # Pairs without shared instances and the diagonal are NaN in every category, so they stay NaN.
    return holm_adjust_columns(p)
