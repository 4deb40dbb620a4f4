"""`tegel report`: one self-contained HTML page per result kind, parsed: no external resource,
the expected sections, one `<g data-series>` per series, `<title>`s on every chart."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from report.cases import REPORT_ARGS, expected_series
from tegel.cli import main
from tegel.errors import TegelError
from tegel.report.charts import OKABE_ITO, result_kind
from tegel.report.html import render_html

KINDS = ("run", "compare", "curve", "claim", "explore")


class Page(HTMLParser):
    """The parts of a page the tests read."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.links: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.tags: list[str] = []
        self.ids: set[str] = set()
        self.charts: dict[str, int] = {}
        self.titled: set[str] = set()
        self._chart: str | None = None
        self._depth = 0
        self.style = ""
        self._in_style = False
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.append(tag)
        self.links += [(tag, k, v) for k, v in a.items() if k in ("src", "href", "xlink:href")]
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "svg":
            self._chart = a["data-chart"]
            self.charts[self._chart] = 0
        if self._chart is not None:
            if "data-series" in a:
                self.charts[self._chart] += 1
            if tag == "title" and self._depth == 1:
                self.titled.add(self._chart)
            self._depth += 1
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        if self._chart is not None:
            self._depth -= 1
            if tag == "svg":
                self._chart = None
                self._depth = 0
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.style += data


@pytest.fixture(scope="module")
def pages(results: dict[str, Any]) -> dict[str, str]:
    return {kind: render_html(results[kind]) for kind in KINDS}


@pytest.mark.parametrize("kind", KINDS)
def test_result_kind_is_told_by_its_keys(results: dict[str, Any], kind: str) -> None:
    assert result_kind(results[kind]) == kind


@pytest.mark.parametrize("kind", KINDS)
def test_self_contained(pages: dict[str, str], kind: str) -> None:
    page = Page(pages[kind])
    assert not {"script", "link", "img", "iframe", "object"} & set(page.tags)
    assert "url(" not in page.style and "@import" not in page.style
    for tag, attr, value in page.links:
        if value.startswith(("http://", "https://", "//")):
            assert (tag, attr) == ("a", "href"), f"external {tag} {attr}={value}"


@pytest.mark.parametrize("kind", KINDS)
def test_sections_and_series(results: dict[str, Any], pages: dict[str, str], kind: str) -> None:
    page = Page(pages[kind])
    assert {"summary", "charts"} <= page.ids
    assert page.charts == expected_series(kind, results[kind])
    assert page.titled == set(page.charts), "every chart has a <title>"
    assert all(n > 0 for n in page.charts.values())


def test_claim_has_verdict_break_evens_and_linked_sources(pages: dict[str, str]) -> None:
    page = Page(pages["claim"])
    assert {"verdict", "assumptions"} <= page.ids
    sources = [v for tag, attr, v in page.links if tag == "a" and v.startswith("http")]
    assert len(sources) >= 5, "the assumptions link to their sources"
    assert "the claimed 100x" in pages["claim"]


def test_print_phone_and_palette(pages: dict[str, str]) -> None:
    text = pages["claim"]
    assert "@media print" in text and "@media (max-width" in text
    assert 'name="viewport"' in text
    fills = {f.upper() for f in _fills(text)}
    assert fills <= {c.upper() for c in OKABE_ITO}, "only Okabe-Ito colours on the charts"


def _fills(text: str) -> list[str]:
    return re.findall(r'fill="(#[0-9A-Fa-f]{6})"', text)


def test_report_from_arguments_equals_report_from_json(results: dict[str, Any], tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    direct, saved, via = tmp_path / "a.html", tmp_path / "claim.json", tmp_path / "b.html"
    assert main(["report", *REPORT_ARGS["claim"], "-o", str(direct)]) == 0
    saved.write_text(json.dumps(results["claim"]))
    assert main(["report", "--from", str(saved), "-o", str(via)]) == 0
    assert direct.read_text() == via.read_text()
    assert "wrote" in capsys.readouterr().out


def test_report_of_an_explore_store(explore_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "e.html"
    assert main(["report", "--explore", str(explore_store), "-o", str(out)]) == 0
    assert Page(out.read_text()).charts["pareto"] >= 1


@pytest.mark.parametrize("argv, flag", [
    (["--from", "missing.json"], "--from missing.json: cannot read"),
    (["--from", "{bad}"], "--from"),
    (["--run", "qwen2.5-0.5b", "--on", "h100-sxm", "--ops"], None),
])
def test_bad_input_is_one_line_naming_the_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               argv: list[str], flag: str | None) -> None:
    if argv[1] == "{bad}":
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({"something": 1}))
        argv = ["--from", str(bad)]
    out = tmp_path / "r.html"
    code = main(["report", *argv, "-o", str(out)])
    err = capsys.readouterr().err
    if flag is None:  # --ops given twice is fine: the run report asks for it anyway
        assert code == 0 and out.exists()
        return
    assert code == 2 and err.count("\n") == 1 and err.startswith(f"tegel: error: {flag}")


def test_unwritable_output_names_o(results: dict[str, Any], tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    saved = tmp_path / "r.json"
    saved.write_text(json.dumps(results["run"]))
    assert main(["report", "--from", str(saved), "-o", str(tmp_path / "no" / "r.html")]) == 2
    assert capsys.readouterr().err.startswith("tegel: error: -o ")


def test_other_commands_still_refuse_unknown_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["run", "qwen2.5-0.5b", "--on", "h100-sxm", "--bogus"])
    assert exit_.value.code == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_result_kind_refuses_other_json() -> None:
    with pytest.raises(TegelError, match="--from"):
        result_kind({"what": 1})


def test_event_simulation_run_has_a_timeline_excerpt(tmp_path: Path) -> None:
    out = tmp_path / "ev.html"
    assert main(["report", "--run", "qwen2.5-0.5b", "--on", "h100-sxm", "--sim", "event",
                 "-o", str(out)]) == 0
    text = out.read_text()
    assert Page(text).charts["timeline"] >= 2, "one series per kind of resource"
    assert "Event simulation: the first 80 events" in text


def test_static_compare_from_arguments_has_a_roofline_per_system(tmp_path: Path) -> None:
    out = tmp_path / "c.html"
    assert main(["report", *REPORT_ARGS["compare"], "-o", str(out)]) == 0
    charts = Page(out.read_text()).charts
    assert {"roofline-h100-sxm", "roofline-a100-80gb"} <= set(charts)
    assert all(charts[c] == 3 for c in ("roofline-h100-sxm", "roofline-a100-80gb"))
