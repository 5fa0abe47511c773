"""Revise a frozen taxonomy: write the next version and map every old id to its successors.

Each version file ``v<N>.yaml`` (N > 1) has ``previous_version`` and a
``mapping`` with one entry per id of the previous version: ``old-id: [new ids]``.
The kind of each change follows from the mapping and the names:

- kept: the id maps to itself and the name is unchanged;
- renamed: the id maps to one category whose name differs (the id may stay);
- merged: several old ids map to the same single new id;
- split: the id maps to two or more new ids;
- retired: the id maps to nothing.

``resolve_category`` follows the mappings across several versions, so links
of older releases resolve to the current categories.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import yaml
from scipy.optimize import linear_sum_assignment

from atlas_builder.ids import slug_problem, slugify
from atlas_builder.records import Category, Problem, Taxonomy
from atlas_builder.results.write import atomic_write_bytes
from atlas_builder.taxonomy.load import InvalidTaxonomyError, check_taxonomy, load_taxonomy
from atlas_builder.taxonomy.matching import normalise_name

logger = logging.getLogger(__name__)

CHANGE_KINDS = ("kept", "renamed", "merged", "split", "retired")
#: A draft category takes over an old id when it holds at least this share of the old category's failures and
#: the old category holds at least this share of the draft category's failures.
MATCH_SHARE = 0.5
#: An old category counts as split into every draft category that received at least this share of its failures.
SPLIT_SHARE = 0.2


class RevisionError(ValueError):
    """Raised when a revision plan or draft cannot produce a valid next version."""


# --- resolution -----------------------------------------------------------------------------------


def resolve_through(category_id: str, chain: list[Taxonomy]) -> list[str]:
    """Follow ``category_id`` of the version before ``chain[0]`` through each version's mapping.

    An id missing from a mapping but present in that version is kept; an id
    missing from both is treated as retired, with a warning. The result keeps
    first-seen order and has no duplicates.
    """
    current = [category_id]
    for taxonomy in chain:
        following: list[str] = []
        for item in current:
            if item in taxonomy.mapping:
                targets = list(taxonomy.mapping[item])
            elif item in taxonomy.categories:
                targets = [item]
            else:
                logger.warning("taxonomy v%s maps no successor for %r; treating it as retired", taxonomy.version, item)
                targets = []
            following.extend(target for target in targets if target not in following)
        current = following
    return current


def resolve_category(old_id: str, from_version: str, to_version: str, data_dir: Path) -> list[str]:
    """Return the ids in ``to_version`` that category ``old_id`` of ``from_version`` became.

    An empty list means the category was retired. Raises ``ValueError`` when
    ``old_id`` is not a category of ``from_version`` or ``to_version`` is older.
    """
    start, end = int(from_version), int(to_version)
    if end < start:
        raise ValueError(f"cannot resolve from v{from_version} back to the older v{to_version}; "
                         "resolve from the older version forward")
    origin = load_taxonomy(data_dir, str(start))
    if old_id not in origin.categories:
        raise ValueError(f"{old_id!r} is not a category of taxonomy v{from_version}")
    chain = [load_taxonomy(data_dir, str(version)) for version in range(start + 1, end + 1)]
    return resolve_through(old_id, chain)


def change_kinds(previous: Taxonomy, current: Taxonomy) -> dict[str, str]:
    """Return old id -> kept, renamed, merged, split or retired, from ``current``'s mapping."""
    mapping = {old: list(current.mapping.get(old, (old,) if old in current.categories else ()))
               for old in previous.categories}
    sources: dict[str, int] = Counter(target for targets in mapping.values() for target in targets)
    kinds = {}
    for old, targets in mapping.items():
        if not targets:
            kinds[old] = "retired"
        elif len(targets) > 1:
            kinds[old] = "split"
        elif sources[targets[0]] > 1:
            kinds[old] = "merged"
        elif targets[0] == old and current.categories[old].name == previous.categories[old].name:
            kinds[old] = "kept"
        else:
            kinds[old] = "renamed"
    return kinds


def check_mapping(previous: Taxonomy, current: Taxonomy) -> list[Problem]:
    """Return problems of ``current``'s mapping: old ids without an entry, and targets that do not exist."""
    where = str(current.path or f"v{current.version}")
    problems = []
    for old in previous.categories:
        if old not in current.mapping and old not in current.categories:
            problems.append(Problem(where, None, f"category {old!r} of v{previous.version} has no mapping entry",
                                    f"add '{old}: [<new ids>]' under mapping, or '{old}: []' if it is retired"))
    for old, targets in current.mapping.items():
        if old not in previous.categories:
            problems.append(Problem(where, None, f"mapping entry {old!r} is not a category of v{previous.version}",
                                    "remove the entry or fix the id"))
        for target in targets:
            if target not in current.categories:
                problems.append(Problem(where, None, f"mapping {old!r} -> {target!r}: no such category in "
                                        f"v{current.version}", "map to an existing id"))
    return problems


