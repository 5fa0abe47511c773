"""`atlas taxonomy`: induce, classify into, revise, measure and show the error taxonomy."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import functools
import logging
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterator

import click
import yaml

from atlas_builder.cli.common import api_key_from_env, check_prices, data_option, judge_options

logger = logging.getLogger(__name__)


def induction_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """Add the induction settings to a command."""
    options = [
        click.option("--seed", type=int, default=42, show_default=True, help="Seed of the title shuffle before batching."),
        click.option("--propose-batch", type=click.IntRange(1), default=500, show_default=True,
                     help="Distinct titles per request that proposes or updates categories."),
        click.option("--classify-batch", type=click.IntRange(1), default=50, show_default=True,
                     help="Titles per classification request."),
        click.option("--max-categories", type=click.IntRange(1), default=25, show_default=True,
                     help="Maximum categories per level."),
        click.option("--max-category-share", type=click.FloatRange(0, 1, min_open=True), default=0.10,
                     show_default=True, help="A level also gets at most this share of its distinct titles as categories (rounded up)."),
        click.option("--min-split-titles", type=click.IntRange(1), default=6, show_default=True,
                     help="A category with fewer distinct titles is not split further."),
        click.option("--max-depth", type=click.IntRange(0), default=2, show_default=True,
                     help="How many times a category may be split again below the top level."),
        click.option("--rare-share", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True,
                     help="Fold categories with less than this share of their level's failures into Other (0: off)."),
        click.option("--prompt-set", default="v1", show_default=True, help="Prompt set: v1 or reworded-v1."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _settings(options: dict[str, Any]) -> Any:
    from atlas_builder.taxonomy.induce import InductionSettings

    try:
        return InductionSettings(
            seed=options["seed"], propose_batch=options["propose_batch"], classify_batch=options["classify_batch"],
            max_categories=options["max_categories"], max_category_share=options["max_category_share"],
            min_split_titles=options["min_split_titles"], max_depth=options["max_depth"],
            rare_share=options["rare_share"], prompt_set=options["prompt_set"],
        )
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


@contextlib.contextmanager
def open_judges(data_dir: Path, options: dict[str, Any], extra_models: tuple[str | None, ...] = ()) -> Iterator[list[Any]]:
    """Open the judge store with its write lock and yield a client per model (the main judge first)."""
    from atlas_builder.diagnose.judge import JudgeClient, JudgeConfigError, JudgeStore, StoreLockedError

    check_prices(options["price_in"], options["price_out"])
    api_key = api_key_from_env(options["api_key_env"])
    store = JudgeStore.for_data(data_dir)
    try:
        store.lock()
        clients = [
            JudgeClient(model, store, api_base=options["api_base"], api_key=api_key,
                        max_concurrency=options["max_concurrency"], timeout=options["timeout"],
                        max_attempts=options["max_attempts"], budget_usd=options["budget_usd"],
                        total_budget_usd=options["total_budget_usd"],
                        price_in=options["price_in"], price_out=options["price_out"])
            for model in (options["judge"], *extra_models) if model is not None
        ]
        yield clients
    except (StoreLockedError, JudgeConfigError) as error:
        raise click.ClickException(str(error)) from None
    finally:
        store.close()


def _run(coroutine: Any) -> Any:
    from atlas_builder.diagnose.judge import BudgetExceeded
    from atlas_builder.taxonomy.induce import InductionError
    from atlas_builder.taxonomy.judging import JudgeUnusableError

    try:
        return asyncio.run(coroutine)
    except BudgetExceeded as error:
        raise click.ClickException(f"{error}; answers so far are stored, rerun with a larger --budget-usd") from None
    except (InductionError, JudgeUnusableError) as error:
        raise click.ClickException(str(error)) from None


def _load(data_dir: Path, version: str | None = None) -> tuple[Any, Any]:
    """Return the published (or given) taxonomy and the failures' diagnoses."""
    from atlas_builder.diagnose import diagnose
    from atlas_builder.results.load import InvalidResultsError, load_results
    from atlas_builder.taxonomy import InvalidTaxonomyError, load_taxonomy

    try:
        taxonomy = load_taxonomy(data_dir, version)
        results = load_results(data_dir)
    except (InvalidTaxonomyError, InvalidResultsError) as error:
        raise click.ClickException(f"{error}\nFix the data, then run the command again.") from None
    return taxonomy, diagnose(results)


