"""Invariants of the request-level serving simulator (issue 12, item 8)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tegel
from tegel.errors import TegelError
from tegel.hardware import load_system
from tegel.mapping.params import default_params
from tegel.serving.oracle import Batch, Oracle, quantise
from tegel.serving.replica import SchedulerConfig
from tegel.serving.requests import Workload
from tegel.serving.scenario import RunOptions, resolve_precision
from tegel.serving.serve import Slo, replica_config, serve
from tegel.serving.simulate import Pools, Simulation
from tegel.workload.model_config import load_model_config

MODEL, GPU = "llama-3.1-8b", "h100-sxm"


def fixed(n: int, inp: int, out: int, rate: float | None = None, seed: int = 0,
          concurrency: int | None = None) -> Workload:
    rng = np.random.default_rng(seed)
    arrival = np.cumsum(rng.exponential(1.0 / rate, n)) if rate else np.zeros(n)
    return Workload(arrival, np.full(n, inp), np.full(n, out), concurrency)


def varied(n: int, rate: float, seed: int = 1) -> Workload:
    rng = np.random.default_rng(seed)
    return Workload(np.cumsum(rng.exponential(1.0 / rate, n)),
                    rng.integers(16, 2048, n), rng.integers(1, 400, n))


@pytest.mark.parametrize("kind", ["static", "continuous", "chunked", "disaggregated"])
def test_every_request_completes_and_tokens_are_conserved(kind: str) -> None:
    system = "dgx-h100" if kind == "disaggregated" else GPU
    wl = varied(300, 30.0)
    res = serve(MODEL, system, wl, SchedulerConfig(kind=kind, max_seqs=64))
    rec = res.outcome.records
    assert res.completed + res.dropped == len(wl) and res.dropped == 0
    assert rec.generated == wl.output_tokens.tolist()
    first, finish = np.asarray(rec.first_s), np.asarray(rec.finish_s)
    arrival = np.asarray(res.outcome.arrival_s)
    assert np.all(arrival <= first) and np.all(first <= finish)
    assert 0 < res.outcome.peak_kv_fraction <= 1.0
    if kind == "disaggregated":
        assert res.outcome.kv_transfer_s > 0 and res.pools.prefill == 4


def _tiny_pool_sim(kind: str, blocks: int, wl: Workload, admission: str = "on-demand") -> Simulation:
    cfg = load_model_config(MODEL)
    system = load_system(GPU)
    prec = resolve_precision(system, None)
    sched = SchedulerConfig(kind=kind, max_seqs=32, block_tokens=16, admission=admission)
    config = replica_config(cfg, system, wl, prec, sched, RunOptions(), default_params())
    pools = Pools(1, 0, blocks, 131072.0, 1, 0.0)
    oracle = Oracle(cfg, prec, system, config.parallelism, config.stages, default_params())
    return Simulation(oracle, system, pools, sched, wl)


@pytest.mark.parametrize("kind", ["continuous", "chunked"])
def test_kv_cache_never_exceeds_capacity_and_preempts_by_recompute(kind: str) -> None:
    wl = fixed(40, 200, 300, rate=200.0)
    sim = _tiny_pool_sim(kind, 120, wl)  # 1,920 tokens: room for about 4 whole requests
    peaks = []
    original = sim.end_iteration

    def watch(i: int, t: float) -> None:
        rep = sim.replicas[i]
        peaks.append(rep.kv_blocks - rep.free)
        assert rep.free >= 0
        original(i, t)

    sim.end_iteration = watch  # type: ignore[method-assign]
    out = sim.run()
    assert max(peaks) <= 120
    assert not out.records.dropped
    assert sum(out.records.preemptions) > 0
    assert out.records.generated == [300] * 40


@pytest.mark.parametrize("kind", ["continuous", "chunked"])
def test_reserving_admission_never_preempts(kind: str) -> None:
    wl = fixed(40, 200, 300, rate=200.0)
    sim = _tiny_pool_sim(kind, 120, wl, admission="reserve")
    out = sim.run()
    assert sum(out.records.preemptions) == 0 and not out.records.dropped
    assert out.records.generated == [300] * 40
    # each request holds ceil(500 / 16) = 32 blocks from admission on: at most 3 fit in 120
    assert sim.replicas[0].peak_blocks == 96


def test_a_request_that_can_never_fit_is_dropped_with_its_reason() -> None:
    wl = Workload(np.array([0.0, 0.1]), np.array([100, 5000]), np.array([10, 10]))
    out = _tiny_pool_sim("continuous", 64, wl).run()  # 1,024 tokens
    assert list(out.records.dropped) == [1]
    assert "5010 tokens of KV cache" in out.records.dropped[1]
    assert out.records.generated[0] == 10


def test_low_rate_matches_run_at_batch_one() -> None:
    n = 6
    wl = Workload(np.arange(n) * 10.0, np.full(n, 1024), np.full(n, 256))
    res = serve(MODEL, GPU, wl, SchedulerConfig(kind="continuous"))
    run = tegel.run(MODEL, GPU, 1, 1024, 256)
    assert res.ttft().mean() == pytest.approx(run.ttft_s, rel=0.02)
    assert res.tpot().mean() == pytest.approx(run.tpot_s, rel=0.02)


@pytest.mark.parametrize(("system", "batch"), [(GPU, 16), ("dgx-h100", 64)])
def test_static_batch_at_time_zero_reproduces_run(system: str, batch: int) -> None:
    run = tegel.run(MODEL, system, batch, 512, 128)
    par = run.parallelism
    opts = RunOptions(tp=par.tp, pp=par.pp, ep=par.ep)
    res = serve(MODEL, system, fixed(batch, 512, 128),
                SchedulerConfig(kind="static", max_seqs=run.chosen.batch_per_replica),
                options=opts)
    assert res.config.parallelism == par
    assert res.ttft().mean() == pytest.approx(run.ttft_s, rel=0.02)
    assert res.tpot().mean() == pytest.approx(run.tpot_s, rel=0.02)
    assert res.e2e().max() == pytest.approx(run.e2e_latency_s, rel=0.02)
    assert res.energy_j_per_token == pytest.approx(run.energy_j_per_token, rel=0.03)


def test_throughput_never_exceeds_the_static_batch_bound() -> None:
    seqs = 64
    bound = tegel.run(MODEL, GPU, seqs, 512, 128).throughput_tokens_per_s
    for kind in ("continuous", "chunked"):
        res = serve(MODEL, GPU, fixed(600, 512, 128, rate=1000.0),
                    SchedulerConfig(kind=kind, max_seqs=seqs))
        assert res.throughput_tokens_per_s <= bound * 1.01
        assert res.throughput_tokens_per_s > 0.5 * bound  # and it is not absurdly low


def test_littles_law_at_steady_state() -> None:
    wl = fixed(3000, 256, 64, rate=60.0, seed=3)
    res = serve(MODEL, GPU, wl, SchedulerConfig(kind="chunked"))
    arrival = np.asarray(res.outcome.arrival_s)
    finish = np.asarray(res.outcome.records.finish_s)
    lo, hi = arrival[500], arrival[2500]  # a window away from the start and the drain
    grid = np.linspace(lo, hi, 4001)
    in_system = (np.searchsorted(np.sort(arrival), grid, side="right")
                 - np.searchsorted(np.sort(finish), grid, side="right"))
    inside = (arrival >= lo) & (arrival < hi)
    rate = inside.sum() / (hi - lo)
    wait = (finish - arrival)[inside].mean()
    assert in_system.mean() == pytest.approx(rate * wait, rel=0.05)


def test_results_are_deterministic_for_a_seed() -> None:
    a = serve(MODEL, GPU, varied(200, 40.0, seed=7), SchedulerConfig(kind="chunked")).to_dict()
    b = serve(MODEL, GPU, varied(200, 40.0, seed=7), SchedulerConfig(kind="chunked")).to_dict()
    assert a == b


def test_closed_loop_keeps_concurrency_outstanding() -> None:
    res = serve(MODEL, GPU, fixed(64, 256, 32, concurrency=8), SchedulerConfig())
    arrival = np.asarray(res.outcome.arrival_s)
    finish = np.asarray(res.outcome.records.finish_s)
    for t in np.linspace(0.0, finish.max() * 0.9, 50):
        outstanding = int(((arrival <= t) & (finish > t)).sum())
        assert outstanding <= 8
    assert res.completed == 64


def test_goodput_counts_requests_within_the_slo() -> None:
    wl = fixed(400, 1024, 128, rate=30.0)
    res = serve(MODEL, GPU, wl, SchedulerConfig(kind="chunked"), slo=Slo(0.2, 0.05))
    ok = (res.ttft() <= 0.2) & (res.tpot() <= 0.05)
    assert res.goodput_requests_per_s == pytest.approx(ok.sum() / res.span_s)
    assert res.goodput_requests_per_s <= res.requests_per_s


def test_dataflow_systems_serve_too() -> None:
    res = serve(MODEL, "craftwerk-station", fixed(100, 512, 64, rate=100.0),
                SchedulerConfig(kind="chunked"))
    assert res.completed == 100 and res.throughput_tokens_per_s > 0


def test_quantised_keys_are_close() -> None:
    for n in (1, 63, 64, 65, 100, 1023, 1025, 5000, 123457):
        assert abs(quantise(n) - n) <= max(0.008 * n, 0.5)


def test_mixed_batch_costs_between_its_parts() -> None:
    cfg, system = load_model_config(MODEL), load_system(GPU)
    oracle = Oracle(cfg, resolve_precision(system, None), system, tegel.mapping.plan.Parallelism(),
                    1, default_params())
    decode = oracle.cost(Batch(64, 1500.0, (), 64)).time_s
    chunk = oracle.cost(Batch(0, 0.0, ((448, 0),), 1)).time_s
    # 512 tokens in all (a whole number of GEMM tiles, so the GEMMs' shape efficiency is alike):
    # the weights are read once for both parts
    mixed = oracle.cost(Batch(64, 1500.0, ((448, 0),), 65)).time_s
    assert max(decode, chunk) < mixed < decode + chunk
    # a prefill chunk after cached tokens attends to them: it costs more than one without
    assert oracle.cost(Batch(0, 0.0, ((512, 4096),), 1)).time_s > chunk
    assert math.isfinite(mixed)


def test_an_sram_machine_gets_a_prefill_budget_that_leaves_room_for_the_cache() -> None:
    res = serve("llama-2-7b", "groq-576", fixed(40, 512, 64, rate=20.0))
    assert res.completed == 40
    assert res.scheduler.max_batched_tokens < 8192 and res.notes
    assert "prefill budget lowered" in res.notes[0]


GPTJ = "gpt-j-6b"


def test_beam_search_static_batch_reproduces_run() -> None:
    """A static batch of beam-search requests (MLPerf GPT-J: 4 beams) at t = 0 is `tegel run`'s
    beam-search scenario: the replica decodes batch x beams sequences sharing each request's
    prompt, as `serving.llm.phase_requests` prices them."""
    batch, beams = 32, 4
    run = tegel.run(GPTJ, GPU, batch, 962, 69, "fp8", options=RunOptions(beams=beams))
    res = serve(GPTJ, GPU, fixed(batch, 962, 69),
                SchedulerConfig(kind="static", max_seqs=batch), "fp8",
                options=RunOptions(beams=beams))
    assert res.ttft().mean() == pytest.approx(run.ttft_s, rel=0.02)
    assert res.tpot().mean() == pytest.approx(run.tpot_s, rel=0.02)
    assert res.energy_j_per_token == pytest.approx(run.energy_j_per_token, rel=0.03)
    greedy = serve(GPTJ, GPU, fixed(batch, 962, 69),
                   SchedulerConfig(kind="static", max_seqs=batch), "fp8")
    assert greedy.tpot().mean() < res.tpot().mean()  # 4x the sequences per step


@pytest.mark.parametrize("admission", ["on-demand", "reserve"])
def test_beams_hold_their_prompt_once_and_their_own_tokens(admission: str) -> None:
    """A beam-search request holds its prompt once and every beam's generated tokens: one
    request of 200 + 4 x 300 tokens peaks at ceil(1,400 / 16) = 88 blocks (greedy: 32), however
    its blocks were taken (a block at a time as the beams grow, or all on admission)."""
    cfg = load_model_config(MODEL)
    system = load_system(GPU)
    prec = resolve_precision(system, None)
    sched = SchedulerConfig(kind="chunked", max_seqs=8, block_tokens=16, admission=admission)
    wl = fixed(1, 200, 300)
    config = replica_config(cfg, system, wl, prec, sched, RunOptions(beams=4), default_params())
    oracle = Oracle(cfg, prec, system, config.parallelism, config.stages, default_params(),
                    beams=4)
    sim = Simulation(oracle, system, Pools(1, 0, 1000, 131072.0, 1, 0.0), sched, wl)
    out = sim.run()
    assert out.records.generated == [300]
    assert sim.replicas[0].peak_blocks == math.ceil((200 + 4 * 300) / 16)


def test_beams_under_poisson_load_complete_every_request() -> None:
    wl = fixed(200, 962, 69, rate=20.0)
    res = serve(GPTJ, GPU, wl, SchedulerConfig(kind="chunked", max_seqs=64), "fp8",
                options=RunOptions(beams=4))
    assert res.completed == 200 and res.dropped == 0
    assert res.outcome.records.generated == [69] * 200


def test_beam_search_is_refused_where_it_is_not_simulated() -> None:
    with pytest.raises(TegelError, match=r"beam search.*disaggregated"):
        serve(GPTJ, "dgx-h100", fixed(8, 100, 10), SchedulerConfig(kind="disaggregated"),
              options=RunOptions(beams=4))
