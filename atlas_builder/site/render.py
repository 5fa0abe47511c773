"""Render the MkDocs sources of the atlas and build the HTML site with ``mkdocs build --strict``.

Layout of the generated folder (``docs_dir``): ``mkdocs.yml`` (the committed
base configuration plus docs_dir, site_dir and nav) beside ``docs/`` with the
Markdown pages, charts, downloads and failure-browser data. Files are
rewritten only when their bytes change, and files a render no longer produces
are deleted, so an incremental build touches only affected pages.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any, Callable

import jinja2
import numpy as np
import pandas as pd
import yaml

from atlas_builder.analysis import Analysis
from atlas_builder.records import Diagnoses, Results, Taxonomy
from atlas_builder.site.agreement import agreement_context, category_agreement
from atlas_builder.site.cache import PageCache, chart_specs, input_digest
from atlas_builder.site.charts import ChartSpec, render_charts
from atlas_builder.site.escape import html_title, markdown_safe, pre_text, safe_title
from atlas_builder.site.failures import write_browser_data
from atlas_builder.site.hierarchy import icicle_spec, taxonomy_changes
from atlas_builder.site.pages import PageBuilder, Release, compare_shards, diagnoser_rows, front_matter
from atlas_builder.site.writer import OutputTree

logger = logging.getLogger(__name__)

#: Page kind -> folder of its pages and downloads; the kind also prefixes its key in the page manifest.
ENTITY_FOLDERS = {"model": "models", "dataset": "datasets", "category": "categories"}

DOCS = "docs"
KEEP = ("README.md",)


class MkDocsBuildError(Exception):
    """Raised when ``mkdocs build --strict`` fails; the message carries its output."""


def template_environment() -> jinja2.Environment:
    """Return the Jinja environment: autoescape on, every printed value escaped for Markdown too."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("atlas_builder.site", "templates"),
        autoescape=True,
        finalize=markdown_safe,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=False,
    )
    env.filters["pre"] = pre_text
    env.filters["title_safe"] = safe_title
    return env


def find_base_config(explicit: Path | None = None) -> Path:
    """Return the committed ``mkdocs.yml``: the explicit path, the current folder's, or the repository's."""
    candidates = [explicit] if explicit else [Path.cwd() / "mkdocs.yml", Path(__file__).resolve().parents[2] / "mkdocs.yml"]
    for path in candidates:
        if path is not None and path.is_file():
            return path
    raise FileNotFoundError(f"base MkDocs configuration not found (looked at {', '.join(map(str, candidates))}); "
                            "run from the repository root or pass base_config")


def _csv(frame: pd.DataFrame) -> str:
    return frame.round(6).to_csv(index=False, lineterminator="\n")


def _json(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, indent=1, sort_keys=False, allow_nan=False) + "\n"


def _doc_text(path: Path) -> str | None:
    """Return a repository document for inclusion, with relative links turned into plain text."""
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"^# .*\n", "", text, count=1)  # the page has its own title
    text = re.sub(r"^(#{1,5}) ", r"#\1 ", text, flags=re.M)  # nest headings under the including section
    # Links to other repository files do not exist on the site; keep their text.
    return re.sub(r"\[([^\]]+)\]\((?!https?://|#)[^)]*\)", r"\1", text)


