"""The parallelism search as its own unit: candidates, memory fit, the objective, the result."""

from __future__ import annotations

import pytest

from tegel.errors import TegelError
from tegel.hardware import load_system
from tegel.mapping.params import default_params
from tegel.mapping.plan import Parallelism
from tegel.serving.llm import Config, evaluate_config, kv_tokens_held, memory_per_chip
from tegel.serving.scenario import RunOptions, Scenario
from tegel.serving.search import better, candidate_parallelisms, fit, search
from tegel.workload import Precision, load_model_config

PARAMS = default_params()


def _scenario(model: str, batch: int | None = 1, inp: int = 256, out: int = 32) -> Scenario:
    return Scenario(load_model_config(model), batch, inp, out, Precision())


def test_gpu_candidates_keep_tensor_parallelism_within_a_node() -> None:
    system = load_system("dgx-h100").model_copy(update={"chip_count": 16, "name": "16x"})
    pars = candidate_parallelisms(_scenario("llama-3.1-8b"), system, RunOptions())
    assert {p.tp for p in pars} == {1, 2, 4, 8}  # 16 would cross the 8-GPU node
    assert all(p.tp * p.pp * p.dp == 16 for p in pars)
    assert {p.pp for p in pars} == {1, 2, 4, 8, 16}
    forced = candidate_parallelisms(_scenario("llama-3.1-8b"), system, RunOptions(tp=16))
    assert {p.tp for p in forced} == {16}  # asked for explicitly: allowed


def test_dataflow_candidates_take_any_divisor_for_pipelines() -> None:
    pars = candidate_parallelisms(_scenario("llama-3.1-8b"), load_system("groq-576"), RunOptions())
    assert Parallelism(8, 18, 1, 4) in pars  # 576 = 8 x 18 x 4: not a power of two
    assert max(p.pp for p in pars) <= 32  # never more stages than layers


def test_moe_models_try_both_expert_placements() -> None:
    pars = candidate_parallelisms(_scenario("mixtral-8x7b"), load_system("dgx-h100"),
                                  RunOptions(tp=8))
    assert {p.ep for p in pars} == {1, 8}
    with pytest.raises(TegelError, match="--ep 3 must divide --tp 8"):
        candidate_parallelisms(_scenario("mixtral-8x7b"), load_system("dgx-h100"),
                               RunOptions(tp=8, ep=3))


def test_fit_is_the_memory_model() -> None:
    s, system = _scenario("llama-3.1-70b", batch=None, inp=4096, out=1024), load_system("dgx-h100")
    f = fit(s, system, Parallelism(8, 1, 1, 1), RunOptions(), PARAMS)
    assert f.batch_per_replica > 1
    held = RunOptions()  # batch "auto" on the current stack: KV pages held in flight
    assert memory_per_chip(s, system, Parallelism(8), f.batch_per_replica, PARAMS, held).fits
    assert not memory_per_chip(s, system, Parallelism(8), f.batch_per_replica + 1, PARAMS,
                               held).fits
    short = fit(s, system, Parallelism(1, 1, 1, 8), RunOptions(), PARAMS)  # 140 GB on one GPU
    assert short.batch_per_replica == 0 and short.shortfall_bytes > 50e9


def test_the_objective_is_latency_at_a_fixed_batch_and_throughput_at_auto() -> None:
    s, system = _scenario("llama-3.1-8b", batch=8), load_system("dgx-h100")
    wide = evaluate_config(s, system, Config(Parallelism(8, 1, 1, 1), 8, 1), RunOptions(), PARAMS)
    many = evaluate_config(s, system, Config(Parallelism(1, 1, 1, 8), 1, 1), RunOptions(), PARAMS)
    assert better(wide, many, throughput=False) == (wide.e2e_s < many.e2e_s)
    assert better(many, wide, throughput=True) == (
        many.throughput_tokens_per_s > wide.throughput_tokens_per_s)
    assert not better(wide, wide, throughput=False)  # ties keep the incumbent


@pytest.mark.parametrize(("model", "system_name", "batch"), [
    ("llama-3.1-8b", "dgx-h100", 8), ("llama-3.1-8b", "craftwerk-station", 4),
    ("qwen2.5-0.5b", "ref-dataflow", None)])
def test_search_returns_the_best_candidate_it_tried(model: str, system_name: str,
                                                    batch: int | None) -> None:
    """Exhaustively, over the candidates' stage counts: nothing the search could have picked
    beats what it picked (stage counts are pruned once more stages stop helping, so compare
    with the ones it does visit: the first two of each)."""
    s, system = _scenario(model, batch), load_system(system_name)
    best = search(s, system, RunOptions(), PARAMS)
    from tegel.mapping.registry import policy_for

    policy = policy_for(system.chip)
    for par in candidate_parallelisms(s, system, RunOptions()):
        f = fit(s, system, par, RunOptions(), PARAMS)
        if not f.batch_per_replica:
            continue
        for stages in policy.stage_counts(par.pp, s.model.num_layers)[:2]:
            other = evaluate_config(s, system, Config(par, f.batch_per_replica, stages),
                                    RunOptions(), PARAMS)
            assert not better(other, best, throughput=batch is None)


def test_nothing_fits_names_the_shortfall() -> None:
    with pytest.raises(TegelError, match=r"does not fit on h100-sxm .* short by"):
        search(_scenario("llama-3.1-405b"), load_system("h100-sxm"), RunOptions(), PARAMS)


def test_an_in_flight_batch_holds_each_sequences_mean_context() -> None:
    """Paged KV in flight (Little's law): prompt + half the output per sequence; a static batch
    (a stack without it, a fixed batch, a dataflow chip) holds the full context."""
    s = _scenario("llama-3.1-70b", batch=None, inp=1000, out=3000)
    assert kv_tokens_held(s, 0.0) == 4000 and kv_tokens_held(s, 1.0) == 2500
    beams = Scenario(s.model, None, 1000, 3000, Precision(), beams=4)
    assert kv_tokens_held(beams, 1.0) == 1000 + 4 * 1500  # beams share the prompt
    system, par = load_system("dgx-h100"), Parallelism(8)
    paged = fit(s, system, par, RunOptions(), PARAMS).batch_per_replica
    static = fit(s, system, par, RunOptions(software="trtllm-0.8"), PARAMS).batch_per_replica
    assert static > 1 and paged == pytest.approx(static * 4000 / 2500, rel=0.01)
    fixed = _scenario("llama-3.1-70b", batch=paged, inp=1000, out=3000)
    assert not fit(fixed, system, par, RunOptions(), PARAMS).batch_per_replica  # static
    assert fit(fixed, system, par, RunOptions(in_flight=True), PARAMS).batch_per_replica == paged
    wafer = load_system("cerebras-wse3")
    assert memory_per_chip(s, wafer, Parallelism(), 1, PARAMS, RunOptions()).kv_cache_bytes == (
        memory_per_chip(s, wafer, Parallelism(), 1, PARAMS).kv_cache_bytes)  # dataflow: static
