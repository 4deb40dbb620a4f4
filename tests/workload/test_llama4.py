"""Llama 4 (Scout, Maverick): config readers, the ops it adds, and equivalence with
`transformers.Llama4ForCausalLM` in fp32 (random weights, eager attention).

The tiny model (`hf_models.TINY["llama4"]`) has a chunk of 3 positions under a 7-token prompt,
two NoPE layers with a query temperature that changes from position 1, qk norms, dense and MoE
layers (interleave step 2) and top-1 routing over 4 experts; each of these paths is shown to
change the logits, so the equivalence checks every one of them.
"""

from __future__ import annotations

import json
from dataclasses import replace
from importlib import resources
from typing import Any

import numpy as np
import pytest
import torch

from tegel.errors import TegelError
from tegel.workload import ModelConfig, Phase, Precision, build_llm_graph, interpret
from tegel.workload.dtypes import DType
from tegel.workload.ir import Attention, MoEExperts, Op, OpKind, QueryTemperature, RMSNorm, Tensor
from tegel.workload.model_config import load_model_config, parse_config
from tegel.workload.ops import attended_key_rows, attended_pairs, gemm_dims, work
from tegel.workload.reference import run_op, temperature_factor
from tegel.workload.summary import active_parameters
from tegel.workload.weights import to_canonical
from workload.hf_models import state_numpy, tiny_model

FP32 = Precision.uniform(DType.FP32)
BATCH, PROMPT, TOL = 2, 7, 1e-4
SCOUT, MAVERICK = "llama-4-scout-17b-16e", "llama-4-maverick-17b-128e"


def _hf_cache(cache: Any, layer: int) -> tuple[np.ndarray, np.ndarray]:
    entry = cache.layers[layer]
    b, h, k, d = entry.keys.shape
    return tuple(t.permute(0, 2, 1, 3).reshape(b, k, h * d).numpy()  # type: ignore[return-value]
                 for t in (entry.keys, entry.values))


@pytest.fixture(scope="module")
def tiny() -> dict[str, Any]:
    """The tiny model, tegel's config and weights, a prompt and transformers' outputs on it."""
    model, cfg = tiny_model("llama4")
    rng = np.random.default_rng(1)
    ids = rng.integers(0, cfg.vocab_size, size=(BATCH, PROMPT))
    next_ids = rng.integers(0, cfg.vocab_size, size=(BATCH, 1))
    with torch.no_grad():
        prefill = model(torch.tensor(ids), use_cache=True)
        caches = [_hf_cache(prefill.past_key_values, i) for i in range(cfg.num_layers)]
        step = model(torch.tensor(next_ids), past_key_values=prefill.past_key_values,
                     use_cache=True)
    return dict(model=model, cfg=cfg, weights=to_canonical(cfg, state_numpy(model)), ids=ids,
                next_ids=next_ids, logits=prefill.logits.numpy(), caches=caches,
                step_logits=step.logits.numpy())


def _prefill(cfg: ModelConfig, t: dict[str, Any]) -> dict[str, np.ndarray]:
    positions = np.broadcast_to(np.arange(PROMPT), t["ids"].shape)
    graph = build_llm_graph(cfg, Phase.prefill(BATCH, PROMPT), FP32, logits="all")
    return interpret(graph, {"input_ids": t["ids"], "position_ids": positions, **t["weights"]})


def test_tiny_config_has_every_llama4_path(tiny: dict[str, Any]) -> None:
    cfg = tiny["cfg"]
    assert cfg.attention_chunk is not None and cfg.attention_chunk < PROMPT
    assert cfg.nope_layers == {1, 2} and cfg.chunked_layers == {0, 3}
    assert cfg.dense_layers == {0, 2} and cfg.qk_l2_norm and cfg.moe_scale_input
    assert (cfg.num_experts, cfg.experts_per_token, cfg.router_scoring) == (4, 1, "sigmoid")
    assert not cfg.moe_normalize and cfg.rope_interleaved and cfg.rope_scaling is not None


