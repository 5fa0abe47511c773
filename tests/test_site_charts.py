"""Charts: identical bytes for identical specs, and redraws only when a spec changes."""

from __future__ import annotations

from pathlib import Path

from atlas_builder.site.charts import ChartSpec, draw, render_charts
from atlas_builder.site.writer import OutputTree


def spec(name: str = "c.svg", value: float = 0.3) -> ChartSpec:
    return ChartSpec(name=name, title="Signature", xlabel="share", labels=["Logic", "Math"], values=[value, 0.5],
                     lower=[0.1, 0.4], upper=[0.5, 0.6], reference=[0.2, 0.5], reference_label="population")


def test_chart_bytes_deterministic():
    first, second = draw(spec()), draw(spec())
    assert first == second
    assert first.startswith(b"<?xml")
    assert b"<dc:date>" not in first


def test_chart_handles_missing_values():
    svg = draw(ChartSpec(name="n.svg", title="t", xlabel="x", labels=["a"], values=[float("nan")],
                         lower=[float("nan")], upper=[float("nan")]))
    assert b"<svg" in svg


def test_unchanged_charts_skipped(tmp_path: Path):
    tree = OutputTree(tmp_path)
    assert render_charts([spec("a.svg"), spec("b.svg")], tree, "charts", workers=1) == {"drawn": 2, "skipped": 0}
    again = OutputTree(tmp_path)
    assert render_charts([spec("a.svg"), spec("b.svg", value=0.4)], again, "charts", workers=1) == {"drawn": 1, "skipped": 1}
    assert again.written == 2  # the changed chart and the hash manifest


def test_redrawn_when_file_missing(tmp_path: Path):
    render_charts([spec("a.svg")], OutputTree(tmp_path), "charts", workers=1)
    (tmp_path / "charts" / "a.svg").unlink()
    assert render_charts([spec("a.svg")], OutputTree(tmp_path), "charts", workers=1)["drawn"] == 1


def test_chart_text_drawn_literally():
    name = "Evil <script>x</script> $\\alpha$ {{ 7*7 }} {% raw %} 50% & co"
    svg = draw(ChartSpec(name="literal.svg", title=f"Accuracy on {name}", xlabel="share $x$",
                         labels=["$\\beta$ model", "<b>bold</b>"], values=[0.5, 0.25])).decode("utf-8")
    assert "Evil &lt;script&gt;x&lt;/script&gt; $\\alpha$ {{ 7*7 }} {% raw %} 50% &amp; co" in svg
    assert "share $x$" in svg
    assert "$\\beta$ model" in svg
    assert "&lt;b&gt;bold&lt;/b&gt;" in svg
    assert "<script>" not in svg
