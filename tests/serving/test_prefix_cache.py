"""Prefix caching in the serving simulator's paged KV cache (issue 15, item 2)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tegel.cli import main
from tegel.errors import TegelError
from tegel.hardware import load_system
from tegel.mapping.params import default_params
from tegel.serving.oracle import Oracle
from tegel.serving.replica import SchedulerConfig
from tegel.serving.requests import Workload
from tegel.serving.scenario import RunOptions, resolve_precision
from tegel.serving.serve import replica_config, serve
from tegel.serving.simulate import Pools, Simulation
from tegel.workload.model_config import load_model_config

MODEL, GPU = "llama-3.1-8b", "h100-sxm"


def poisson(n: int, inp: int, out: int, rate: float, seed: int = 0) -> Workload:
    rng = np.random.default_rng(seed)
    return Workload(np.cumsum(rng.exponential(1.0 / rate, n)), np.full(n, inp), np.full(n, out))


def varied(n: int, rate: float, seed: int = 5) -> Workload:
    rng = np.random.default_rng(seed)
    return Workload(np.cumsum(rng.exponential(1.0 / rate, n)),
                    rng.integers(16, 2048, n), rng.integers(1, 300, n))


def _without_prefix_key(d: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in d.items() if k != "prefix_cache"}


@pytest.mark.parametrize("kind", ["static", "continuous", "chunked"])
def test_a_long_shared_prefix_cuts_ttft_and_raises_throughput(kind: str) -> None:
    wl = poisson(300, 2048, 64, rate=40.0).with_shared_prefix(1536)
    on = serve(MODEL, GPU, wl, SchedulerConfig(kind=kind, max_seqs=64))
    off = serve(MODEL, GPU, wl, SchedulerConfig(kind=kind, max_seqs=64, prefix_cache=False))
    assert on.completed == off.completed == 300
    assert np.median(on.ttft()) < np.median(off.ttft())
    assert on.throughput_tokens_per_s > off.throughput_tokens_per_s
    rec = on.outcome.records
    assert on.preemptions == 0
    assert rec.prefilled_tokens == rec.prompt_tokens - rec.cached_tokens
    assert rec.prompt_tokens == 300 * 2048
    # 1,536 tokens = 96 full blocks; the first request writes them, the others read them
    assert rec.cached_tokens == 299 * 1536
    assert on.prefix_hit_rate == pytest.approx(299 * 1536 / (300 * 2048))
    assert off.prefix_hit_rate == 0.0 and off.outcome.records.cached_tokens == 0
    assert off.outcome.records.prefilled_tokens == 300 * 2048


def test_only_full_blocks_are_shared_and_a_token_is_always_prefilled() -> None:
    wl = poisson(20, 100, 8, rate=5.0).with_shared_prefix(100)  # the whole prompt is shared
    rec = serve(MODEL, GPU, wl, SchedulerConfig(block_tokens=16)).outcome.records
    # at most (100 - 1) // 16 = 6 blocks (96 tokens) are read; >= 4 tokens are prefilled each
    assert rec.cached_tokens == 19 * 96
    assert rec.prefilled_tokens == 20 * 100 - 19 * 96


def _tiny_pool(kind: str, blocks: int, wl: Workload) -> Simulation:
    cfg = load_model_config(MODEL)
    system = load_system(GPU)
    prec = resolve_precision(system, None)
    sched = SchedulerConfig(kind=kind, max_seqs=32, block_tokens=16)
    config = replica_config(cfg, system, wl, prec, sched, RunOptions(), default_params())
    oracle = Oracle(cfg, prec, system, config.parallelism, config.stages, default_params())
    return Simulation(oracle, system, Pools(1, 0, blocks, 131072.0, 1, 0.0), sched, wl)


@pytest.mark.parametrize("kind", ["continuous", "chunked"])
def test_kv_use_never_exceeds_capacity_and_idle_prefixes_are_evicted(kind: str) -> None:
    wl = poisson(60, 400, 200, rate=200.0).with_shared_prefix(320, prefixes=6)
    sim = _tiny_pool(kind, 160, wl)  # 2,560 tokens
    rep = sim.replicas[0]
    assert rep.cache is not None
    evicted: list[int] = []
    evict = rep.cache.evict

    def counting() -> int:
        freed = evict()
        evicted.append(freed)
        return freed

    rep.cache.evict = counting  # type: ignore[method-assign]
    original = sim.end_iteration

    def watch(i: int, t: float) -> None:
        assert 0 <= rep.free <= rep.kv_blocks
        private = sum(rep.blocks.values())
        cached = sum(e.blocks for e in rep.cache.entries.values()) if rep.cache else 0
        assert private + cached + rep.free == rep.kv_blocks  # every block counted once
        original(i, t)

    sim.end_iteration = watch  # type: ignore[method-assign]
    out = sim.run()
    assert not out.records.dropped and out.records.generated == [200] * 60
    assert rep.peak_blocks <= 160 and sum(evicted) > 0
    assert sum(out.records.preemptions) > 0  # the pool is tight: preemption and caching mix
    # at the end only idle cached prefixes hold blocks
    assert rep.free + rep.cache.idle_blocks == rep.kv_blocks and not rep.cache.held


@pytest.mark.parametrize("kind", ["static", "continuous", "chunked", "disaggregated"])
def test_without_a_shared_prefix_results_are_unchanged(kind: str) -> None:
    system = "dgx-h100" if kind == "disaggregated" else GPU
    wl = varied(200, 50.0)
    base = serve(MODEL, system, wl, SchedulerConfig(kind=kind, max_seqs=64)).to_dict()
    unshared = Workload(wl.arrival_s, wl.input_tokens, wl.output_tokens,
                        prefix_id=np.full(len(wl), -1), prefix_tokens=np.zeros(len(wl), np.int64))
    same = serve(MODEL, system, unshared, SchedulerConfig(kind=kind, max_seqs=64)).to_dict()
    off = serve(MODEL, system, wl, SchedulerConfig(kind=kind, max_seqs=64,
                                                    prefix_cache=False)).to_dict()
    assert base["prefix_cache"]["hit_rate"] == 0.0
    assert json.dumps(_without_prefix_key(base)) == json.dumps(_without_prefix_key(same))
    assert json.dumps(_without_prefix_key(base)) == json.dumps(_without_prefix_key(off))


def test_prefix_cache_off_matches_a_workload_without_prefixes() -> None:
    wl = poisson(150, 1024, 64, rate=30.0)
    plain = serve(MODEL, GPU, wl, SchedulerConfig(kind="chunked")).to_dict()
    off = serve(MODEL, GPU, wl.with_shared_prefix(512),
                SchedulerConfig(kind="chunked", prefix_cache=False)).to_dict()
    for key in ("ttft_s", "tpot_s", "e2e_s", "throughput_tokens_per_s", "iterations"):
        assert plain[key] == off[key]


def test_disaggregated_prefill_pool_reads_cached_prefixes() -> None:
    wl = poisson(200, 2048, 32, rate=40.0).with_shared_prefix(1024, prefixes=2)
    res = serve(MODEL, "dgx-h100", wl, SchedulerConfig(kind="disaggregated"))
    rec = res.outcome.records
    assert res.completed == 200 and rec.cached_tokens > 0
    assert rec.prefilled_tokens == rec.prompt_tokens - rec.cached_tokens


def test_bad_prefix_input_names_the_field() -> None:
    wl = poisson(4, 64, 8, rate=1.0)
    with pytest.raises(TegelError, match="shared_prefix_tokens"):
        wl.with_shared_prefix(0)
    with pytest.raises(TegelError, match="shared_prefixes"):
        wl.with_shared_prefix(16, prefixes=0)
    with pytest.raises(TegelError, match="prefix_tokens"):
        Workload(wl.arrival_s, wl.input_tokens, wl.output_tokens,
                 prefix_id=np.zeros(4, np.int64), prefix_tokens=np.full(4, 65))


def test_cli_reports_the_hit_rate(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    argv = ["serve", MODEL, "--on", GPU, "--rate", "20", "--requests", "100", "--input", "1024",
            "--output", "32", "--shared-prefix", "768", "--json"]
    assert main(argv) == 0
    on = json.loads(capsys.readouterr().out)
    assert main([*argv, "--no-prefix-cache"]) == 0
    off = json.loads(capsys.readouterr().out)
    assert on["prefix_cache"]["hit_rate"] == pytest.approx(99 * 768 / (100 * 1024))
    assert off["prefix_cache"]["hit_rate"] == 0.0 and not off["prefix_cache"]["enabled"]
    assert on["ttft_s"]["p50"] < off["ttft_s"]["p50"]
    assert main(argv[:-1]) == 0
    assert "prefix cache hit rate" in capsys.readouterr().out


def test_a_trace_states_shared_prefixes(tmp_path: Path) -> None:
    from tegel.serving.traces import read_trace

    csv = tmp_path / "t.csv"
    csv.write_text("arrival_s,input_tokens,output_tokens,prefix_id,prefix_tokens\n"
                   "0.5,1000,20,0,800\n0.0,1000,20,0,800\n0.1,500,20,,\n")
    wl = read_trace(csv)
    assert wl.prefix_id is not None and wl.prefix_tokens is not None
    assert wl.prefix_id.tolist() == [0, -1, 0] and wl.prefix_tokens.tolist() == [800, 0, 800]
    jsonl = tmp_path / "t.jsonl"
    jsonl.write_text('{"arrival_s": 0, "input_tokens": 900, "output_tokens": 5, '
                     '"prefix_id": 3, "prefix_tokens": 640}\n'
                     '{"arrival_s": 1, "input_tokens": 90, "output_tokens": 5}\n')
    wl = read_trace(jsonl)
    assert wl.prefix_id is not None and wl.prefix_id.tolist() == [3, -1]
    rec = serve(MODEL, GPU, read_trace(csv)).outcome.records
    assert rec.cached_tokens == 800 and rec.prefilled_tokens == 2500 - 800
    bad = tmp_path / "bad.csv"
    bad.write_text("arrival_s,input_tokens,output_tokens,prefix_id,prefix_tokens\n0,100,5,0,200\n")
    with pytest.raises(TegelError, match="line 2: prefix_tokens"):
        read_trace(bad)
    half = tmp_path / "half.csv"
    half.write_text("arrival_s,input_tokens,output_tokens,prefix_id\n0,100,5,0\n")
    with pytest.raises(TegelError, match="prefix_id without prefix_tokens"):
        read_trace(half)