def test_prefill_logits_caches_and_decode_match_transformers(tiny: dict[str, Any]) -> None:
    cfg = tiny["cfg"]
    got = _prefill(cfg, tiny)
    np.testing.assert_allclose(got["logits"], tiny["logits"], atol=TOL, rtol=0)
    assert np.abs(tiny["logits"]).max() > 0.5
    feeds = {"input_ids": tiny["next_ids"], "position_ids": np.full((BATCH, 1), PROMPT),
             **tiny["weights"]}
    for layer, (hf_k, hf_v) in enumerate(tiny["caches"]):
        # transformers keeps the newest chunk - 1 positions of a chunked layer, all of a full one
        kept = cfg.attention_chunk - 1 if layer in cfg.chunked_layers else PROMPT
        assert hf_k.shape[1] == kept
        np.testing.assert_allclose(got[f"present.{layer}.k"][:, -kept:], hf_k, atol=TOL, rtol=0)
        np.testing.assert_allclose(got[f"present.{layer}.v"][:, -kept:], hf_v, atol=TOL, rtol=0)
        feeds[f"past.{layer}.k"] = got[f"present.{layer}.k"]
        feeds[f"past.{layer}.v"] = got[f"present.{layer}.v"]
    step = interpret(build_llm_graph(cfg, Phase.decode(BATCH, PROMPT), FP32), feeds)
    np.testing.assert_allclose(step["logits"], tiny["step_logits"], atol=TOL, rtol=0)


@pytest.mark.parametrize("change", [
    dict(chunked_layers=frozenset()),  # full attention everywhere
    dict(nope_temperature=None),
    dict(qk_l2_norm=False),
    dict(moe_scale_input=False),  # the routing weight on the output instead
    dict(nope_layers=frozenset()),  # rotary on every layer
    dict(rope_interleaved=False),
])
def test_each_llama4_path_changes_the_logits(tiny: dict[str, Any], change: dict) -> None:
    """Without any one of the paths the tiny model no longer matches: each is exercised."""
    got = _prefill(replace(tiny["cfg"], **change), tiny)
    assert np.abs(got["logits"] - tiny["logits"]).max() > 100 * TOL


def test_multimodal_config_and_checkpoint_read_as_the_text_model(tiny: dict[str, Any]) -> None:
    """The published `llama4` layout: the language model under `text_config` and its tensors
    under `language_model.`, beside a vision tower that is skipped."""
    text = tiny["model"].config.to_dict()
    wrapped = {"model_type": "llama4", "text_config": text, "vision_config": {"hidden_size": 8}}
    cfg = parse_config(wrapped, "mm", "mm config")
    assert replace(cfg, model_type="llama4_text", name=tiny["cfg"].name) == tiny["cfg"]
    state = {f"language_model.{k}": v for k, v in state_numpy(tiny["model"]).items()}
    state["vision_model.patch_embedding.linear.weight"] = np.zeros((8, 588), np.float32)
    weights = to_canonical(cfg, state)
    assert weights.keys() == tiny["weights"].keys()
    for name, value in weights.items():
        np.testing.assert_array_equal(value, tiny["weights"][name], err_msg=name)


# ---- the ops -------------------------------------------------------------------------------


def _visible(lq: int, lk: int, window: int | None, chunk: int) -> np.ndarray:
    """[lq, lk]: which keys the reference lets each query see. Zero q and k make every
    score equal, and value j is the indicator of key j, so a query's output is positive
    exactly at the keys it sees."""
    attrs = Attention(1, 1, lk, 1.0, causal=True, window=window, chunk=chunk)
    q, k = Tensor("q", (1, lq, lk), DType.FP32), Tensor("k", (1, lk, lk), DType.FP32)
    op = Op("a", OpKind.ATTENTION, (q, k, replace(k, name="v")), (q,), attrs)
    zeros = [np.zeros(t.shape, np.float32) for t in (q, k)]
    (out,) = run_op(op, [*zeros, np.eye(lk, dtype=np.float32)[None]])
    return out[0] > 0