# --- writing ---------------------------------------------------------------------------------------


def taxonomy_document(taxonomy: Taxonomy) -> dict[str, Any]:
    """Return the YAML mapping of a taxonomy file."""
    categories = []
    for category in taxonomy.categories.values():
        item = {"id": category.id, "name": category.name, "definition": category.definition,
                "parent": category.parent, "kind": category.kind, "published_share": category.published_share,
                "name_status": category.name_status}
        if category.note:
            item["note"] = category.note
        categories.append(item)
    obj: dict[str, Any] = {"version": taxonomy.version, "previous_version": taxonomy.previous_version,
                           "categories": categories}
    if taxonomy.mapping:
        obj["mapping"] = {old: list(targets) for old, targets in taxonomy.mapping.items()}
    return obj


def write_taxonomy(taxonomy: Taxonomy, data_dir: Path, header: str = "") -> Path:
    """Check ``taxonomy`` and write it as ``data/taxonomy/v<version>.yaml``; refuse to overwrite a version."""
    path = Path(data_dir) / "taxonomy" / f"v{taxonomy.version}.yaml"
    if path.exists():
        raise RevisionError(f"{path} already exists; published versions are frozen, so revise into a new version")
    obj = taxonomy_document(taxonomy)
    problems = check_taxonomy(obj, str(path))
    if problems:
        raise InvalidTaxonomyError(problems)
    text = header + yaml.safe_dump(obj, sort_keys=False, allow_unicode=True, width=120)
    atomic_write_bytes(path, text.encode("utf-8"))
    return path


# --- revision from a plan written by a person ------------------------------------------------------


def _category_from(obj: Mapping[str, Any], parent: str | None, what: str) -> Category:
    for key in ("id", "name", "definition"):
        if not isinstance(obj.get(key), str) or not obj[key].strip():
            raise RevisionError(f"{what}: missing {key!r}; give id, name and definition")
    reason = slug_problem(obj["id"])
    if reason:
        raise RevisionError(f"{what}: invalid id {obj['id']!r}: {reason}")
    return Category(id=obj["id"], name=obj["name"].strip(), definition=obj["definition"].strip(),
                    parent=obj.get("parent", parent), kind=obj.get("kind", "content"))


