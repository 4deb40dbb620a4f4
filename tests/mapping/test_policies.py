"""One policy per architecture, from a registry; graphs that are not LLMs map too (no
embedding, convolutions); a chip's energy per operation is the one runs use."""

from __future__ import annotations

import pytest

from tegel.cli import main
from tegel.errors import TegelError
from tegel.evaluate import evaluate
from tegel.evaluate.terms import Rates
from tegel.hardware import System, load_system
from tegel.mapping.params import default_params
from tegel.mapping.plan import Parallelism, PlanRequest, StepKind
from tegel.mapping.registry import POLICIES, DataflowPolicy, GpuPolicy, policy_for
from tegel.workload import DType, GraphBuilder, Phase
from tegel.workload.ir import Conv2d, Graph, MatMul, OpKind, Unary, UnaryFn
from tegel.workload.ops import gemm_dims, work
from tegel.workload.roles import assign_roles

PARAMS = default_params()


def test_registry_is_keyed_by_architecture() -> None:
    assert set(POLICIES) == {"gpu", "dataflow"}
    assert isinstance(policy_for(load_system("h100-sxm").chip), GpuPolicy)
    assert isinstance(policy_for(load_system("craftwerk").chip), DataflowPolicy)
    odd = load_system("h100-sxm").chip.model_construct(architecture="analog", name="odd")
    with pytest.raises(TegelError, match="no mapping policy for architecture 'analog'"):
        policy_for(odd)


def _mlp_graph() -> Graph:
    """x @ W1 -> relu -> @ W2: no embedding, no attention, no layers."""
    g = GraphBuilder("mlp", DType.BF16)
    x = g.input("x", (4, 64, 512), DType.BF16)
    h = g.op1(OpKind.MATMUL, MatMul(transpose_b=True), (x, g.weight("w1", (2048, 512), DType.BF16)), "fc1")
    h = g.op1(OpKind.UNARY, Unary(UnaryFn.RELU), (h,), "act")
    y = g.op1(OpKind.MATMUL, MatMul(transpose_b=True), (h, g.weight("w2", (512, 2048), DType.BF16)), "fc2")
    return assign_roles(g.build((y,)))


def _conv_graph() -> Graph:
    g = GraphBuilder("conv", DType.BF16)
    x = g.input("x", (8, 64, 56, 56), DType.BF16)
    y = g.op1(OpKind.CONV2D, Conv2d(stride=(1, 1), padding=(1, 1)),
              (x, g.weight("w", (128, 64, 3, 3), DType.BF16)), "conv")
    y = g.op1(OpKind.UNARY, Unary(UnaryFn.RELU), (y,), "relu")
    return assign_roles(g.build((y,)))


@pytest.mark.parametrize("system_name", ["h100-sxm", "craftwerk", "ref-dataflow", "tpu-v5e"])
@pytest.mark.parametrize("make", [_mlp_graph, _conv_graph])
def test_graphs_without_an_embedding_map_on_every_kind(system_name: str, make: object) -> None:
    graph = make()  # type: ignore[operator]
    system = load_system(system_name)
    req = PlanRequest(Phase(1, 1, 0), Parallelism(), 1, 1)
    planned = policy_for(system.chip).plan(graph, system, req, PARAMS)
    cost = evaluate(planned.plan, system)
    flops = sum(work(op).flops for op in graph.ops)
    assert sum(s.flops * s.repeat for s in planned.plan.steps) == pytest.approx(flops)
    assert cost.time_s > 0 and cost.cost.energy_j > 0
    gemm_steps = [s for s in planned.plan.steps if s.kind is StepKind.GEMM]
    assert gemm_steps  # a convolution is a GEMM (implicit), not elementwise work
    if planned.compiled is not None:  # the spatial compiler spreads its contraction over tiles
        conv = [sp for sp in planned.compiled.splits if sp.op in ("conv", "fc1")]
        assert conv and (conv[0].k > 1 or planned.compiled.stages[0].region.tiles == 1)


def test_a_convolution_is_priced_as_its_implicit_gemm_on_a_gpu() -> None:
    graph = _conv_graph()
    (g,) = gemm_dims(graph.ops[0])
    assert (g.count, g.m, g.n, g.k) == (1, 8 * 56 * 56, 128, 64 * 9)
    system = load_system("h100-sxm")
    plan = policy_for(system.chip).plan(graph, system, PlanRequest(Phase(1, 1, 0), Parallelism(), 1, 1),
                                        PARAMS).plan
    step = next(s for s in plan.steps if s.kind is StepKind.GEMM)
    # tile and wave quantization of a 25088 x 128 x 576 GEMM (N is half a 256-wide tile)
    assert 0.1 < step.compute_efficiency <= PARAMS.gpu.gemm_serving_fraction / 2


@pytest.mark.parametrize("system_name", ["h100-sxm", "b200", "mi300x", "craftwerk", "groq-lpu"])
def test_energy_per_op_shown_is_the_one_runs_use(system_name: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    system: System = load_system(system_name)
    plan = policy_for(system.chip).plan(_mlp_graph(), system,
                                        PlanRequest(Phase(1, 1, 0), Parallelism(), 1, 1), PARAMS).plan
    used = Rates.of(system, plan).pj_per_flop
    assert main(["hw", "show", system_name, "--json"]) == 0
    import json

    shown = json.loads(capsys.readouterr().out)["chip"]["pj_per_flop"]
    assert shown == used


def test_gpu_energy_per_op_follows_the_power_model() -> None:
    """(TDP - idle) x (1 - active share) x compute_power_fraction / peak: the H100's fp8 op is
    ~0.31 pJ, not the ~0.02 pJ of a bare multiplier."""
    chip = load_system("h100-sxm").chip
    for dtype in ("bf16", "fp8"):
        expected = (1e12 * (chip.tdp_w - chip.idle_w) * (1 - 0.11) * 1.08
                    / chip.peak_flops_per_s(dtype))
        assert chip.pj_per_flop(dtype) == pytest.approx(expected)
    assert chip.pj_per_flop("fp8") == pytest.approx(0.306, rel=0.01)
    assert "gpu_power.yaml" in chip.tiles.compute.cite["pj_per_op.fp8"]
