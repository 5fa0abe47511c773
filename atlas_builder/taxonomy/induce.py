"""Induce a taxonomy from error titles with the judge, following the ErrorMap method.

For one level: the distinct titles with their failure counts are shuffled and
cut into batches; the judge proposes categories from the first batch
("generate"), refines them with each later batch ("update"), and checks the
result in a "review" pass. Then the titles are classified into the
categories in batches. Each category with enough distinct titles is split
again the same way, with the parent in the prompt, down to ``max_depth``.

A level gets at most ``min(max_categories, ceil(max_category_share * distinct
titles))`` categories. A title that fits no top-level category goes to
"Other" and one the judge calls too vague goes to "Hard to Analyze"; below the
top level such a title stays in the parent. Categories whose share of the
level's failures is under ``rare_share`` are folded into the same fallback.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import yaml

from atlas_builder.diagnose.judge.prompts import AnswerRejected
from atlas_builder.ids import slugify
from atlas_builder.records import Category, Taxonomy
from atlas_builder.results.write import atomic_write_bytes
from atlas_builder.taxonomy.classify import (
    DEFAULT_CLASSIFY_BATCH,
    HARD_TO_ANALYZE_ID,
    OTHER_ID,
    Assignment,
    Option,
    classify_level,
    write_assignment_lines,
)
from atlas_builder.taxonomy.judging import DEFAULT_REPAIR_ROUNDS, JsonJudge, JudgeUnusableError, ask_json
from atlas_builder.taxonomy.matching import normalise_name
from atlas_builder.taxonomy.prompts import (
    CATEGORIES_SCHEMA,
    CATEGORIES_SCHEMA_NAME,
    MAX_DEFINITION_WORDS,
    MAX_NAME_WORDS,
    prompt_set,
    render_messages,
)

logger = logging.getLogger(__name__)

HARD_TO_ANALYZE = Option(
    "Hard to Analyze",
    "The error is too ambiguous, too subjective or too thin in context to tie to one failed skill.",
)
OTHER = Option("Other", "Errors that the classifier could not place in any category of this version.")
#: Normalised names the judge must not propose as content categories; they are dropped from its lists.
RESERVED_NAMES = frozenset({"hard to analyze", "hard to analyse", "other", "others", "none", "miscellaneous"})
MAX_NAME_CHARS = 80


class InductionError(RuntimeError):
    """Raised when the top level of a taxonomy cannot be induced."""


@dataclass
class InductionSettings:
    """Knobs of one induction run (defaults follow the ErrorMap method)."""

    propose_batch: int = 500  # distinct titles per generate/update request
    classify_batch: int = DEFAULT_CLASSIFY_BATCH  # titles per classification request
    max_categories: int = 25  # categories per level, at most
    max_category_share: float = 0.10  # and at most this share of the level's distinct titles (rounded up)
    min_split_titles: int = 6  # a category with fewer distinct titles is not split
    max_depth: int = 2  # how many times a category may be split again below the top level
    rare_share: float = 0.0  # categories under this share of their level's failures fold into the fallback
    seed: int = 42  # shuffles the titles before batching
    prompt_set: str = "v1"
    review_examples: int = 100  # most frequent titles shown in the review request
    repair_rounds: int = DEFAULT_REPAIR_ROUNDS

    def __post_init__(self) -> None:
        for name in ("propose_batch", "classify_batch", "max_categories", "min_split_titles"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.max_depth < 0:
            raise ValueError(f"max_depth must be 0 or more, got {self.max_depth}")
        if not 0 < self.max_category_share <= 1:
            raise ValueError(f"max_category_share must be in (0, 1], got {self.max_category_share}")
        if not 0 <= self.rare_share < 1:
            raise ValueError(f"rare_share must be in [0, 1), got {self.rare_share}")
        prompt_set(self.prompt_set)  # raises for an unknown set

    def budget(self, distinct_titles: int) -> int:
        """Return the maximum number of categories for a level with ``distinct_titles`` titles."""
        return min(self.max_categories, math.ceil(self.max_category_share * distinct_titles))


@dataclass
class InducedCategory:
    """One category found by induction."""

    id: str
    name: str
    definition: str
    parent: str | None
    depth: int  # 1 for the top level


@dataclass
class Induction:
    """The result of one induction run: categories, and the deepest category of every title."""

    categories: dict[str, InducedCategory]
    assignments: dict[str, str]  # title -> category id (also "other" and "hard-to-analyze")
    counts: Counter  # title -> failures
    settings: InductionSettings
    judge: str

    def partition(self, depth: int | None = None) -> dict[str, str]:
        """Return title -> category id, cut at ``depth`` (1 = top level; None = deepest)."""
        if depth is None:
            return dict(self.assignments)
        cut = {}
        for title, category in self.assignments.items():
            while category in self.categories and self.categories[category].depth > depth:
                category = self.categories[category].parent
            cut[title] = category
        return cut

    def to_taxonomy(self, version: str) -> Taxonomy:
        """Return the induced categories, plus the "Hard to Analyze" and "Other" buckets, as a taxonomy."""
        categories = {
            item.id: Category(id=item.id, name=item.name, definition=item.definition, parent=item.parent)
            for item in self.categories.values()
        }
        for item_id, option in ((HARD_TO_ANALYZE_ID, HARD_TO_ANALYZE), (OTHER_ID, OTHER)):
            categories[item_id] = Category(id=item_id, name=option.name, definition=option.definition,
                                           kind="special", name_status="published")
        return Taxonomy(version=version, categories=categories)


def check_category_list(max_categories: int) -> Callable[[Any], None]:
    """Return a check that rejects a malformed category list (see the module docstring for the rules)."""

    def check(answer: Any) -> None:
        content = [item for item in answer["categories"] if normalise_name(item["name"]) not in RESERVED_NAMES]
        if not content:
            raise AnswerRejected("the list has no categories besides the reserved buckets")
        if len(content) > max_categories:
            raise AnswerRejected(f"the list has {len(content)} categories; give at most {max_categories}")
        seen: set[str] = set()
        for item in content:
            name, definition = item["name"].strip(), item["definition"].strip()
            if not normalise_name(name):
                raise AnswerRejected(f"the category name {item['name']!r} is empty")
            if len(name.split()) > MAX_NAME_WORDS or len(name) > MAX_NAME_CHARS:
                raise AnswerRejected(f"the name {name!r} is longer than {MAX_NAME_WORDS} words or {MAX_NAME_CHARS} characters")
            if not definition:
                raise AnswerRejected(f"the category {name!r} has an empty definition")
            if len(definition.split()) > MAX_DEFINITION_WORDS:
                raise AnswerRejected(f"the definition of {name!r} has {len(definition.split())} words; "
                                     f"use at most {MAX_DEFINITION_WORDS}")
            key = normalise_name(name)
            if key in seen:
                raise AnswerRejected(f"the name {name!r} appears twice")
            seen.add(key)

    return check


def _content_options(answer: dict[str, Any]) -> list[Option]:
    return [Option(" ".join(item["name"].split()), " ".join(item["definition"].split()))
            for item in answer["categories"] if normalise_name(item["name"]) not in RESERVED_NAMES]


class Inducer:
    """One induction run over a set of titles (use ``induce`` for the whole run)."""

    def __init__(self, judge: JsonJudge, settings: InductionSettings):
        self.judge = judge
        self.settings = settings
        self.prompts = prompt_set(settings.prompt_set)
        self.categories: dict[str, InducedCategory] = {}
        self.assignments: dict[str, str] = {}
        self._reserved_ids = {HARD_TO_ANALYZE_ID, OTHER_ID}

    def _new_id(self, name: str, parent: str | None) -> str:
        """Return a unique slug id for ``name``, prefixed by the parent's id when the plain slug is taken."""
        taken = self.categories.keys() | self._reserved_ids
        candidate = slugify(name)
        if candidate in taken and parent is not None:
            candidate = slugify(f"{parent}-{candidate}")
        unique, number = candidate, 2
        while unique in taken:
            unique = f"{candidate}-{number}"
            number += 1
        return unique

    async def _ask_categories(self, prompt_version: str, purpose: str, variables: dict[str, Any],
                              budget: int, request: dict[str, Any]) -> list[Option]:
        messages = render_messages(prompt_version, {**variables, "max_categories": budget})
        answer = await ask_json(
            self.judge, purpose=purpose, prompt_version=prompt_version, messages=messages,
            schema=CATEGORIES_SCHEMA, schema_name=CATEGORIES_SCHEMA_NAME, check=check_category_list(budget),
            request=request, repair_rounds=self.settings.repair_rounds,
        )
        return _content_options(answer)

    async def propose(self, titles: Counter, parent: InducedCategory | None, budget: int) -> list[Option]:
        """Run generate, update over the later batches, and review; return the level's categories."""
        order = sorted(titles)
        random.Random(f"{self.settings.seed}:{parent.id if parent else ''}").shuffle(order)
        size = self.settings.propose_batch
        batches = [order[start:start + size] for start in range(0, len(order), size)]
        parent_vars = None if parent is None else {"name": parent.name, "definition": parent.definition}
        request = {"seed": self.settings.seed, "parent": parent.id if parent else None}

        def listed(batch: list[str]) -> list[dict[str, Any]]:
            return [{"title": title, "count": titles[title]} for title in batch]

        current = await self._ask_categories(
            self.prompts.generate, "taxonomy-generate", {"titles": listed(batches[0]), "parent": parent_vars},
            budget, {**request, "batch": 1},
        )
        for number, batch in enumerate(batches[1:], start=2):
            try:
                current = await self._ask_categories(
                    self.prompts.update, "taxonomy-update",
                    {"titles": listed(batch), "parent": parent_vars, "categories": [asdict(c) for c in current]},
                    budget, {**request, "batch": number},
                )
            except JudgeUnusableError as error:
                logger.warning("update with batch %d of %d failed; keeping the categories so far: %s",
                               number, len(batches), error)
        examples = [title for title, _ in titles.most_common(self.settings.review_examples)]
        try:
            current = await self._ask_categories(
                self.prompts.review, "taxonomy-review",
                {"titles": listed(examples), "parent": parent_vars, "categories": [asdict(c) for c in current]},
                budget, request,
            )
        except JudgeUnusableError as error:
            logger.warning("review failed; keeping the categories before review: %s", error)
        return current

    async def level(self, titles: Counter, parent: InducedCategory | None) -> None:
        """Induce and classify one level below ``parent`` (None for the top), then recurse."""
        settings = self.settings
        depth = 1 if parent is None else parent.depth + 1
        where = "the top level" if parent is None else f"category {parent.id!r}"
        if not titles:
            logger.info("%s has no titles; nothing to induce", where)
            return
        budget = settings.budget(len(titles))
        if parent is not None:
            if len(titles) < settings.min_split_titles or budget <= 1 or parent.depth > settings.max_depth:
                return
        budget = max(budget, 1)

        try:
            options = await self.propose(titles, parent, budget)
        except JudgeUnusableError as error:
            if parent is None:
                raise InductionError(f"could not induce the top level: {error}") from error
            logger.warning("%s is not split: %s", where, error)
            return
        if parent is not None and len(options) < 2:
            logger.info("%s is not split: the judge proposed a single subcategory", where)
            return

        offered = options + ([HARD_TO_ANALYZE] if parent is None else [])
        result = await classify_level(
            self.judge, sorted(titles), offered,
            parent=None if parent is None else Option(parent.name, parent.definition),
            batch_size=settings.classify_batch, prompt_version=self.prompts.classify,
            request={"seed": settings.seed, "parent": parent.id if parent else None},
        )
        members: dict[str, Counter] = {option.name: Counter() for option in offered}
        for title, name in result.chosen.items():
            members[name][title] = titles[title]
        fallback = set(result.fallback) | set(result.failed)
        total = sum(titles.values())
        for option in options:
            weight = sum(members[option.name].values())
            if weight == 0:
                logger.info("%s: category %r got no titles and is dropped", where, option.name)
                del members[option.name]
            elif weight / total < settings.rare_share:
                logger.info("%s: category %r has %.2f%% of the failures, under the rare share; folded into the fallback",
                            where, option.name, 100 * weight / total)
                fallback |= set(members.pop(option.name))
        kept = [option for option in options if option.name in members]
        if parent is not None and len(kept) < 2:
            logger.info("%s is not split: its titles fell into %d subcategory", where, len(kept))
            return

        if parent is None:
            for title in fallback:
                self.assignments[title] = OTHER_ID
            for title in members.get(HARD_TO_ANALYZE.name, ()):
                self.assignments[title] = HARD_TO_ANALYZE_ID
        children = []
        for option in kept:
            category = InducedCategory(self._new_id(option.name, parent.id if parent else None),
                                       option.name, option.definition, parent.id if parent else None, depth)
            self.categories[category.id] = category
            for title in members[option.name]:
                self.assignments[title] = category.id
            children.append((members[option.name], category))
        logger.info("%s: %d categories, %d titles to the fallback", where, len(kept), len(fallback))
        await asyncio.gather(*(self.level(group, category) for group, category in children))


