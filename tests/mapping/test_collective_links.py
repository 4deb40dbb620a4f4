"""A tensor-parallel group larger than one scale-up domain runs its collectives over the
scale-out network (a ring through the group crosses it), on GPUs and dataflow chips alike."""

from __future__ import annotations

import pytest

from tegel.evaluate.terms import Rates
from tegel.hardware import load_system
from tegel.mapping.params import default_params
from tegel.mapping.plan import Parallelism, StepKind, llm_request
from tegel.mapping.registry import policy_for
from tegel.workload import Phase, Precision, load_model_config
from tegel.workload.folding import folded_graph


def _plan(system_name: str, tp: int):
    cfg, system = load_model_config("llama-3.1-8b"), load_system(system_name)
    phase = Phase.prefill(1, 512)
    req = llm_request(cfg, system, phase, Parallelism(tp=tp), 1)
    plan = policy_for(system.chip).plan(folded_graph(cfg, phase, Precision()), system, req,
                                        default_params()).plan
    return system, plan


def test_group_within_a_node_uses_the_scale_up_network() -> None:
    system, plan = _plan("2xdgx-h100", 8)
    assert system.scale_up is not None
    assert Rates.of(system, plan).link_bps == system.scale_up.link_bytes_per_s
    assert Rates.of(system, plan).link_pj == system.scale_up.pj_per_bit


def test_group_across_nodes_uses_the_scale_out_network() -> None:
    system, plan = _plan("2xdgx-h100", 16)
    assert system.scale_out is not None and system.scale_up is not None
    rates = Rates.of(system, plan)
    assert rates.link_bps == system.scale_out.link_bytes_per_s < system.scale_up.link_bytes_per_s
    assert rates.link_pj == system.scale_out.pj_per_bit
    collectives = [s for s in plan.steps if s.kind is StepKind.COLLECTIVE]
    assert collectives and all(
        s.link_latency_s >= system.scale_out.latency_s for s in collectives)


def test_single_node_is_unchanged() -> None:
    system, plan = _plan("dgx-h100", 8)
    assert Rates.of(system, plan).link_bps == pytest.approx(system.scale_up.link_bytes_per_s)
