"""`atlas diagnose`: placeholder until its stage lands."""

from __future__ import annotations

import click


@click.command(name="diagnose")
def command() -> None:
    """Not implemented yet."""
    raise click.ClickException("'atlas diagnose' is not implemented yet")
