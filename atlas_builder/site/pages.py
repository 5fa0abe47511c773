"""Page contexts: turn the analysis into plain dicts and lists that the templates print.

Every string from data files reaches the templates as a plain value, so the
Jinja ``finalize`` hook escapes it. Only links and front matter built here are
marked safe, after their parts are checked.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import numpy as np
import pandas as pd
import yaml
from markupsafe import Markup, escape

from atlas_builder.analysis import Analysis
from atlas_builder.analysis.compare import ANY_FAILURE
from atlas_builder.analysis.profiles import pick_examples
from atlas_builder.ids import slug_problem, slugify
from atlas_builder.records import Diagnoses, Results, Source, Taxonomy
from atlas_builder.site.charts import ChartSpec
from atlas_builder.site.escape import bibtex_text, clean, html_title, markdown_safe, safe_title
from atlas_builder.site.failures import descendants, publish
from atlas_builder.site.hierarchy import tree_nodes

SIGNIFICANCE = 0.05


@dataclass
class Release:
    """The release a build belongs to: its name, date, URL root and the other releases."""

    name: str = "dev"
    date: str | None = None
    site_url: str | None = None  # public URL under which every release folder lives
    others: list[dict[str, str]] = field(default_factory=list)
    bulk: str | None = None  # file name of the bulk download inside the site, if any

    @property
    def is_release(self) -> bool:
        return self.name != "dev"


def front_matter(title: str, *, search: bool = True, description: str | None = None) -> Markup:
    """Return YAML front matter with a title stripped of markup characters."""
    obj: dict[str, Any] = {"title": html_title(title)}
    if description:
        obj["description"] = html_title(description)
    if not search:
        obj["search"] = {"exclude": True}
    return Markup("---\n" + yaml.safe_dump(obj, sort_keys=False, allow_unicode=True) + "---")


def link(path: str, **query: str) -> Markup:
    """Return a relative link with a query string; ids in it must be slugs."""
    for value in query.values():
        if slug_problem(value) is not None:
            raise ValueError(f"link parameter {value!r} is not an id")
    return Markup(path + ("?" + urlencode(sorted(query.items())) if query else ""))


def _num(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def permalink(release: Release, path: str) -> str:
    """Return the permanent URL of a page folder such as ``models/gpt-4/`` in this release."""
    root = (release.site_url or "/").rstrip("/")
    return f"{root}/{release.name}/{path}"


def cite(release: Release, kind: str, item_id: str, title: str, path: str) -> dict[str, str]:
    """Return the "Cite this page" texts (plain and BibTeX) and the permanent URL."""
    url = permalink(release, path)
    year = (release.date or "")[:4]
    key = re.sub(r"[^a-z0-9]+", "_", f"erroratlas {release.name} {kind} {item_id}".lower()).strip("_")
    plain = f"ErrorAtlas contributors. {clean(title)}. ErrorAtlas release {release.name}{', ' + year if year else ''}. {url}"
    bib_lines = [
        f"@misc{{{key},",
        f"  title = {{{{{bibtex_text(title)}}}}},",
        "  author = {{ErrorAtlas contributors}},",
        *([f"  year = {{{year}}},"] if year else []),
        f"  howpublished = {{\\url{{{url}}}}},",
        f"  note = {{ErrorAtlas release {bibtex_text(release.name)}}}",
        "}",
    ]
    return {"permalink": url, "cite_text": plain, "bibtex": "\n".join(bib_lines)}


def external_link(url: str | None) -> Markup | str:
    """Return ``url`` as an HTML link when its scheme is http or https, otherwise as plain text.

    Any other scheme (javascript:, data:, file:, relative paths) stays inert text that the
    template escapes. The link text and the attribute are escaped here.
    """
    if not url:
        return ""
    text = clean(url).strip()
    if urlsplit(text).scheme.lower() not in ("http", "https") or any(ch.isspace() for ch in text):
        return text
    href = str(escape(text)).replace("|", "%7C").replace("`", "%60")
    return Markup(f'<a href="{href}" rel="nofollow noopener">') + markdown_safe(text) + Markup("</a>")


def source_row(what: str, source: Source | None, license_name: str | None) -> dict[str, Any]:
    return {"what": what, "repository": source.repository if source else "unknown",
            "commit": (source.commit or "not recorded") if source else "not recorded",
            "path": (source.path or "") if source else "",
            "url": external_link(source.url) if source else "",
            "license": license_name or "unknown"}


def diagnoser_rows(failures: pd.DataFrame) -> list[dict[str, Any]]:
    counts = failures.groupby(["diagnoser", "kind"]).size().sort_index()
    return [{"name": name, "kind": kind, "count": int(n)} for (name, kind), n in counts.items()]


class PageBuilder:
    """Builds the contexts of every page from one build's records."""

    def __init__(self, results: Results, diagnoses: Diagnoses, taxonomy: Taxonomy, analysis: Analysis, release: Release):
        self.results, self.diagnoses, self.taxonomy, self.analysis, self.release = results, diagnoses, taxonomy, analysis, release
        self.category_names = {cid: c.name for cid, c in taxonomy.categories.items()}
        self.common = {"release": release.name, "taxonomy_version": taxonomy.version,
                       "min_diagnosed": analysis.min_diagnosed}
        failures = analysis.failures
        self.failures_by_model = dict(tuple(failures.groupby("model"))) if len(failures) else {}
        self.failures_by_dataset = dict(tuple(failures.groupby("dataset"))) if len(failures) else {}
        self.signature_by_model = dict(tuple(analysis.signature.groupby("model"))) if len(analysis.signature) else {}
        self.accuracy_by_model = dict(tuple(analysis.accuracy.groupby("model")))
        self.accuracy_by_dataset = dict(tuple(analysis.accuracy.groupby("dataset")))
        self.mix_by_dataset = dict(tuple(analysis.mix.groupby("dataset"))) if len(analysis.mix) else {}
        self.nodes, self.root_total = tree_nodes(taxonomy, failures)
        self.diagnosed = failures[failures["category"].notna()]
        self.diagnosed_by_model = self.diagnosed.groupby("model").size()
        self.diagnosed_by_dataset = self.diagnosed.groupby("dataset").size()
        self.node_by_id = {node["id"]: node for node in self.nodes}
        self._example_cache: dict[str, list[dict[str, Any]]] = {}

    # ---- shared pieces -------------------------------------------------------------------

    def cite_page(self, kind: str, item_id: str, title: str, path: str) -> dict[str, Any]:
        return cite(self.release, kind, item_id, title, path)

    def _totals(self, accuracy: pd.DataFrame) -> dict[str, Any]:
        instances, failures, diagnosed = (int(accuracy[c].sum()) for c in ("instances", "failures", "diagnosed"))
        return {"instances": instances, "failures": failures, "diagnosed": diagnosed,
                "diagnosed_share": diagnosed / failures if failures else None,
                "models": int(accuracy["model"].nunique()), "datasets": int(accuracy["dataset"].nunique())}

    # ---- model pages ---------------------------------------------------------------------

    def model(self, model_id: str) -> tuple[dict[str, Any], list[ChartSpec], dict[str, Any], pd.DataFrame]:
        """Return the context, charts, JSON download and CSV table of one model page."""
        info = self.results.models[model_id]
        accuracy = self.accuracy_by_model.get(model_id, self.analysis.accuracy.iloc[0:0])
        signature = self.signature_by_model.get(model_id, self.analysis.signature.iloc[0:0])
        totals = self._totals(accuracy)
        suppressed = bool(len(signature)) and (signature["flag"] == "suppressed").all()
        sig_rows = []
        for row in signature.to_dict("records"):
            # Suppression is a property of the whole model: the page says it once above the table.
            mark = {"over": "▲ over", "under": "▼ under"}.get(row["flag"], "")
            sig_rows.append({**{k: _num(v) if isinstance(v, float) else v for k, v in row.items()},
                             "name": self.category_names.get(row["category"], row["category"]), "mark": mark})
        acc_rows = [{**row, "name": self.results.datasets[row["dataset"]].name} for row in accuracy.to_dict("records")]
        nearest = [{"id": other, "name": self.results.models[other].name, "similarity": similarity,
                    "compare": link("compare.md", a=model_id, b=other)}
                   for other, similarity in self.analysis.nearest.get(model_id, [])]
        chart = f"model-{model_id}.svg"
        spec = ChartSpec(
            name=chart, title=f"Failure signature: {clean(info.name)}", xlabel="share of diagnosed failures",
            labels=[row["name"] for row in sig_rows], values=[row["share"] for row in sig_rows],
            lower=[row["share_lo"] for row in sig_rows], upper=[row["share_hi"] for row in sig_rows],
            reference=[row["pop_share"] for row in sig_rows], reference_label="other models, same datasets", value_label="this model",
        )
        title = f"Failure signature of {info.name}"
        provenance = [source_row(f"model results ({source.path or 'results'})", source, info.license) for source in info.sources]
        provenance += [source_row(f"dataset {self.results.datasets[d].name}", self.results.datasets[d].source,
                                  self.results.datasets[d].license) for d in accuracy["dataset"]]
        context = {
            **self.common, "front_matter": front_matter(info.name, description=title), "title": title,
            "model": info, "totals": totals, "datasets": list(accuracy["dataset"]), "suppressed": suppressed,
            "signature": sig_rows, "accuracy": acc_rows, "nearest": nearest, "chart": chart,
            "chart_alt": safe_title(f"Bar chart: share of each error category among {info.name}'s diagnosed failures, "
                                    "with 95 % intervals and the population share as diamonds; numbers in the table below"),
            "compare_link": link("compare.md", a=model_id),
            "browse_link": link("../failures/index.md", model=model_id),
            "page": self.cite_page("model", model_id, f"ErrorAtlas release {self.release.name}: {title}", f"models/{model_id}/"),
            "provenance": provenance,
            "page_diagnosers": diagnoser_rows(self.failures_by_model.get(model_id, self.analysis.failures.iloc[0:0])),
        }
        table = signature.drop(columns=["model"]).assign(model=model_id)
        download = {"release": self.release.name, "taxonomy_version": self.taxonomy.version, "model": model_id,
                    "name": clean(info.name), "interval": "95 % Wilson score",
                    "signature": _records(signature), "accuracy": _records(accuracy),
                    "nearest": [{"model": o, "similarity": s} for o, s in self.analysis.nearest.get(model_id, [])]}
        return context, ([] if suppressed else [spec]), download, table

    # ---- dataset pages -------------------------------------------------------------------

    def dataset(self, dataset_id: str) -> tuple[dict[str, Any], list[ChartSpec], dict[str, Any], pd.DataFrame]:
        """Return the context, charts, JSON download and CSV table of one dataset page."""
        info = self.results.datasets[dataset_id]
        accuracy = self.accuracy_by_dataset.get(dataset_id).sort_values(["accuracy", "model"], ascending=[False, True])
        mean_accuracy = float(accuracy["accuracy"].mean())
        acc_rows = [{**row, "name": self.results.models[row["model"]].name, "diff": row["accuracy"] - mean_accuracy}
                    for row in accuracy.to_dict("records")]
        mix = self.mix_by_dataset.get(dataset_id, self.analysis.mix.iloc[0:0])
        mix_rows = [{**{k: _num(v) if isinstance(v, float) else v for k, v in row.items()},
                     "name": self.category_names.get(row["category"], row["category"])} for row in mix.to_dict("records")]
        mix_rows = [row if row["diff"] is not None else {**row, "diff": float("nan")} for row in mix_rows]
        suspects = []
        rule = info.publishing
        references = self._references(dataset_id)
        for (suspect_dataset, instance_id), evidence in sorted(self.diagnoses.suspect_references.items()):
            if suspect_dataset != dataset_id:
                continue
            reference = references.get(instance_id)
            shown = publish(" | ".join(reference), rule)[0] if reference is not None else None
            suspects.append({"instance_id": instance_id, "summary": clean(evidence.get("summary", "")), "reference": shown})
        totals = self._totals(accuracy)
        accuracy_chart, mix_chart = f"dataset-{dataset_id}-accuracy.svg", f"dataset-{dataset_id}-mix.svg"
        specs = [ChartSpec(name=accuracy_chart, title=f"Accuracy on {clean(info.name)}", xlabel="accuracy",
                           labels=[clean(r["name"]) for r in acc_rows], values=[r["accuracy"] for r in acc_rows], value_label="accuracy",
                           lower=[r["accuracy_lo"] for r in acc_rows], upper=[r["accuracy_hi"] for r in acc_rows])]
        if totals["diagnosed"]:
            specs.append(ChartSpec(name=mix_chart, title=f"Category mix of {clean(info.name)}", xlabel="share of diagnosed failures",
                                   labels=[r["name"] for r in mix_rows], values=[r["share"] for r in mix_rows],
                                   lower=[r["share_lo"] for r in mix_rows], upper=[r["share_hi"] for r in mix_rows],
                                   reference=[r["atlas_share"] for r in mix_rows], reference_label="atlas average",
                                   value_label="this dataset"))
        title = f"Dataset profile of {info.name}"
        context = {
            **self.common, "front_matter": front_matter(info.name, description=title), "dataset": info,
            "totals": totals, "accuracy": acc_rows, "mean_accuracy": mean_accuracy, "mix": mix_rows, "suspects": suspects,
            "accuracy_chart": accuracy_chart, "mix_chart": mix_chart,
            "accuracy_alt": safe_title(f"Bar chart: accuracy of each model on {info.name} with 95 % intervals; numbers in the table below"),
            "mix_alt": safe_title(f"Bar chart: share of each error category among the diagnosed failures on {info.name}, "
                                  "with the atlas average as diamonds; numbers in the table below"),
            "browse_link": link("../failures/index.md", dataset=dataset_id),
            "page": self.cite_page("dataset", dataset_id, f"ErrorAtlas release {self.release.name}: {title}", f"datasets/{dataset_id}/"),
            "provenance": [source_row("dataset", info.source, info.license)]
                          + [source_row(f"results of {self.results.models[m].name}", s, self.results.models[m].license)
                             for m in accuracy["model"] for s in self.results.models[m].sources[:1]],
            "page_diagnosers": diagnoser_rows(self.failures_by_dataset.get(dataset_id, self.analysis.failures.iloc[0:0])),
        }
        download = {"release": self.release.name, "dataset": dataset_id, "name": clean(info.name),
                    "interval": "95 % Wilson score", "accuracy": _records(accuracy), "mix": _records(mix),
                    "suspect_references": [{"instance_id": s["instance_id"], "summary": s["summary"]} for s in suspects]}
        return context, specs, download, accuracy

    def _references(self, dataset_id: str) -> dict[str, tuple[str, ...]]:
        rows = self.results.rows
        part = rows[rows["dataset"] == dataset_id].drop_duplicates("instance_id")
        return dict(zip(part["instance_id"], part["reference"]))

    # ---- category pages ------------------------------------------------------------------

    def category(self, category_id: str, agreement: dict[str, Any]) -> tuple[dict[str, Any], list[ChartSpec], dict[str, Any], pd.DataFrame]:
        """Return the context, charts, JSON download and CSV table of one category page."""
        category = self.taxonomy.categories[category_id]
        subtree, inside = self._category_slice(category_id)
        diagnosed, model_all, dataset_all = self.diagnosed, self.diagnosed_by_model, self.diagnosed_by_dataset
        by_model = inside.groupby("model").size().sort_values(ascending=False, kind="stable")
        by_dataset = inside.groupby("dataset").size().sort_values(ascending=False, kind="stable")
        model_rows = [{"id": m, "name": self.results.models[m].name, "k": int(k), "share": k / model_all[m]} for m, k in by_model.items()]
        dataset_rows = [{"id": d, "name": self.results.datasets[d].name, "k": int(k), "share": k / dataset_all[d]} for d, k in by_dataset.items()]
        examples = self._examples(category_id, inside, subtree)
        chart = f"category-{category_id}.svg"
        top_rows = model_rows[:30]
        specs = [ChartSpec(name=chart, title=f"{category.name}: failures by model", xlabel="diagnosed failures in this category",
                           labels=[clean(r["name"]) for r in top_rows], values=[r["k"] for r in top_rows], percent=False,
                           value_label="failures")] if model_rows else []
        title = f"Error category {category.name}"
        context = {
            **self.common, "front_matter": front_matter(category.name, description=title), "category": category,
            "parent": self.taxonomy.categories.get(category.parent) if category.parent else None,
            "node": self.node_by_id.get(category_id),
            "breadcrumb": [self.node_by_id[ancestor] for ancestor in self.node_by_id[category_id]["path"]]
                          if category_id in self.node_by_id else [],
            "children": [self.node_by_id[child.id] for child in self.taxonomy.children(category_id)],
            "total": int(len(inside)),
            "total_share": len(inside) / len(diagnosed) if len(diagnosed) else None,
            "by_model": model_rows, "by_dataset": dataset_rows, "examples": examples, "chart": chart,
            "chart_alt": safe_title(f"Bar chart: diagnosed failures in {category.name} per model (up to 30 models); numbers in the table below"),
            "agreement": agreement,
            "browse_link": link("../failures/index.md", category=category_id),
            "page": self.cite_page("category", category_id, f"ErrorAtlas release {self.release.name}: {title}", f"categories/{category_id}/"),
            "provenance": [source_row(f"taxonomy v{self.taxonomy.version}", Source(repository="this atlas", path=str(self.taxonomy.path.name) if self.taxonomy.path else None), "see repository")],
            "page_diagnosers": diagnoser_rows(inside),
        }
        table = pd.concat([pd.DataFrame({"by": "model", "id": [r["id"] for r in model_rows], "failures": [r["k"] for r in model_rows],
                                         "share": [r["share"] for r in model_rows]}),
                           pd.DataFrame({"by": "dataset", "id": [r["id"] for r in dataset_rows], "failures": [r["k"] for r in dataset_rows],
                                         "share": [r["share"] for r in dataset_rows]})], ignore_index=True)
        download = {"release": self.release.name, "taxonomy_version": self.taxonomy.version, "category": category_id,
                    "name": category.name, "definition": category.definition, "parent": category.parent,
                    "children": [c.id for c in self.taxonomy.children(category_id)], "total": int(len(inside)),
                    "by_model": _records(table[table["by"] == "model"]), "by_dataset": _records(table[table["by"] == "dataset"]),
                    "examples": [{k: ex[k] for k in ("dataset", "model", "instance_id")} for ex in examples]}
        return context, specs, download, table

    def _examples(self, category_id: str, inside: pd.DataFrame, subtree: set[str]) -> list[dict[str, Any]]:
        """Return the example failures of a category, computed once per build (the page digest needs them too)."""
        if category_id not in self._example_cache:
            picked = pick_examples(inside, subtree).to_dict("records")
            outputs = self.results.outputs_for([(row["dataset"], row["model"], row["instance_id"]) for row in picked])
            self._example_cache[category_id] = [self._example(row, outputs) for row in picked]
        return self._example_cache[category_id]

    def _example(self, row: dict[str, Any], outputs: dict[tuple[str, str, str], str]) -> dict[str, Any]:
        key = (row["dataset"], row["model"], row["instance_id"])
        info = self.results.datasets[row["dataset"]]
        diagnosis = self.diagnoses.primary[key]
        output, cut = publish(outputs[key], info.publishing) if key in outputs else (None, False)
        return {"dataset": key[0], "model": key[1], "instance_id": key[2], "dataset_name": info.name,
                "model_name": self.results.models[key[1]].name, "title": diagnosis.title, "summary": diagnosis.summary,
                "diagnoser": diagnosis.diagnoser, "output": output, "cut": cut, "hidden": info.publishing.text == "hidden",
                "reason": info.publishing.reason, "warning": info.publishing.content_warning,
                "link": link("../../failures/", dataset=key[0], model=key[1], id=key[2])}

    def _category_slice(self, category_id: str) -> tuple[set[str], pd.DataFrame]:
        subtree = descendants(self.taxonomy, category_id)
        return subtree, self.diagnosed[self.diagnosed["category"].isin(subtree)]

    # ---- inputs of the pages the renderer skips when unchanged ---------------------------
    # Each list contains everything the page and its downloads print, so equal digests mean equal bytes.
    # A new value on one of these pages must be added to its list.

    def model_inputs(self, model_id: str) -> list[Any]:
        accuracy = self.accuracy_by_model[model_id]
        failures = self.failures_by_model.get(model_id, self.analysis.failures.iloc[0:0])
        nearest = [(other, similarity, self.results.models[other].name) for other, similarity in self.analysis.nearest.get(model_id, [])]
        return [self.common, repr(self.release), repr(self.results.models[model_id]), accuracy,
                self.signature_by_model.get(model_id, self.analysis.signature.iloc[0:0]), failures[["diagnoser", "kind"]],
                nearest, [self._dataset_label(d) for d in accuracy["dataset"]], self.category_names]

    def _dataset_label(self, dataset_id: str) -> list[Any]:
        # What a model page prints of a dataset: its name, source and licence, not its description.
        info = self.results.datasets[dataset_id]
        return [info.name, repr(info.source), info.license]

    def dataset_inputs(self, dataset_id: str) -> list[Any]:
        accuracy = self.accuracy_by_dataset[dataset_id]
        failures = self.failures_by_dataset.get(dataset_id, self.analysis.failures.iloc[0:0])
        suspects = sorted((instance_id, evidence) for (suspect_dataset, instance_id), evidence
                          in self.diagnoses.suspect_references.items() if suspect_dataset == dataset_id)
        references = self._references(dataset_id) if suspects else {}
        return [self.common, repr(self.release), repr(self.results.datasets[dataset_id]), accuracy,
                [repr(self.results.models[m]) for m in accuracy["model"]], self.mix_by_dataset.get(dataset_id, self.analysis.mix.iloc[0:0]),
                [(instance_id, evidence, references.get(instance_id)) for instance_id, evidence in suspects],
                failures[["diagnoser", "kind"]], self.category_names]

    def category_inputs(self, category_id: str, agreement: dict[str, Any]) -> list[Any]:
        category = self.taxonomy.categories[category_id]
        subtree, inside = self._category_slice(category_id)
        models, datasets = sorted(set(inside["model"])), sorted(set(inside["dataset"]))
        related = [*self.node_by_id[category_id]["path"], category_id, *(c.id for c in self.taxonomy.children(category_id))]
        examples = self._examples(category_id, inside, subtree)
        return [self.common, repr(self.release), repr(category),
                repr(self.taxonomy.categories.get(category.parent)) if category.parent else None,
                [self.node_by_id[node_id] for node_id in related],
                inside[["dataset", "model", "instance_id", "category", "diagnoser", "kind"]],
                self.diagnosed_by_model.reindex(models), self.diagnosed_by_dataset.reindex(datasets),
                [self.results.models[m].name for m in models], [self.results.datasets[d].name for d in datasets],
                examples, agreement, self.taxonomy.path.name if self.taxonomy.path else None]

    # ---- families ------------------------------------------------------------------------

    def families(self) -> list[dict[str, Any]]:
        """Return each model family with two or more models that have results, members ordered by parameter count.

        Models with metadata but no results have no page and no comparison data, so they are left out
        (``render_models`` logs them once).
        """
        groups: dict[str, list] = {}
        for info in self.results.models.values():
            if info.family and info.id in self.accuracy_by_model:
                groups.setdefault(info.family, []).append(info)
        families = []
        for name, members in sorted(groups.items()):
            if len(members) < 2:
                continue
            members.sort(key=lambda info: (_parameter_count(info.parameters), info.id))
            families.append({"id": slugify(name), "name": name, "members": members})
        return families

    def family(self, family: dict[str, Any]) -> dict[str, Any]:
        """Return the context of a family page: neighbours by size, plus the smallest against the largest.

        Comparing every pair would grow with the square of the family size; the comparison page covers the rest.
        """
        comparison = self.analysis.comparison
        members = family["members"]
        chosen = [(members[i], members[i + 1]) for i in range(len(members) - 1)]
        if len(members) > 2:
            chosen.append((members[0], members[-1]))
        pairs = []
        for a, b in chosen:
            data = comparison.pair(a.id, b.id)
            shared = data["shared"]
            rows = []
            for row in data["rows"]:
                name = "Any failure" if row["category"] == ANY_FAILURE else self.category_names.get(row["category"], row["category"])
                rows.append({"name": name, "a": row["a"], "b": row["b"],
                             "a_rate": row["a"] / shared if shared else None, "b_rate": row["b"] / shared if shared else None,
                             "p": row["p"], "significant": row["p"] is not None and row["p"] < SIGNIFICANCE})
            pairs.append({"a_name": a.name, "b_name": b.name, "shared": shared, "rows": rows})
        return {**self.common, "front_matter": front_matter(f"{family['name']} family"), "family": family, "pairs": pairs}


