"""Error titles as the taxonomy stage sees them: normalised text, a stable hash, and counts."""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from atlas_builder.records import Diagnoses, Diagnosis

_SPACE = re.compile(r"\s+")


def normalise_title(title: str) -> str:
    """Collapse runs of whitespace (newlines included) to one space and strip the ends."""
    return _SPACE.sub(" ", title).strip()


def title_hash(title: str) -> str:
    """Return the sha256 hex digest of the normalised title (the key of stored assignments)."""
    return hashlib.sha256(normalise_title(title).encode("utf-8")).hexdigest()


@dataclass
class TitleCounts:
    """Distinct judge titles with the number of failures per title, overall and per dataset."""

    counts: Counter = field(default_factory=Counter)  # title -> failures
    by_dataset: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))  # dataset -> title -> failures

    def add(self, title: str, dataset: str, weight: int = 1) -> None:
        title = normalise_title(title)
        if not title:
            return
        self.counts[title] += weight
        self.by_dataset[dataset][title] += weight

    @property
    def failures(self) -> int:
        return sum(self.counts.values())


def judge_diagnoses(diagnoses: Diagnoses) -> list[Diagnosis]:
    """Return the judge diagnoses that decide a failure's category (the primary ones)."""
    return [item for item in diagnoses.primary.values() if item.kind == "judge"]


def title_counts(diagnoses: Diagnoses) -> TitleCounts:
    """Count the titles of the primary judge diagnoses, per failure."""
    counts = TitleCounts()
    for item in judge_diagnoses(diagnoses):
        counts.add(item.title, item.dataset)
    return counts
