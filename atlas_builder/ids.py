"""Identifier rules shared by every stage: ids are lowercase slugs."""

from __future__ import annotations

import re

SLUG_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{0,78}[a-z0-9])?$")
MAX_SLUG_LENGTH = 80


def slug_problem(value: object) -> str | None:
    """Return why ``value`` is not a valid id, or None when it is one.

    A valid id is 1-80 characters of ``a-z``, ``0-9``, ``.``, ``_`` and ``-``,
    starts and ends with a letter or digit, and contains no ``..``, so it is
    safe as a file name and a URL path segment.
    """
    if not isinstance(value, str):
        return f"an id must be a string, not {type(value).__name__}"
    if not value:
        return "an id must not be empty"
    if len(value) > MAX_SLUG_LENGTH:
        return f"an id must be at most {MAX_SLUG_LENGTH} characters, got {len(value)}"
    if ".." in value:
        return "an id must not contain '..'"
    if value != value.lower():
        return "an id must be lowercase"
    if not SLUG_PATTERN.fullmatch(value):
        return "an id may contain only a-z, 0-9, '.', '_' and '-', and must start and end with a letter or digit"
    return None


def slugify(text: str) -> str:
    """Turn a free-text name into a valid id (for importers and converters)."""
    slug = re.sub(r"[^a-z0-9._-]+", "-", text.strip().lower())
    slug = re.sub(r"\.{2,}", ".", slug)
    slug = re.sub(r"-{2,}", "-", slug).strip("-._")
    return slug[:MAX_SLUG_LENGTH].rstrip("-._") or "unnamed"