def _parameter_count(text: str | None) -> float:
    """Return a number of parameters from text such as "70B" or "8x7B" (infinity when unknown)."""
    if not text:
        return math.inf
    match = re.search(r"(\d+(?:\.\d+)?)\s*([kmbt])?", text.lower())
    if not match:
        return math.inf
    scale = {"k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}.get(match.group(2) or "", 1.0)
    return float(match.group(1)) * scale


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Return JSON-ready records with NaN as null and floats rounded to 6 digits."""
    return json.loads(frame.round(6).to_json(orient="records"))


def compare_shards(analysis: Analysis, results: Results, taxonomy: Taxonomy) -> dict[str, Any]:
    """Return the comparison data: one small JSON per model with its pairs, and a model list."""
    comparison = analysis.comparison
    names = {cid: c.name for cid, c in taxonomy.categories.items()}
    shards = {}
    for i, a in enumerate(comparison.models):
        pairs = {}
        for j, b in enumerate(comparison.models):
            if i == j or comparison.shared[i, j] == 0:
                continue
            k = comparison.k[:, i, j].tolist()
            kb = comparison.k[:, j, i].tolist()
            p = [None if np.isnan(v) else float(f"{v:.4g}") for v in comparison.p[:, i, j]]
            pairs[b] = {"n": int(comparison.shared[i, j]), "a": k, "b": kb, "p": p}
        shards[a] = pairs
    meta = {"models": [{"id": m, "name": clean(results.models[m].name)} for m in comparison.models],
            "categories": [{"id": c, "name": "Any failure" if c == ANY_FAILURE else names.get(c, c)} for c in comparison.categories],
            "alpha": SIGNIFICANCE}
    return {"meta": meta, "shards": shards}
