"""Fold overlap of systolic arrays: `none` reproduces SCALE-Sim v3's total cycles on a recorded
grid, `double_buffered` (the default) keeps tegel's cycles, the fill/compute/drain split adds up
and means what it says, and the choice flows from hardware YAML and the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tegel.cli import main
from tegel.errors import TegelError
from tegel.hardware import load_system
from tegel.hardware.loader import PRESET_DIR
from tegel.hardware.systolic import gemm_cycles
from tegel.mapping.compiler import compile_for
from tegel.workload import DType, GraphBuilder
from tegel.workload.ir import MatMul, OpKind

# Recorded by benchmarks/peers/scalesim_cycles.py from SCALE-Sim v3 (provenance in the file).
SCALESIM = json.loads((Path(__file__).parent / "data" / "scalesim_v3_cycles.json").read_text())
FLOWS = ("ws", "os", "is")
sizes = st.integers(1, 300)
arrays = st.integers(1, 40)


def _record_id(rec: dict[str, int | str]) -> str:
    return f"{rec['dataflow']}-{rec['rows']}x{rec['cols']}-{rec['m']}x{rec['n']}x{rec['k']}"


def test_the_recorded_grid_covers_what_it_must() -> None:
    recs = SCALESIM["records"]
    assert len(recs) >= 100 and {r["dataflow"] for r in recs} == set(FLOWS)
    assert any(r["rows"] != r["cols"] for r in recs)  # non-square arrays
    assert any(max(r["m"], r["n"], r["k"]) < min(r["rows"], r["cols"]) for r in recs)  # small
    assert any(r["k"] % r["rows"] and r["n"] % r["cols"] and r["k"] > r["rows"] for r in recs)


@pytest.mark.parametrize("rec", SCALESIM["records"], ids=_record_id)
def test_none_mode_equals_scalesim_v3(rec: dict[str, int]) -> None:
    got = gemm_cycles(rec["m"], rec["n"], rec["k"], rec["rows"], rec["cols"],
                      str(rec["dataflow"]), fold_overlap="none")
    assert got.scalesim_total_cycles == rec["total_cycles"]
    assert got.cycles == rec["total_cycles"] + 1  # SCALE-Sim counts the last cycle from 0


def test_default_is_double_buffered_and_keeps_todays_closed_form() -> None:
    # today's formula, written out independently of the fill/compute/drain split
    for rows, cols, m, n, k in ((128, 128, 1, 4096, 4096), (8, 16, 64, 64, 64), (3, 2, 7, 5, 9)):
        for flow, folds, s in (("ws", math.ceil(k / rows) * math.ceil(n / cols), m),
                               ("is", math.ceil(k / rows) * math.ceil(m / cols), n),
                               ("os", math.ceil(m / rows) * math.ceil(n / cols), k)):
            c = gemm_cycles(m, n, k, rows, cols, flow)
            assert c.fold_overlap == "double_buffered"
            assert c.cycles == (folds - 1) * max(s, rows) + s + 2 * rows + cols - 2
            assert c == gemm_cycles(m, n, k, rows, cols, flow, fold_overlap="double_buffered")


@settings(max_examples=80, deadline=None)
@given(sizes, sizes, sizes, arrays, arrays, st.integers(1, 4), st.sampled_from(FLOWS),
       st.sampled_from(("double_buffered", "none")))
def test_split_is_compute_for_the_stream_and_fill_only_where_a_tile_loads(
        m: int, n: int, k: int, rows: int, cols: int, count: int, flow: str, mode: str) -> None:
    c = gemm_cycles(m, n, k, rows, cols, flow, count, mode)
    per_array = math.ceil(c.folds / count)
    assert c.fill + c.compute + c.drain == c.cycles and min(c.fill, c.compute, c.drain) >= 0
    assert c.compute == per_array * c.stream
    assert (c.fill == 0) == (flow == "os")  # os keeps the output, nothing to load first
    assert c.drain >= rows + cols - 2  # the last item still crosses the array


@settings(max_examples=80, deadline=None)
@given(sizes, arrays, arrays, st.integers(1, 5), st.integers(1, 5), st.sampled_from(FLOWS))
def test_none_mode_charges_every_fold_alike(s: int, rows: int, cols: int, fr: int, fc: int,
                                            flow: str) -> None:
    """fr x fc full folds cost fr x fc times one fold: nothing overlaps."""
    one = {"ws": (s, cols, rows), "is": (cols, s, rows), "os": (rows, cols, s)}[flow]
    many = {"ws": (s, cols * fc, rows * fr), "is": (cols * fc, s, rows * fr),
            "os": (rows * fr, cols * fc, s)}[flow]
    single = gemm_cycles(*one, rows, cols, flow, fold_overlap="none")
    folded = gemm_cycles(*many, rows, cols, flow, fold_overlap="none")
    assert single.folds == 1 and folded.folds == fr * fc
    assert folded.cycles == fr * fc * single.cycles
    assert (folded.fill, folded.drain) == (fr * fc * single.fill, fr * fc * single.drain)


@settings(max_examples=80, deadline=None)
@given(sizes, sizes, sizes, arrays, arrays, st.sampled_from(FLOWS))
def test_double_buffering_saves_the_loads_and_drains_between_folds(
        m: int, n: int, k: int, rows: int, cols: int, flow: str) -> None:
    db = gemm_cycles(m, n, k, rows, cols, flow)
    none = gemm_cycles(m, n, k, rows, cols, flow, fold_overlap="none")
    assert db.compute == none.compute
    if flow == "os":  # SCALE-Sim lets os results leave as they finish: no R-cycle shift-out
        if db.folds == 1:
            assert none.cycles == db.cycles - rows
        return
    assert none.cycles >= db.cycles
    assert (none.cycles == db.cycles) == (db.folds == 1)


def test_worked_example_of_the_difference() -> None:
    # docs/simulation.md: a 256-token prefill GEMM on one 128 x 128 weight-stationary MXU
    db = gemm_cycles(256, 1024, 1024, 128, 128, "ws")
    none = gemm_cycles(256, 1024, 1024, 128, 128, "ws", fold_overlap="none")
    assert db.folds == 64 and (db.fill, db.compute, db.drain) == (128, 64 * 256, 254)
    assert (none.fill, none.compute, none.drain) == (64 * 128, 64 * 256, 64 * 254)
    assert (db.cycles, none.cycles) == (16766, 40832)


def test_bad_fold_overlap_names_itself() -> None:
    with pytest.raises(TegelError, match="fold_overlap must be double_buffered or none"):
        gemm_cycles(4, 4, 4, 2, 2, "ws", fold_overlap="overlapped")


def _tpu_with(tmp_path: Path, line: str) -> Path:
    text = (PRESET_DIR / "tpu-v6e.yaml").read_text()
    assert "      fold_overlap: double_buffered\n" in text
    path = tmp_path / "tpu.yaml"
    path.write_text(text.replace("      fold_overlap: double_buffered\n", line, 1))
    return path


def test_tpu_presets_state_double_buffering_with_a_source() -> None:
    for name in ("tpu-v5e", "tpu-v5p", "tpu-v6e"):
        arr = load_system(name).chip.tiles.compute.systolic
        assert arr is not None and arr.fold_overlap == "double_buffered"
        assert arr.cite["fold_overlap"].startswith("jouppi-isca2017:")


def test_yaml_fold_overlap_reaches_the_compiler(tmp_path: Path) -> None:
    g = GraphBuilder("gemm", DType.BF16)
    x = g.input("x", (1, 256, 1024), DType.BF16)
    wt = g.weight("w", (512, 1024), DType.BF16)
    graph = g.build((g.op1(OpKind.MATMUL, MatMul(transpose_b=True), (x, wt), "mm"),))
    utils = {}
    for mode in ("double_buffered", "none"):
        system = load_system(str(_tpu_with(tmp_path, f"      fold_overlap: {mode}\n")))
        arr = system.chip.tiles.compute.systolic
        assert arr is not None and arr.fold_overlap == mode
        expected = gemm_cycles(256, 512, 1024, arr.rows, arr.cols, arr.dataflow, arr.count, mode)
        utils[mode] = compile_for(graph, system).split(0, "mm").utilisation
        assert utils[mode] == pytest.approx(expected.utilisation)
    assert utils["none"] < utils["double_buffered"]


def test_yaml_bad_fold_overlap_is_one_line_naming_the_field(tmp_path: Path) -> None:
    with pytest.raises(TegelError) as err:
        load_system(str(_tpu_with(tmp_path, "      fold_overlap: shadowed\n")))
    assert "\n" not in str(err.value) and "fold_overlap" in str(err.value)


@pytest.mark.parametrize("flow", FLOWS)
def test_gemm_cli_prints_the_split(flow: str, capsys: pytest.CaptureFixture[str]) -> None:
    for mode in ("double_buffered", "none"):
        assert main(["gemm", "100", "37", "53", "--array", "16x8", "--dataflow", flow,
                     "--fold-overlap", mode, "--json"]) == 0
        data = json.loads(capsys.readouterr().out)
        want = gemm_cycles(100, 37, 53, 16, 8, flow, fold_overlap=mode)
        assert (data["fill"], data["compute"], data["drain"]) == (want.fill, want.compute, want.drain)
        assert data["cycles"] == want.cycles and data["fold_overlap"] == mode
        assert ("scalesim_total_cycles" in data) == (mode == "none")
    assert main(["gemm", "100", "37", "53", "--array", "16x8", "--dataflow", flow,
                 "--fold-overlap", "none"]) == 0
    text = capsys.readouterr().out
    want = gemm_cycles(100, 37, 53, 16, 8, flow, fold_overlap="none")
    for label, value in (("fill", want.fill), ("compute", want.compute), ("drain", want.drain)):
        assert f"  {label:<10} {value}\n" in text
    assert f"SCALE-Sim v3 'Total Cycles' {want.cycles - 1}" in text


def test_gemm_cli_rejects_an_unknown_fold_overlap(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["gemm", "4", "4", "4", "--array", "2x2", "--dataflow", "ws", "--fold-overlap", "x"])
    assert exit_.value.code == 2 and "--fold-overlap" in capsys.readouterr().err
