"""`atlas import`: placeholder until its stage lands."""

from __future__ import annotations

import click


@click.command(name="import")
def command() -> None:
    """Not implemented yet."""
    raise click.ClickException("'atlas import' is not implemented yet")
