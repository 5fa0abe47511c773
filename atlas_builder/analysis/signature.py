"""Failure signatures: each model's mix of error categories, against the population on the same datasets."""

from __future__ import annotations

import numpy as np
import pandas as pd

from atlas_builder.analysis.stats import wilson_interval

#: A model needs at least this many diagnosed failures before its category shares are shown.
MIN_DIAGNOSED = 20


def pair_totals(rows: pd.DataFrame, failures: pd.DataFrame) -> pd.DataFrame:
    """Count instances, failures and diagnosed failures per (dataset, model).

    ``rows`` has dataset, model, correct; ``failures`` has dataset, model and
    category (NaN for undiagnosed failures).
    """
    grouped = rows.groupby(["dataset", "model"], sort=True, observed=True)["correct"]
    totals = pd.DataFrame({"instances": grouped.size(), "correct": grouped.sum().astype(int)})
    totals["failures"] = totals["instances"] - totals["correct"]
    diagnosed = failures[failures["category"].notna()].groupby(["dataset", "model"], observed=True).size()
    totals["diagnosed"] = diagnosed.reindex(totals.index, fill_value=0).astype(int)
    return totals


def category_counts(failures: pd.DataFrame, column: str, categories: list[str]) -> pd.DataFrame:
    """Return a (dataset, model) x category table of diagnosed failure counts, by ``column``."""
    diagnosed = failures[failures[column].notna()]
    table = diagnosed.groupby(["dataset", "model", column], observed=True).size().unstack(column, fill_value=0)
    return table.reindex(columns=categories, fill_value=0).astype(int)


def signatures(totals: pd.DataFrame, counts: pd.DataFrame, *, min_diagnosed: int = MIN_DIAGNOSED) -> pd.DataFrame:
    """Compute every model's failure signature with 95 % Wilson intervals.

    One row per (model, category) with ``k`` (failures in the category),
    ``diagnosed``, ``instances``, ``share`` = k / diagnosed and ``rate`` = k /
    instances with their intervals, the population values ``pop_share`` and
    ``pop_rate`` of all *other* models on the datasets this model was run on,
    and ``flag``: "over" or "under" only where the model's interval excludes
    the population value, "suppressed" when the model has fewer than
    ``min_diagnosed`` diagnosed failures, otherwise "".
    """
    counts = counts.reindex(totals.index, fill_value=0)
    categories = list(counts.columns)
    models = sorted(totals.index.get_level_values("model").unique())
    datasets = sorted(totals.index.get_level_values("dataset").unique())

    # Per-model sums and per-dataset sums over all models.
    own_k = counts.groupby(level="model").sum().reindex(models, fill_value=0)
    own = totals.groupby(level="model")[["instances", "diagnosed", "failures"]].sum().reindex(models, fill_value=0)
    dataset_k = counts.groupby(level="dataset").sum().reindex(datasets, fill_value=0)
    dataset_tot = totals.groupby(level="dataset")[["instances", "diagnosed"]].sum().reindex(datasets, fill_value=0)

    # ran[m, d] = 1 when model m has results on dataset d; the population of m is every
    # other model's results on those datasets.
    ran = (totals.assign(one=1)["one"].unstack("dataset", fill_value=0)
           .reindex(index=models, columns=datasets, fill_value=0).to_numpy(dtype=float))
    pop_k = ran @ dataset_k.to_numpy(dtype=float) - own_k.to_numpy(dtype=float)
    pop_diag = ran @ dataset_tot["diagnosed"].to_numpy(dtype=float) - own["diagnosed"].to_numpy(dtype=float)
    pop_inst = ran @ dataset_tot["instances"].to_numpy(dtype=float) - own["instances"].to_numpy(dtype=float)

    k = own_k.to_numpy(dtype=float)
    diag = np.repeat(own["diagnosed"].to_numpy(dtype=float)[:, None], len(categories), axis=1)
    inst = np.repeat(own["instances"].to_numpy(dtype=float)[:, None], len(categories), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(diag > 0, k / diag, np.nan)
        rate = np.where(inst > 0, k / inst, np.nan)
        pop_share = np.where(pop_diag[:, None] > 0, pop_k / pop_diag[:, None], np.nan)
        pop_rate = np.where(pop_inst[:, None] > 0, pop_k / pop_inst[:, None], np.nan)
    share_lo, share_hi = wilson_interval(k, diag)
    rate_lo, rate_hi = wilson_interval(k, inst)

    suppressed = diag < min_diagnosed
    over = (share_lo > pop_share) & ~suppressed
    under = (share_hi < pop_share) & ~suppressed
    flag = np.where(suppressed, "suppressed", np.where(over, "over", np.where(under, "under", "")))

    frame = pd.DataFrame({
        "model": np.repeat(models, len(categories)),
        "category": np.tile(categories, len(models)),
        "k": k.ravel().astype(int),
        "diagnosed": diag.ravel().astype(int),
        "instances": inst.ravel().astype(int),
        "failures": np.repeat(own["failures"].to_numpy(), len(categories)).astype(int),
        "share": share.ravel(), "share_lo": share_lo.ravel(), "share_hi": share_hi.ravel(),
        "rate": rate.ravel(), "rate_lo": rate_lo.ravel(), "rate_hi": rate_hi.ravel(),
        "pop_share": pop_share.ravel(), "pop_rate": pop_rate.ravel(),
        "flag": flag.ravel(),
    })
    return frame


def nearest_models(signature: pd.DataFrame, *, count: int = 5) -> dict[str, list[tuple[str, float]]]:
    """Return each model's ``count`` most similar models by cosine similarity of category shares.

    Models whose signature is suppressed (too few diagnosed failures) have no neighbours and are
    nobody's neighbour.
    """
    usable = signature[signature["flag"] != "suppressed"]
    shares = usable.pivot(index="model", columns="category", values="share").fillna(0.0)
    if shares.empty:
        return {}
    vectors = shares.to_numpy()
    norms = np.linalg.norm(vectors, axis=1)
    norms[norms == 0] = 1.0
    unit = vectors / norms[:, None]
    similarity = unit @ unit.T
    names = list(shares.index)
    nearest: dict[str, list[tuple[str, float]]] = {}
    for i, name in enumerate(names):
        # Stable order: highest similarity first, then model id.
        order = sorted((j for j in range(len(names)) if j != i), key=lambda j: (-round(similarity[i, j], 12), names[j]))
        nearest[name] = [(names[j], float(similarity[i, j])) for j in order[:count]]
    return nearest
