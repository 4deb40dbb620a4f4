"""Operand traffic around a systolic array (mapping/registers.py): register accesses per MAC where
a chip's energy per op leaves them out, staging through on-chip SRAM on the way to and from
off-chip memory, levels that never keep weights, and convolutions unrolled over channels."""

from __future__ import annotations

from pathlib import Path

import pytest

from tegel.errors import TegelError
from tegel.hardware import System, load_system
from tegel.hardware.systolic import gemm_cycles
from tegel.serving.graph_run import GraphResult, GraphRunOptions, run_graph
from tegel.workload import DType, Graph, GraphBuilder, OpKind
from tegel.workload.ir import Conv2d, MatMul

W_PJ, O_PJ = 0.5, 0.25  # pJ/bit of the weight and partial-sum register files
SRAM_R_PJ, SRAM_W_PJ, DRAM_PJ = 0.2, 0.3, 10.0
ACC_BITS = 16


def chip_yaml(rows: int, cols: int, unroll: str = "im2col", bare: bool = True) -> str:
    """A one-tile weight-stationary rows x cols int8 array with a weight and a partial-sum
    register file, an SRAM for inputs and outputs only, and DRAM; every figure made up."""
    return f"""kind: chip
name: regtest
architecture: dataflow
node: 7nm
clock_hz: 1.0e9
die_area_mm2: 1.0
tdp_w: 1.0e6
idle_w: 0
tiles:
  rows: 1
  cols: 1
  compute:
    systolic:
      rows: {rows}
      cols: {cols}
      dataflow: weight_stationary
      macs_per_pe_per_cycle: {{int8: 1.0}}
      conv_unroll: {unroll}
      accumulator_bits: {{int8: {ACC_BITS}}}
    pj_per_op: {{int8: 0.1}}
    pj_per_op_includes_registers: {"false" if bare else "true"}
  storage:
    - name: wreg
      kind: registers
      holds: [weights]
      capacity_bytes: 1.0e6
      read_bytes_per_s: 1.0e12
      read_pj_per_bit: {W_PJ}
      write_pj_per_bit: {W_PJ}
      leakage_w: 0
    - name: oreg
      kind: registers
      holds: [outputs]
      capacity_bytes: 1.0e6
      read_bytes_per_s: 1.0e12
      read_pj_per_bit: {O_PJ}
      write_pj_per_bit: {O_PJ}
      leakage_w: 0
    - name: sram
      kind: sram
      holds: [inputs, outputs]
      capacity_bytes: 1.0e8
      read_bytes_per_s: 1.0e12
      read_pj_per_bit: {SRAM_R_PJ}
      write_pj_per_bit: {SRAM_W_PJ}
      leakage_w: 0
noc:
  topology: crossbar
  link_bytes_per_s: 1.0e12
  hop_latency_s: 0
  pj_per_bit_per_hop: 0
  hop_length_mm: 1.0
offchip:
  kind: ddr5
  capacity_bytes: 1.0e10
  bandwidth_bytes_per_s: 1.0e10
  pj_per_bit: {DRAM_PJ}
  latency_s: 0
"""


def system(tmp_path: Path, rows: int = 2, cols: int = 2, unroll: str = "im2col",
           bare: bool = True) -> System:
    path = tmp_path / f"regtest-{rows}x{cols}-{unroll}-{bare}.yaml"
    path.write_text(chip_yaml(rows, cols, unroll, bare))
    return load_system(str(path))


def matmul(m: int, k: int, n: int) -> Graph:
    b = GraphBuilder("mm", DType.INT8)
    x = b.input("x", (m, k), DType.INT8)
    w = b.weight("w", (k, n), DType.INT8)
    return b.build((b.op1(OpKind.MATMUL, MatMul(), (x, w), "mm"),))


def conv(channels: int, out: int, hw: int, kernel: int) -> Graph:
    b = GraphBuilder("conv", DType.INT8)
    x = b.input("x", (1, channels, hw, hw), DType.INT8)
    w = b.weight("w", (out, channels, kernel, kernel), DType.INT8)
    pad = kernel // 2
    return b.build((b.op1(OpKind.CONV2D, Conv2d(padding=(pad, pad)), (x, w), "conv"),))


def energy(result: GraphResult, name: str) -> dict[str, float]:
    (row,) = [r for r in result.ops if r.key == name]
    return dict(row.energy_j)


def run(graph: Graph, sys_: System, spill: bool = False) -> GraphResult:
    return run_graph(graph, sys_, options=GraphRunOptions(precision="as-built",
                                                          spill_activations=spill))


def test_register_energy_is_macs_times_bits_times_pj_per_bit(tmp_path: Path) -> None:
    m, k, n = 8, 4, 6
    macs = m * k * n
    e = energy(run(matmul(m, k, n), system(tmp_path)), "mm")
    # weights: read 8 bits per MAC, each of the k x n weights written once into its PE
    assert e["wreg"] == pytest.approx(1e-12 * W_PJ * 8 * (macs + k * n), rel=1e-12)
    # partial sums: read and written, 16 bits, per MAC
    assert e["oreg"] == pytest.approx(1e-12 * O_PJ * 2 * ACC_BITS * macs, rel=1e-12)
    assert e["compute"] == pytest.approx(1e-12 * 0.1 * 2 * macs, rel=1e-12)


