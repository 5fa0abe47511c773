"""`atlas export`: write atlas data as machine-readable records on stdout."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from atlas_builder.cli.common import data_option


@click.group(name="export")
def command() -> None:
    """Export atlas data as JSON Lines on stdout (logs go to stderr)."""


@command.command(name="diagnoses")
@data_option
@click.option("--all", "include_all", is_flag=True,
              help="Write every diagnosis (check findings and judge answers), not only the one that decides each failure's category.")
def diagnoses_command(data_dir: Path, include_all: bool) -> None:
    """Write one JSON line per diagnosed failure.

    Fields: dataset, model, instance_id, diagnoser (a check's name or the judge
    model), kind, title, summary, category, category_name, explains_fully,
    evidence and prompt_version.
    """
    from atlas_builder.pipeline import prepare
    from atlas_builder.results import InvalidResultsError

    try:
        _, diagnoses, taxonomy = prepare(data_dir)
    except InvalidResultsError as error:
        raise click.ClickException(str(error)) from error
    chosen = diagnoses.items if include_all else diagnoses.primary.values()
    for item in sorted(chosen, key=lambda d: (d.dataset, d.model, d.instance_id, d.diagnoser)):
        category = taxonomy.categories.get(item.category) if item.category else None
        record = {
            "dataset": item.dataset,
            "model": item.model,
            "instance_id": item.instance_id,
            "diagnoser": item.diagnoser,
            "kind": item.kind,
            "title": item.title,
            "summary": item.summary,
            "category": item.category,
            "category_name": category.name if category else None,
            "explains_fully": item.explains_fully,
            "evidence": [{"field": span.field, "start": span.start, "end": span.end, "text": span.text} for span in item.evidence],
            "prompt_version": item.prompt_version,
        }
        try:
            click.echo(json.dumps(record, ensure_ascii=False))
        except BrokenPipeError:
            # The reader stopped early (as `| head` does): that is not an error of the export.
            sys.stdout = None
            return
