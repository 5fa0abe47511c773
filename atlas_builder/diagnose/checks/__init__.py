"""Deterministic checks that explain mechanical failures without a judge.

Entry point: ``run_checks(results) -> list[Diagnosis]``.
"""

from __future__ import annotations

from atlas_builder.records import Diagnosis, Results


def run_checks(results: Results) -> list[Diagnosis]:
    """Run every check on every failure of ``results`` and return their findings."""
    return []
