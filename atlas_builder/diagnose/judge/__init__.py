"""The LLM judge: diagnoses failures through litellm and stores every answer.

Entry point for the build: ``stored_diagnoses(results, data_dir) -> list[Diagnosis]``,
which reads stored answers only and never imports litellm.
"""

from __future__ import annotations

from pathlib import Path

from atlas_builder.records import Diagnosis, Results


def stored_diagnoses(results: Results, data_dir: Path) -> list[Diagnosis]:
    """Return the judge diagnoses stored under ``data_dir`` for the failures in ``results``."""
    return []
