"""The ``atlas`` command line: one module per verb, registered here."""

from __future__ import annotations

import os

import click

from atlas_builder import __version__, logs

# litellm downloads a price map on import unless this is set; the CLI never lets it reach the network.
os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="atlas")
@click.option("-v", "--verbose", count=True, help="Log more detail (repeat for debug output).")
@click.option("-q", "--quiet", is_flag=True, help="Log warnings and errors only.")
def cli(verbose: int, quiet: bool) -> None:
    """Build ErrorAtlas: explain why language models fail, and publish it as a static site."""
    logs.configure(-1 if quiet else verbose)
    _use_jemalloc_for_arrow()


def _use_jemalloc_for_arrow() -> None:
    """Give Arrow the jemalloc pool unless ``ARROW_DEFAULT_MEMORY_POOL`` chooses one.

    The default pool of the pyarrow 26 wheels, mimalloc, keeps memory that the per-file reads
    of the result cache freed: a warm load of 1,016,750 rows peaked at 2,872 MB with it and at
    2,167 MB with jemalloc (docs/benchmarks.md). A wheel built without jemalloc keeps its default.
    """
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return
    import pyarrow

    try:
        pyarrow.set_memory_pool(pyarrow.jemalloc_memory_pool())
    except NotImplementedError:
        return


def _register() -> None:
    from atlas_builder.cli import build, diagnose, export, importing, release, serve, taxonomy, validate

    for module in (validate, importing, diagnose, taxonomy, build, serve, release, export):
        cli.add_command(module.command)


_register()


def main() -> None:
    """Run the ``atlas`` command line."""
    cli(prog_name="atlas")
