"""A tensor-parallel group larger than one scale-up domain runs its collectives over the
scale-out network (a ring through the group crosses it), on GPUs and dataflow chips alike."""

from __future__ import annotations

import pytest
import yaml

from tegel.errors import TegelError
from tegel.evaluate.terms import Rates, step_terms
from tegel.hardware import load_system
from tegel.mapping.gpu_data import chip_table
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


def test_a_collective_on_a_gpu_node_runs_at_its_measured_allreduce_share() -> None:
    """A collective's bytes over the scale-up network take bytes / (link rate x the node's
    measured all-reduce bus-bandwidth share) (gpu_chips.yaml): MI300X's RCCL reaches 316.82 of
    448 GB/s, an H100 node's NVLS 478.87 of 450; a transfer between pipeline stages keeps the
    link rate, and a group over the scale-out network takes no share."""
    params = default_params()
    for name, share in (("mi300x-8", 316.82 / 448), ("dgx-h100", 478.87 / 450)):
        system, plan = _plan(name, 8)
        assert plan.collective_efficiency == pytest.approx(share)
        assert params.gpu.rates(system.chip.name).allreduce_fraction == pytest.approx(share)
        rates = Rates.of(system, plan)
        assert rates.collective_bps == pytest.approx(system.scale_up.link_bytes_per_s * share)
        step = next(s for s in plan.steps if s.kind is StepKind.COLLECTIVE)
        terms = step_terms(step, rates)
        assert terms.link_s == pytest.approx(
            step.link_bytes / (system.scale_up.link_bytes_per_s * share) + step.link_latency_s)
    _, across = _plan("2xdgx-h100", 16)
    assert across.collective_efficiency == 1.0


def test_an_allreduce_share_above_twice_the_link_rate_is_refused() -> None:
    body = {"chips": {"x": {"gemm": {"fp8": {"achieved_flops_per_s": 1, "peak_flops_per_s": 2,
                                             "source": "s"}},
                            "hbm": {"achieved_bytes_per_s": 1, "peak_bytes_per_s": 2,
                                    "source": "s"},
                            "allreduce": {"achieved_bus_bytes_per_s": 5, "link_bytes_per_s": 2,
                                          "source": "s"}}},
            "default": {"gemm": 0.5, "hbm": 0.5, "allreduce": 0.9}}
    with pytest.raises(TegelError, match=r"chips.x.allreduce: achieved 5 exceeds 2 x the link"):
        chip_table(yaml.safe_load(yaml.safe_dump(body)), "gpu_chips.yaml")
    body["chips"]["x"]["allreduce"]["achieved_bus_bytes_per_s"] = 3  # NVLS-like, allowed
    table = chip_table(yaml.safe_load(yaml.safe_dump(body)), "gpu_chips.yaml")
    assert table.of("x").allreduce_fraction == pytest.approx(1.5)
    assert table.of("unknown").allreduce_fraction == pytest.approx(0.9)


@pytest.mark.parametrize("precision", ["fp8", "nvfp4", "bf16"])
def test_partial_sums_are_all_reduced_at_16_bits_whatever_the_activation_format(
        precision: str) -> None:
    """A row-parallel GEMM's (and the vocabulary-parallel embedding's) all-reduce moves batch x
    hidden partial sums at 2 bytes each (2(n-1)/n of them per chip), whether the activations are
    FP8, NVFP4 or BF16."""
    from tegel.serving.scenario import resolve_precision

    cfg, system = load_model_config("llama-3.1-8b"), load_system("dgx-h100")
    p = resolve_precision(system, precision)
    phase = Phase.decode(64, 512)
    req = llm_request(cfg, system, phase, Parallelism(tp=8), 1)
    plan = policy_for(system.chip).plan(folded_graph(cfg, phase, p), system, req,
                                        default_params()).plan
    reduces = [s for s in plan.steps if s.kind is StepKind.COLLECTIVE
               and s.name.endswith("all_reduce")]
    assert reduces
    for s in reduces:
        assert s.link_bytes == pytest.approx(2 * 7 / 8 * 64 * cfg.hidden_size * 2)


def test_a_card_of_the_same_die_takes_its_siblings_measured_gemm_and_hbm_shares() -> None:
    """The H100 NVL and PCIe cards have no microbenchmarks of their own; they are the GH100 die
    of the SXM part, whose cuBLASLt GEMM and STREAM shares (0.615, 0.887) they take instead of
    the cross-vendor median (0.69, 0.865). The all-reduce share is the node's: the default."""
    params = default_params().gpu
    sxm = params.rates("h100-sxm")
    for card in ("h100-nvl", "h100-pcie"):
        chip = load_system(card).chip
        rates = params.rates(chip.name, chip.same_silicon_as)
        assert rates.sibling == "h100-sxm" and rates.gemm == sxm.gemm
        assert rates.hbm_fraction == sxm.hbm_fraction
        assert rates.allreduce_fraction == params.chips.default.allreduce_fraction
        assert params.rates(chip.name) == params.chips.default  # without the die: the default
    _, plan = _plan("h100-nvl", 1)
    assert any("GEMM and HBM shares of h100-sxm, the same die" in n for n in plan.notes)
