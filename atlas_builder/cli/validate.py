"""`atlas validate`: placeholder until its stage lands."""

from __future__ import annotations

import click


@click.command(name="validate")
def command() -> None:
    """Not implemented yet."""
    raise click.ClickException("'atlas validate' is not implemented yet")
