"""`atlas release`: build a versioned, citable release of the atlas beside the older ones."""

from __future__ import annotations

import datetime as dt
import logging
import re
from pathlib import Path

import click

from atlas_builder.cli.common import data_option

logger = logging.getLogger(__name__)

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _checked_date(text: str) -> str:
    """Return ``text`` if it is a real calendar date written as YYYY-MM-DD; raise a click error otherwise."""
    if not _ISO_DATE.fullmatch(text):
        raise click.BadParameter(f"{text!r} is not a date in the form YYYY-MM-DD, such as 2024-05-01", param_hint="--date")
    try:
        dt.date.fromisoformat(text)
    except ValueError as error:
        raise click.BadParameter(f"{text!r} is not a real calendar date ({error})", param_hint="--date") from error
    return text


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

    if date is None:
        date = dt.datetime.now(dt.timezone.utc).date().isoformat()
    else:
        date = _checked_date(date)
    if not site_url:
        logger.warning("no --site-url given: permanent URLs and citations of release %s will be relative "
                       "(such as /%s/models/...); pass the public URL of the releases folder to make them absolute",
                       name, name)
    try:
        report = make_release(name, data_dir, out, date=date, site_url=site_url)
    except (ReleaseError, InvalidResultsError, MkDocsBuildError) as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"Release {report.name}: {report.site.pages} pages in {report.site_dir}; bulk download {report.bulk}.")
    click.echo(f"Releases in {out}: {', '.join(report.releases)}")
