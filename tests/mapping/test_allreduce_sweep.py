"""An all-reduce larger than the engine's custom kernel takes goes through NCCL / RCCL at the bus
bandwidth the chip's nccl-tests sweep measured at that message size (gpu_chips.yaml:
allreduce.by_message_bytes; the limit: gpu.yaml custom_allreduce_max_bytes)."""

from __future__ import annotations

import math

import pytest
import yaml

from tegel.errors import TegelError
from tegel.evaluate.terms import Rates, step_terms
from tegel.hardware import load_system
from tegel.mapping.gpu_data import chip_table, log_interpolate
from tegel.mapping.params import default_params
from tegel.mapping.plan import Parallelism, StepKind, llm_request
from tegel.mapping.registry import policy_for
from tegel.workload import Phase, Precision, load_model_config
from tegel.workload.folding import folded_graph

MIB = 1024 * 1024


def _collectives(system_name: str, model: str, tp: int, phase: Phase):
    cfg, system = load_model_config(model), load_system(system_name)
    req = llm_request(cfg, system, phase, Parallelism(tp=tp), 1)
    plan = policy_for(system.chip).plan(folded_graph(cfg, phase, Precision()), system,
                                        req, default_params()).plan
    rates = Rates.of(system, plan)
    return system, [(s, step_terms(s, rates)) for s in plan.steps
                    if s.kind is StepKind.COLLECTIVE and s.name.endswith("all_reduce")]


def test_log_interpolation_hits_the_points_and_clamps_at_the_ends() -> None:
    pts = ((4.0, 0.2), (16.0, 0.6), (64.0, 1.0))
    assert log_interpolate(pts, 16.0) == pytest.approx(0.6)
    assert log_interpolate(pts, 8.0) == pytest.approx(0.4)  # halfway in log(size)
    assert log_interpolate(pts, 1.0) == pytest.approx(0.2)
    assert log_interpolate(pts, 1e9) == pytest.approx(1.0)
    assert log_interpolate((), 5.0) == 1.0


def test_a_16_mib_all_reduce_on_8_h100_runs_at_the_measured_16_mib_bus_bandwidth() -> None:
    """Decode of a 70B model on 8 H100 at batch 1,024: each all-reduce combines 1,024 x 8,192 x
    2 bytes = 16 MiB, above TensorRT-LLM's 8 MB custom-kernel limit, so it takes
    2 x 7/8 x 16 MiB / 234.45 GB/s (NCCL's bus bandwidth at 16M in the Azure ND H100 v5 table)
    and no fixed cost on top."""
    _, steps = _collectives("dgx-h100", "llama-2-70b", 8, Phase.decode(1024, 512))
    assert steps
    for step, terms in steps:
        assert step.link_bytes == pytest.approx(2 * 7 / 8 * 16 * MIB)
        assert step.overhead_s == 0.0
        assert terms.link_s == pytest.approx(step.link_bytes / 234.45e9 + step.link_latency_s)


def test_a_message_within_the_custom_kernel_keeps_the_large_message_share_and_fixed_cost() -> None:
    system, steps = _collectives("dgx-h100", "llama-2-70b", 8, Phase.decode(64, 512))
    share = 478.87e9 / system.scale_up.link_bytes_per_s
    for step, terms in steps:
        assert step.link_bytes == pytest.approx(2 * 7 / 8 * 64 * 8192 * 2)
        assert step.overhead_s == pytest.approx(default_params().gpu.collective_overhead_s)
        assert terms.link_s == pytest.approx(
            step.link_bytes / (system.scale_up.link_bytes_per_s * share) + step.link_latency_s)


def test_two_gpus_keep_the_custom_kernel_up_to_16_mb() -> None:
    """TensorRT-LLM sizes its custom all-reduce workspace at 16 MB for tp <= 2: a 12 MiB
    message stays on it between two GPUs, and goes through NCCL among eight."""
    phase = Phase.decode(768, 512)  # 768 x 8,192 x 2 bytes = 12 MiB
    _, two = _collectives("dgx-h100", "llama-2-70b", 2, phase)
    _, eight = _collectives("dgx-h100", "llama-2-70b", 8, phase)
    assert all(s.link_share == 1.0 and s.overhead_s > 0 for s, _ in two)
    assert all(s.link_share < 1.0 and s.overhead_s == 0 for s, _ in eight)


def _body(sweep: dict[int, float] | None, top: float = 4.0) -> dict:
    allreduce: dict = {"achieved_bus_bytes_per_s": top, "link_bytes_per_s": 4, "source": "s"}
    if sweep is not None:
        allreduce["by_message_bytes"] = sweep
    chip = {"gemm": {"fp8": {"achieved_flops_per_s": 1, "peak_flops_per_s": 2, "source": "s"}},
            "hbm": {"achieved_bytes_per_s": 1, "peak_bytes_per_s": 2, "source": "s"},
            "allreduce": allreduce}
    return {"chips": {"x": chip, "y": yaml.safe_load(yaml.safe_dump(chip))},
            "default": {"gemm": 0.5, "hbm": 0.5, "allreduce": 0.9}}


def test_a_sweep_is_read_relative_to_its_largest_message_and_the_default_takes_the_median() -> None:
    body = _body({1024: 1.0, 4096: 4.0})
    body["chips"]["y"]["allreduce"]["by_message_bytes"] = {1024: 3.0, 4096: 4.0}
    table = chip_table(yaml.safe_load(yaml.safe_dump(body)), "gpu_chips.yaml")
    assert table.of("x").allreduce_share_at(1024) == pytest.approx(0.25)
    assert table.of("x").allreduce_share_at(2048) == pytest.approx(0.625)
    assert table.of("unknown").allreduce_share_at(1024) == pytest.approx((0.25 + 0.75) / 2)
    assert math.isclose(table.of("unknown").allreduce_share_at(1e12), 1.0)


@pytest.mark.parametrize(("sweep", "message"), [
    ({1024: 1.0}, "at least two sizes"),
    ({1024: 1.0, 4096: 3.0}, "largest message must be the one"),
    ({1024: -1.0, 4096: 4.0}, "expected positive numbers"),
])
def test_a_bad_sweep_is_refused_with_the_field(sweep: dict[int, float], message: str) -> None:
    with pytest.raises(TegelError, match=rf"chips.x.allreduce.by_message_bytes: .*{message}"):
        chip_table(yaml.safe_load(yaml.safe_dump(_body(sweep))), "gpu_chips.yaml")
