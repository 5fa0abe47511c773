"""Site stage: render MkDocs Material sources and build the HTML site.

Entry point: ``render_site(results, diagnoses, taxonomy, analysis, *, docs_dir, site_dir) -> SiteReport``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from atlas_builder.analysis import Analysis
from atlas_builder.records import Diagnoses, Results, Taxonomy


@dataclass
class SiteReport:
    """What the site stage wrote."""

    docs_dir: Path
    site_dir: Path
    pages: int


def render_site(results: Results, diagnoses: Diagnoses, taxonomy: Taxonomy, analysis: Analysis, *,
                docs_dir: Path, site_dir: Path) -> SiteReport:
    """Write the Markdown sources into ``docs_dir`` and build the HTML site into ``site_dir``."""
    raise NotImplementedError("the site stage has not landed yet")