def test_registers_cost_nothing_where_the_energy_per_op_includes_them(tmp_path: Path) -> None:
    graph = matmul(8, 4, 6)
    bare, folded = run(graph, system(tmp_path)), run(graph, system(tmp_path, bare=False))
    assert energy(folded, "mm")["wreg"] == energy(folded, "mm")["oreg"] == 0.0
    assert energy(bare, "mm")["wreg"] > 0.0
    # register accesses are the array's own cycles: no time of their own
    assert bare.latency_s == pytest.approx(folded.latency_s, rel=1e-12)


def test_bare_energy_per_op_needs_a_systolic_array(tmp_path: Path) -> None:
    text = chip_yaml(2, 2).replace(
        "    systolic:\n      rows: 2\n      cols: 2\n      dataflow: weight_stationary\n"
        "      macs_per_pe_per_cycle: {int8: 1.0}\n      conv_unroll: im2col\n"
        "      accumulator_bits: {int8: 16}\n", "    peak_ops_per_cycle: {int8: 8.0}\n")
    assert "peak_ops_per_cycle" in text
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(TegelError, match="pj_per_op_includes_registers"):
        load_system(str(path))


def test_off_chip_operands_are_staged_through_the_sram_weights_are_not(tmp_path: Path) -> None:
    m, k, n = 8, 4, 6
    graph = matmul(m, k, n)
    result = run(graph, system(tmp_path), spill=True)
    homes = {h.tensor: h.level for h in result.compiled.homes}  # type: ignore[union-attr]
    assert homes == {"x": "ddr5", "w": "ddr5", "mm": "ddr5"}  # the SRAM never keeps weights
    e = energy(result, "mm")
    staged = m * k + m * n  # int8 input and output bytes, scales aside
    x, out = graph.ops[0].inputs[0], graph.ops[0].outputs[0]
    assert e["sram"] == pytest.approx(
        8e-12 * (x.nbytes + out.nbytes) * (SRAM_R_PJ + SRAM_W_PJ), rel=1e-12)
    assert x.nbytes + out.nbytes >= staged
    w = graph.ops[0].inputs[1]
    assert e["ddr5"] == pytest.approx(8e-12 * DRAM_PJ * (x.nbytes + w.nbytes + out.nbytes),
                                      rel=1e-12)


def test_activations_stay_on_chip_unless_spilled(tmp_path: Path) -> None:
    result = run(matmul(8, 4, 6), system(tmp_path))
    homes = {h.tensor: h.level for h in result.compiled.homes}  # type: ignore[union-attr]
    assert homes == {"x": "sram", "w": "ddr5", "mm": "sram"}
    assert energy(result, "mm")["sram"] == pytest.approx(
        8e-12 * (SRAM_R_PJ * result.compiled.graph.ops[0].inputs[0].nbytes  # type: ignore[union-attr]
                 + SRAM_W_PJ * result.compiled.graph.ops[0].outputs[0].nbytes),  # type: ignore[union-attr]
        rel=1e-12)


def _conv_utilisation(result: GraphResult) -> float:
    (split,) = [s for s in result.compiled.splits if s.op == "conv"]  # type: ignore[union-attr]
    return split.utilisation


def test_conv_unrolled_over_channels_fills_only_c_rows(tmp_path: Path) -> None:
    graph = conv(channels=3, out=64, hw=16, kernel=3)
    channels = run(graph, system(tmp_path, 32, 32, "channels"))
    im2col = run(graph, system(tmp_path, 32, 32, "im2col"))
    m = 16 * 16
    expect = gemm_cycles(m, 64, 3, 32, 32, "weight_stationary", taps=9)
    assert expect.folds == 9 * 2 and expect.macs == m * 64 * 27
    assert _conv_utilisation(channels) == pytest.approx(expect.utilisation, rel=1e-12)
    assert _conv_utilisation(channels) < 3 / 32  # 3 of 32 rows busy, less fill and drain
    assert _conv_utilisation(im2col) == pytest.approx(
        gemm_cycles(m, 64, 27, 32, 32, "weight_stationary").utilisation, rel=1e-12)
    assert _conv_utilisation(im2col) > 7 * _conv_utilisation(channels)
    # the same MACs either way, so the same register and compute energy
    for level in ("compute", "wreg", "oreg"):
        assert energy(channels, "conv")[level] == pytest.approx(energy(im2col, "conv")[level])


def test_gemm_taps_repeat_folds_or_lengthen_the_stream() -> None:
    one = gemm_cycles(100, 40, 20, 8, 8, "ws")
    taps = gemm_cycles(100, 40, 20, 8, 8, "ws", taps=9)
    assert (taps.folds, taps.stream, taps.macs) == (9 * one.folds, one.stream, 9 * one.macs)
    os1, os9 = gemm_cycles(100, 40, 20, 8, 8, "os"), gemm_cycles(100, 40, 20, 8, 8, "os", taps=9)
    assert (os9.folds, os9.stream) == (os1.folds, 9 * os1.stream)
    assert os9.macs == 9 * os1.macs
