"""Row accounting for one converter: rows read, written and skipped (with a reason each)."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)


@dataclass
class Report:
    """Counts for one converted dataset; ``skipped`` maps a reason to its row count."""

    dataset: str
    read: int = 0
    written: int = 0
    failures: int = 0
    skipped: Counter = field(default_factory=Counter)
    per_model: Counter = field(default_factory=Counter)

    def skip(self, reason: str, count: int = 1) -> None:
        self.skipped[reason] += count

    def wrote(self, model: str, correct: bool) -> None:
        self.written += 1
        self.per_model[model] += 1
        if not correct:
            self.failures += 1

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    def log(self) -> None:
        logger.info("%s: read %d rows, wrote %d (%d failures), skipped %d",
                    self.dataset, self.read, self.written, self.failures, self.skipped_total)
        for reason, count in sorted(self.skipped.items()):
            logger.info("%s: skipped %d: %s", self.dataset, count, reason)
        unaccounted = self.read - self.written - self.skipped_total
        if unaccounted:
            logger.warning("%s: %d rows read but neither written nor skipped", self.dataset, unaccounted)
