"""`atlas validate`: check result and metadata files, and print every problem with its file, line and fix."""

from __future__ import annotations

from pathlib import Path

import click

from atlas_builder.records import Problem


def github_annotation(problem: Problem) -> str:
    """Format ``problem`` as a GitHub Actions ``::error`` workflow command, escaped as GitHub requires."""

    def data(text: str) -> str:
        return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")

    def prop(text: str) -> str:
        return data(text).replace(":", "%3A").replace(",", "%2C")

    where = f"file={prop(problem.path)}"
    if problem.line is not None:
        where += f",line={problem.line}"
    message = f"{problem.message} ({problem.fix})" if problem.fix else problem.message
    return f"::error {where}::{data(message)}"


@click.command(name="validate")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder with datasets/ and models/ whose metadata the result files are checked against "
                   "(default: the data folder that contains each file). With no PATH, this folder is validated.")
@click.option("--github", is_flag=True, help="Also print each problem as a GitHub Actions ::error annotation.")
def command(paths: tuple[Path, ...], data_dir: Path | None, github: bool) -> None:
    """Check result files, metadata files or whole data folders given as PATH.

    Checks the JSON Lines schema, ids, duplicate ids, score values and the
    dataset's score_range, metadata keys and placeholders left by `atlas import`,
    size limits, and that every file sits where the atlas reads it. Prints each
    problem as `path:line: message (fix)` and exits with status 1 if there is any.
    Never writes a file.
    """
    from atlas_builder.results import validate_paths

    targets = list(paths) or [data_dir or Path("data")]
    problems = validate_paths(targets, data_dir)
    for problem in problems:
        click.echo(str(problem))
        if github:
            click.echo(github_annotation(problem))
    if problems:
        files = len({problem.path for problem in problems})
        click.echo(f"{len(problems)} problem(s) in {files} file(s).", err=True)
        raise SystemExit(1)
    click.echo(f"OK: no problems in {', '.join(str(path) for path in targets)}.")
