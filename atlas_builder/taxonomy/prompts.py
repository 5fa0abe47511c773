"""Prompt templates and answer schemas of the taxonomy stage.

Templates are Jinja files in ``prompts/`` named ``<purpose>-v<N>.j2`` (or
``<purpose>-<variant>-v<N>.j2``), each defining the macros ``system()`` and
``user()``. The file name is the prompt version, which is part of the key of
every stored judge answer: a change of wording gets a new file, so answers
stored for the old wording stay valid for it. Untrusted text (error titles,
category names written by the judge) is passed only as template variables and
placed between fence lines whose marker none of the texts contains.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Mapping

import jinja2

from atlas_builder.diagnose.judge.prompts import fence_marker

MAX_NAME_WORDS = 5
MAX_DEFINITION_WORDS = 30

CATEGORIES_SCHEMA_NAME = "taxonomy_categories"
CATEGORIES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["categories"],
    "properties": {
        "categories": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "definition"],
                "properties": {"name": {"type": "string"}, "definition": {"type": "string"}},
            },
        },
    },
}

ASSIGNMENTS_SCHEMA_NAME = "taxonomy_assignments"
ASSIGNMENTS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["assignments"],
    "properties": {
        "assignments": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["index", "category"],
                "properties": {"index": {"type": "integer"}, "category": {"type": "string"}},
            },
        },
    },
}


@dataclass(frozen=True)
class PromptSet:
    """The prompt versions used for the four kinds of taxonomy request."""

    generate: str
    update: str
    review: str
    classify: str


PROMPT_SETS: dict[str, PromptSet] = {
    "v1": PromptSet("taxonomy-generate-v1", "taxonomy-update-v1", "taxonomy-review-v1", "taxonomy-classify-v1"),
    # Same rules, other wording for proposing categories: a stability run with it shows the effect of wording.
    "reworded-v1": PromptSet(
        "taxonomy-generate-reworded-v1", "taxonomy-update-reworded-v1", "taxonomy-review-v1", "taxonomy-classify-v1"
    ),
}
DEFAULT_PROMPT_SET = "v1"


def prompt_set(name: str) -> PromptSet:
    """Return the prompt set called ``name``, or raise ValueError listing the known ones."""
    try:
        return PROMPT_SETS[name]
    except KeyError:
        raise ValueError(f"unknown prompt set {name!r}; use one of {', '.join(sorted(PROMPT_SETS))}") from None


@functools.lru_cache(maxsize=None)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("atlas_builder.taxonomy", "prompts"),
        autoescape=False,  # plain-text prompts; untrusted text is fenced, not escaped
        undefined=jinja2.StrictUndefined,
    )


def template_text(prompt_version: str) -> str:
    """Return the source of ``prompts/<prompt_version>.j2`` (for checks that a wording change got a new version)."""
    source, _, _ = _environment().loader.get_source(_environment(), f"{prompt_version}.j2")
    return source


def render_messages(prompt_version: str, variables: Mapping[str, Any]) -> list[dict[str, str]]:
    """Render ``prompts/<prompt_version>.j2`` into a system and a user message."""
    try:
        template = _environment().get_template(f"{prompt_version}.j2")
    except jinja2.TemplateNotFound:
        raise ValueError(f"unknown prompt version {prompt_version!r}: no prompts/{prompt_version}.j2 in the package") from None
    untrusted = [str(item["title"]) if isinstance(item, Mapping) else str(item) for item in variables.get("titles", [])]
    for category in list(variables.get("categories", [])) + [variables.get("parent")]:
        if category is not None:
            untrusted += [str(category["name"]), str(category["definition"])]
    module = template.make_module({
        "max_name_words": MAX_NAME_WORDS,
        "max_definition_words": MAX_DEFINITION_WORDS,
        "parent": None,
        **variables,
        "fence": fence_marker(untrusted),
    })
    return [
        {"role": "system", "content": str(module.system()).strip()},
        {"role": "user", "content": str(module.user()).strip()},
    ]