async def induce(judge: JsonJudge, counts: Counter, settings: InductionSettings | None = None) -> Induction:
    """Induce a taxonomy from ``counts`` (title -> failures) and classify every title into it."""
    settings = settings or InductionSettings()
    inducer = Inducer(judge, settings)
    await inducer.level(Counter(counts), None)
    # Titles whose top-level batch got no answer are unplaced; they count as Other rather than vanish.
    for title in counts:
        inducer.assignments.setdefault(title, OTHER_ID)
    return Induction(inducer.categories, inducer.assignments, Counter(counts), settings, judge.model)


# --- drafts -----------------------------------------------------------------------------------------


def drafts_dir(data_dir: Path) -> Path:
    """Return the folder of induced drafts (``data/taxonomy/drafts``)."""
    return Path(data_dir) / "taxonomy" / "drafts"


def write_draft(induction: Induction, path: Path) -> tuple[Path, Path]:
    """Write the draft taxonomy YAML and its title assignments (``<stem>.assignments.jsonl``)."""
    taxonomy = induction.to_taxonomy("draft")
    obj = {
        "version": "draft",
        "previous_version": None,
        "induction": {
            "judge": induction.judge,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "titles": len(induction.counts),
            "failures": sum(induction.counts.values()),
            "settings": asdict(induction.settings),
        },
        "categories": [
            {"id": c.id, "name": c.name, "definition": c.definition, "parent": c.parent, "kind": c.kind,
             "name_status": c.name_status}
            for c in taxonomy.categories.values()
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, yaml.safe_dump(obj, sort_keys=False, allow_unicode=True, width=120).encode("utf-8"))
    assignments_file = path.with_name(f"{path.stem}.assignments.jsonl")
    write_assignment_lines(assignments_file, [
        Assignment(title, category, judge=induction.judge) for title, category in induction.assignments.items()
    ])
    return path, assignments_file