@pytest.mark.parametrize("lq, lk", [(1, 1), (1, 9), (5, 5), (9, 9), (3, 11), (1, 12), (4, 17)])
@pytest.mark.parametrize("window", [None, 2, 5])
@pytest.mark.parametrize("chunk", [1, 3, 4, 8])
def test_chunked_pairs_and_key_rows_count_what_the_reference_attends(
        lq: int, lk: int, window: int | None, chunk: int) -> None:
    seen = _visible(lq, lk, window, chunk)
    assert attended_pairs(lq, lk, True, window, chunk) == seen.sum()
    first_read = int(np.argmax(seen.any(axis=0)))
    assert attended_key_rows(lq, lk, window, chunk) == lk - first_read


def test_chunked_decode_reads_only_the_current_chunk() -> None:
    attrs = Attention(4, 2, 8, 0.1, chunk=8192)
    q, kv = Tensor("q", (1, 1, 32), DType.BF16), Tensor("k", (1, 20000, 16), DType.BF16)
    op = Op("a", OpKind.ATTENTION, (q, kv, replace(kv, name="v")),
            (Tensor("o", (1, 1, 32), DType.BF16),), attrs)
    w = work(op)
    visible = 20000 - 2 * 8192  # the query at position 19999 sees its chunk, from 16384
    assert w.read_bytes[1] == pytest.approx(kv.nbytes * visible / 20000)
    full = work(replace(op, attrs=replace(attrs, chunk=None)))
    assert w.flops == pytest.approx(full.flops * visible / 20000)
    # the GEMM view covers the same pairs: q k^T and p v over the chunk's keys
    gemms = gemm_dims(op)
    assert gemms[0].n == visible
    assert sum(g.flops for g in gemms) == pytest.approx(4 * 8 * 4 * visible)


def test_query_temperature_is_one_before_floor_scale_and_grows_in_log_steps() -> None:
    t = QueryTemperature(floor_scale=4.0, strength=0.5)
    f = temperature_factor(t, np.arange(13))
    np.testing.assert_array_equal(f[:3], 1.0)  # positions 0..2: floor((p + 1) / 4) = 0
    np.testing.assert_allclose(f[3:7], 1 + 0.5 * np.log(2), rtol=1e-6)
    np.testing.assert_allclose(f[11], 1 + 0.5 * np.log(4), rtol=1e-6)


def test_unweighted_rms_norm_normalises_each_group_and_costs_less() -> None:
    x = Tensor("x", (2, 3, 8), DType.FP32)
    w = Tensor("w", (4,), DType.FP32)
    plain = Op("n", OpKind.RMSNORM, (x,), (x,), RMSNorm(1e-6, 4, weighted=False))
    weighted = Op("n", OpKind.RMSNORM, (x, w), (x,), RMSNorm(1e-6, 4))
    values = np.random.default_rng(0).standard_normal(x.shape).astype(np.float32)
    (out,) = run_op(plain, [values])
    np.testing.assert_allclose(np.mean(out.reshape(2, 3, 2, 4) ** 2, axis=-1), 1.0, rtol=1e-4)
    scale = np.full(4, 3.0, np.float32)
    np.testing.assert_allclose(run_op(weighted, [values, scale])[0], 3 * out, rtol=1e-6)
    assert work(plain).flops < work(weighted).flops


def test_input_scaled_experts_weight_the_input_at_the_same_cost() -> None:
    rng = np.random.default_rng(0)
    e, f, h = 3, 4, 5
    x = rng.standard_normal((6, h)).astype(np.float32)
    weights = rng.uniform(0.2, 0.9, (6, 1)).astype(np.float32)
    idx = rng.integers(0, e, (6, 1)).astype(np.int32)
    wg, wu = rng.standard_normal((2, e, f, h)).astype(np.float32)
    wd = rng.standard_normal((e, h, f)).astype(np.float32)
    ins = tuple(Tensor(n, a.shape, DType.FP32) for n, a in
                zip("xwigud", (x, weights, idx, wg, wu, wd), strict=True))
    op = Op("m", OpKind.MOE_EXPERTS, ins, (ins[0],), MoEExperts(e, 1, scale_input=True))
    (got,) = run_op(op, [x, weights, idx, wg, wu, wd])
    silu = lambda v: v / (1 + np.exp(-v))  # noqa: E731
    for t in range(6):
        xe, k = x[t] * weights[t, 0], idx[t, 0]
        want = (silu(wg[k] @ xe) * (wu[k] @ xe)) @ wd[k].T
        np.testing.assert_allclose(got[t], want, rtol=1e-5, atol=1e-6)
    (output_scaled,) = run_op(replace(op, attrs=MoEExperts(e, 1)), [x, weights, idx, wg, wu, wd])
    assert np.abs(output_scaled - got).max() > 1e-3  # not the same thing: the expert is nonlinear
    assert work(op).flops == work(replace(op, attrs=MoEExperts(e, 1))).flops