def apply_plan(current: Taxonomy, plan: Mapping[str, Any]) -> Taxonomy:
    """Return the next version of ``current`` after the operations of ``plan``.

    ``plan`` keys (all optional): ``rename`` {id: {name, definition, id}},
    ``merge`` [{from: [ids], into: {id, name, definition, parent}}],
    ``split`` [{from: id, into: [{id, name, definition}], children: {child id: part id}}],
    ``retire`` [ids], ``add`` [{id, name, definition, parent, kind}].
    A merge target may reuse one of the merged ids; split parts may reuse the split id.
    Children of a retired category move to its parent.
    """
    unknown = set(plan) - {"rename", "merge", "split", "retire", "add"}
    if unknown:
        raise RevisionError(f"unknown plan keys {sorted(unknown)}; use rename, merge, split, retire and add")
    categories = dict(current.categories)
    mapping: dict[str, list[str]] = {old: [old] for old in categories}
    retired_ids = set(current.mapping)  # ids of older versions are never given a new meaning

    def need(category_id: str, what: str) -> Category:
        if category_id not in categories:
            raise RevisionError(f"{what}: {category_id!r} is not a category of v{current.version} (or was already changed)")
        return categories[category_id]

    def reparent(old: str, new: str | None) -> None:
        for key, category in list(categories.items()):
            if category.parent == old:
                categories[key] = replace(category, parent=new)

    def claim(new_id: str, allowed: Iterable[str], what: str) -> None:
        if (new_id in categories and new_id not in allowed) or (new_id in retired_ids and new_id not in allowed):
            raise RevisionError(f"{what}: id {new_id!r} is already used; pick a new id")

    def redirect(old: str, targets: list[str]) -> None:
        for key, value in mapping.items():
            if old in value:
                index = value.index(old)
                rest = value[:index] + value[index + 1:]
                mapping[key] = value[:index] + [t for t in targets if t not in rest] + value[index + 1:]

    for old, change in (plan.get("rename") or {}).items():
        category = need(old, f"rename {old!r}")
        new_id = change.get("id", old)
        claim(new_id, {old}, f"rename {old!r}")
        renamed = replace(category, id=new_id, name=change.get("name", category.name).strip(),
                          definition=change.get("definition", category.definition).strip(), name_status="ours")
        del categories[old]
        categories[new_id] = renamed
        reparent(old, new_id)
        redirect(old, [new_id])

    for index, merge in enumerate(plan.get("merge") or []):
        sources = list(merge.get("from") or [])
        if len(sources) < 2:
            raise RevisionError(f"merge {index}: 'from' needs two or more ids, got {sources}")
        first = need(sources[0], f"merge {index}")
        for source in sources[1:]:
            need(source, f"merge {index}")
        target = _category_from(merge.get("into") or {}, first.parent, f"merge {index} 'into'")
        claim(target.id, set(sources), f"merge {index}")
        for source in sources:
            del categories[source]
        categories[target.id] = target
        for source in sources:
            reparent(source, target.id)
            redirect(source, [target.id])

    for index, split in enumerate(plan.get("split") or []):
        source = split.get("from")
        original = need(source, f"split {index}")
        parts = [_category_from(part, original.parent, f"split {index} part {number}")
                 for number, part in enumerate(split.get("into") or [])]
        if len(parts) < 2:
            raise RevisionError(f"split {index}: 'into' needs two or more categories")
        for part in parts:
            claim(part.id, {source}, f"split {index}")
        del categories[source]
        for part in parts:
            categories[part.id] = part
        moves = dict(split.get("children") or {})
        for key, category in list(categories.items()):
            if category.parent == source:
                target = moves.get(key, parts[0].id)
                if target not in {part.id for part in parts}:
                    raise RevisionError(f"split {index}: child {key!r} moves to {target!r}, which is not a part")
                categories[key] = replace(category, parent=target)
        redirect(source, [part.id for part in parts])

    for old in plan.get("retire") or []:
        category = need(old, f"retire {old!r}")
        if category.kind == "special":
            raise RevisionError(f"retire {old!r}: special buckets stay in every version")
        del categories[old]
        reparent(old, category.parent)
        redirect(old, [])

    for index, obj in enumerate(plan.get("add") or []):
        category = _category_from(obj, None, f"add {index}")
        claim(category.id, set(), f"add {index}")
        if category.parent is not None and category.parent not in categories:
            raise RevisionError(f"add {index}: unknown parent {category.parent!r}")
        categories[category.id] = category

    return _next_version(current, categories, mapping)


def _next_version(current: Taxonomy, categories: dict[str, Category], mapping: dict[str, list[str]]) -> Taxonomy:
    nxt = Taxonomy(version=str(int(current.version) + 1), categories=categories, previous_version=current.version,
                   mapping={old: tuple(targets) for old, targets in mapping.items()})
    problems = check_mapping(current, nxt)
    problems += check_taxonomy(taxonomy_document(nxt), f"v{nxt.version}")
    if problems:
        raise InvalidTaxonomyError(problems)
    return nxt


# --- revision from an induced draft ---------------------------------------------------------------


