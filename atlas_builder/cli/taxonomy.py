"""`atlas taxonomy`: placeholder until its stage lands."""

from __future__ import annotations

import click


@click.command(name="taxonomy")
def command() -> None:
    """Not implemented yet."""
    raise click.ClickException("'atlas taxonomy' is not implemented yet")
