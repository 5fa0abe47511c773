"""The build: results -> diagnose -> taxonomy -> analysis -> site, timed step by step."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TypeVar

from atlas_builder.analysis import Analysis, analyse
from atlas_builder.diagnose import diagnose
from atlas_builder.records import Diagnoses, Results, Taxonomy
from atlas_builder.results import load_results
from atlas_builder.site import Release, SiteReport, render_site
from atlas_builder.taxonomy import assign_categories, load_taxonomy

logger = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class BuildReport:
    """Counts and step timings of one build."""

    results: Results
    diagnoses: Diagnoses
    taxonomy: Taxonomy
    analysis: Analysis
    site: SiteReport | None
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def failures(self) -> int:
        return int((~self.results.rows["correct"]).sum())


def _timed(seconds: dict[str, float], step: str, run: Callable[[], T]) -> T:
    start = time.perf_counter()
    logger.info("step %s: started", step)
    value = run()
    seconds[step] = time.perf_counter() - start
    logger.info("step %s: done in %.2f s", step, seconds[step])
    return value


def prepare(data_dir: Path, seconds: dict[str, float] | None = None) -> tuple[Results, Diagnoses, Taxonomy]:
    """Run the stages up to the taxonomy assignment (what ``export`` and ``build`` share)."""
    seconds = {} if seconds is None else seconds
    results = _timed(seconds, "load", lambda: load_results(data_dir))
    taxonomy = _timed(seconds, "taxonomy-load", lambda: load_taxonomy(data_dir))
    diagnoses = _timed(seconds, "diagnose", lambda: diagnose(results))
    diagnoses = _timed(seconds, "taxonomy-assign", lambda: assign_categories(diagnoses, taxonomy, data_dir))
    return results, diagnoses, taxonomy


def build(data_dir: Path, site_dir: Path, docs_dir: Path, *, release: Release | None = None) -> BuildReport:
    """Run the whole pipeline and build the HTML site into ``site_dir`` (pages name ``release``, default "dev")."""
    seconds: dict[str, float] = {}
    results, diagnoses, taxonomy = prepare(data_dir, seconds)
    analysis = _timed(seconds, "analysis", lambda: analyse(results, diagnoses, taxonomy))
    site = _timed(seconds, "site", lambda: render_site(results, diagnoses, taxonomy, analysis,
                                                      docs_dir=docs_dir, site_dir=site_dir, release=release))
    return BuildReport(results, diagnoses, taxonomy, analysis, site, seconds)
