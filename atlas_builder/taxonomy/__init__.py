"""Taxonomy stage: the versioned error taxonomy and the assignment of diagnoses to its categories.

Entry point for the build: ``assign_categories(diagnoses, taxonomy, data_dir) -> Diagnoses``.
"""

from __future__ import annotations

from pathlib import Path

from atlas_builder.records import Diagnoses, Taxonomy
from atlas_builder.taxonomy.load import InvalidTaxonomyError, load_taxonomy


def assign_categories(diagnoses: Diagnoses, taxonomy: Taxonomy, data_dir: Path) -> Diagnoses:
    """Give every judge diagnosis a category of ``taxonomy`` from the stored classifications."""
    return diagnoses


__all__ = ["InvalidTaxonomyError", "assign_categories", "load_taxonomy"]
