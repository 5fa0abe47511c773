"""Charts as SVG with deterministic bytes, drawn in worker processes and skipped when unchanged.

A chart is a plain ``ChartSpec`` (JSON-ready numbers and labels). The SHA-256
of each spec is stored in a manifest beside the charts. A chart whose spec hash
matches the manifest and whose file exists is not drawn again.
"""

from __future__ import annotations

import gc
import hashlib
import io
import json
import logging
import math
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field

logger = logging.getLogger(__name__)

#: Bump when the drawing code changes, so every chart is redrawn once.
CHART_STYLE_VERSION = "3"
MANIFEST_NAME = ".chart-hashes.json"
PARALLEL_THRESHOLD = 8


@dataclass(frozen=True)
class ChartSpec:
    """A horizontal bar chart: one bar per label, optional interval and reference marker."""

    name: str  # file name inside the charts folder, e.g. "model-gpt-4.svg"
    title: str
    xlabel: str
    labels: list[str]
    values: list[float]
    lower: list[float] | None = None
    upper: list[float] | None = None
    reference: list[float] | None = None
    reference_label: str | None = None
    percent: bool = True
    value_label: str = "value"
    extra: dict = field(default_factory=dict)

    def digest(self) -> str:
        payload = json.dumps({"v": CHART_STYLE_VERSION, **asdict(self)}, sort_keys=True, default=str)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _finite(values: list[float] | None) -> list[float]:
    return [0.0 if v is None or (isinstance(v, float) and math.isnan(v)) else float(v) for v in values or []]


def draw(spec: ChartSpec) -> bytes:
    """Draw ``spec`` and return the SVG bytes (identical for identical specs)."""
    if spec.extra.get("type") == "icicle":
        from atlas_builder.site.hierarchy import draw_icicle

        return draw_icicle(spec)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matplotlib.rcParams["svg.hashsalt"] = "erroratlas"
    matplotlib.rcParams["svg.fonttype"] = "none"
    matplotlib.rcParams["font.size"] = 9
    # Labels are names from data files: draw them literally, never as TeX or mathtext ("$x$").
    matplotlib.rcParams["text.usetex"] = False
    count = max(len(spec.labels), 1)
    figure, axes = plt.subplots(figsize=(6.4, 0.9 + 0.28 * count))
    positions = list(range(count))[::-1]
    values = _finite(spec.values)
    axes.barh(positions, values, color="#4a6fa5", height=0.6, label=spec.value_label)
    if spec.lower is not None and spec.upper is not None:
        lower, upper = _finite(spec.lower), _finite(spec.upper)
        errors = [[max(v - lo, 0.0) for v, lo in zip(values, lower)], [max(hi - v, 0.0) for v, hi in zip(values, upper)]]
        axes.errorbar(values, positions, xerr=errors, fmt="none", ecolor="#222222", elinewidth=1, capsize=2,
                      label="95 % interval")
    if spec.reference is not None:
        axes.scatter(_finite(spec.reference), positions, marker="D", color="#d9822b", s=18, zorder=3,
                     label=spec.reference_label or "reference")
    axes.set_yticks(positions)
    axes.set_yticklabels([label[:40] for label in spec.labels], parse_math=False)
    axes.set_xlabel(spec.xlabel, parse_math=False)
    axes.set_title(spec.title[:80], fontsize=10, parse_math=False)
    if spec.percent:
        axes.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
        top = max([*values, *_finite(spec.upper), *_finite(spec.reference), 0.01])
        axes.set_xlim(0, min(1.0, top * 1.1) if top <= 1 else top * 1.1)
    if spec.lower is not None or spec.reference is not None:
        axes.legend(loc="lower right", fontsize=7, frameon=False)
    axes.spines[["top", "right"]].set_visible(False)
    # Fixed margins instead of tight_layout, which doubles the drawing time; labels are cut to 40 characters.
    height = 0.9 + 0.28 * count
    figure.subplots_adjust(left=0.36, right=0.97, top=1 - 0.38 / height, bottom=0.5 / height)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    plt.close(figure)
    return buffer.getvalue()


def _draw_named(spec: ChartSpec) -> tuple[str, bytes]:
    return spec.name, draw(spec)


def render_charts(specs: list[ChartSpec], tree, folder: str, *, workers: int | None = None,
                  force: bool = False) -> dict[str, int]:
    """Write every chart of ``specs`` into ``folder`` of the output ``tree``, drawing only changed ones (all with ``force``).

    Returns counts: drawn, skipped.
    """
    manifest_path = tree.path(f"{folder}/{MANIFEST_NAME}")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        manifest = {}
    todo = []
    for spec in specs:
        relative = f"{folder}/{spec.name}"
        if not force and manifest.get(spec.name) == spec.digest() and tree.path(relative).exists():
            tree.mark(relative)
        else:
            todo.append(spec)
    workers = workers or os.cpu_count() or 1
    if len(todo) >= PARALLEL_THRESHOLD and workers > 1:
        # Forked workers would copy the parent's pages when their garbage collector visits inherited
        # objects; frozen objects are skipped by the collector.
        gc.freeze()
        try:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                drawn = list(pool.map(_draw_named, todo, chunksize=max(1, len(todo) // (workers * 4))))
        finally:
            gc.unfreeze()
    else:
        drawn = [_draw_named(spec) for spec in todo]
    for name, data in drawn:
        tree.write(f"{folder}/{name}", data)
    new_manifest = {spec.name: spec.digest() for spec in specs}
    tree.write(f"{folder}/{MANIFEST_NAME}", json.dumps(new_manifest, sort_keys=True, indent=0))
    logger.info("charts: %d drawn, %d unchanged", len(todo), len(specs) - len(todo))
    return {"drawn": len(todo), "skipped": len(specs) - len(todo)}