def _title_counts(diagnoses: Any) -> Any:
    from atlas_builder.taxonomy.titles import title_counts

    counts = title_counts(diagnoses)
    if not counts.counts:
        raise click.ClickException("no judge diagnoses found; run `atlas diagnose` first so there are error titles")
    return counts


def _with_options(function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def wrapper(**options: Any) -> Any:
        return function(options)

    return wrapper


@click.group(name="taxonomy")
def command() -> None:
    """Induce, classify into, revise and measure the error taxonomy (data/taxonomy/)."""


@command.command(name="induce")
@data_option
@judge_options()
@induction_options
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Draft file to write; default DATA/taxonomy/drafts/induced-seed<SEED>.yaml.")
@_with_options
def induce_command(options: dict[str, Any]) -> None:
    """Induce a draft taxonomy from the stored judge titles.

    The judge proposes categories over shuffled batches of titles, reviews
    them, classifies every title, and splits large categories again. The draft
    and its title assignments are written next to each other; publish it with
    `atlas taxonomy revise --draft FILE`.
    """
    from atlas_builder.taxonomy.induce import drafts_dir, induce, write_draft

    data_dir = options["data_dir"]
    settings = _settings(options)
    _, diagnoses = _load(data_dir)
    counts = _title_counts(diagnoses)
    click.echo(f"{len(counts.counts)} distinct titles from {counts.failures} judge-diagnosed failures")
    with open_judges(data_dir, options) as (judge,):
        induction = _run(induce(judge, counts.counts, settings))
    output = options["output"] or drafts_dir(data_dir) / f"induced-seed{settings.seed}.yaml"
    draft, assignments = write_draft(induction, output)
    click.echo(f"{len(induction.categories)} categories; draft written to {draft} and {assignments}")
    _echo_tree(induction.to_taxonomy("draft"), Counter(
        {category: 0 for category in induction.categories}) + _failures_per_category(induction))


def _failures_per_category(induction: Any) -> Counter:
    totals: Counter = Counter()
    for title, category in induction.assignments.items():
        totals[category] += induction.counts[title]
    return totals


@command.command(name="classify")
@data_option
@judge_options()
@click.option("--version", "version", metavar="N", help="Taxonomy version to classify into; default: the published (highest) one.")
@click.option("--classify-batch", type=click.IntRange(1), default=50, show_default=True, help="Titles per classification request.")
@click.option("--prompt-set", default="v1", show_default=True, help="Prompt set whose classification prompt is used.")
@click.option("--reclassify", is_flag=True, help="Classify titles again even when an assignment is stored.")
@click.option("--revision-threshold", type=click.FloatRange(0, 1), default=0.05, show_default=True,
              help="Warn that a revision is due when a dataset's share of failures in Other is above this.")
@_with_options
def classify_command(options: dict[str, Any]) -> None:
    """Classify judge titles into a frozen taxonomy version.

    Assignments are stored in DATA/taxonomy/assignments/v<N>.jsonl, one line
    per distinct title; titles already stored are skipped. Prints the share of
    each dataset's failures that landed in Other.
    """
    from dataclasses import replace

    from atlas_builder.taxonomy.classify import (
        classify_into_taxonomy,
        load_assignments,
        other_shares,
        save_assignments,
        warn_if_revision_due,
    )
    from atlas_builder.taxonomy.prompts import prompt_set
    from atlas_builder.taxonomy.titles import title_hash

    data_dir = options["data_dir"]
    taxonomy, diagnoses = _load(data_dir, options["version"])
    counts = _title_counts(diagnoses)
    stored = load_assignments(data_dir, taxonomy.version)
    pending = [title for title in counts.counts if options["reclassify"] or title_hash(title) not in stored]
    click.echo(f"taxonomy v{taxonomy.version}: {len(counts.counts)} distinct titles, {len(pending)} to classify")
    if pending:
        try:
            prompt_version = prompt_set(options["prompt_set"]).classify
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--prompt-set") from None
        with open_judges(data_dir, options) as (judge,):
            assignments, failed = _run(classify_into_taxonomy(
                judge, pending, taxonomy, batch_size=options["classify_batch"], prompt_version=prompt_version))
        path = save_assignments(data_dir, taxonomy.version, assignments.values())
        click.echo(f"stored {len(assignments)} assignments in {path}; {len(failed)} titles got no usable answer")
        stored = load_assignments(data_dir, taxonomy.version)

    classified = {key: replace(item, category=stored[title_hash(item.title)].category)
                  for key, item in diagnoses.primary.items()
                  if item.kind == "judge" and title_hash(item.title) in stored}
    diagnoses.primary.update(classified)
    shares = other_shares(diagnoses)
    for item in shares.values():
        click.echo(f"  {item.dataset}: {item.other} of {item.classified} classified judge failures in Other "
                   f"({100 * item.share:.1f}%)")
    due = warn_if_revision_due(shares, taxonomy.version, options["revision_threshold"])
    if due:
        click.echo(f"a revision is due: {len(due)} dataset(s) above {100 * options['revision_threshold']:.1f}% in Other")


@command.command(name="revise")
@data_option
@judge_options(required=False)
@click.option("--plan", "plan_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="YAML revision plan with rename, merge, split, retire and add operations.")
@click.option("--draft", "draft_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Draft from `atlas taxonomy induce`; ids and mapping are derived from the title assignments.")
@click.option("--dry-run", is_flag=True, help="Print the changes and write nothing.")
@_with_options
def revise_command(options: dict[str, Any]) -> None:
    """Write the next taxonomy version and map every old id to its successors.

    Give exactly one of --plan and --draft. With --draft and --judge, titles
    not yet classified into the current version are classified first, so the
    mapping sees all failures.
    """
    from atlas_builder.taxonomy.classify import classify_into_taxonomy, load_assignments, save_assignments
    from atlas_builder.taxonomy.load import InvalidTaxonomyError
    from atlas_builder.taxonomy.revise import (
        RevisionError,
        apply_plan,
        change_kinds,
        draft_from_files,
        revise_from_draft,
        write_taxonomy,
    )
    from atlas_builder.taxonomy.titles import title_hash

    data_dir = options["data_dir"]
    if (options["plan_file"] is None) == (options["draft_file"] is None):
        raise click.UsageError("give exactly one of --plan and --draft")
    try:
        if options["plan_file"] is not None:
            from atlas_builder.taxonomy import load_taxonomy

            current = load_taxonomy(data_dir)
            plan = yaml.safe_load(options["plan_file"].read_text(encoding="utf-8")) or {}
            if not isinstance(plan, dict):
                raise click.BadParameter("the plan must be a YAML mapping", param_hint="--plan")
            nxt = apply_plan(current, plan)
        else:
            current, diagnoses = _load(data_dir)
            counts = _title_counts(diagnoses)
            draft, draft_assignments = draft_from_files(options["draft_file"])
            stored = load_assignments(data_dir, current.version)
            missing = [title for title in counts.counts if title_hash(title) not in stored]
            if missing and options["judge"]:
                with open_judges(data_dir, options) as (judge,):
                    assignments, _ = _run(classify_into_taxonomy(judge, missing, current))
                save_assignments(data_dir, current.version, assignments.values())
                stored = load_assignments(data_dir, current.version)
            elif missing:
                click.echo(f"{len(missing)} titles are not classified into v{current.version}; the mapping ignores "
                           "them (give --judge to classify them first)")
            old = {item.title: item.category for item in stored.values()}
            nxt = revise_from_draft(current, draft, old, draft_assignments, counts.counts)
    except (RevisionError, InvalidTaxonomyError) as error:
        raise click.ClickException(str(error)) from None

    kinds = change_kinds(current, nxt)
    for old, kind in sorted(kinds.items()):
        if kind != "kept":
            click.echo(f"  {old}: {kind} -> {', '.join(nxt.mapping.get(old, ())) or '(nothing)'}")
    click.echo(f"v{current.version} -> v{nxt.version}: " + ", ".join(
        f"{sum(k == kind for k in kinds.values())} {kind}" for kind in ("kept", "renamed", "merged", "split", "retired")))
    if options["dry_run"]:
        return
    header = (f"# ErrorAtlas taxonomy, version {nxt.version}, revised from version {current.version}.\n"
              "# mapping: every id of the previous version -> its ids in this version ([] = retired).\n")
    try:
        path = write_taxonomy(nxt, data_dir, header)
    except (RevisionError, InvalidTaxonomyError) as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"wrote {path}; classify titles into it with `atlas taxonomy classify`")


@command.command(name="stability")
@data_option
@judge_options()
@induction_options
@click.option("--runs", type=click.IntRange(2), default=3, show_default=True,
              help="Number of induction runs with seeds SEED, SEED+1, ...")
@click.option("--variant-judge", metavar="MODEL", help="Also induce with this second judge and compare it with the main runs.")
@click.option("--variant-prompt-set", metavar="NAME", help="Also induce with this prompt set (such as reworded-v1).")
@click.option("--variant-runs", type=click.IntRange(1), default=1, show_default=True, help="Number of variant runs.")
@click.option("--second-judge", metavar="MODEL",
              help="Classify the titles into the published version with this judge too, and report Cohen's kappa.")
@click.option("--labels", "labels_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CSV with columns title,category (hand-labelled ids of the published version); reports the judge's kappa against it.")
@_with_options
def stability_command(options: dict[str, Any]) -> None:
    """Re-induce the taxonomy several times and report how much the runs agree.

    Writes DATA/taxonomy/stability.json with the adjusted Rand index,
    normalised mutual information and one-to-one matched share of categories
    between runs (top level and deepest level), per-category consistency, and
    Cohen's kappa between classifiers when a second judge or labels are given.
    """
    from atlas_builder.taxonomy.classify import classify_into_taxonomy, load_assignments
    from atlas_builder.taxonomy.stability import measure_stability, write_report

    data_dir = options["data_dir"]
    settings = _settings(options)
    taxonomy, diagnoses = _load(data_dir)
    counts = _title_counts(diagnoses)
    stored = {item.title: item.category for item in load_assignments(data_dir, taxonomy.version).values()}
    reference = {title: taxonomy.top_level(category) for title, category in stored.items()
                 if title in counts.counts and category in taxonomy.categories}

    async def main(judges: list[Any]) -> dict[str, Any]:
        judge = judges[0]
        variant = next((client for client in judges[1:] if client.model == options["variant_judge"]), None)
        classifications: dict[str, dict[str, str]] = {}
        if options["second_judge"] or options["labels_file"]:
            titles = sorted(counts.counts)
            first, _ = await classify_into_taxonomy(judge, titles, taxonomy)
            classifications[f"judge {judge.model}"] = {t: a.category for t, a in first.items()}
            if options["second_judge"]:
                second_client = next(client for client in judges[1:] if client.model == options["second_judge"])
                second, _ = await classify_into_taxonomy(second_client, titles, taxonomy)
                classifications[f"judge {second_client.model}"] = {t: a.category for t, a in second.items()}
            if options["labels_file"]:
                classifications["hand labels"] = _read_labels(options["labels_file"], taxonomy)
        return await measure_stability(
            judge, counts.counts, settings, options["runs"], taxonomy_version=taxonomy.version,
            variant_judge=variant, variant_prompt_set=options["variant_prompt_set"],
            variant_runs=options["variant_runs"], reference=reference or None,
            classifications=classifications, progress=click.echo,
        )

    extra = tuple(dict.fromkeys(m for m in (options["variant_judge"], options["second_judge"]) if m))
    with open_judges(data_dir, options, extra) as judges:
        report = _run(main(judges))
    path = write_report(report, data_dir)
    for level, figures in report["levels"].items():
        click.echo(f"{level}: ARI {figures['ari']['mean']:.3f} (min {figures['ari']['min']:.3f}), "
                   f"NMI {figures['nmi']['mean']:.3f}, matched one-to-one {100 * figures['matched_share']['mean']:.1f}%")
    for item in report["kappa"]:
        click.echo(f"kappa {item['between'][0]} vs {item['between'][1]}: {item['kappa']:.3f} over {item['items']} titles")
    click.echo(f"wrote {path}")


def _read_labels(path: Path, taxonomy: Any) -> dict[str, str]:
    from atlas_builder.taxonomy.titles import normalise_title

    labels = {}
    with path.open(encoding="utf-8", newline="") as handle:
        for number, row in enumerate(csv.DictReader(handle), start=2):
            title, category = normalise_title(row.get("title") or ""), (row.get("category") or "").strip()
            if category not in taxonomy.categories:
                raise click.BadParameter(f"{path}:{number}: unknown category id {category!r} of v{taxonomy.version}",
                                         param_hint="--labels")
            labels[title] = category
    return labels


@command.command(name="show")
@data_option
@click.option("--version", "version", metavar="N", help="Taxonomy version to show; default: the published (highest) one.")
@click.option("--draft", "draft_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Show a draft written by `atlas taxonomy induce` instead.")
def show_command(data_dir: Path, version: str | None, draft_file: Path | None) -> None:
    """Print the category tree with ids, kinds and the failures per category in stored assignments."""
    from atlas_builder.taxonomy import InvalidTaxonomyError, load_taxonomy
    from atlas_builder.taxonomy.classify import load_assignments, read_assignment_lines
    from atlas_builder.taxonomy.load import read_taxonomy_file
    from atlas_builder.taxonomy.revise import change_kinds

    try:
        if draft_file is not None:
            taxonomy = read_taxonomy_file(draft_file)
            stored = read_assignment_lines(draft_file.with_name(f"{draft_file.stem}.assignments.jsonl")) \
                if draft_file.with_name(f"{draft_file.stem}.assignments.jsonl").exists() else {}
        else:
            taxonomy = load_taxonomy(data_dir, version)
            stored = load_assignments(data_dir, taxonomy.version)
    except InvalidTaxonomyError as error:
        raise click.ClickException(str(error)) from None
    titles = Counter(item.category for item in stored.values())
    click.echo(f"taxonomy v{taxonomy.version}: {len(taxonomy.categories)} categories, {len(stored)} classified titles")
    _echo_tree(taxonomy, titles, unit="titles")
    if taxonomy.previous_version and draft_file is None:
        previous = load_taxonomy(data_dir, taxonomy.previous_version)
        for old, kind in sorted(change_kinds(previous, taxonomy).items()):
            if kind != "kept":
                click.echo(f"  from v{previous.version}: {old} {kind} -> {', '.join(taxonomy.mapping.get(old, ())) or '(nothing)'}")


def _echo_tree(taxonomy: Any, counts: Counter, unit: str = "failures") -> None:
    def walk(parent: str | None, depth: int) -> None:
        for category in taxonomy.children(parent):
            extra = f" [{category.kind}]" if category.kind != "content" else ""
            count = f", {counts[category.id]} {unit}" if counts.get(category.id) else ""
            click.echo(f"{'  ' * depth}- {category.name} ({category.id}{count}){extra}")
            walk(category.id, depth + 1)

    walk(None, 0)
