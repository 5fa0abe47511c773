"""Agreement figures of the taxonomy stage (``stability_summary``) as rows the templates print."""

from __future__ import annotations

import math
from typing import Any

#: One sentence per figure, shown beside the numbers.
MEANINGS = {
    "ari": "Adjusted Rand index: how often two runs put a pair of failures together or apart alike, "
           "corrected for chance (1 identical, 0 no better than chance).",
    "nmi": "Normalised mutual information: how much knowing a failure's category in one run tells about its "
           "category in the other (1 identical, 0 independent).",
    "matched_share": "One-to-one matched share: the share of failures in categories that pair up one-to-one "
                     "between two runs.",
    "kappa": "Cohen's kappa: agreement of two classifications of the same failures beyond chance "
             "(1 perfect, 0 chance level).",
}
METRICS = ("ari", "nmi", "matched_share")
LEVEL_NAMES = {"top": "top level", "leaf": "leaf level"}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return None if math.isnan(value) else float(value)


def _level_rows(levels: Any, against: str) -> list[dict[str, Any]]:
    rows = []
    for level, figures in (levels or {}).items() if isinstance(levels, dict) else ():
        if not isinstance(figures, dict):
            continue
        row: dict[str, Any] = {"level": LEVEL_NAMES.get(level, str(level)), "against": against,
                               "pairs": figures.get("pairs")}
        for metric in METRICS:
            value = figures.get(metric) if isinstance(figures.get(metric), dict) else {}
            row[metric] = {"mean": _number(value.get("mean")), "min": _number(value.get("min"))}
        rows.append(row)
    return rows


def agreement_context(summary: Any) -> dict[str, Any]:
    """Return the methodology page's agreement section from a stability summary (None: not measured)."""
    if not isinstance(summary, dict):
        return {"measured": False, "meanings": MEANINGS}
    rows = _level_rows(summary.get("levels"), "other seeds and batch orders")
    rows += _level_rows(summary.get("variant"), "variant judge or prompt")
    kappas = []
    for entry in summary.get("kappa") or []:
        if isinstance(entry, dict):
            between = entry.get("between")
            label = " and ".join(map(str, between)) if isinstance(between, (list, tuple)) else str(between or "")
            kappas.append({"between": label, "kappa": _number(entry.get("kappa")), "failures": entry.get("items")})
    return {"measured": True, "runs": summary.get("runs"), "failures": summary.get("failures"),
            "version": summary.get("taxonomy_version"), "created": summary.get("created"),
            "reference": summary.get("consistency_reference"), "rows": rows, "kappa": kappas,
            "meanings": MEANINGS}


def category_agreement(summary: Any, category_id: str) -> dict[str, Any]:
    """Return the consistency of one category's members, or a "not measured" marker."""
    if not isinstance(summary, dict):
        return {"measured": False}
    figures = (summary.get("categories") or {}).get(category_id)
    if not isinstance(figures, dict) or _number(figures.get("consistency")) is None:
        return {"measured": False, "runs": summary.get("runs"),
                "not_measured": "not measured for this category: the last stability run "
                                f"(taxonomy v{summary.get('taxonomy_version', '?')}) has no figure for it"}
    return {"measured": True, "consistency": _number(figures["consistency"]), "members": figures.get("members"),
            "runs": summary.get("runs"), "version": summary.get("taxonomy_version"),
            "reference": summary.get("consistency_reference")}