class SiteRenderer:
    """Writes every page, chart and data file of one build into an ``OutputTree``."""

    def __init__(self, results: Results, diagnoses: Diagnoses, taxonomy: Taxonomy, analysis: Analysis,
                 tree: OutputTree, release: Release, repo_docs: Path | None, *, force: bool = False):
        self.results, self.diagnoses, self.taxonomy, self.analysis = results, diagnoses, taxonomy, analysis
        self.tree, self.release, self.repo_docs = tree, release, repo_docs
        self.env = template_environment()
        self.pages = PageBuilder(results, diagnoses, taxonomy, analysis, release)
        self.charts: list[ChartSpec] = []
        self.page_count = 0
        self.force = force
        self.cache = PageCache(tree, DOCS, force=force)

    def render_page(self, template: str, context: dict[str, Any]) -> str:
        return self.env.get_template(template).render(**context)

    def page(self, relative: str, template: str, context: dict[str, Any]) -> None:
        self.tree.write(f"{DOCS}/{relative}", self.render_page(template, context))
        self.page_count += 1

    def data(self, relative: str, text: str) -> None:
        self.tree.write(f"{DOCS}/{relative}", text)

    def render_all(self) -> None:
        self.render_models()
        self.render_datasets()
        self.render_categories()
        self.render_home()
        self.render_fixed_pages()
        write_browser_data(_Prefixed(self.tree, DOCS), self.results, self.diagnoses, self.taxonomy, self.analysis,
                           force=self.force)
        self.render_assets()
        self.cache.save()

    def entity_page(self, kind: str, item_id: str, template: str, inputs: list[Any],
                    build: Callable[[], tuple[dict[str, Any], list[ChartSpec], dict[str, Any], pd.DataFrame]],
                    index_row: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> dict[str, Any]:
        """Write one model, dataset or category page with its CSV and JSON downloads, unless its inputs are unchanged.

        ``build`` returns the page context, chart specs, JSON download and table; it runs only
        when the digest of ``inputs`` differs from the previous render. Return the cache entry.
        """
        folder = ENTITY_FOLDERS[kind]
        unit, digest = f"{kind}:{item_id}", input_digest(inputs)
        entry = self.cache.lookup(unit, digest)
        if entry is None:
            context, specs, download, table = build()
            entry = self.cache.store(unit, digest, {
                f"{folder}/{item_id}.md": self.render_page(template, context),
                f"{folder}/{item_id}.csv": _csv(table), f"{folder}/{item_id}.json": _json(download)},
                specs, index_row(context) if index_row else None)
        self.page_count += 1
        self.charts += chart_specs(entry)
        return entry

    def render_models(self) -> None:
        summary = []
        for model_id in sorted(self.results.models):
            if model_id not in self.pages.accuracy_by_model:
                logger.warning("model %s has metadata but no results; no page", model_id)
                continue
            def model_row(context: dict[str, Any], model_id: str = model_id) -> dict[str, Any]:
                totals = context["totals"]
                return {"id": model_id, "name": self.results.models[model_id].name,
                        "organization": self.results.models[model_id].organization or "",
                        "datasets": totals["datasets"], "instances": totals["instances"],
                        "accuracy": (totals["instances"] - totals["failures"]) / totals["instances"],
                        "failures": totals["failures"], "diagnosed_share": totals["diagnosed_share"]}

            entry = self.entity_page("model", model_id, "model.md.j2", self.pages.model_inputs(model_id),
                                     lambda model_id=model_id: self.pages.model(model_id), model_row)
            summary.append(entry["row"])
        families = self.pages.families()
        for family in families:
            self.page(f"models/families/{family['id']}.md", "family.md.j2", self.pages.family(family))
        self.page("models/index.md", "models_index.md.j2",
                  {**self.pages.common, "front_matter": front_matter("Models"), "rows": summary, "families": families})
        self.data("models/models.csv", _csv(pd.DataFrame(summary)))
        self.render_compare_data()
        self.page("models/compare.md", "compare.md.j2", {"front_matter": front_matter("Compare two models")})

    def render_compare_data(self) -> None:
        """Write the comparison page's data, one file per model, unless the comparison is unchanged.

        The data grows with the square of the model count (230 MB for 830 models), so formatting
        it again on every build cost about a minute at that size.
        """
        comparison = self.analysis.comparison
        names = [(model_id, self.results.models[model_id].name) for model_id in comparison.models]
        category_names = [(category_id, category.name) for category_id, category in sorted(self.taxonomy.categories.items())]
        digest = input_digest([comparison.models, comparison.categories, names, category_names,
                               hashlib.sha256(b"".join(np.ascontiguousarray(array).tobytes()
                                                       for array in (comparison.shared, comparison.k, comparison.p))).hexdigest()])
        if self.cache.lookup("compare-data", digest) is not None:
            return
        shards = compare_shards(self.analysis, self.results, self.taxonomy)
        files = {"models/compare-data/meta.json": _json(shards["meta"])}
        for model_id, pairs in shards["shards"].items():
            files[f"models/compare-data/{model_id}.json"] = json.dumps(pairs, separators=(",", ":"))
        self.cache.store("compare-data", digest, files, [], None)

    def render_datasets(self) -> None:
        summary = []
        for dataset_id in sorted(self.results.datasets):
            if dataset_id not in self.pages.accuracy_by_dataset:
                logger.warning("dataset %s has metadata but no results; no page", dataset_id)
                continue
            def dataset_row(context: dict[str, Any], dataset_id: str = dataset_id) -> dict[str, Any]:
                info, totals = self.results.datasets[dataset_id], context["totals"]
                return {"id": dataset_id, "name": info.name, "task_type": info.task_type, "models": totals["models"],
                        "instances": totals["instances"], "accuracy": context["mean_accuracy"],
                        "failures": totals["failures"], "diagnosed_share": totals["diagnosed_share"],
                        "publishing": info.publishing.text}

            entry = self.entity_page("dataset", dataset_id, "dataset.md.j2", self.pages.dataset_inputs(dataset_id),
                                     lambda dataset_id=dataset_id: self.pages.dataset(dataset_id), dataset_row)
            summary.append(entry["row"])
        self.page("datasets/index.md", "datasets_index.md.j2",
                  {**self.pages.common, "front_matter": front_matter("Datasets"), "rows": summary})
        self.data("datasets/datasets.csv", _csv(pd.DataFrame(summary)))

    def render_categories(self) -> None:
        summary = self.analysis.stability
        for category_id in self.taxonomy.categories:
            agreement = category_agreement(summary, category_id)
            self.entity_page("category", category_id, "category.md.j2",
                             self.pages.category_inputs(category_id, agreement),
                             lambda category_id=category_id, agreement=agreement: self.pages.category(category_id, agreement))
        nodes, total = self.pages.nodes, self.pages.root_total
        chart = "taxonomy-hierarchy.svg" if total else None
        if chart:
            self.charts.append(icicle_spec(chart, nodes, total, self.taxonomy.version))
        self.page("categories/index.md", "categories_index.md.j2", {
            **self.pages.common, "front_matter": front_matter("Error categories"), "rows": nodes, "total": total,
            "chart": chart, "changes": taxonomy_changes(self.taxonomy),
            "chart_alt": safe_title(f"Icicle diagram of taxonomy v{self.taxonomy.version}: each block is a category, its height "
                                    "its share of all diagnosed failures, subcategories to the right of their parent; "
                                    "numbers in the table beside it"),
        })
        columns = ["id", "name", "parent", "depth", "kind", "name_status", "k", "share", "published_share"]
        self.data("categories/categories.csv", _csv(pd.DataFrame([{key: row[key] for key in columns} for row in nodes],
                                                                 columns=columns)))

    def render_home(self) -> None:
        coverage = self.analysis.coverage
        failures = self.analysis.failures
        top = failures["group"].value_counts()
        diagnosed = int(top.sum())
        mix = [{"id": cid, "name": self.taxonomy.categories[cid].name, "k": int(top.get(cid, 0)),
                "share": top.get(cid, 0) / diagnosed if diagnosed else None} for cid in self.analysis.signature_categories]
        chart = "atlas-mix.svg" if diagnosed else None
        if chart:
            self.charts.append(ChartSpec(name=chart, title="Category mix over the whole atlas", xlabel="share of diagnosed failures",
                                         labels=[row["name"] for row in mix], values=[row["share"] for row in mix]))
        self.page("index.md", "home.md.j2", {
            **self.pages.common, "front_matter": front_matter("ErrorAtlas", description="Why language models fail"),
            "coverage": coverage, "diagnosers": diagnoser_rows(failures),
            "diagnosed_share": coverage["diagnosed"] / coverage["failures"] if coverage["failures"] else None,
            "undiagnosed_share": coverage["undiagnosed"] / coverage["failures"] if coverage["failures"] else None,
            "mix": mix, "chart": chart,
            "chart_alt": "Bar chart: share of each signature category among all diagnosed failures; numbers in the table below",
        })

    def render_fixed_pages(self) -> None:
        common = self.pages.common
        docs = self.repo_docs
        self.page("methodology.md", "methodology.md.j2", {
            **common, "front_matter": front_matter("Methodology"), "categories": list(self.taxonomy.categories.values()),
            "agreement": agreement_context(self.analysis.stability),
            "checks_doc": _doc_text(docs / "checks.md") if docs else None})
        self.page("submit.md", "submit.md.j2", {
            "front_matter": front_matter("Submit results"),
            "format_doc": _doc_text(docs / "result-format.md") if docs else None})
        self.page("failures/index.md", "failures.md.j2", {"front_matter": front_matter("Failure browser", search=False)})
        page = self.pages.cite_page("release", self.release.name, f"ErrorAtlas release {self.release.name}", "")
        self.page("releases.md", "releases.md.j2", {
            **common, "front_matter": front_matter("Releases and citing"), "release_date": self.release.date,
            "is_release": self.release.is_release, "releases": self.release.others, "bulk": self.release.bulk,
            "page": page})

    def render_assets(self) -> None:
        for name in ("atlas.css", "atlas.js"):
            data = resources.files("atlas_builder.site").joinpath("assets", name).read_bytes()
            self.tree.write(f"{DOCS}/assets/{name}", data)


class _Prefixed:
    """An ``OutputTree`` view that writes below a sub-folder."""

    def __init__(self, tree: OutputTree, prefix: str):
        self.tree, self.prefix = tree, prefix

    def write(self, relative: str, data: bytes | str) -> bool:
        return self.tree.write(f"{self.prefix}/{relative}", data)

    def mark(self, relative: str) -> None:
        self.tree.mark(f"{self.prefix}/{relative}")

    def path(self, relative: str) -> Path:
        return self.tree.path(f"{self.prefix}/{relative}")


def effective_config(base: Path, docs: Path, site_dir: Path, release: Release, families: list[dict]) -> dict[str, Any]:
    """Return the base MkDocs configuration with docs_dir, site_dir, nav and release settings filled in."""
    config = yaml.safe_load(base.read_text(encoding="utf-8")) or {}
    config["docs_dir"] = str(docs.resolve())
    config["site_dir"] = str(Path(site_dir).resolve())
    if release.site_url:
        config["site_url"] = release.site_url.rstrip("/") + f"/{release.name}/"
    # A nav title reaches the HTML unescaped (MkDocs 1.6, Material 9), so it is escaped here, like page titles.
    family_nav = [{f"{html_title(family['name'])} family": f"models/families/{family['id']}.md"} for family in families]
    config["nav"] = [
        {"Home": "index.md"},
        {"Models": ["models/index.md", {"Compare two models": "models/compare.md"}, *family_nav]},
        {"Datasets": ["datasets/index.md"]},
        {"Categories": ["categories/index.md"]},
        {"Failure browser": "failures/index.md"},
        {"Methodology": "methodology.md"},
        {"Submit results": "submit.md"},
        {"Releases and citing": "releases.md"},
    ]
    config["not_in_nav"] = "/models/*.md\n/datasets/*.md\n/categories/*.md\n"
    extra = config.setdefault("extra", {})
    extra["atlas_release"] = release.name
    if release.is_release and release.others:
        extra["version"] = {"provider": "mike"}
    return config


def run_mkdocs(config_path: Path) -> None:
    """Run ``mkdocs build --strict`` on ``config_path``; raise ``MkDocsBuildError`` with its output on failure."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    completed = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-f", str(config_path)],
                               capture_output=True, text=True, env=env, check=False)
    if completed.returncode != 0:
        raise MkDocsBuildError(f"mkdocs build --strict failed (exit {completed.returncode}) for {config_path}:\n"
                               f"{completed.stdout}\n{completed.stderr}")
    if completed.stderr.strip():
        logger.debug("mkdocs: %s", completed.stderr.strip())


def render_sources(results: Results, diagnoses: Diagnoses, taxonomy: Taxonomy, analysis: Analysis, *,
                   docs_dir: Path, site_dir: Path, release: Release, base_config: Path | None = None,
                   repo_docs: Path | None = None, force: bool = False) -> tuple[OutputTree, int, Path, dict[str, float]]:
    """Write every generated source file; return the tree, page count, config path and step timings.

    ``force`` renders every page and draws every chart even when its inputs match the manifests.
    """
    seconds: dict[str, float] = {}
    tree = OutputTree(Path(docs_dir), keep=KEEP)
    renderer = SiteRenderer(results, diagnoses, taxonomy, analysis, tree, release, repo_docs, force=force)
    start = time.perf_counter()
    renderer.render_all()
    seconds["pages"] = time.perf_counter() - start
    start = time.perf_counter()
    render_charts(renderer.charts, tree, f"{DOCS}/charts", force=force)
    seconds["charts"] = time.perf_counter() - start
    config = effective_config(find_base_config(base_config), Path(docs_dir) / DOCS, site_dir, release, renderer.pages.families())
    tree.write("mkdocs.yml", "# Generated by atlas_builder.site from the repository's mkdocs.yml; do not edit.\n"
               + yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    removed = tree.prune()
    logger.info("site sources: %d pages (%d rendered, %d skipped); %d files written, %d unchanged, %d stale removed (%.2f s pages, %.2f s charts)",
                renderer.page_count, renderer.cache.rendered, renderer.cache.skipped, tree.written, tree.unchanged, removed, seconds["pages"], seconds["charts"])
    return tree, renderer.page_count, Path(docs_dir) / "mkdocs.yml", seconds
