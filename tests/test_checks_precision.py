"""Regression test: no check may lose precision on either hand-labelled validation sample."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from atlas_builder.diagnose.checks.evaluate import fired_checks, load_sample, measure
from atlas_builder.results import load_results

DATA = Path(__file__).resolve().parents[1] / "data"
VALIDATION = DATA / "validation"
SAMPLES = {"development": VALIDATION / "checks-sample.jsonl", "held_out": VALIDATION / "checks-held-out.jsonl"}
RECORDED = VALIDATION / "checks-metrics.json"

pytestmark = pytest.mark.skipif(
    not all(path.exists() for path in SAMPLES.values()) or not RECORDED.exists(),
    reason="validation samples not in data/",
)


def recorded() -> dict:
    return json.loads(RECORDED.read_text(encoding="utf-8")) if RECORDED.exists() else {}


@pytest.fixture(scope="module")
def measured() -> dict:
    results = load_results(DATA)
    found = {}
    for key, path in SAMPLES.items():
        sample = load_sample(path)
        found[key] = measure(sample, fired_checks(results, sample))
    return found


def cases() -> list[tuple[str, str]]:
    figures = recorded()
    return [(key, name) for key in SAMPLES if key in figures for name in sorted(figures[key]["checks"])]


@pytest.mark.parametrize(("sample", "name"), cases())
def test_precision_not_below_recorded(measured: dict, sample: str, name: str) -> None:
    before = recorded()[sample]["checks"][name]["precision"]
    if before is None:
        pytest.skip(f"{name} never fired on the {sample} sample when the metrics were recorded")
    now = measured[sample][name]["precision"]
    assert now is not None, f"{name} no longer fires on any row of the {sample} sample (recorded precision {before})"
    assert now >= before - 1e-9, (f"{name} precision on the {sample} sample fell from {before} to {now}; "
                                  "fix the check or relabel with a reason")


def test_both_samples_are_recorded() -> None:
    assert {"development", "held_out"} <= set(recorded())


def test_samples_are_large_stratified_and_disjoint() -> None:
    datasets = {path.stem for path in (DATA / "datasets").glob("*.yaml")}
    development = load_sample(SAMPLES["development"])
    held_out = load_sample(SAMPLES["held_out"])
    assert len([row for row in development if row["stratum"] == "random"]) >= 300
    assert len(held_out) >= 200 and all(row["stratum"] == "random" for row in held_out)
    assert {row["dataset"] for row in development if row["stratum"] == "random"} == datasets
    assert {row["dataset"] for row in held_out} == datasets
    keys = {(row["dataset"], row["model"], row["instance_id"]) for row in development}
    assert not keys & {(row["dataset"], row["model"], row["instance_id"]) for row in held_out}
    assert all(row["reason"] for row in held_out), "every held-out row needs a one-line reason"