# ---- shipped configs: the published values and parameter counts ---------------------------


def test_shipped_scout_and_maverick_layer_kinds() -> None:
    scout, maverick = load_model_config(SCOUT), load_model_config(MAVERICK)
    nope = frozenset(range(3, 48, 4))
    for cfg in (scout, maverick):
        assert (cfg.num_layers, cfg.hidden_size, cfg.num_heads, cfg.num_kv_heads) == (48, 5120, 40, 8)
        assert cfg.nope_layers == nope and cfg.chunked_layers == frozenset(range(48)) - nope
        assert cfg.attention_chunk == 8192 and cfg.nope_temperature == QueryTemperature(8192, 0.1)
        assert cfg.experts_per_token == 1 and cfg.shared_intermediate_size == 8192
    assert scout.num_experts == 16 and not scout.dense_layers and scout.qk_l2_norm
    assert scout.rope_scaling is not None and scout.rope_scaling.factor == 8.0
    assert maverick.num_experts == 128 and maverick.dense_layers == frozenset(range(0, 48, 2))
    assert not maverick.qk_l2_norm and maverick.rope_scaling is None
    assert maverick.dense_intermediate_size == 16384


def _vision_and_text_parameters(name: str) -> tuple[int, int]:
    """(vision tower + projector, language model) parameters of the published multimodal
    model, counted by transformers on the meta device (no memory) from the shipped config."""
    import transformers as T

    raw = json.loads((resources.files("tegel.workload") / "configs" / f"{name}.json").read_text())
    text = dict(raw["text_config"], attn_temperature_tuning=True)  # transformers 5 wants a bool
    config = T.Llama4Config(text_config=text, vision_config=raw["vision_config"])
    with torch.device("meta"):
        model = T.Llama4ForConditionalGeneration(config)

    def count(module: torch.nn.Module) -> int:
        return sum(p.numel() for p in module.parameters())

    return count(model.vision_model) + count(model.multi_modal_projector), count(model.language_model)


# Meta's model cards (huggingface.co/meta-llama/Llama-4-Scout-17B-16E, -Maverick-17B-128E):
# "17B activated / 109B total" and "17B activated / 400B total" parameters, in billions.
PUBLISHED_B = {SCOUT: (109.0, 17.0), MAVERICK: (400.0, 17.0)}


@pytest.mark.parametrize("name", [SCOUT, MAVERICK])
def test_parameter_counts_match_published(name: str) -> None:
    """The published totals count the whole multimodal checkpoint: Scout's 109 B is reached
    only with the vision tower (0.87 B; the text model alone, 107.8 B, rounds to 108 B). So
    tegel's graph, which is the language model, is compared with the published total less
    the vision tower and projector, counted by transformers from the shipped vision_config,
    to 0.5 %. The active count (17 B for both) is given to two figures, so it is checked to
    its rounding (±0.5 B): the language model's exact figure is 17.17 B (Scout), 17.18 B
    (Maverick), embedding table and LM head included."""
    cfg = load_model_config(name)
    graph = build_llm_graph(cfg, Phase.decode(1, 1))
    vision, text = _vision_and_text_parameters(name)
    assert graph.parameter_count == text  # tegel's graph is transformers' language model
    total_b, active_b = PUBLISHED_B[name]
    assert graph.parameter_count == pytest.approx(total_b * 1e9 - vision, rel=0.005)
    assert (graph.parameter_count + vision) / 1e9 == pytest.approx(total_b, rel=0.005)
    assert active_parameters(graph, cfg) / 1e9 == pytest.approx(active_b, abs=0.5)


# ---- errors name the file and the field ----------------------------------------------------


