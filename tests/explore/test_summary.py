"""The summary: the best design against the baseline, on the same engine, with its bound."""

from __future__ import annotations

from pathlib import Path

import pytest

from explore.conftest import write_space
from tegel.explore import explore, load_space
from tegel.explore.summary import summary_dict
from tegel.report.explore import summary_text
from tegel.serving.run import run


def test_best_against_the_baseline_and_what_holds_it_back(tmp_path: Path) -> None:
    path = write_space(tmp_path, "grid", extra="baseline: h100-sxm\n",
                       **{"workload.batch: {values: [1, 4]}": "workload.batch: {values: [4]}"})
    r = explore(load_space(path), store_path=tmp_path / "s.duckdb", executor="inline")
    d = summary_dict(r)
    a = d["against_baseline"]
    h100 = run("qwen2.5-0.5b", "h100-sxm", 4, 128, 32)  # the baseline at the space's batch
    assert d["baseline"]["metrics"]["energy_j_per_token"] == pytest.approx(h100.energy_j_per_token)
    best = max((p for p in r.points if p.feasible), key=lambda p: p.metrics["tokens_per_j"])
    assert a["ratio"] == pytest.approx(h100.energy_j_per_token / best.metrics["energy_j_per_token"])
    assert a["floor_ratio"] >= a["ratio"]  # no design beats the energy floor
    assert sum(a["energy_share"].values()) == pytest.approx(1.0)
    assert a["ratio_without_largest_term"] > a["ratio"]
    assert d["best_at_space_edges"]  # the grid's best sits at some edge of it
    text = summary_text(r)
    assert "vs h100-sxm" in text and "verdict:" in text and "Pareto front of tiny" in text


def test_the_baseline_runs_in_the_best_designs_number_format(tmp_path: Path) -> None:
    """Like for like: with the number format a knob, the baseline GPU serves in the format the
    best design chose (an fp8 design is not compared with a bf16 GPU)."""
    path = write_space(tmp_path, "grid", extra="baseline: h100-sxm\n",
                       **{"workload.batch: {values: [1, 4]}":
                          "workload.batch: {values: [4]}\n  workload.precision: {values: [bf16, fp8]}"})
    r = explore(load_space(path), store_path=tmp_path / "s.duckdb", executor="inline")
    best = max((p for p in r.points if p.feasible), key=lambda p: p.metrics["tokens_per_j"])
    fmt = str(best.params["workload.precision"])
    h100 = run("qwen2.5-0.5b", "h100-sxm", 4, 128, 32, fmt)
    assert r.baseline is not None and r.baseline_label == f"h100-sxm ({fmt})"
    assert r.baseline["energy_j_per_token"] == pytest.approx(h100.energy_j_per_token)
    other = run("qwen2.5-0.5b", "h100-sxm", 4, 128, 32, "bf16" if fmt == "fp8" else "fp8")
    assert other.energy_j_per_token != pytest.approx(h100.energy_j_per_token)
    assert f"vs h100-sxm ({fmt})" in summary_text(r)
