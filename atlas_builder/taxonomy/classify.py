"""Classify error titles into categories: one level at a time, and down a frozen taxonomy version.

Stored assignments live in ``data/taxonomy/assignments/v<N>.jsonl``, one JSON
object per distinct title, sorted by ``title_sha256`` so that diffs stay small:
``{"title_sha256", "title", "category", "answers", "judge", "prompt_version"}``.
``answers`` lists the judge's raw category names from the top level down.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from atlas_builder.diagnose.judge.prompts import AnswerRejected
from atlas_builder.records import Category, Diagnoses, Taxonomy
from atlas_builder.results.write import atomic_write_bytes
from atlas_builder.taxonomy.judging import JsonJudge, JudgeUnusableError, ask_json
from atlas_builder.taxonomy.matching import match_name, normalise_name
from atlas_builder.taxonomy.prompts import ASSIGNMENTS_SCHEMA, ASSIGNMENTS_SCHEMA_NAME, PROMPT_SETS, render_messages
from atlas_builder.taxonomy.titles import judge_diagnoses, normalise_title, title_hash

logger = logging.getLogger(__name__)

CLASSIFY_PURPOSE = "taxonomy-classify"
DEFAULT_CLASSIFY_BATCH = 50
#: What the classifier answers for a title that fits none of the offered categories.
FALLBACK_ANSWER = "None"
OTHER_ID = "other"
HARD_TO_ANALYZE_ID = "hard-to-analyze"
#: Category ids that the classifier is never offered: "other" is the fallback, and checks set suspect references.
NOT_OFFERED = frozenset({OTHER_ID, "suspect-reference"})
#: Share of a dataset's classified judge failures in "Other" above which a revision is due.
DEFAULT_REVISION_THRESHOLD = 0.05
#: Datasets with fewer classified judge failures than this are not judged for the revision warning.
MIN_FAILURES_FOR_WARNING = 20
ASSIGNMENTS_DIR = "assignments"


@dataclass(frozen=True)
class Option:
    """A category offered to the classifier."""

    name: str
    definition: str


@dataclass
class LevelResult:
    """Classification of titles among one level's options."""

    chosen: dict[str, str] = field(default_factory=dict)  # title -> offered name
    raw: dict[str, str] = field(default_factory=dict)  # title -> the name the judge wrote
    fallback: set[str] = field(default_factory=set)  # titles that fit no option (answered None, invented, or missing)
    failed: set[str] = field(default_factory=set)  # titles whose batch got no usable answer
    invented: Counter = field(default_factory=Counter)  # unknown names the judge wrote -> titles


def _check_assignments(count: int):
    def check(answer: Any) -> None:
        indexes = [item["index"] for item in answer["assignments"]]
        bad = [index for index in indexes if not 1 <= index <= count]
        if bad:
            raise AnswerRejected(f"assignment indexes {bad[:5]} are outside 1..{count}")
        if not indexes:
            raise AnswerRejected("the assignments list is empty")
    return check


