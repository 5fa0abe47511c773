"""Analysis stage: failure signatures, dataset profiles and category counts.

Entry point: ``analyse(results, diagnoses, taxonomy) -> Analysis``.
"""

from __future__ import annotations

from dataclasses import dataclass

from atlas_builder.records import Diagnoses, Results, Taxonomy


@dataclass
class Analysis:
    """Placeholder until the analysis stage lands."""


def analyse(results: Results, diagnoses: Diagnoses, taxonomy: Taxonomy) -> Analysis:
    """Compute every aggregate the site shows."""
    return Analysis()
