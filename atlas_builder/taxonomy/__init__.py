"""Taxonomy stage: the versioned error taxonomy and the assignment of diagnoses to its categories.

Entry point for the build: ``assign_categories(diagnoses, taxonomy, data_dir) -> Diagnoses``.
It reads stored classifications only and never calls the judge; ``atlas taxonomy``
induces, classifies, revises and measures stability (modules ``induce``,
``classify``, ``revise``, ``stability``).

For the site:

- ``Taxonomy`` (``load_taxonomy``) holds the hierarchy: ``children(None)`` for the
  top level, ``children(id)`` below, ``top_level(id)``; ``mapping`` maps the ids
  of the previous version to this one's, and ``resolve_category`` follows
  mappings across several versions.
- ``stability_summary(data_dir)`` returns the agreement figures of the last
  stability run, or None when none was run. Keys: ``taxonomy_version``,
  ``runs``, ``failures``, ``levels`` (per level ``"top"``/``"leaf"``: mean and
  min of ``ari``, ``nmi`` and ``matched_share`` over pairs of runs),
  ``variant`` (the same, between main and variant runs, or None), ``kappa``
  (list of ``{"between", "kappa", "items"}``) and ``categories`` (category id ->
  ``{"consistency", "members"}``: the mean share of the category's failures
  that a re-induced run keeps together).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from atlas_builder.records import Diagnoses, Taxonomy
from atlas_builder.taxonomy.classify import load_assignments, other_shares, warn_if_revision_due
from atlas_builder.taxonomy.load import InvalidTaxonomyError, load_taxonomy
from atlas_builder.taxonomy.revise import resolve_category
from atlas_builder.taxonomy.stability import stability_summary
from atlas_builder.taxonomy.titles import title_hash

logger = logging.getLogger(__name__)


def assign_categories(diagnoses: Diagnoses, taxonomy: Taxonomy, data_dir: Path) -> Diagnoses:
    """Give every judge diagnosis a category of ``taxonomy`` from the stored classifications.

    A judge diagnosis whose title has no stored assignment for this version
    gets category None and is counted. Check diagnoses keep the category their
    check set. Logs a warning per dataset whose share of "Other" is so high
    that the taxonomy needs a revision.
    """
    stored = load_assignments(data_dir, taxonomy.version)
    replaced: dict[int, object] = {}
    unclassified: set[str] = set()
    stale: set[str] = set()
    items = []
    for item in diagnoses.items:
        if item.kind == "judge":
            assignment = stored.get(title_hash(item.title))
            category = None
            if assignment is None:
                unclassified.add(item.title)
            elif assignment.category not in taxonomy.categories:
                stale.add(assignment.category)
            else:
                category = assignment.category
            new = replace(item, category=category)
            replaced[id(item)] = new
            item = new
        items.append(item)
    primary = {key: replaced.get(id(item), item) for key, item in diagnoses.primary.items()}

    if unclassified:
        logger.warning(
            "%d distinct judge titles are not yet classified into taxonomy v%s; "
            "run `atlas taxonomy classify`", len(unclassified), taxonomy.version,
        )
    if stale:
        logger.warning("stored assignments of taxonomy v%s name unknown categories %s; rerun `atlas taxonomy classify`",
                       taxonomy.version, sorted(stale)[:10])
    result = Diagnoses(items=items, primary=primary, undiagnosed=list(diagnoses.undiagnosed),
                       suspect_references=dict(diagnoses.suspect_references),
                       accidental_passes=list(diagnoses.accidental_passes))
    warn_if_revision_due(other_shares(result), taxonomy.version)
    return result


__all__ = [
    "InvalidTaxonomyError", "assign_categories", "load_taxonomy", "resolve_category", "stability_summary",
]
