"""Open the built fixture atlas in headless Debian Chromium (driven by Playwright) and use it like a reader."""

from __future__ import annotations

import functools
import http.server
import sys
import threading
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
FIXTURE = Path(__file__).parent / "fixtures" / "site"
sys.path.insert(0, str(FIXTURE))

playwright_api = pytest.importorskip("playwright.sync_api")
if not CHROMIUM.exists():
    pytest.skip("Debian chromium is not installed at /usr/bin/chromium (apt-get install chromium)", allow_module_level=True)

from synthetic import fixture_diagnoses  # noqa: E402

from atlas_builder.analysis import analyse  # noqa: E402
from atlas_builder.results import load_results  # noqa: E402
from atlas_builder.site import Release, render_site  # noqa: E402
from atlas_builder.taxonomy.load import load_taxonomy  # noqa: E402


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - signature of the base class
        pass


@pytest.fixture(scope="module")
def site_url(tmp_path_factory):
    out = tmp_path_factory.mktemp("browser-atlas")
    results = load_results(FIXTURE / "data")
    diagnoses = fixture_diagnoses(results)
    taxonomy = load_taxonomy(FIXTURE / "data")
    analysis = analyse(results, diagnoses, taxonomy)
    render_site(results, diagnoses, taxonomy, analysis, docs_dir=out / "src", site_dir=out / "site",
                release=Release(name="2024.1", date="2024-05-01"))
    handler = functools.partial(QuietHandler, directory=str(out / "site"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    thread.join()


@pytest.fixture(scope="module")
def browser():
    # Playwright gives Chromium a fresh temporary profile itself (it rejects --user-data-dir).
    with playwright_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        yield instance
        instance.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    tab = context.new_page()
    tab.problems = []
    tab.on("console", lambda message: tab.problems.append(message.text) if message.type == "error" else None)
    tab.on("pageerror", lambda error: tab.problems.append(str(error)))
    tab.on("response", lambda response: tab.problems.append(f"HTTP {response.status} {response.url}")
           if response.status >= 400 else None)
    yield tab
    context.close()


PAGES = [
    "", "models/", "models/llama-3-8b/", "models/inject-model/", "models/families/llama-3/",
    "datasets/", "datasets/arith/", "datasets/quiz/", "datasets/secret/",
    "categories/", "categories/computation-error/", "categories/output-mechanics/", "categories/empty-output/",
    "failures/", "failures/?model=llama-3-8b", "failures/?dataset=quiz", "failures/?category=computation-error",
    "failures/?model=inject-model&category=none", "models/compare/?a=llama-3-8b&b=llama-3-70b",
    "methodology/", "submit/", "releases/",
]


@pytest.mark.parametrize("path", PAGES)
def test_page_opens_without_errors(page, site_url, path):
    page.goto(site_url + path)
    page.wait_for_load_state("networkidle")
    assert page.locator("h1").count() >= 1
    assert page.problems == []
    assert page.evaluate("typeof window.__pwned") == "undefined"


def test_browser_lists_failures_with_evidence(page, site_url):
    page.goto(site_url + "failures/?model=llama-3-8b&dataset=arith")
    page.wait_for_selector("article.atlas-failure")
    status = page.locator(".atlas-browser-status").inner_text()
    assert "of 12" in status
    assert page.locator("article.atlas-failure mark").count() >= 1
    assert page.locator("article.atlas-failure .atlas-primary").count() >= 1
    criteria = page.locator("article.atlas-failure .atlas-diagnosis table").first.inner_text()
    assert "States the right sum" in criteria
    first_error = page.locator("article.atlas-failure .atlas-first-error").first.inner_text()
    assert "[object Object]" not in page.locator("#atlas-browser").inner_text()
    assert "First error: criterion 1 (States the right sum)" in first_error
    assert 'The final addition is wrong <img src=x onerror="window.__pwned=9">.' in first_error
    assert page.evaluate("typeof window.__pwned") == "undefined"


def test_browser_paginates(page, site_url):
    page.goto(site_url + "failures/?category=none")
    page.wait_for_load_state("networkidle")
    page.goto(site_url + "failures/?dataset=arith")
    page.wait_for_selector("article.atlas-failure")
    assert page.locator("article.atlas-failure").count() <= 50


def test_browser_filters_by_diagnoser(page, site_url):
    page.goto(site_url + "failures/?dataset=arith&diagnoser=check%3Aempty-output")
    page.wait_for_selector("article.atlas-failure")
    titles = page.locator("article.atlas-failure .atlas-primary strong").all_inner_texts()
    assert titles
    assert set(titles) == {"Empty output"}


def test_failure_permalink_shows_one(page, site_url):
    page.goto(site_url + "failures/?dataset=arith&model=llama-3-8b&id=q002")
    page.wait_for_selector("article.atlas-failure")
    assert page.locator("article.atlas-failure").count() == 1
    assert page.locator("#f-arith--llama-3-8b--q002").count() == 1


def test_hidden_text_not_shown(page, site_url):
    page.goto(site_url + "failures/?dataset=secret")
    page.wait_for_selector("article.atlas-failure")
    body = page.locator("#atlas-browser").inner_text()
    assert "Hidden by the dataset's publishing rule" in body
    assert "Question" not in body


def test_content_warning_collapses_text(page, site_url):
    page.goto(site_url + "failures/?dataset=quiz")
    page.wait_for_selector("article.atlas-failure")
    warning = page.locator("article.atlas-failure details.atlas-warning").first
    assert "Prompts describe violence" in warning.locator("summary").inner_text()
    assert not warning.locator("pre").first.is_visible()


def test_injection_runs_no_script(page, site_url):
    for path in ("models/inject-model/", "failures/?model=inject-model", "categories/computation-error/",
                 "models/", "models/compare/?a=inject-model&b=llama-3-8b"):
        page.goto(site_url + path)
        page.wait_for_load_state("networkidle")
        assert page.evaluate("typeof window.__pwned") == "undefined", path
    page.goto(site_url + "failures/?model=inject-model&dataset=arith")
    page.wait_for_selector("article.atlas-failure")
    text = page.locator("article.atlas-failure pre").first.inner_text()
    assert "<script>window.__pwned = 1</script>" in text
    assert "{{ 7*7 }}" in text
    assert "../../etc/passwd" in text
    assert page.locator("article.atlas-failure a[href^='javascript']").count() == 0


def test_model_name_rendered_literally(page, site_url):
    page.goto(site_url + "models/inject-model/")
    heading = page.locator("h1").inner_text()
    assert "<script>" in heading
    assert "{{ 7*7 }}" in heading
    assert page.locator("article img[onerror]").count() == 0
    name = ('<script>window.__pwned = 1</script> <img src=x onerror="window.__pwned=2"> '
            '[click](javascript:window.__pwned=3) {{ 7*7 }} {% raw %}x{% endraw %} ../../etc/passwd')
    assert page.title() == name + " - ErrorAtlas"
    assert page.locator(".md-header__topic[data-md-component=header-topic]").inner_text().strip() == name
    assert page.evaluate("typeof window.__pwned") == "undefined"


def test_compare_table_formatting(page, site_url):
    page.goto(site_url + "models/compare/?a=llama-3-8b&b=llama-3-70b")
    page.wait_for_selector(".atlas-compare-result table tbody tr")
    table = page.locator(".atlas-compare-result table")
    assert table.get_attribute("class") == "atlas-table"
    padding = page.evaluate("getComputedStyle(document.querySelector('.atlas-compare-result td')).paddingLeft")
    assert padding not in ("0px", "")
    cells = page.locator(".atlas-compare-result tbody tr").evaluate_all(
        "rows => rows.map(r => Array.from(r.cells).map(c => c.textContent))")
    differences = [row[3] for row in cells]
    p_values = [row[4] for row in cells]
    assert all("e-" not in p for p in p_values), p_values
    assert all(p == "–" or p == "<\u00a00.001" or len(p.split(".")[1]) == 3 for p in p_values), p_values
    for difference in differences:
        number = float(difference.replace("\u2212", "-").replace("\u00a0pts", ""))
        if number > 0:
            assert difference.startswith("+"), difference
    assert any(difference.startswith("+") or difference.startswith("\u2212") for difference in differences)


def test_compare_unknown_model_says_so(page, site_url):
    page.goto(site_url + "models/compare/?a=nonexistent&b=llama-3-70b")
    page.wait_for_selector(".atlas-compare-error")
    message = page.locator(".atlas-compare-error").inner_text()
    assert "nonexistent" in message
    assert "not in this atlas" in message
    assert page.locator(".atlas-compare-result table").count() == 0


def test_compare_two_models(page, site_url):
    page.goto(site_url + "models/compare/")
    page.wait_for_selector("#atlas-compare select[name=a]")
    page.select_option("#atlas-compare select[name=a]", "llama-3-8b")
    page.select_option("#atlas-compare select[name=b]", "mistral-7b")
    page.wait_for_selector(".atlas-compare-result table tbody tr")
    assert "shared instances" in page.locator(".atlas-shared").inner_text()
    first = page.locator(".atlas-compare-result table tbody tr").first.inner_text()
    assert "Any failure" in first
    assert "b=mistral-7b" in page.url
    assert page.problems == []


def test_search_finds_model(page, site_url):
    page.goto(site_url)
    page.wait_for_load_state("networkidle")
    page.locator(".md-search__input").first.click()
    page.keyboard.type("Mistral")
    page.wait_for_selector(".md-search-result__item a[href*='models/mistral-7b']", timeout=10000)
    assert page.locator(".md-search-result__item a[href*='/failures/']").count() == 0


def test_search_results_stay_inert(page, site_url):
    page.goto(site_url)
    page.wait_for_load_state("networkidle")
    page.locator(".md-search__input").first.click()
    page.keyboard.type("inject")
    page.wait_for_selector(".md-search-result__item", timeout=10000)
    page.wait_for_timeout(500)
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator(".md-search-result img[onerror]").count() == 0


@pytest.mark.parametrize("path", ["models/llama-3-8b/", "models/mistral-7b/"])
def test_signature_table_fits_page(page, site_url, path):
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(site_url + path)
    table = page.locator(".atlas-wide-table table")
    headers = table.locator("th").all_inner_texts()
    assert "Population" not in headers
    assert "Share, other models" in headers
    assert "Rate, other models" in headers
    # Material wraps each table in a horizontally scrolling box: the table fits when that box needs no scrolling.
    overflow = page.locator(".atlas-wide-table .md-typeset__scrollwrap").evaluate("w => w.scrollWidth - w.clientWidth")
    assert overflow <= 0


def test_suppressed_signature_said_once(page, site_url):
    page.goto(site_url + "models/mistral-7b/")
    text = page.locator("article").inner_text()
    assert text.count("Suppressed: fewer than 20 diagnosed failures") == 1
    assert "suppressed" not in page.locator(".atlas-wide-table table").inner_text().lower()
