"""CNNs on the three machine kinds: conv2d as an implicit GEMM on a GPU (depthwise memory-bound),
on a systolic TPU by its GEMM view's cycles, and layer-by-layer vs layer-fused on a dataflow
chip; the per-layer energy by level sums to the call's totals; unknown ops are priced."""

from __future__ import annotations

import math

import pytest

from mapping.cnn_graphs import cnn_with_generic_op, single_conv, small_cnn
from tegel.evaluate.cost import CATEGORIES
from tegel.evaluate.terms import Bound, Rates, step_terms
from tegel.hardware import load_system
from tegel.hardware.systolic import gemm_cycles
from tegel.mapping.conv import im2col_bytes, implicit_gemm_staged_bytes, is_depthwise
from tegel.mapping.schedule import Schedule, graph_batch, rebatch
from tegel.serving.graph_run import GraphResult, GraphRunOptions, run_graph
from tegel.workload.ops import gemm_dims, work

SYSTEMS = ("h100-sxm", "tpu-v5e", "ref-dataflow")


def _conv_terms(result: GraphResult) -> tuple[float, Bound, str]:
    """(compute seconds, bound, bound level) of the step that carries the op named conv."""
    plan = result.phase.plan
    rates = Rates.of(result.system, plan)
    (step,) = [s for s in plan.steps if s.ops and s.ops[0] == "conv"]
    terms = step_terms(step, rates)
    _, bound, level = terms.concurrent()
    return terms.compute_s, bound, plan.levels[level] if level >= 0 else ""


def test_gpu_conv_is_compute_bound_at_large_channels_and_depthwise_memory_bound() -> None:
    dense = run_graph(single_conv(8, 512, 28), "h100-sxm")
    assert _conv_terms(dense)[1] is Bound.COMPUTE
    depthwise = single_conv(8, 256, 112, groups=256)
    assert is_depthwise(depthwise.ops[0])
    _, bound, level = _conv_terms(run_graph(depthwise, "h100-sxm"))
    assert bound is Bound.MEMORY and level in ("l2", "hbm3")


def test_conv_flops_are_twice_its_macs() -> None:
    graph = single_conv(2, 64, 20)
    op = graph.ops[0]
    n, c, h, w = op.inputs[0].shape
    o, _, kh, kw = op.inputs[1].shape
    macs = n * o * h * w * c * kh * kw  # padding 1, stride 1: output is h x w
    assert work(op).flops == 2 * macs
    assert sum(g.flops for g in gemm_dims(op)) == 2 * macs
    for system in SYSTEMS:
        result = run_graph(graph, system)
        assert sum(r.flops for r in result.ops) == pytest.approx(2 * macs)
        assert sum(r.macs for r in result.layers) == pytest.approx(macs)


def test_implicit_gemm_stages_input_windows_not_im2col() -> None:
    op = single_conv(4, 128, 56).ops[0]
    staged = implicit_gemm_staged_bytes(op, 128, 256)
    weights_staged = op.inputs[1].nbytes * math.ceil(gemm_dims(op)[0].m / 128)
    # the input is read at least once (plus the halos of 128-pixel tiles over 56-pixel rows),
    # a third or less of the 3 x 3 = 9x of an im2col matrix
    assert op.inputs[0].nbytes < staged - weights_staged < im2col_bytes(op) / 3


def test_systolic_conv_compute_time_is_its_gemm_cycles() -> None:
    system = load_system("tpu-v5e")
    arr = system.chip.tiles.compute.systolic
    assert arr is not None
    graph = single_conv(2, 128, 28)
    compute_s, _, _ = _conv_terms(run_graph(graph, system))
    g = gemm_dims(graph.ops[0])[0]
    cycles = gemm_cycles(round(g.m * g.count), g.n, g.k, arr.rows, arr.cols, arr.dataflow,
                         arr.count).cycles
    assert compute_s == pytest.approx(cycles / system.chip.clock_hz, rel=1e-9)


def test_fused_beats_layer_by_layer_when_activations_spill() -> None:
    graph = small_cnn(batch=128, hw=224)
    layer = run_graph(graph, "ref-dataflow", options=GraphRunOptions(Schedule.LAYER))
    fused = run_graph(graph, "ref-dataflow", options=GraphRunOptions(Schedule.FUSED))
    offchip = layer.phase.plan.levels[-1]
    # 128 images' feature maps do not fit 1 GB of tile SRAM: layer by layer spills them ...
    assert layer.energy_by_level_j()[offchip] > 0
    assert any(r.bound == offchip for r in layer.layers)
    # ... while each fused region holds one image's activations and streams them on
    assert fused.energy_by_level_j()[offchip] == 0
    assert fused.phase.plan.stages == 3 and fused.phase.plan.microbatches == 128
    assert fused.latency_s < layer.latency_s
    assert fused.energy_j_per_inference < layer.energy_j_per_inference


