"""Logging set-up for the CLI and a progress helper for long steps."""

from __future__ import annotations

import logging
import sys
from typing import Iterable, Iterator, TypeVar

from tqdm import tqdm

T = TypeVar("T")


def configure(verbosity: int = 0) -> None:
    """Send ``atlas_builder`` logs to stderr; ``verbosity`` -1 quiet, 0 info, 1+ debug."""
    level = logging.WARNING if verbosity < 0 else logging.INFO if verbosity == 0 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("atlas_builder")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def progress(items: Iterable[T], *, total: int | None = None, desc: str, unit: str = "item") -> Iterator[T]:
    """Wrap ``items`` in a progress bar on stderr (count, rate, remaining); silent when stderr is not a terminal."""
    return iter(
        tqdm(items, total=total, desc=desc, unit=unit, file=sys.stderr, disable=None, dynamic_ncols=True)
    )
