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
    """Run the stages up to the taxonomy assignment (what ``export`` and ``build`` share).

    The results keep model outputs on disk (``Results.outputs`` reads them per
    result file), because outputs are the one text column that rows cannot share
    across models, and few steps need them.
    """
    seconds = {} if seconds is None else seconds
    results = _timed(seconds, "load", lambda: load_results(data_dir, outputs="disk"))
    taxonomy = _timed(seconds, "taxonomy-load", lambda: load_taxonomy(data_dir))
    diagnoses = _timed(seconds, "diagnose", lambda: diagnose(results))
    diagnoses = _timed(seconds, "taxonomy-assign", lambda: assign_categories(diagnoses, taxonomy, data_dir))
    return results, diagnoses, taxonomy


OUTPUT_MARKER = ".atlas-output"


class UnsafeOutputError(Exception):
    """Raised before a build when an output folder could destroy data that the build did not write."""


def check_output_folders(data_dir: Path, **outputs: Path) -> None:
    """Refuse output folders that overlap the data, each other or the working directory.

    The site stage empties its output folders, so each must be new, empty, or
    marked by an earlier build with an ``.atlas-output`` file. On success the
    folders exist and carry that marker.
    """
    data = Path(data_dir).resolve()
    if not data.is_dir():
        raise UnsafeOutputError(f"data folder {data_dir} not found; pass --data with the folder that holds datasets/ and results/")
    resolved = {name: Path(path).resolve() for name, path in outputs.items()}
    cwd = Path.cwd().resolve()
    for name, path in resolved.items():
        option_value = outputs[name]
        if path == data or path.is_relative_to(data) or data.is_relative_to(path):
            raise UnsafeOutputError(f"--{name} {option_value} overlaps the data folder {data_dir}; choose a folder outside it")
        if cwd.is_relative_to(path):
            raise UnsafeOutputError(f"--{name} {option_value} contains the current directory; choose a subfolder such as 'site'")
        for other_name, other in resolved.items():
            if other_name != name and (path == other or path.is_relative_to(other)):
                raise UnsafeOutputError(f"--{name} {option_value} overlaps --{other_name} {outputs[other_name]}; use separate folders")
        if path.is_dir() and any(path.iterdir()) and not (path / OUTPUT_MARKER).exists():
            raise UnsafeOutputError(
                f"--{name} {option_value} is not empty and was not written by atlas build (no {OUTPUT_MARKER} file); "
                "pass a new or empty folder, or delete this one first")
    for path in resolved.values():
        path.mkdir(parents=True, exist_ok=True)
        (path / OUTPUT_MARKER).write_text("Written by atlas build; the next build replaces this folder's content.\n",
                                          encoding="utf-8")


def build(data_dir: Path, site_dir: Path, docs_dir: Path, *, release: Release | None = None,
          force: bool = False) -> BuildReport:
    """Run the whole pipeline and build the HTML site into ``site_dir`` (pages name ``release``, default "dev").

    Pages and charts whose inputs did not change since the last build are kept;
    ``force`` renders and draws everything again.
    """
    check_output_folders(data_dir, out=site_dir, docs=docs_dir)
    seconds: dict[str, float] = {}
    results, diagnoses, taxonomy = prepare(data_dir, seconds)
    analysis = _timed(seconds, "analysis", lambda: analyse(results, diagnoses, taxonomy))
    site = _timed(seconds, "site", lambda: render_site(results, diagnoses, taxonomy, analysis,
                                                      docs_dir=docs_dir, site_dir=site_dir, release=release,
                                                      force=force))
    return BuildReport(results, diagnoses, taxonomy, analysis, site, seconds)