def test_layer_by_layer_wins_at_batch_one() -> None:
    """One image: nothing to pipeline, and each fused layer has a third of the tiles."""
    graph = small_cnn(batch=1, hw=224)
    layer = run_graph(graph, "ref-dataflow", options=GraphRunOptions(Schedule.LAYER))
    fused = run_graph(graph, "ref-dataflow", options=GraphRunOptions(Schedule.FUSED))
    assert layer.latency_s <= fused.latency_s


def test_schedule_does_not_change_a_gpu_plan() -> None:
    graph = small_cnn(batch=4)
    layer = run_graph(graph, "h100-sxm", options=GraphRunOptions(Schedule.LAYER))
    fused = run_graph(graph, "h100-sxm", options=GraphRunOptions(Schedule.FUSED))
    assert layer.latency_s == fused.latency_s
    assert any("does not apply" in n for n in fused.notes)


@pytest.mark.parametrize("system", SYSTEMS)
@pytest.mark.parametrize("schedule", list(Schedule))
def test_per_layer_energy_by_level_sums_to_the_totals(system: str, schedule: Schedule) -> None:
    result = run_graph(small_cnn(batch=4, hw=32), system, options=GraphRunOptions(schedule))
    plan, energy = result.phase.plan, result.phase.cost.energy_breakdown_j
    columns = result.energy_by_level_j()
    assert sum(columns.values()) == pytest.approx(result.phase.cost.energy_j, rel=1e-9)
    assert columns["compute"] == pytest.approx(energy["compute"], rel=1e-9)
    assert columns["noc"] == pytest.approx(energy["noc"], rel=1e-9, abs=1e-18)
    assert columns["static"] == pytest.approx(energy["static"], rel=1e-9)
    chip = result.system.chip
    offchip = [lv.name for lv in chip.levels() if lv.scope == "offchip"]
    onchip = [n for n in plan.levels if n not in offchip]
    assert sum(columns[n] for n in onchip) == pytest.approx(energy["onchip_sram"], rel=1e-9)
    assert sum(columns[n] for n in offchip) == pytest.approx(energy["offchip_memory"], rel=1e-9,
                                                             abs=1e-18)
    assert {r.key for r in result.layers} == {"layer 0", "layer 1", "layer 2"}
    assert sum(r.energy_total_j for r in result.ops) == pytest.approx(
        sum(r.energy_total_j for r in result.layers), rel=1e-9)
    if plan.microbatches == 1 and plan.stages == 1:  # nothing overlaps: layer times add up
        assert sum(r.time_s for r in result.layers) == pytest.approx(result.latency_s, rel=1e-9)
    # the whole system's energy per inference adds the idle chips' to the replica's
    per_inf = result.energy_breakdown_j_per_inference
    assert set(per_inf) == {c.value for c in CATEGORIES}
    assert result.energy_j_per_inference * result.batch >= result.phase.cost.energy_j


def test_ops_without_layers_are_rows_of_their_own() -> None:
    result = run_graph(small_cnn(batch=1, layered=False), "ref-dataflow",
                       options=GraphRunOptions(Schedule.FUSED))
    assert [r.key for r in result.layers] == ["outside layers"]
    assert result.phase.plan.stages == len(result.ops) == 9  # fused: one stage per op


@pytest.mark.parametrize("system", SYSTEMS)
def test_an_op_no_rule_knows_is_priced_from_its_work(system: str) -> None:
    graph = cnn_with_generic_op(batch=4)
    result = run_graph(graph, system)
    (row,) = [r for r in result.ops if r.key == "softmax"]
    assert row.time_s > 0 and row.energy_total_j > 0
    assert row.flops == pytest.approx(work(graph.ops[-1]).flops)


def test_rebatch_scales_the_work() -> None:
    graph = small_cnn(batch=8)
    one = rebatch(graph, 1)
    assert one is not None and graph_batch(one) == 1
    for a, b in zip(graph.ops, one.ops, strict=True):
        assert work(a).flops == pytest.approx(8 * work(b).flops)


def test_analytical_and_event_simulator_agree_on_a_compiled_cnn_plan() -> None:
    graph = small_cnn(batch=8, hw=64)
    fused = GraphRunOptions(Schedule.FUSED)
    analytical = run_graph(graph, "ref-dataflow", options=fused)
    simulated = run_graph(graph, "ref-dataflow", options=GraphRunOptions(Schedule.FUSED,
                                                                         sim="event"))
    assert analytical.compiled is not None and analytical.phase.plan.microbatches == 8
    assert simulated.latency_s == pytest.approx(analytical.latency_s, rel=0.02)
    dyn = {k: v for k, v in analytical.phase.cost.energy_breakdown_j.items() if k != "static"}
    assert {k: v for k, v in simulated.phase.cost.energy_breakdown_j.items()
            if k != "static"} == pytest.approx(dyn, rel=1e-12)
