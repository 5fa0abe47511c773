"""Versioned releases: build the site into ``<out>/<release>/`` and keep every older release beside it.

``<out>/versions.json`` lists the releases newest first in the format that
Material for MkDocs' version selector reads (the one ``mike`` writes), and
``<out>/index.html`` redirects to the newest release. A release folder is never
rewritten: building a release name that exists is an error.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from atlas_builder.analysis import analyse
from atlas_builder.ids import slug_problem
from atlas_builder.records import Diagnoses, Results
from atlas_builder.results.write import atomic_write_bytes
from atlas_builder.site import SiteReport, render_site
from atlas_builder.site.pages import Release
from atlas_builder.site.render import DOCS, run_mkdocs

logger = logging.getLogger(__name__)

VERSIONS_FILE = "versions.json"
ZIP_TIME = (2000, 1, 1, 0, 0, 0)  # fixed member time so equal content gives equal zip bytes


class ReleaseError(Exception):
    """Raised when a release cannot be made; the message names the value and the fix."""


@dataclass
class ReleaseReport:
    """Result of one release: its folder, bulk download, site report and the release list."""

    name: str
    site_dir: Path
    bulk: Path
    site: SiteReport
    releases: list[str]


def read_versions(out: Path) -> list[dict]:
    """Return the releases listed in ``<out>/versions.json`` (newest first), or [] when there is none."""
    path = out / VERSIONS_FILE
    if not path.is_file():
        return []
    versions = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(versions, list):
        raise ReleaseError(f"{path} is not a list of releases; restore it from the published site")
    return versions


def check_name(name: str, out: Path) -> None:
    """Raise ``ReleaseError`` unless ``name`` is a new, valid release name."""
    reason = slug_problem(name)
    if reason:
        raise ReleaseError(f"invalid release name {name!r}: {reason}; use a name such as 2024.1")
    if name in ("dev", "latest", "releases"):
        raise ReleaseError(f"release name {name!r} is reserved; use a name such as 2024.1")
    if (out / name).exists():
        raise ReleaseError(f"release {name!r} already exists in {out}; releases are never rebuilt, choose a new name")


def bulk_archive(results: Results, diagnoses: Diagnoses, docs: Path, name: str) -> bytes:
    """Return the bulk download of a release as zip bytes.

    It contains the metadata and taxonomy, the result files of datasets whose
    publishing rule is "full" (others as ids and scores only), every primary
    diagnosis, and every page's CSV and JSON tables.
    """
    buffer = io.BytesIO()
    data_dir = results.data_dir

    def add(member: str, payload: bytes) -> None:
        info = zipfile.ZipInfo(f"erroratlas-{name}/{member}", date_time=ZIP_TIME)
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, payload)

    with zipfile.ZipFile(buffer, "w") as archive:
        for folder in ("datasets", "models", "taxonomy"):
            for path in sorted((data_dir / folder).glob("*.yaml")):
                add(f"data/{folder}/{path.name}", path.read_bytes())
        for file in sorted(results.files, key=lambda f: (f.dataset, f.model)):
            rule = results.datasets[file.dataset].publishing.text
            if rule == "full":
                add(f"data/results/{file.dataset}/{file.model}.jsonl", file.path.read_bytes())
            else:
                rows = results.rows[(results.rows["dataset"] == file.dataset) & (results.rows["model"] == file.model)]
                scores = rows[["instance_id", "score", "correct"]].rename(columns={"instance_id": "id"})
                add(f"data/results/{file.dataset}/{file.model}.scores.jsonl",
                    scores.to_json(orient="records", lines=True).encode("utf-8"))
        lines = [json.dumps({"dataset": d.dataset, "model": d.model, "instance_id": d.instance_id, "diagnoser": d.diagnoser,
                             "kind": d.kind, "title": d.title, "summary": d.summary, "category": d.category},
                            ensure_ascii=False, sort_keys=True)
                 for d in sorted(diagnoses.primary.values(), key=lambda d: d.key)]
        add("diagnoses.jsonl", ("\n".join(lines) + "\n").encode("utf-8"))
        for path in sorted(docs.rglob("*")):
            relative = path.relative_to(docs).as_posix()
            if path.suffix in (".csv", ".json") and relative.split("/")[0] in ("models", "datasets", "categories") \
                    and "compare-data" not in relative:
                add(f"tables/{relative}", path.read_bytes())
        add("README.txt", (f"ErrorAtlas release {name}. Result texts of datasets whose publishing rule is not 'full' "
                           "are left out (ids and scores only); see data/datasets/<id>.yaml.\n").encode("utf-8"))
    return buffer.getvalue()


def release_sources_dir(name: str) -> Path:
    """Return where the MkDocs sources of release ``name`` are generated: under the build cache, not the repository.

    That is ``$ATLAS_CACHE_DIR/release-sources/<name>``, else ``.atlas-cache/release-sources/<name>``; with the
    cache turned off (``ATLAS_CACHE_DIR=off``), a new temporary folder.
    """
    value = os.environ.get("ATLAS_CACHE_DIR", "").strip()
    if value.lower() == "off":
        return Path(tempfile.mkdtemp(prefix=f"atlas-release-{name}-"))
    root = Path(value) if value else Path(".atlas-cache")
    return root / "release-sources" / name


def make_release(name: str, data_dir: Path, out: Path, *, date: str, site_url: str | None = None,
                 docs_dir: Path | None = None) -> ReleaseReport:
    """Build release ``name`` from ``data_dir`` into ``out/name`` and update the release list."""
    from atlas_builder.pipeline import prepare

    out = Path(out)
    check_name(name, out)
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", date):
        raise ReleaseError(f"invalid release date {date!r}; use YYYY-MM-DD")
    versions = [v for v in read_versions(out) if v.get("version") != name]
    ordered = [{"version": name, "title": f"{name} ({date})", "aliases": ["latest"]}] + \
              [{**v, "aliases": [a for a in v.get("aliases", []) if a != "latest"]} for v in versions]
    others = [{"name": v["version"], "date": v.get("title", ""), "href": f"../../{v['version']}/"} for v in ordered]

    results, diagnoses, taxonomy = prepare(data_dir)
    analysis = analyse(results, diagnoses, taxonomy)
    bulk_name = f"downloads/erroratlas-{name}.zip"
    release = Release(name=name, date=date, site_url=site_url, others=others, bulk=bulk_name)
    docs_dir = Path(docs_dir or release_sources_dir(name))
    site_dir = out / name
    report = render_site(results, diagnoses, taxonomy, analysis, docs_dir=docs_dir, site_dir=site_dir,
                         release=release, build_html=False)
    archive = bulk_archive(results, diagnoses, docs_dir / DOCS, name)
    atomic_write_bytes(docs_dir / DOCS / bulk_name, archive)
    run_mkdocs(docs_dir / "mkdocs.yml")
    logger.info("release %s: %d pages, bulk download %.1f MB (sha256 %s)", name, report.pages, len(archive) / 1e6,
                hashlib.sha256(archive).hexdigest()[:12])

    atomic_write_bytes(out / VERSIONS_FILE, (json.dumps(ordered, indent=1) + "\n").encode("utf-8"))
    redirect = (f'<!doctype html><meta charset="utf-8"><title>ErrorAtlas</title>'
                f'<meta http-equiv="refresh" content="0; url={name}/"><a href="{name}/">ErrorAtlas release {name}</a>\n')
    atomic_write_bytes(out / "index.html", redirect.encode("utf-8"))
    return ReleaseReport(name=name, site_dir=site_dir, bulk=site_dir / bulk_name, site=report,
                         releases=[v["version"] for v in ordered])


def releases_table(out: Path) -> pd.DataFrame:
    """Return the releases under ``out`` as a table (version, title, folder present)."""
    versions = read_versions(out)
    return pd.DataFrame([{"version": v["version"], "title": v.get("title", ""), "present": (out / v["version"]).is_dir()}
                         for v in versions])
