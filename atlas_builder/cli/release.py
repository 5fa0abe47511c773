"""`atlas release`: build a versioned, citable release of the atlas beside the older ones."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from atlas_builder.cli.common import data_option


@click.command(name="release")
@click.argument("name")
@data_option
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("build/releases"), show_default=True,
              help="Folder that contains every release as <out>/<name>/, plus versions.json and an index.html that redirects to the newest.")
@click.option("--date", "date", default=None, help="Release date as YYYY-MM-DD (default: today, UTC).")
@click.option("--site-url", default=None,
              help="Public URL of the releases folder, such as https://owner.github.io/atlas; permanent URLs and citations use it.")
def command(name: str, data_dir: Path, out: Path, date: str | None, site_url: str | None) -> None:
    """Build release NAME (such as 2024.1) from DATA into OUT/NAME.

    Every page of a release names it and has a permanent URL under
    SITE_URL/NAME/. Older releases in OUT stay as they are and remain reachable
    through the version list.
    """
    from atlas_builder.results import InvalidResultsError
    from atlas_builder.site import MkDocsBuildError
    from atlas_builder.site.release import ReleaseError, make_release

    date = date or dt.datetime.now(dt.timezone.utc).date().isoformat()
    try:
        report = make_release(name, data_dir, out, date=date, site_url=site_url)
    except (ReleaseError, InvalidResultsError, MkDocsBuildError) as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"Release {report.name}: {report.site.pages} pages in {report.site_dir}; bulk download {report.bulk}.")
    click.echo(f"Releases in {out}: {', '.join(report.releases)}")
