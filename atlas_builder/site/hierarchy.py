"""The taxonomy as a tree for the site: counts and shares per node, the icicle chart, version changes.

Every share here is a share of the root total, the failures that have a
category (all diagnosed failures), so shares are comparable at every depth.
A node counts the failures assigned to it or to any category below it.
"""

from __future__ import annotations

import io
import logging
from typing import Any

import pandas as pd

from atlas_builder.records import Taxonomy
from atlas_builder.site.charts import ChartSpec
from atlas_builder.site.escape import clean

logger = logging.getLogger(__name__)

ROOT_LABEL = "All diagnosed failures"
KIND_COLOURS = {"content": "#4a6fa5", "mechanical": "#d9822b", "special": "#9a9a9a"}
KIND_LABELS = {"content": "content", "mechanical": "mechanical", "special": "special bucket"}


def tree_nodes(taxonomy: Taxonomy, failures: pd.DataFrame) -> tuple[list[dict[str, Any]], int]:
    """Return the categories in depth-first order with depth, subtree count and share, and the root total."""
    diagnosed = failures["category"].dropna()
    own = diagnosed.value_counts()
    total = int(len(diagnosed))
    nodes: list[dict[str, Any]] = []

    def visit(category, depth: int, path: list[str]) -> int:
        index = len(nodes)
        nodes.append({})
        count = int(own.get(category.id, 0))
        for child in taxonomy.children(category.id):
            count += visit(child, depth + 1, [*path, category.id])
        nodes[index] = {"id": category.id, "name": category.name, "kind": category.kind, "depth": depth,
                        "parent": category.parent, "path": path, "k": count, "share": count / total if total else None,
                        "published_share": category.published_share, "name_status": category.name_status,
                        "kind_label": KIND_LABELS.get(category.kind, category.kind)}
        return count

    for category in taxonomy.children(None):
        visit(category, 1, [])
    return nodes, total


def icicle_spec(name: str, nodes: list[dict[str, Any]], total: int, version: str) -> ChartSpec:
    """Return the chart spec of the hierarchy; the drawing reads ``extra["nodes"]``."""
    plain = [{"id": node["id"], "name": clean(node["name"]), "kind": node["kind"], "depth": node["depth"],
              "parent": node["parent"], "k": node["k"]} for node in nodes]
    return ChartSpec(name=name, title=f"Error taxonomy v{clean(version)}: share of all diagnosed failures",
                     xlabel="", labels=[], values=[], extra={"type": "icicle", "nodes": plain, "total": total})


def draw_icicle(spec: ChartSpec) -> bytes:
    """Draw an icicle diagram: one column per depth, each category a block whose height is its share of the root.

    Children sit beside their parent and take the parent's vertical span in
    proportion to their counts, so a parent's remainder (failures assigned to it
    directly) is the white gap below its children.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    matplotlib.rcParams["svg.hashsalt"] = "erroratlas"
    matplotlib.rcParams["svg.fonttype"] = "none"
    matplotlib.rcParams["font.size"] = 8
    matplotlib.rcParams["text.usetex"] = False
    nodes = spec.extra["nodes"]
    total = spec.extra["total"] or 0
    depth = max([node["depth"] for node in nodes] or [1])
    widths = [0.9] + [2.6] * depth  # root column, then one column per level
    figure, axes = plt.subplots(figsize=(2.0 + 2.2 * depth, 7.5))
    axes.set_xlim(0, sum(widths))
    axes.set_ylim(1, 0)
    axes.axis("off")
    axes.set_title(spec.title[:90], fontsize=10, parse_math=False)
    axes.add_patch(Rectangle((0, 0), widths[0], 1, facecolor="#dde3ec", edgecolor="white"))
    axes.text(widths[0] / 2, 0.5, f"{ROOT_LABEL}\n{total:,}", ha="center", va="center", rotation=90, parse_math=False)
    children: dict[str | None, list[dict]] = {}
    for node in nodes:
        children.setdefault(node["parent"], []).append(node)

    def place(parent: str | None, top: float, span: float, parent_count: int, column: int) -> None:
        left = sum(widths[:column])
        cursor = top
        for node in sorted(children.get(parent, []), key=lambda item: (-item["k"], item["id"])):
            height = span * node["k"] / parent_count if parent_count else 0.0
            if height <= 0:
                continue
            special = node["kind"] == "special"
            axes.add_patch(Rectangle((left, cursor), widths[column], height, linewidth=0.8, edgecolor="white",
                                     facecolor=KIND_COLOURS.get(node["kind"], "#4a6fa5"), hatch="///" if special else None))
            if height >= 0.018:
                share = node["k"] / total if total else 0.0
                label = f"{node['name'][:34]}  {share * 100:.1f} %"
                axes.text(left + 0.06, cursor + height / 2, label, va="center", ha="left", color="white" if not special else "black",
                          fontsize=7 if height < 0.04 else 8, clip_on=True, parse_math=False)
            place(node["id"], cursor, height, node["k"], column + 1)
            cursor += height

    place(None, 0.0, 1.0, total, 1)
    handles = [Rectangle((0, 0), 1, 1, facecolor=colour, hatch="///" if kind == "special" else None, edgecolor="white")
               for kind, colour in KIND_COLOURS.items()]
    axes.legend(handles, [KIND_LABELS[kind] for kind in KIND_COLOURS], loc="upper center", bbox_to_anchor=(0.5, 0.0),
                ncol=3, frameon=False, fontsize=7)
    figure.subplots_adjust(left=0.01, right=0.99, top=0.95, bottom=0.04)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    plt.close(figure)
    return buffer.getvalue()


def taxonomy_changes(taxonomy: Taxonomy) -> dict[str, Any] | None:
    """Return what changed since the previous taxonomy version, or None for a first version.

    Rows: previous id and name, the kind of change (kept, renamed, merged, split
    or retired) and the current ids it maps to. Kept categories are left out.
    """
    if not taxonomy.previous_version:
        return None
    from atlas_builder.taxonomy.load import InvalidTaxonomyError, load_taxonomy
    from atlas_builder.taxonomy.revise import change_kinds

    if taxonomy.path is None:
        logger.warning("taxonomy v%s has no file path; its changes since v%s are not shown",
                       taxonomy.version, taxonomy.previous_version)
        return {"previous_version": taxonomy.previous_version, "rows": None}
    try:
        previous = load_taxonomy(taxonomy.path.parent.parent, taxonomy.previous_version)
    except InvalidTaxonomyError as error:
        logger.warning("previous taxonomy v%s could not be read (%s); its changes are not shown",
                       taxonomy.previous_version, error)
        return {"previous_version": taxonomy.previous_version, "rows": None}
    rows = []
    for old_id, kind in sorted(change_kinds(previous, taxonomy).items()):
        if kind == "kept":
            continue
        targets = taxonomy.mapping.get(old_id, (old_id,) if old_id in taxonomy.categories else ())
        rows.append({"id": old_id, "name": previous.categories[old_id].name, "change": kind,
                     "targets": [{"id": target, "name": taxonomy.categories[target].name} for target in targets
                                 if target in taxonomy.categories]})
    added = sorted(set(taxonomy.categories) - set(previous.categories)
                   - {target for targets in taxonomy.mapping.values() for target in targets})
    return {"previous_version": taxonomy.previous_version, "rows": rows,
            "added": [{"id": cid, "name": taxonomy.categories[cid].name} for cid in added]}
