"""`atlas serve`: placeholder until its stage lands."""

from __future__ import annotations

import click


@click.command(name="serve")
def command() -> None:
    """Not implemented yet."""
    raise click.ClickException("'atlas serve' is not implemented yet")