def revise_from_draft(
    current: Taxonomy,
    draft: Taxonomy,
    old_assignments: Mapping[str, str],
    draft_assignments: Mapping[str, str],
    weights: Mapping[str, int] | None = None,
) -> Taxonomy:
    """Return the next version built from an induced ``draft``, with ids and mapping derived from assignments.

    ``old_assignments`` and ``draft_assignments`` map titles to category ids
    in ``current`` and ``draft``; ``weights`` gives each title's failures (1
    when missing). A title counts for its draft category and for each of that
    category's ancestors. Content categories are matched by name first, then
    one-to-one by shared failures (both directions at least ``MATCH_SHARE``);
    a matched draft category keeps the old id. Every old id also maps to each
    other category that received at least ``SPLIT_SHARE`` of its failures,
    unless that category is an ancestor or a subcategory of a target already
    chosen. So an old category is split, merged or retired by where its failures went. Mechanical and
    special categories of ``current`` carry over unchanged.
    """
    weights = weights or {}
    old_content = [c.id for c in current.categories.values() if c.kind == "content"]
    draft_content = [c.id for c in draft.categories.values() if c.kind == "content"]
    flows: dict[tuple[str, str], float] = defaultdict(float)
    for title, old in old_assignments.items():
        new = draft_assignments.get(title)
        if new is not None:
            flows[(old, new)] += weights.get(title, 1)
    old_total = Counter()
    for (old, _), weight in list(flows.items()):
        old_total[old] += weight
    # Draft assignments name a title's deepest category, but the title also belongs to every ancestor of it, so
    # an old category whose failures a draft parent and its subcategories share is matched with that parent.
    depth = {new: len(_draft_ancestors(draft, new)) for new in draft.categories}
    for (old, new), weight in list(flows.items()):
        for ancestor in _draft_ancestors(draft, new):
            flows[(old, ancestor)] += weight
    new_total = Counter()
    for (old, new), weight in flows.items():
        new_total[new] += weight

    id_of: dict[str, str] = {}  # draft id -> id in the next version
    draft_names = {normalise_name(draft.categories[d].name): d for d in draft_content}
    for old in old_content:
        match = draft_names.get(normalise_name(current.categories[old].name))
        if match is not None and match not in id_of:
            id_of[match] = old
    free_old = [old for old in old_content if old not in id_of.values()]
    free_new = [new for new in draft_content if new not in id_of]
    if free_old and free_new:
        overlap = np.array([[flows.get((old, new), 0.0) for new in free_new] for old in free_old])
        rows, cols = linear_sum_assignment(overlap, maximize=True)
        for row, col in zip(rows, cols):
            old, new = free_old[row], free_new[col]
            shared = overlap[row, col]
            if shared and shared >= MATCH_SHARE * old_total[old] and shared >= MATCH_SHARE * new_total[new]:
                id_of[new] = old

    used = set(current.categories) | set(current.mapping)
    for new in draft_content:
        if new in id_of:
            continue
        base = slugify(draft.categories[new].name)
        candidate, number = base, 2
        while candidate in used or candidate in id_of.values():
            candidate = f"{base}-{number}"
            number += 1
        id_of[new] = candidate
    id_of.update({special: special for special in draft.categories if special not in id_of})

    categories: dict[str, Category] = {}
    for new in draft_content:
        category = draft.categories[new]
        parent = id_of.get(category.parent) if category.parent else None
        kept_status = current.categories[id_of[new]].name_status if id_of[new] in current.categories else "ours"
        same_name = id_of[new] in current.categories and current.categories[id_of[new]].name == category.name
        categories[id_of[new]] = replace(
            category, id=id_of[new], parent=parent, name_status=kept_status if same_name else "ours",
            published_share=current.categories[id_of[new]].published_share if same_name else None,
        )

    mapping: dict[str, list[str]] = {}
    for old in old_content:
        total = old_total[old]
        # Largest share first. On a tie between a category and its subcategory, the subcategory comes first
        # because it is the more precise target.
        shares = sorted(((-flows.get((old, new), 0.0) / total, -depth[new], new) for new in draft_content)
                        if total else [])
        chosen = [new for new in draft_content if id_of[new] == old]
        for negative_share, _, new in shares:
            # A subcategory or an ancestor of a chosen target adds nothing, because the chosen one covers it.
            nested = any(new in _draft_ancestors(draft, other) or other in _draft_ancestors(draft, new)
                         for other in chosen)
            if -negative_share >= SPLIT_SHARE and new not in chosen and not nested:
                chosen.append(new)
        targets = [id_of[new] for new in chosen]
        mapping[old] = targets  # several: split; one: kept, renamed or merged into it; none: retired
    for category in current.categories.values():
        if category.kind == "content":
            continue
        parent = category.parent
        if parent is not None and parent not in categories and parent not in (
                c.id for c in current.categories.values() if c.kind != "content"):
            successors = mapping.get(parent) or []
            parent = successors[0] if successors else None
        categories[category.id] = replace(category, parent=parent)
        mapping[category.id] = [category.id]
    return _next_version(current, categories, mapping)


def _draft_ancestors(draft: Taxonomy, category_id: str) -> list[str]:
    """Return the parent, grandparent, ... of ``category_id`` in ``draft``."""
    ancestors = []
    parent = draft.categories[category_id].parent if category_id in draft.categories else None
    while parent is not None and parent not in ancestors:
        ancestors.append(parent)
        parent = draft.categories[parent].parent if parent in draft.categories else None
    return ancestors


def draft_from_files(draft_path: Path) -> tuple[Taxonomy, dict[str, str]]:
    """Read a draft written by ``atlas taxonomy induce`` and its title assignments."""
    from atlas_builder.taxonomy.classify import read_assignment_lines
    from atlas_builder.taxonomy.load import read_taxonomy_file

    draft = read_taxonomy_file(draft_path)
    assignments_file = draft_path.with_name(f"{draft_path.stem}.assignments.jsonl")
    if not assignments_file.exists():
        raise RevisionError(f"{assignments_file} not found; rerun `atlas taxonomy induce` to write the draft again")
    assignments = {item.title: item.category for item in read_assignment_lines(assignments_file).values()}
    return draft, assignments
