"""`atlas import`: convert another evaluation tool's per-instance output into atlas result files."""

from __future__ import annotations

from pathlib import Path

import click

from atlas_builder.cli.common import data_option

FORMAT_NAMES = ("errormap-csv", "lm-eval", "helm", "inspect", "openai-evals")


@click.command(name="import")
@click.argument("format_name", metavar="FORMAT", type=click.Choice(FORMAT_NAMES))
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--model", "model", required=True,
              help="Atlas id of the model (lowercase slug); sets the result file name and data/models/<id>.yaml.")
@click.option("--dataset", "dataset", required=True,
              help="Atlas id of the dataset (lowercase slug); sets the results folder and data/datasets/<id>.yaml.")
@data_option
@click.option("--replace", is_flag=True,
              help="Replace an existing data/results/<dataset>/<model>.jsonl with this import. "
                   "Without it, new instances are merged in and differing stored instances stop the import.")
@click.option("--threshold", type=float, default=None,
              help="Score at or above which an instance is correct; written to new dataset metadata. "
                   "errormap-csv default: 0.7 x the mean score. For a lower-is-better metric, rows get "
                   "'correct' = score <= THRESHOLD.")
@click.option("--metric", default=None,
              help="Per-instance metric or scorer to use as the score (default: the source's first one).")
@click.option("--filter", "filter_name", default=None,
              help="lm-eval only: the filter whose output becomes the row's output (default: the first in the file).")
def command(format_name: str, source: Path, model: str, dataset: str, data_dir: Path, replace: bool,
            threshold: float | None, metric: str | None, filter_name: str | None) -> None:
    """Import SOURCE, written by the tool named FORMAT, into DATA as one result file.

    \b
    FORMAT is one of:
      lm-eval       lm-evaluation-harness output folder or samples_<task>_<time>.jsonl
      helm          a HELM run folder (benchmark_output/runs/<suite>/<run>)
      inspect       an Inspect AI log (.json or .eval)
      openai-evals  an oaieval JSON Lines log
      errormap-csv  the ErrorMap per-instance CSV

    Writes data/results/<dataset>/<model>.jsonl, and the dataset and model
    metadata files when they do not exist yet. Values the source does not
    contain are written as "TODO: ..." placeholders that `atlas validate`
    rejects until you replace them. Prints the rows read, written and skipped,
    with the reason for every skip.
    """
    from atlas_builder.importers import ImportFailed, import_results

    try:
        report = import_results(format_name, source, model=model, dataset=dataset, data_dir=data_dir, replace=replace,
                                threshold=threshold, metric=metric, filter_name=filter_name)
    except ImportFailed as error:
        raise click.ClickException(str(error)) from error
    for line in report.lines():
        click.echo(line)
    click.echo(f"Next: fill in any TODO values, then run `atlas validate {data_dir}`.")
