"""Layer folding of models that mix kinds of layer (Gemma's sliding and global attention, dense
layers among MoE layers): the fold is read from the graph's structure, and a plan of the folded
graph prices exactly what a plan of the whole, unfolded graph prices."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tegel.evaluate import evaluate
from tegel.hardware import load_system
from tegel.mapping.compiler import compile_llm
from tegel.mapping.params import default_params
from tegel.mapping.plan import Parallelism, PlanRequest, llm_request, stage_layers
from tegel.mapping.registry import policy_for
from tegel.serving.llm import kv_cache_bytes_per_chip
from tegel.workload import Phase, Precision, build_llm_graph, load_model_config
from tegel.workload.folding import folded_graph, kv_layout, layer_fold, model_weight_bytes
from tegel.workload.ir import Attention, OpKind, Role
from tegel.workload.roles import fold_keys


def _mixed_moe(layers: int = 6, dense: frozenset[int] = frozenset({0, 1}), shared: int = 96):
    """Mixtral shrunk, with dense layers first and a shared expert (DeepSeek-V3's layout)."""
    cfg = load_model_config("mixtral-8x7b")
    return replace(cfg, name="mixed-moe", hidden_size=128, intermediate_size=64, num_heads=4,
                   num_kv_heads=2, head_dim=32, rotary_dim=32, vocab_size=256, num_layers=layers,
                   dense_layers=dense, dense_intermediate_size=256, shared_intermediate_size=shared)


def test_gemma_folds_on_its_attention_kinds() -> None:
    cfg = load_model_config("gemma-3-1b-it")
    fold = layer_fold(cfg)
    full = set(cfg.full_attention_layers)
    assert len(fold.representatives) == 2
    # every layer repeats the first layer of its own attention kind
    for layer, rep in enumerate(fold.pattern):
        assert (layer in full) == (rep in full)
        assert rep == min(i for i in range(cfg.num_layers) if (i in full) == (layer in full))
    assert sum(fold.count(r) for r in fold.representatives) == cfg.num_layers


def test_single_kind_models_fold_on_one_layer() -> None:
    for name in ("llama-3.1-8b", "mixtral-8x7b", "qwen3-30b-a3b", "gpt2"):
        assert layer_fold(load_model_config(name)).representatives == (0,)


def test_dense_and_moe_layers_fold_apart() -> None:
    cfg = _mixed_moe(layers=7, dense=frozenset({0, 1, 2}))
    fold = layer_fold(cfg)
    assert fold.pattern == (0, 0, 0, 3, 3, 3, 3)
    assert fold.runs(2, 6) == ((0, 2, 1), (3, 3, 3))


@pytest.mark.parametrize("name", ["gemma-2-2b-it", "gemma-3-1b-it", "mixed"])
def test_weights_and_kv_cache_of_the_fold_are_the_whole_models(name: str) -> None:
    cfg = _mixed_moe() if name == "mixed" else load_model_config(name)
    whole = build_llm_graph(cfg, Phase(1, 1, 1))
    assert model_weight_bytes(cfg, Precision()) == pytest.approx(
        sum(w.nbytes for w in whole.weights), rel=1e-12)
    caches = [t for op in whole.ops if op.kind is OpKind.KV_CACHE_WRITE for t in op.outputs
              if t.role is Role.KV_CACHE]
    assert kv_layout(cfg).elements_per_token == sum(t.shape[-1] for t in caches)
    # a sliding layer holds its window, a global one every position
    windows = {op.layer: op.attrs.window for op in whole.ops if isinstance(op.attrs, Attention)}
    tokens = 50_000
    expected = sum(t.shape[-1] * min(tokens, windows[op.layer] or tokens)
                   for op in whole.ops if op.kind is OpKind.KV_CACHE_WRITE for t in op.outputs)
    assert kv_layout(cfg).elements(tokens) == pytest.approx(expected)


def test_gemma_long_context_holds_less_kv_than_its_full_cache() -> None:
    cfg = load_model_config("gemma-3-1b-it")
    p = Precision()
    full = p.kv_cache.nbytes(kv_layout(cfg).elements_per_token) * 32_768
    held = kv_cache_bytes_per_chip(cfg, p, 32_768, 1)
    assert held < 0.3 * full  # 22 of 26 layers keep 512 of 32,768 positions


@pytest.mark.parametrize("name", ["gemma-3-1b-it", "mixed"])
@pytest.mark.parametrize("phase", [Phase.decode(4, 700), Phase.prefill(2, 300)])
def test_gpu_plan_of_the_fold_prices_the_unfolded_graph(name: str, phase: Phase) -> None:
    """The folded plan (one block per kind, repeated) and the plan of every layer built out
    agree on time and energy: the fold loses nothing."""
    cfg = _mixed_moe() if name == "mixed" else load_model_config(name)
    system = load_system("h100-sxm")
    policy, params = policy_for(system.chip), default_params()
    req = llm_request(cfg, system, phase, Parallelism(), 1)
    folded = policy.plan(folded_graph(cfg, phase, Precision()), system, req, params).plan
    whole_graph = build_llm_graph(cfg, phase, Precision())
    whole = policy.plan(whole_graph, system, PlanRequest(phase, Parallelism(), 1, 1),
                        params).plan
    a, b = evaluate(folded, system), evaluate(whole, system)
    assert a.time_s == pytest.approx(b.time_s, rel=1e-9)
    assert a.cost.energy_j == pytest.approx(b.cost.energy_j, rel=1e-9)


def test_gpu_pipeline_stages_run_their_own_layers_of_each_kind() -> None:
    cfg = load_model_config("gemma-3-1b-it")
    system = load_system("dgx-h100")
    phase = Phase.decode(8, 1000)
    req = llm_request(cfg, system, phase, Parallelism(tp=2, pp=4), 4)
    plan = policy_for(system.chip).plan(folded_graph(cfg, phase, Precision()), system, req,
                                        default_params()).plan
    fold = layer_fold(cfg)
    graph = folded_graph(cfg, phase, Precision())
    layer_of = {op.name: op.layer for op in graph.ops}
    ranges = stage_layers(cfg.num_layers, 4)
    for rep in fold.representatives:
        kernels = [s for s in plan.steps if s.kind.value != "collective"
                   and s.ops and layer_of[s.ops[0]] == rep]
        first = kernels[0].ops
        copies = [s for s in kernels if s.ops == first]
        assert sum(s.repeat for s in copies) == fold.count(rep)
        for s in copies:
            a, b = ranges[s.stage]
            assert s.repeat == fold.pattern[a:b].count(rep)


@pytest.mark.parametrize("stages", [1, 3, 5])
def test_dataflow_stages_hold_runs_of_each_kind_in_model_order(stages: int) -> None:
    cfg = load_model_config("gemma-2-2b-it")
    plan = compile_llm(cfg, load_system("ref-dataflow"), Phase.decode(1, 300), Precision(),
                       Parallelism(), stages)
    fold = layer_fold(cfg)
    layers = [(seg.first_layer, seg.repeat, seg.ops) for st in plan.stages
              for seg in st.segments if seg.first_layer >= 0]
    assert [first for first, _, _ in layers] == sorted(first for first, _, _ in layers)
    covered = [i for first, repeat, _ in layers for i in range(first, first + repeat)]
    assert covered == list(range(cfg.num_layers))
    keys = fold_keys(plan.graph)
    for first, repeat, ops in layers:
        # a segment runs the block of its layers' kind
        rep = {plan.graph.ops[[o.name for o in plan.graph.ops].index(ops[0])].layer}
        assert rep == set(fold.pattern[first:first + repeat])
        assert keys[ops[0]][1] is not None