async def classify_level(
    judge: JsonJudge,
    titles: list[str],
    options: list[Option],
    *,
    parent: Option | None = None,
    batch_size: int = DEFAULT_CLASSIFY_BATCH,
    prompt_version: str = PROMPT_SETS["v1"].classify,
    request: dict[str, Any] | None = None,
) -> LevelResult:
    """Classify ``titles`` among ``options`` in batches of ``batch_size``.

    A name the judge invents is mapped onto an offered name by
    ``match_name``; otherwise the title goes to the fallback with a log line.
    Titles missing from an answer also go to the fallback.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    result = LevelResult()
    if not titles:
        return result
    names = [option.name for option in options]
    categories = [{"name": option.name, "definition": option.definition} for option in options]
    parent_vars = None if parent is None else {"name": parent.name, "definition": parent.definition}

    async def run(batch: list[str]) -> tuple[list[str], dict[str, Any] | None]:
        messages = render_messages(prompt_version, {
            "titles": batch, "categories": categories, "parent": parent_vars, "fallback": FALLBACK_ANSWER,
        })
        try:
            answer = await ask_json(
                judge, purpose=CLASSIFY_PURPOSE, prompt_version=prompt_version, messages=messages,
                schema=ASSIGNMENTS_SCHEMA, schema_name=ASSIGNMENTS_SCHEMA_NAME,
                check=_check_assignments(len(batch)), request=request,
            )
        except JudgeUnusableError as error:
            logger.warning("%d titles left unclassified: %s", len(batch), error)
            return batch, None
        return batch, answer

    batches = [titles[start:start + batch_size] for start in range(0, len(titles), batch_size)]
    for batch, answer in await asyncio.gather(*(run(batch) for batch in batches)):
        if answer is None:
            result.failed.update(batch)
            continue
        _read_batch(batch, answer, names, result)
    missing = len(titles) - len(result.chosen) - len(result.fallback) - len(result.failed)
    if missing:
        raise AssertionError(f"{missing} titles lost while reading classification answers")  # guards _read_batch
    for name, count in result.invented.most_common():
        logger.warning("classifier invented the category %r for %d titles; sent them to %s",
                       name, count, "the parent category" if parent else "Other")
    return result


def _read_batch(batch: list[str], answer: dict[str, Any], names: list[str], result: LevelResult) -> None:
    answered: dict[int, str] = {}
    for item in answer["assignments"]:
        answered.setdefault(item["index"], item["category"])  # the first answer for an index wins
    fallback_key = normalise_name(FALLBACK_ANSWER)
    for index, title in enumerate(batch, start=1):
        raw = answered.get(index)
        if raw is None:
            result.fallback.add(title)
            continue
        result.raw[title] = raw
        matched = match_name(raw, names)
        if matched is not None:
            if matched != raw:
                logger.info("classifier answered %r; mapped to the offered category %r", raw, matched)
            result.chosen[title] = matched
        else:
            if normalise_name(raw) not in (fallback_key, "other", "none of these", ""):
                result.invented[raw] += 1
            result.fallback.add(title)
    skipped = len(batch) - len(answered.keys() & set(range(1, len(batch) + 1)))
    if skipped:
        logger.warning("classifier skipped %d of %d titles of a batch; they go to the fallback", skipped, len(batch))


# --- classification into a frozen taxonomy version ---------------------------------------------


@dataclass(frozen=True)
class Assignment:
    """The category of one distinct title in one taxonomy version."""

    title: str
    category: str
    answers: tuple[str, ...] = ()
    judge: str | None = None
    prompt_version: str | None = None

    @property
    def title_sha256(self) -> str:
        return title_hash(self.title)


def offered_children(taxonomy: Taxonomy, parent: str | None) -> list[Category]:
    """Return the categories the classifier may choose below ``parent`` (None for the top level).

    Mechanical categories are left out: only the deterministic checks assign
    them, so offering them would spend a request on a level the judge cannot use.
    """
    return [category for category in taxonomy.children(parent)
            if category.id not in NOT_OFFERED and category.kind != "mechanical"]


async def classify_into_taxonomy(
    judge: JsonJudge,
    titles: Iterable[str],
    taxonomy: Taxonomy,
    *,
    batch_size: int = DEFAULT_CLASSIFY_BATCH,
    prompt_version: str = PROMPT_SETS["v1"].classify,
) -> tuple[dict[str, Assignment], set[str]]:
    """Classify titles down the levels of ``taxonomy``; return assignments and the titles left unclassified.

    At the top level a title that fits nothing goes to "Other". Below it, such
    a title stays in the parent category.
    """
    titles = sorted({normalise_title(title) for title in titles} - {""})
    answers: dict[str, list[str]] = {title: [] for title in titles}
    placed: dict[str, str] = {}
    failed: set[str] = set()

    async def descend(parent: str | None, members: list[str]) -> None:
        children = offered_children(taxonomy, parent)
        if not members or not children:
            return
        by_name = {category.name: category for category in children}
        parent_option = None
        if parent is not None:
            category = taxonomy.categories[parent]
            parent_option = Option(category.name, category.definition)
        result = await classify_level(
            judge, members, [Option(c.name, c.definition) for c in children], parent=parent_option,
            batch_size=batch_size, prompt_version=prompt_version,
            request={"taxonomy_version": taxonomy.version, "parent": parent},
        )
        failed.update(result.failed)
        for title, raw in result.raw.items():
            answers[title].append(raw)
        groups: dict[str, list[str]] = defaultdict(list)
        for title, name in result.chosen.items():
            placed[title] = by_name[name].id
            groups[by_name[name].id].append(title)
        if parent is None:
            for title in result.fallback:
                placed[title] = OTHER_ID
        await asyncio.gather(*(descend(child, sorted(group)) for child, group in groups.items()))

    await descend(None, titles)
    assignments = {
        title: Assignment(title, placed[title], tuple(answers[title]), judge.model, prompt_version)
        for title in titles if title in placed
    }
    return assignments, failed - set(assignments)


def assignments_path(data_dir: Path, version: str) -> Path:
    """Return the file of stored assignments for taxonomy ``version``."""
    return Path(data_dir) / "taxonomy" / ASSIGNMENTS_DIR / f"v{version}.jsonl"


def load_assignments(data_dir: Path, version: str) -> dict[str, Assignment]:
    """Read the stored assignments of ``version``, keyed by title hash; a missing file gives an empty dict."""
    path = assignments_path(data_dir, version)
    if not path.exists():
        return {}
    return read_assignment_lines(path)


def read_assignment_lines(path: Path) -> dict[str, Assignment]:
    """Parse an assignments JSONL file, skipping invalid lines with a warning."""
    found: dict[str, Assignment] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            item = Assignment(obj["title"], obj["category"], tuple(obj.get("answers") or ()),
                              obj.get("judge"), obj.get("prompt_version"))
        except (ValueError, KeyError, TypeError) as error:
            logger.warning("%s:%d: skipping an invalid assignment line (%s)", path, number, error)
            continue
        found[item.title_sha256] = item
    return found


def write_assignment_lines(path: Path, assignments: Iterable[Assignment]) -> None:
    """Write assignments as sorted JSONL, atomically."""
    rows = sorted(assignments, key=lambda item: item.title_sha256)
    text = "".join(
        json.dumps({"title_sha256": item.title_sha256, "title": item.title, "category": item.category,
                    "answers": list(item.answers), "judge": item.judge, "prompt_version": item.prompt_version},
                   ensure_ascii=False, sort_keys=True) + "\n"
        for item in rows
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, text.encode("utf-8"))


def save_assignments(data_dir: Path, version: str, assignments: Iterable[Assignment]) -> Path:
    """Merge ``assignments`` into the stored ones of ``version`` (new ones win) and write the file."""
    stored = load_assignments(data_dir, version)
    for item in assignments:
        stored[item.title_sha256] = item
    path = assignments_path(data_dir, version)
    write_assignment_lines(path, stored.values())
    return path


# --- the share of "Other" per dataset ------------------------------------------------------------


@dataclass(frozen=True)
class OtherShare:
    """How many of a dataset's classified judge failures landed in "Other"."""

    dataset: str
    other: int
    classified: int

    @property
    def share(self) -> float:
        return self.other / self.classified if self.classified else 0.0


