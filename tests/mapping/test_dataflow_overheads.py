"""What lowering adds around a compiled plan: host round trips, hand-offs, collective
synchronisation, the NoC's achieved share, the busiest chip of an expert op, and dragonfly
collectives. Each is a term of the steps, checked by the time it adds to a call."""

from __future__ import annotations

import math

import pytest

from tegel.evaluate.analytical import evaluate
from tegel.hardware import load_system
from tegel.mapping.compiler import compile_for
from tegel.mapping.lower import _busiest, lower
from tegel.mapping.params import default_params
from tegel.mapping.plan import Parallelism, StepKind, llm_request
from tegel.mapping.sharding import OpShard, collective_traffic
from tegel.workload.folding import folded_graph
from tegel.workload.ir import OpKind
from tegel.workload.llm import Phase, Precision
from tegel.workload.model_config import load_model_config

ZERO = {"host_round_trip_s": 0.0, "stage_handoff_s": 0.0, "collective_sync_s": 0.0}


def _call_time(model: str, system: str, par: Parallelism, stages: int, values: dict) -> float:
    sys_ = load_system(system)
    cfg = load_model_config(model)
    req = llm_request(cfg, sys_, Phase(1, 1, 64), par, stages)
    graph = folded_graph(cfg, req.phase, Precision())
    params = default_params().with_dataflow(values, "test").dataflow
    plan = lower(compile_for(graph, sys_, req, params), sys_, params)
    return evaluate(plan, sys_).time_s


def test_host_round_trip_is_paid_once_per_call() -> None:
    par = Parallelism()
    base = _call_time("qwen2.5-0.5b", "ref-dataflow", par, 4, ZERO)
    more = _call_time("qwen2.5-0.5b", "ref-dataflow", par, 4, {**ZERO, "host_round_trip_s": 1e-4})
    assert more - base == pytest.approx(1e-4, rel=1e-6)


def test_collective_sync_is_paid_by_every_collective() -> None:
    sys_ = load_system("craftwerk-station")
    par = Parallelism(tp=4)
    base = _call_time("qwen2.5-0.5b", "craftwerk-station", par, 1, ZERO)
    more = _call_time("qwen2.5-0.5b", "craftwerk-station", par, 1,
                      {**ZERO, "collective_sync_s": 1e-5})
    cfg = load_model_config("qwen2.5-0.5b")
    req = llm_request(cfg, sys_, Phase(1, 1, 64), par, 1)
    plan = lower(compile_for(folded_graph(cfg, req.phase, Precision()), sys_, req), sys_)
    collectives = sum(s.repeat for s in plan.steps if s.kind is StepKind.COLLECTIVE)
    assert collectives > cfg.num_layers  # at least one per layer
    assert more - base == pytest.approx(collectives * 1e-5, rel=1e-6)


def test_handoff_direct_links_and_host_round_trip_through_hosts() -> None:
    """Between Groq chips (direct links) a transfer pays the hand-off; between Cerebras CS-3
    systems (through CPU servers) it pays a host round trip."""
    cfg = load_model_config("llama-3.2-1b")
    values = {"host_round_trip_s": 3e-4, "stage_handoff_s": 5e-6, "collective_sync_s": 0.0}
    params = default_params().with_dataflow(values, "test").dataflow
    for system, expect in (("craftwerk-station", 5e-6), ("cerebras-cs3x4", 3e-4)):
        sys_ = load_system(system)
        req = llm_request(cfg, sys_, Phase(1, 1, 64), Parallelism(pp=2), 2)
        plan = lower(compile_for(folded_graph(cfg, req.phase, Precision()), sys_, req, params),
                     sys_, params)
        crossing = [s for s in plan.steps if s.kind is StepKind.TRANSFER and s.link_bytes]
        assert crossing and all(s.overhead_s == expect for s in crossing), system


def test_noc_share_slows_traffic_not_energy() -> None:
    sys_ = load_system("ref-dataflow")
    cfg = load_model_config("qwen2.5-0.5b")
    req = llm_request(cfg, sys_, Phase(4, 128, 0), Parallelism(), 2)
    compiled = compile_for(folded_graph(cfg, req.phase, Precision()), sys_, req)
    full, half = (default_params().with_dataflow({"noc_bandwidth_fraction": f}, "t").dataflow
                  for f in (1.0, 0.5))
    a, b = evaluate(lower(compiled, sys_, full), sys_), evaluate(lower(compiled, sys_, half), sys_)
    assert b.time_s > a.time_s
    assert sum(b.cost.energy_by_category_j) - sum(a.cost.energy_by_category_j) == pytest.approx(
        (b.time_s - a.time_s) * b.static_w, rel=1e-6)  # only static energy grows


def test_busiest_chip_of_an_expert_op() -> None:
    cfg = load_model_config("mixtral-8x7b")
    graph = folded_graph(cfg, Phase(1, 1, 64), Precision())
    moe = next(op for op in graph.ops if op.kind is OpKind.MOE_EXPERTS)
    assert _busiest(moe, 1) == 1.0
    assert _busiest(moe, 2) == 2.0  # two touched experts may sit on one of the two chips
    assert _busiest(moe, 64) == pytest.approx(8 / 2)  # a chip of a touched expert does 4x


@pytest.mark.parametrize("tp", [2, 8, 64])
def test_dragonfly_collectives_do_not_grow_with_the_group(tp: int) -> None:
    shard = OpShard(1.0, (1.0,), (1.0,), "all_reduce", 8192.0)
    assert collective_traffic(shard, tp, "dragonfly")[1] == 6  # two traversals of <= 3 hops
    assert collective_traffic(shard, tp, "ring")[1] == 2 * (tp - 1)
    assert math.isclose(collective_traffic(shard, tp, "dragonfly")[0], 2 * (tp - 1) / tp * 8192)
