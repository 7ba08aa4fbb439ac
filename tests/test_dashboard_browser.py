"""The built site in a real browser: headless Chromium from the system's packages, driven by playwright
(the Python package only: the browser is the distribution's, never one playwright downloads).

Plots render to SVG, no console errors, nothing is fetched from outside the site, the planted
regression is on the overview, a filter changes what the trends page shows, the compare view pairs two
runs as the verdict rule would, sorts, and opens again from its link, and the coverage matrix has the
expected cells. A screenshot of each page is saved into the test's tmp dir.
"""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

import fake_runs
from fake_runs import CANARY, CLUSTER_SKIP, PLANTED_RUN, SERIES, XFAIL_REASON, run_id

CHROMIUM = os.environ.get("GPUHIL_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

if not Path(CHROMIUM).is_file():
    pytest.skip(f"no Chromium at {CHROMIUM}: install the distribution's (Debian: apt-get install -y chromium) "
                "or point GPUHIL_CHROMIUM at one", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright; "
                               "the browser comes from the system, do not run `playwright install`)")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from gpuhil.dashboard import build
    from gpuhil.history import add

    root = tmp_path_factory.mktemp("fleet")
    add(fake_runs.fleet(root / "results"), root / "history")
    return build(root / "history", root / "site").root


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as pw, tempfile.TemporaryDirectory(prefix="gpuhil-chromium-") as profile:
        ctx = pw.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, headless=True, args=FLAGS,
                                                    viewport={"width": 1400, "height": 1000})
        try:
            yield ctx
        finally:
            ctx.close()


@pytest.fixture
def page(browser):
    pg = browser.new_page()
    pg.problems, pg.requests = [], []
    pg.on("console", lambda m: pg.problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None)
    pg.on("pageerror", lambda e: pg.problems.append(f"page error: {e}"))
    pg.on("request", lambda r: pg.requests.append(r.url))
    yield pg
    pg.close()


def open_page(pg, site, name):
    pg.goto((site / name).as_uri())
    pg.wait_for_load_state("load")


def assert_clean(pg):
    assert pg.problems == []
    outside = [u for u in pg.requests if not u.startswith(("file://", "data:", "blob:"))]
    assert outside == [], "the site must work offline"


def test_overview_lists_the_planted_regression(page, site, tmp_path):
    open_page(page, site, "index.html")
    rows = page.locator('tr.finding[data-kind="regression"]')
    assert rows.count() == 1
    row = rows.first
    assert row.get_attribute("data-machine") == "h100" and CANARY[2] in row.get_attribute("data-series")
    assert f"{run_id(PLANTED_RUN - 1)} → {run_id(PLANTED_RUN)}" in row.inner_text()
    assert row.is_visible()
    assert page.locator('section[data-machine="h200"] ul.missing li').count() == 1
    page.screenshot(path=str(tmp_path / "overview.png"), full_page=True)
    assert (tmp_path / "overview.png").stat().st_size > 10_000
    assert_clean(page)


def test_trend_plots_render_and_a_filter_changes_what_is_shown(page, site, tmp_path):
    open_page(page, site, "trends.html")
    page.wait_for_selector(".card:not([hidden]) .plot[data-rendered] svg.main-svg", timeout=20_000)
    cards = page.locator(".card[data-series]")
    total = cards.count()
    assert total == len(SERIES) * 2 + 2  # h100 and h200 time every series, the emulated machine two
    assert page.locator(".js-plotly-plot svg.main-svg").count() >= 2
    # the first card drew its median trace (a path with points), not just an empty frame
    assert page.locator(".card >> nth=0 >> .scatterlayer .trace path.js-line").count() >= 1

    # figures come per machine, when a card of that machine scrolls near the viewport
    assert any(u.endswith("/data/trends-h100.js") for u in page.requests)
    assert not any(u.endswith("/data/trends-h200.js") for u in page.requests)

    page.select_option("#filter-sku", "h100-as-h20")
    assert page.locator(".card[data-series]:not([hidden])").count() == 2
    assert page.inner_text("#shown") == f"2 of {total} series"
    page.wait_for_selector('.card[data-sku="h100-as-h20"] .plot[data-rendered] svg.main-svg', timeout=20_000)
    assert page.locator('.card[data-sku="h100-as-h20"]:not([hidden])').count() == 2
    assert page.locator('.card[data-sku="h100"]:visible').count() == 0

    page.select_option("#filter-sku", "")
    page.select_option("#filter-suite", "fp8_grouped_gemm")
    assert page.locator(".card[data-series]:not([hidden])").count() == 2  # h100 and h200
    assert "suite=fp8_grouped_gemm" in page.url  # the filter is kept in the address, for links
    page.screenshot(path=str(tmp_path / "trends.png"))
    assert_clean(page)


def test_a_link_with_filters_opens_them(page, site):
    page.goto((site / "trends.html").as_uri() + "#sku=h200&provider=torch")
    page.wait_for_load_state("load")
    assert page.locator(".card[data-series]:not([hidden])").count() == 2
    assert page.input_value("#filter-sku") == "h200"
    assert_clean(page)


