"""`atlas build`: run the whole pipeline offline and write the HTML site."""

from __future__ import annotations

import time
from pathlib import Path

import click

from atlas_builder.cli.common import data_option


@click.command(name="build")
@data_option
@click.option("--out", "site_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("site"),
              show_default=True, help="Folder that receives the built HTML site (replaced on each build).")
@click.option("--docs", "docs_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("site_src"),
              show_default=True, help="Folder that receives the generated MkDocs sources.")
@click.option("--force", is_flag=True,
              help="Render every page and draw every chart again, even those whose inputs did not change.")
def command(data_dir: Path, site_dir: Path, docs_dir: Path, force: bool) -> None:
    """Build the atlas site from DATA: read results, diagnose, classify, analyse, render.

    The build never calls the judge: it uses the stored judge answers and the
    deterministic checks, and reports how many failures are still undiagnosed
    (run `atlas diagnose` to explain them).

    Parsed result files, check findings and matched judge answers are cached
    under the folder that ATLAS_CACHE_DIR names (default: .atlas-cache in the
    current directory), so a rebuild reads and checks only the result files
    that changed and matches only the judge answers whose inputs changed.
    ATLAS_CACHE_DIR=off turns the caches off; deleting the folder is safe.
    """
    from atlas_builder.pipeline import UnsafeOutputError, build
    from atlas_builder.results import InvalidResultsError
    from atlas_builder.site import MkDocsBuildError
    from atlas_builder.taxonomy import InvalidTaxonomyError

    start = time.perf_counter()
    try:
        report = build(data_dir, site_dir, docs_dir, force=force)
    except (InvalidResultsError, InvalidTaxonomyError) as error:
        raise click.ClickException(f"{error}\nRun `atlas validate {data_dir}` for the full list.") from error
    except UnsafeOutputError as error:
        raise click.ClickException(str(error)) from error
    except MkDocsBuildError as error:
        raise click.ClickException(str(error)) from error
    results, diagnoses = report.results, report.diagnoses
    diagnosed = len(diagnoses.primary)
    click.echo(
        f"Built {report.site.pages if report.site else 0} pages into {site_dir} in {time.perf_counter() - start:.1f} s: "
        f"{len(results.models)} models, {len(results.datasets)} datasets, {len(results.rows):,} instances, "
        f"{report.failures:,} failures, {diagnosed:,} diagnosed."
    )
    click.echo(f"{len(diagnoses.undiagnosed):,} failures are still undiagnosed; run `atlas diagnose --judge MODEL` to explain them.")