def other_shares(diagnoses: Diagnoses) -> dict[str, OtherShare]:
    """Count, per dataset, the primary judge diagnoses in "Other" among those with a category."""
    other: Counter = Counter()
    classified: Counter = Counter()
    for item in judge_diagnoses(diagnoses):
        if item.category is None:
            continue
        classified[item.dataset] += 1
        other[item.dataset] += item.category == OTHER_ID
    return {dataset: OtherShare(dataset, other[dataset], classified[dataset]) for dataset in sorted(classified)}


def revision_due(shares: dict[str, OtherShare], threshold: float = DEFAULT_REVISION_THRESHOLD,
                 min_failures: int = MIN_FAILURES_FOR_WARNING) -> list[OtherShare]:
    """Return the datasets whose "Other" share is above ``threshold`` (with enough failures to tell)."""
    return [item for item in shares.values() if item.classified >= min_failures and item.share > threshold]


def warn_if_revision_due(shares: dict[str, OtherShare], version: str,
                         threshold: float = DEFAULT_REVISION_THRESHOLD) -> list[OtherShare]:
    """Log a warning per dataset whose "Other" share calls for a revision; return those datasets."""
    due = revision_due(shares, threshold)
    for item in due:
        logger.warning(
            "taxonomy v%s: %.1f%% of the classified judge failures of dataset %r (%d of %d) are in Other, "
            "above %.1f%%; a revision is due (run `atlas taxonomy induce`, then `atlas taxonomy revise`)",
            version, 100 * item.share, item.dataset, item.other, item.classified, 100 * threshold,
        )
    return due
