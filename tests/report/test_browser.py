"""Each kind of report opened in a real, headless Chromium (Debian's /usr/bin/chromium, driven by
playwright): no console error, no request leaves the file, every chart drawn with its series, on
a desktop, a phone and in print; a screenshot of each is kept beside the test's temp files."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from report.cases import expected_series
from tegel.report.html import render_html

CHROMIUM = Path("/usr/bin/chromium")
KINDS = ("run", "compare", "curve", "claim", "explore")

# Every chart: its id, its series and its size as the browser laid it out.
CHARTS_JS = """() => [...document.querySelectorAll('svg.chart')].map(svg => {
    const box = svg.getBoundingClientRect();
    return {id: svg.dataset.chart, series: svg.querySelectorAll('[data-series]').length,
            said: Number(svg.dataset.seriesCount), width: box.width, height: box.height,
            marks: svg.querySelectorAll('[data-series] > *').length};
})"""


@pytest.fixture(scope="module")
def browser() -> Any:
    if not CHROMIUM.exists() and shutil.which("chromium") is None:
        pytest.skip("no browser: /usr/bin/chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="no browser driver: playwright "
                                   "is not installed (pip install -e '.[test]')")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM if CHROMIUM.exists()
                                                  else shutil.which("chromium")),
                              args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


def _open(browser: Any, path: Path, width: int, problems: list[str]) -> Any:
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
            if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"failed request: {r.url}"))

    def only_the_file(route: Any) -> None:
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            problems.append(f"request left the file: {route.request.url}")
            route.abort()

    page.route("**/*", only_the_file)
    page.goto(path.as_uri(), wait_until="load")
    return page


@pytest.mark.parametrize("kind", KINDS)
def test_report_renders_in_chromium(browser: Any, results: dict[str, Any], tmp_path: Path,
                                    kind: str) -> None:
    path = tmp_path / f"{kind}.html"
    path.write_text(render_html(results[kind]), encoding="utf-8")
    problems: list[str] = []
    page = _open(browser, path, 1100, problems)
    charts = page.evaluate(CHARTS_JS)
    page.screenshot(path=str(tmp_path / f"report-{kind}.png"), full_page=True)
    assert {c["id"]: c["series"] for c in charts} == expected_series(kind, results[kind])
    for c in charts:
        assert c["series"] == c["said"]
        assert c["width"] > 300 and c["height"] > 100, f"{c['id']} not drawn"
        assert c["marks"] >= c["series"], f"{c['id']} has an empty series"
    page.emulate_media(media="print")
    assert all(c["width"] > 300 for c in page.evaluate(CHARTS_JS)), "charts vanish in print"
    page.close()
    phone = _open(browser, path, 390, problems)
    overflow = phone.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"{kind}: the page is {overflow}px wider than a phone"
    assert all(0 < c["width"] <= 390 for c in phone.evaluate(CHARTS_JS))
    phone.close()
    assert problems == []
