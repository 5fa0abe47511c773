"""`atlas release`: placeholder until its stage lands."""

from __future__ import annotations

import click


@click.command(name="release")
def command() -> None:
    """Not implemented yet."""
    raise click.ClickException("'atlas release' is not implemented yet")