def _scout_text() -> dict[str, Any]:
    raw = json.loads((resources.files("tegel.workload") / "configs" / f"{SCOUT}.json").read_text())
    return dict(raw["text_config"])


@pytest.mark.parametrize("change, field", [
    (dict(no_rope_layers=[1, 0, 2]), "no_rope_layers"),
    (dict(no_rope_layers=[1, 0]), "no_rope_layers"),
    (dict(moe_layers=[0, 48]), "moe_layers"),
    (dict(layer_types=["sliding_attention"] * 48), "layer_types"),
    (dict(attention_chunk_size=0), "attention_chunk_size"),
    (dict(attn_temperature_tuning="yes"), "attn_temperature_tuning"),
    (dict(floor_scale=-1), "floor_scale"),
    (dict(num_experts_per_tok=17), "num_experts_per_tok"),
    (dict(use_qk_norm=1), "use_qk_norm"),
])
def test_bad_llama4_fields_name_the_file_and_field(change: dict, field: str) -> None:
    raw = {"model_type": "llama4", "text_config": {**_scout_text(), **change}}
    with pytest.raises(TegelError, match=rf"scout\.json: text_config: field '{field}'"):
        parse_config(raw, "scout", "scout.json")


def test_transformers_5_rope_parameters_read_as_the_older_fields() -> None:
    text = _scout_text()
    older = parse_config({"model_type": "llama4", "text_config": text}, "s", "s.json")
    scaling = text.pop("rope_scaling")
    text["rope_parameters"] = {**scaling, "rope_theta": text.pop("rope_theta")}
    newer = parse_config({"model_type": "llama4", "text_config": text}, "s", "s.json")
    assert newer == older and older.rope_scaling is not None and older.rope_theta == 500000.0


def test_a_multimodal_config_without_a_text_model_is_refused() -> None:
    with pytest.raises(TegelError, match=r"m\.json: field 'text_config'"):
        parse_config({"model_type": "llama4", "text_config": None}, "m", "m.json")


# ---- planning: the engine's layer folding prices Llama 4's kinds as the whole graph -------


def _small_maverick() -> ModelConfig:
    """Maverick's layout shrunk: 8 layers of 3 kinds (RoPE dense, RoPE MoE, NoPE MoE), chunks
    of 256 positions (shorter than the phases below)."""
    cfg = load_model_config(MAVERICK)
    nope = frozenset({3, 7})
    return replace(cfg, name="small-maverick", hidden_size=128, intermediate_size=64,
                   dense_intermediate_size=256, shared_intermediate_size=64, num_heads=4,
                   num_kv_heads=2, head_dim=32, rotary_dim=32, vocab_size=256, num_layers=8,
                   num_experts=8, attention_chunk=256, nope_layers=nope,
                   chunked_layers=frozenset(range(8)) - nope, dense_layers=frozenset({0, 2, 4, 6}))


@pytest.mark.parametrize("phase", [Phase.decode(4, 700), Phase.prefill(2, 300)])
def test_gpu_plan_of_the_folded_llama4_prices_the_unfolded_graph(phase: Phase) -> None:
    from tegel.evaluate import evaluate
    from tegel.hardware import load_system
    from tegel.mapping.params import default_params
    from tegel.mapping.plan import Parallelism, PlanRequest, llm_request
    from tegel.mapping.registry import policy_for
    from tegel.workload.folding import folded_graph, layer_fold

    cfg = _small_maverick()
    assert layer_fold(cfg).representatives == (0, 1, 3)
    system = load_system("h100-sxm")
    policy, params = policy_for(system.chip), default_params()
    req = llm_request(cfg, system, phase, Parallelism(), 1)
    folded = policy.plan(folded_graph(cfg, phase, Precision()), system, req, params).plan
    whole = policy.plan(build_llm_graph(cfg, phase, Precision()), system,
                        PlanRequest(phase, Parallelism(), 1, 1), params).plan
    a, b = evaluate(folded, system), evaluate(whole, system)
    assert a.time_s == pytest.approx(b.time_s, rel=1e-9)
    assert a.cost.energy_j == pytest.approx(b.cost.energy_j, rel=1e-9)
