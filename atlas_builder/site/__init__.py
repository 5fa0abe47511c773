"""Site stage: render MkDocs Material sources and build the HTML site.

Entry point: ``render_site(results, diagnoses, taxonomy, analysis, *, docs_dir, site_dir) -> SiteReport``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from atlas_builder.analysis import Analysis
from atlas_builder.records import Diagnoses, Results, Taxonomy
from atlas_builder.site.pages import Release
from atlas_builder.site.render import MkDocsBuildError, render_sources, run_mkdocs

logger = logging.getLogger(__name__)


@dataclass
class SiteReport:
    """What the site stage wrote and how long each step took."""

    docs_dir: Path
    site_dir: Path
    pages: int
    written: int = 0
    unchanged: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


def render_site(results: Results, diagnoses: Diagnoses, taxonomy: Taxonomy, analysis: Analysis, *,
                docs_dir: Path, site_dir: Path, release: Release | None = None, base_config: Path | None = None,
                repo_docs: Path | None = Path("docs"), build_html: bool = True, force: bool = False) -> SiteReport:
    """Write the MkDocs sources into ``docs_dir`` and build the HTML site into ``site_dir``.

    ``release`` names the atlas release shown on every page (default "dev");
    ``repo_docs`` is the folder whose checks.md and result-format.md the
    methodology and submission pages include when they exist. ``force`` renders
    every page and chart although the manifests say their inputs are unchanged.
    """
    release = release or Release()
    tree, pages, config_path, seconds = render_sources(
        results, diagnoses, taxonomy, analysis, docs_dir=Path(docs_dir), site_dir=Path(site_dir), release=release,
        base_config=base_config, repo_docs=repo_docs, force=force)
    if build_html:
        start = time.perf_counter()
        run_mkdocs(config_path)
        seconds["mkdocs"] = time.perf_counter() - start
        logger.info("mkdocs build --strict: %.2f s into %s", seconds["mkdocs"], site_dir)
    return SiteReport(docs_dir=Path(docs_dir), site_dir=Path(site_dir), pages=pages, written=tree.written,
                      unchanged=tree.unchanged, seconds=seconds)


__all__ = ["MkDocsBuildError", "Release", "SiteReport", "render_site"]
