"""Options shared by several ``atlas`` commands."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import click

data_option = click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("data"),
    show_default=True,
    help="Folder with datasets/, models/, results/ and the stored judge answers.",
)


def judge_options(required: bool = True) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add the options that set up the judge client (model, endpoint, limits, budgets, prices) to a command."""

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        options = [
            click.option("--judge", "judge", envvar="ATLAS_JUDGE", required=required, metavar="MODEL",
                         help="litellm model name of the judge, such as openai/gpt-4o-mini; default from $ATLAS_JUDGE."),
            click.option("--api-base", metavar="URL", help="Base URL of the judge's API; default: the provider's own."),
            click.option("--api-key-env", metavar="NAME",
                         help="Name of the environment variable that holds the API key; "
                              "default: the provider's usual variable."),
            click.option("--max-concurrency", type=click.IntRange(1, 1000), default=8, show_default=True,
                         help="Maximum number of judge requests in flight at once."),
            click.option("--timeout", type=click.FloatRange(min=0.1), default=120.0, show_default=True,
                         help="Seconds to wait for one answer before the attempt counts as timed out."),
            click.option("--max-attempts", type=click.IntRange(1, 20), default=4, show_default=True,
                         help="Attempts per request (first try plus retries) before it is stored as a judge failure."),
            click.option("--budget-usd", type=click.FloatRange(min=0.0), metavar="X",
                         help="Stop starting new requests once this run's cost in USD would pass X; "
                              "requests in flight finish."),
            click.option("--total-budget-usd", type=click.FloatRange(min=0.0), metavar="X",
                         help="Stop starting new requests once the cost in USD recorded in the store for this judge "
                              "model (all earlier runs) plus this run's would pass X."),
            click.option("--price-in", type=click.FloatRange(min=0.0), metavar="USD",
                         help="Price in USD per million input tokens, used instead of litellm's "
                              "(needed when litellm has no price)."),
            click.option("--price-out", type=click.FloatRange(min=0.0), metavar="USD",
                         help="Price in USD per million output tokens, used instead of litellm's."),
        ]
        for option in reversed(options):
            function = option(function)
        return function

    return decorate


def check_prices(price_in: float | None, price_out: float | None) -> None:
    """Raise a usage error unless both prices or neither are given."""
    if (price_in is None) != (price_out is None):
        raise click.UsageError("give both --price-in and --price-out, or neither")


def api_key_from_env(api_key_env: str | None) -> str | None:
    """Return the API key held by the variable named by ``--api-key-env``, or None when no name is given."""
    if not api_key_env:
        return None
    api_key = os.environ.get(api_key_env)
    if not api_key:
        raise click.BadParameter(f"environment variable {api_key_env} is not set or empty", param_hint="--api-key-env")
    return api_key