def test_the_coverage_matrix_shows_outcomes_and_reasons(page, site, tmp_path):
    open_page(page, site, "coverage.html")
    cells = page.locator("td.cell")
    assert cells.count() == 4 * 5  # machines x tests
    xfail = page.locator('td.cell[data-machine="gb10"][data-outcome="xfailed"]')
    assert xfail.count() == 1 and xfail.get_attribute("title") == XFAIL_REASON and xfail.inner_text() == "xfail"
    skip = page.locator('td.cell[data-machine="h100-as-h20"][data-test$="test_argmax_cluster[cluster2]"]')
    assert skip.get_attribute("title") == CLUSTER_SKIP and skip.inner_text() == "skip"
    assert page.locator('td.cell[data-machine="h200"][data-outcome="failed"]').inner_text() == "FAIL"
    assert page.locator("td.cell.passed").count() == 12
    page.screenshot(path=str(tmp_path / "coverage.png"), full_page=True)
    assert_clean(page)


def test_the_roofline_heatmaps_render(page, site):
    open_page(page, site, "roofline.html")
    page.wait_for_selector('.plot[data-fig="r1"][data-rendered] svg.main-svg', timeout=20_000)
    assert page.locator(".plot[data-rendered] .heatmaplayer").count() == 2
    assert_clean(page)


def compare_rows(pg):
    return pg.eval_on_selector_all("#compare-rows tr", "rows => rows.map(r => [r.dataset.series, r.dataset.call, "
                                   "r.dataset.ratio ? Number(r.dataset.ratio) : null, "
                                   "r.dataset.threshold ? Number(r.dataset.threshold) : null])")


def test_the_compare_view_pairs_two_runs_sorts_and_its_link_reopens_it(page, site, tmp_path):
    from gpuhil.dashboard import compare

    open_page(page, site, "compare.html")
    page.wait_for_selector("#compare-rows tr")
    h100 = [r["id"] for r in runs_data(site, "h100")["runs"]]
    assert (page.input_value("#a-run"), page.input_value("#b-run")) == (h100[-2], h100[-1])  # last night's change

    before, after = run_id(PLANTED_RUN - 1), run_id(PLANTED_RUN)
    page.select_option("#a-run", before)
    page.select_option("#b-run", after)
    rows = compare_rows(page)
    data = runs_data(site, "h100")
    cells = {r["id"]: r["rows"] for r in data["runs"]}
    expected = {}
    for i, key in enumerate(data["series"]):
        p = compare.pair(key, cells[before].get(str(i)), cells[after].get(str(i)))
        expected[key] = (p["call"], p["ratio"], p["threshold"])
    assert len(rows) == len(SERIES)
    for key, call, ratio, threshold in rows:  # what the browser computed is the verdict rule's
        assert call == expected[key][0]
        assert ratio == pytest.approx(expected[key][1], rel=1e-12) and threshold == pytest.approx(expected[key][2], rel=1e-12)
    assert [r[1] for r in rows].count("SLOW") == 1
    assert page.inner_text("#compare-summary") == f"{len(SERIES)} series: {len(SERIES) - 1} SAME, 1 SLOW"

    page.click('th[data-sort="ratio"]')  # numbers sort largest first: the regression on top
    rows = compare_rows(page)
    assert [r[2] for r in rows] == sorted((r[2] for r in rows), reverse=True) and rows[0][0].endswith("|" + CANARY[2])
    page.click('th[data-sort="ratio"]')
    rows = compare_rows(page)
    assert [r[2] for r in rows] == sorted(r[2] for r in rows) and rows[-1][1] == "SLOW"
    link = page.url
    assert f"a=h100%2F{before}" in link and f"b=h100%2F{after}" in link and "sort=ratio&dir=asc" in link
    page.screenshot(path=str(tmp_path / "compare.png"), full_page=True)

    again = page.context.new_page()  # the link, opened afresh
    again.problems = []
    again.on("pageerror", lambda e: again.problems.append(str(e)))
    again.goto(link)
    again.wait_for_selector("#compare-rows tr")
    assert compare_rows(again) == rows
    assert (again.input_value("#a-run"), again.input_value("#b-run")) == (before, after)
    assert again.problems == []
    again.close()

    page.select_option("#b-machine", "h200")  # the same commit on another machine
    page.wait_for_function("document.getElementById('b-run').value.length > 0 && "
                           "document.getElementById('compare-head').textContent.indexOf('h200') >= 0")
    assert page.input_value("#b-run") == run_id(PLANTED_RUN - 1, minutes=5)
    head = page.inner_text("#compare-head")
    assert "Two machines" in head and "Same commit." in head
    assert {r[1] for r in compare_rows(page)} == {"FAST"}  # the H200 runs these 20 % faster (fake fleet)
    assert_clean(page)


def runs_data(site, machine):
    import json

    text = (site / "data" / f"runs-{machine}.js").read_text(encoding="utf-8")
    return json.loads(text[text.index("gpuhilRuns(") + len("gpuhilRuns("):text.rindex(");")])
