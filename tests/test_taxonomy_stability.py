"""Stability figures on partitions computed by hand, and a stability run against the stub."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atlas_builder.diagnose.judge import JudgeClient, JudgeStore
from atlas_builder.taxonomy import stability_summary
from atlas_builder.taxonomy.induce import InductionSettings
from atlas_builder.taxonomy.stability import (
    category_consistency,
    kappa,
    measure_stability,
    partition_scores,
    write_report,
)
from openai_stub import OpenAIStub
from test_taxonomy_induce import TITLES, plausible


def test_scores_match_hand_computation():
    # Contingency [[2, 0, 0], [0, 1, 1]]: index 1, expected 2*1/6, max 1.5, so ARI = (1 - 1/3) / (1.5 - 1/3) = 4/7.
    # b refines a, so MI = H(a) = ln 2 and H(b) = 1.5 ln 2: NMI = ln 2 / (1.25 ln 2) = 0.8.
    scores = partition_scores({"1": "x", "2": "x", "3": "y", "4": "y"}, {"1": "p", "2": "p", "3": "q", "4": "r"})

    assert scores["ari"] == pytest.approx(4 / 7)
    assert scores["nmi"] == pytest.approx(0.8)
    assert scores["matched_share"] == pytest.approx(2 / 3)  # x-p (Jaccard 1) and y-q (0.5) of 3 categories


def test_scores_weight_titles_by_failures():
    # Weighted, the partitions are a = [x, x, x, y], b = [p, p, q, q]: the contingency is [[2, 1], [0, 1]].
    scores = partition_scores({"1": "x", "2": "x", "3": "y"}, {"1": "p", "2": "q", "3": "q"}, {"1": 2, "2": 1, "3": 1})

    # index 1, row sums C(3,2)+0 = 3, column sums 1+1 = 2, expected 3*2/6 = 1, max 2.5: ARI = 0.
    assert scores["ari"] == pytest.approx(0.0)


def test_kappa_hand_computed():
    # Observed agreement 3/4; chance 0.5*0.25 + 0.5*0.75 = 0.5; kappa = (0.75 - 0.5) / 0.5.
    value, items = kappa({"1": "x", "2": "x", "3": "y", "4": "y"}, {"1": "x", "2": "y", "3": "y", "4": "y", "5": "x"})

    assert value == pytest.approx(0.5)
    assert items == 4


def test_kappa_single_category_is_full_agreement():
    assert kappa({"1": "x", "2": "x"}, {"1": "x", "2": "x"}) == (1.0, 2)


def test_consistency_per_category():
    reference = {"1": "a", "2": "a", "3": "a", "4": "b"}
    runs = [{"1": "p", "2": "p", "3": "q", "4": "r"}, {"1": "s", "2": "s", "3": "s", "4": "t"}]
    result = category_consistency(reference, runs)

    assert result["a"]["consistency"] == pytest.approx((2 / 3 + 1) / 2)
    assert result["a"]["members"] == 3
    assert result["b"]["consistency"] == 1.0


labels = st.sampled_from("abcd")


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.text("xyz", min_size=1, max_size=3), st.tuples(labels, labels), min_size=1))
def test_scores_bounded_and_symmetric(pairs):
    a = {title: pair[0] for title, pair in pairs.items()}
    b = {title: pair[1] for title, pair in pairs.items()}
    forward, backward = partition_scores(a, b), partition_scores(b, a)

    assert forward["ari"] == pytest.approx(backward["ari"])
    assert forward["nmi"] == pytest.approx(backward["nmi"])
    assert forward["matched_share"] == pytest.approx(backward["matched_share"])
    assert 0.0 <= forward["matched_share"] <= 1.0
    assert partition_scores(a, a)["matched_share"] == 1.0


def test_stability_run_and_summary(tmp_path):
    with OpenAIStub(plausible) as stub, JudgeStore(tmp_path / "judge") as store:
        client = JudgeClient("openai/stub-judge", store, api_base=stub.api_base, api_key="test",
                             max_attempts=1, backoff_base=0.0)
        report = asyncio.run(measure_stability(
            client, Counter(TITLES), InductionSettings(max_category_share=0.5), 3, taxonomy_version="1",
            variant_prompt_set="reworded-v1"))
    write_report(report, tmp_path)
    summary = stability_summary(tmp_path)

    assert report["levels"]["top"]["ari"]["mean"] == pytest.approx(1.0)  # the scripted judge is deterministic
    assert report["levels"]["leaf"]["matched_share"]["min"] == pytest.approx(1.0)
    assert report["variant"]["top"]["pairs"] == 3
    assert [run["seed"] for run in report["runs"]] == [42, 43, 44, 42]
    assert summary["runs"] == 3
    assert summary["categories"]["arithmetic-execution"]["consistency"] == 1.0
    assert json.loads((tmp_path / "taxonomy" / "stability.json").read_text())["format"] == 1


def test_stability_summary_missing_or_invalid(tmp_path):
    assert stability_summary(tmp_path) is None
    (tmp_path / "taxonomy").mkdir()
    (tmp_path / "taxonomy" / "stability.json").write_text("{}")
    assert stability_summary(tmp_path) is None


def test_stability_needs_two_runs():
    with pytest.raises(ValueError, match="at least 2 runs"):
        asyncio.run(measure_stability(None, Counter(), InductionSettings(), 1, taxonomy_version="1"))
