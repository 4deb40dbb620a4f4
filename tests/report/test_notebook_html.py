"""Results show as HTML tables in notebooks, built from the rows of their terminal text."""

from __future__ import annotations

from pathlib import Path

import tegel
from tegel.report.notebook import compare, table_html
from tegel.report.text import si


def test_cells_are_escaped_and_aligned() -> None:
    out = table_html(["a<b", "x"], [["<script>", 1.5]], caption="c & d")
    assert "<script>" not in out and "&lt;script&gt;" in out and "c &amp; d" in out
    assert out.count("<tr>") == 2 and "<caption>" in out


def test_a_run_shows_its_metrics_and_energy() -> None:
    r = tegel.run("qwen2.5-0.5b", "h100-sxm", batch=4)
    page = r._repr_html_()
    d = r.to_dict()
    assert "qwen2.5-0.5b on h100-sxm: batch 4" in page
    assert si(d["tpot_s"], "s") in page and si(d["energy_j_per_token"], "J") in page
    assert page.count("<table") == 2


def test_a_comparison_gives_ratios_against_its_baseline() -> None:
    a = tegel.run("qwen2.5-0.5b", "h100-sxm")
    b = tegel.run("qwen2.5-0.5b", "dgx-h100")
    c = compare([a, b])
    assert c.baseline == "h100-sxm"
    page = c._repr_html_()
    assert "dgx-h100" in page and "x)" in page
    assert str(c).startswith("qwen2.5-0.5b: 1024 in / 256 out; ratios against h100-sxm")


def test_serve_and_curve_show_tables() -> None:
    s = tegel.serve("qwen2.5-0.5b", "h100-sxm", requests=30, rate_per_s=5, input_tokens=128,
                    output_tokens=32)
    assert "TTFT" in s._repr_html_() and "goodput" in s._repr_html_()
    [c] = tegel.curve("qwen2.5-0.5b", ["h100-sxm"], 128, 32, concurrencies=[1, 4],
                      requests_per_point=16)
    page = c._repr_html_()
    assert page.count("<tr>") == 3 and "TTFT p99" in page


def test_an_explore_result_shows_its_front(tmp_path: Path) -> None:
    from explore.conftest import write_space
    from tegel.explore import explore, load_space

    path = write_space(tmp_path, "random", **{"trials: 24": "trials: 6"})
    r = explore(load_space(path), store_path=tmp_path / "s.duckdb", workers=1, baseline=False)
    page = r._repr_html_()
    assert "Pareto front of tiny" in page and "tokens_per_j" in page


def test_a_claim_shows_both_systems_and_the_ratios() -> None:
    from tegel.economics.claim import ClaimOptions, claim

    c = claim("llama-3.1-8b", "hgx-b200", "dgx-h100", options=ClaimOptions(tornado=False))
    page = c._repr_html_()
    assert "A: hgx-b200" in page and "B: dgx-h100" in page
    assert f"{c.to_dict()['ratios']['energy']:.3g}x" in page


def test_a_graph_run_shows_its_metrics() -> None:
    from mapping.cnn_graphs import small_cnn

    r = tegel.run_graph(small_cnn(), "h100-sxm")
    page = r._repr_html_()
    assert "on h100-sxm: batch" in page and "energy per inference" in page
    assert si(r.to_dict()["latency_s"], "s") in page
