"""Dataset profiles and category profiles: accuracy, category mixes, counts and examples."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from atlas_builder.analysis.stats import wilson_interval


def accuracy_table(totals: pd.DataFrame) -> pd.DataFrame:
    """Return accuracy per (dataset, model) with a 95 % Wilson interval and the share diagnosed."""
    table = totals.reset_index()
    table["accuracy"] = table["correct"] / table["instances"]
    lo, hi = wilson_interval(table["correct"], table["instances"])
    table["accuracy_lo"], table["accuracy_hi"] = lo, hi
    with np.errstate(invalid="ignore", divide="ignore"):
        table["diagnosed_share"] = np.where(table["failures"] > 0, table["diagnosed"] / table["failures"], np.nan)
    return table


def dataset_mix(counts: pd.DataFrame) -> pd.DataFrame:
    """Return each dataset's category mix (share of its diagnosed failures) beside the atlas average.

    ``diff`` is the dataset's share minus the share over all datasets; the
    interval is the 95 % Wilson interval of the dataset's share.
    """
    per_dataset = counts.groupby(level="dataset").sum()
    atlas = per_dataset.sum()
    atlas_share = atlas / atlas.sum() if atlas.sum() else atlas.astype(float) * np.nan
    frame = per_dataset.stack().rename("k").reset_index()
    frame.columns = ["dataset", "category", "k"]
    frame["diagnosed"] = frame.groupby("dataset")["k"].transform("sum")
    with np.errstate(invalid="ignore", divide="ignore"):
        frame["share"] = np.where(frame["diagnosed"] > 0, frame["k"] / frame["diagnosed"], np.nan)
    lo, hi = wilson_interval(frame["k"], frame["diagnosed"])
    frame["share_lo"], frame["share_hi"] = lo, hi
    frame["atlas_share"] = frame["category"].map(atlas_share).astype(float)
    frame["diff"] = frame["share"] - frame["atlas_share"]
    return frame


def example_order(failures: pd.DataFrame) -> pd.Series:
    """Return a reproducible sort key per failure: the SHA-256 of "dataset/model/instance_id"."""
    keys = failures["dataset"] + "/" + failures["model"] + "/" + failures["instance_id"]
    return keys.map(lambda key: hashlib.sha256(key.encode("utf-8")).hexdigest())


def pick_examples(failures: pd.DataFrame, category_ids: set[str], *, count: int = 3) -> pd.DataFrame:
    """Choose ``count`` failures of the given categories reproducibly: lowest hash, one per model first."""
    chosen = failures[failures["category"].isin(category_ids)]
    if chosen.empty:
        return chosen
    chosen = chosen.assign(order=example_order(chosen)).sort_values("order")
    first_per_model = chosen.drop_duplicates("model")
    picked = pd.concat([first_per_model, chosen]).drop_duplicates(["dataset", "model", "instance_id"])
    return picked.head(count).drop(columns="order")
