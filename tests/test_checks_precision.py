"""Regression test: no check may lose precision on the hand-labelled validation sample."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from atlas_builder.diagnose.checks.evaluate import fired_checks, load_sample, measure
from atlas_builder.results import load_results

DATA = Path(__file__).resolve().parents[1] / "data"
SAMPLE = DATA / "validation" / "checks-sample.jsonl"
RECORDED = DATA / "validation" / "checks-metrics.json"

pytestmark = pytest.mark.skipif(not SAMPLE.exists() or not RECORDED.exists(), reason="validation sample not in data/")


@pytest.fixture(scope="module")
def measured() -> dict:
    results = load_results(DATA)
    sample = load_sample(SAMPLE)
    return measure(sample, fired_checks(results, sample))


def recorded_checks() -> list[str]:
    if not RECORDED.exists():
        return []
    return sorted(json.loads(RECORDED.read_text(encoding="utf-8"))["checks"])


@pytest.mark.parametrize("name", recorded_checks())
def test_precision_not_below_recorded(measured: dict, name: str) -> None:
    recorded = json.loads(RECORDED.read_text(encoding="utf-8"))["checks"][name]["precision"]
    if recorded is None:
        pytest.skip(f"{name} never fired on the sample when the metrics were recorded")
    now = measured[name]["precision"]
    assert now is not None, f"{name} no longer fires on any sampled row (recorded precision {recorded})"
    assert now >= recorded - 1e-9, f"{name} precision fell from {recorded} to {now}; fix the check or relabel with a reason"


def test_sample_is_large_and_stratified() -> None:
    sample = load_sample(SAMPLE)
    failures = [row for row in sample if row["stratum"] == "random"]
    assert len(failures) >= 300
    assert {row["dataset"] for row in failures} == {path.stem for path in (DATA / "datasets").glob("*.yaml")}
