"""Page contexts built from the made-up fixture atlas, without running MkDocs."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from atlas_builder.analysis import analyse
from atlas_builder.results import load_results
from atlas_builder.site.escape import markdown_safe
from atlas_builder.site.pages import PageBuilder, Release
from atlas_builder.site.render import template_environment
from atlas_builder.taxonomy.load import load_taxonomy

FIXTURE = Path(__file__).parent / "fixtures" / "site"
sys.path.insert(0, str(FIXTURE))
from synthetic import fixture_diagnoses  # noqa: E402


def builder_for(data_dir: Path) -> PageBuilder:
    results = load_results(data_dir)
    diagnoses = fixture_diagnoses(results)
    taxonomy = load_taxonomy(data_dir)
    analysis = analyse(results, diagnoses, taxonomy)
    return PageBuilder(results, diagnoses, taxonomy, analysis, Release())


@pytest.fixture(scope="module")
def pages() -> PageBuilder:
    return builder_for(FIXTURE / "data")


@pytest.fixture(scope="module")
def pages_with_resultless_model(tmp_path_factory) -> PageBuilder:
    data = tmp_path_factory.mktemp("data") / "data"
    shutil.copytree(FIXTURE / "data", data)
    (data / "models" / "llama-3-test.yaml").write_text("id: llama-3-test\nname: X\nfamily: llama-3\n", encoding="utf-8")
    return builder_for(data)


def test_family_skips_model_without_results(pages_with_resultless_model):
    families = pages_with_resultless_model.families()
    llama = [family for family in families if family["id"] == "llama-3"]
    assert len(llama) == 1
    member_ids = [info.id for info in llama[0]["members"]]
    assert "llama-3-test" not in member_ids
    assert member_ids == ["llama-3-8b", "llama-3-70b"]
    context = pages_with_resultless_model.family(llama[0])
    assert len(context["pairs"]) == 1


@pytest.mark.parametrize(("value", "expected"), [
    (29812, "29,812"), (np.int64(29812), "29,812"), (1234, "1,234"), (-1500, "-1,500"), (999, "999"),
    (np.float64(0.5), "0.5"), (True, "True"),
])
def test_numbers_grouped_by_thousands(value, expected):
    assert str(markdown_safe(value)) == expected


def test_percent_and_points_never_break():
    env = template_environment()
    text = env.from_string('{% import "_macros.md.j2" as m %}{{ m.pct(0.309) }} {{ m.pvalue(6.4e-9) }} {{ m.pvalue(0.0321) }}').render()
    assert text == "30.9&nbsp;% &lt;&nbsp;0.001 0.032"


@pytest.fixture(scope="module")
def pages_with_sources(tmp_path_factory) -> PageBuilder:
    data = tmp_path_factory.mktemp("sources") / "data"
    shutil.copytree(FIXTURE / "data", data)
    arith = data / "datasets" / "arith.yaml"
    arith.write_text(arith.read_text(encoding="utf-8").replace(
        "  commit: 0123456789abcdef0123456789abcdef01234567\n",
        "  commit: 0123456789abcdef0123456789abcdef01234567\n  path: data/arith|<b>x</b>.jsonl\n"
        "  url: https://example.org/arith?a=1&b=<2>\n"
    ) + "citation: '@misc{arith, title = {Arithmetic <script>x</script> {{ 7*7 }}}}'\n", encoding="utf-8")
    model = data / "models" / "mistral-7b.yaml"
    model.write_text(model.read_text(encoding="utf-8").replace(
        "- repository: example/made-up-results\n",
        "- repository: example/made-up-results\n  url: javascript:alert(1)\n  path: results/mistral.jsonl\n"), encoding="utf-8")
    return builder_for(data)


def render(template: str, context: dict) -> str:
    return template_environment().get_template(template).render(**context)


def test_dataset_source_link_and_citation(pages_with_sources):
    context = pages_with_sources.dataset("arith")[0]
    page = render("dataset.md.j2", context)
    assert '<a href="https://example.org/arith?a=1&amp;b=&lt;2&gt;" rel="nofollow noopener">' in page
    assert "data/arith&#124;&#60;b&#62;x&#60;/b&#62;.jsonl" in page
    assert "@misc&#123;arith, title = &#123;Arithmetic &lt;script&gt;x&lt;/script&gt; &#123;&#123; 7*7 &#125;&#125;&#125;&#125;" in page
    assert "<script>" not in page


def test_non_http_source_url_stays_text(pages_with_sources):
    context = pages_with_sources.model("mistral-7b")[0]
    page = render("model.md.j2", context)
    assert "javascript:alert&#40;1&#41;" in page
    assert 'href="javascript' not in page
    assert "results/mistral.jsonl" in page
