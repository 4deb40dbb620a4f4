"""DeepSeek-V3 / R1: the config reader, multi-head latent attention (semantics, work in its two
forms, roles, sharding, GPU steps), the group-limited router, and equivalence with
`transformers`' DeepseekV3ForCausalLM in fp32 (prefill logits, the latent cache, a decode step).
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from tegel.cli import main
from tegel.errors import TegelError
from tegel.mapping.sharding import shard_graph
from tegel.workload import Phase, Precision, build_llm_graph, gemm_dims, work
from tegel.workload.dtypes import DType
from tegel.workload.folding import kv_layout
from tegel.workload.ir import LatentAttention, MoERouter, OpKind, OpRole, Role
from tegel.workload.mla import MlaForm, latent_attention_form
from tegel.workload.model_config import load_model_config, parse_config
from tegel.workload.ops import attended_pairs
from tegel.workload.reference import run_op
from workload.hf_models import TINY, decode_matches, prefill_matches, tiny_model
from workload.test_ops_work import make_op
from workload.test_roles import scrambled

FP32 = Precision.uniform(DType.FP32)
BF16 = DType.BF16
BATCH, PROMPT = 2, 7
TOL = 1e-4
DEEPSEEK = sorted(f for f in TINY if TINY[f].model_type == "deepseek_v3")


# ---- equivalence with transformers -----------------------------------------------------------


@pytest.mark.parametrize("family", DEEPSEEK)
def test_prefill_latent_cache_and_decode_match_transformers(family: str) -> None:
    p = prefill_matches(family, BATCH, PROMPT, TOL)
    cfg, got = p.cfg, p.got
    caches = [t for t in p.graph.outputs if t.role is Role.KV_CACHE]
    assert len(caches) == cfg.num_layers  # one latent cache per layer, not a k and a v
    dc, dr = cfg.kv_lora_rank, cfg.rotary_dim
    for layer, cache in enumerate(caches):
        # transformers caches the normed latent as "keys" and the rotated rope key as "values",
        # [B, 1, T, C]; its interleaved rotary returns the even channels, then the odd ones
        entry = p.hf.past_key_values.layers[layer]
        latent, k_pe = got[cache.name][..., :dc], got[cache.name][..., dc:]
        assert got[cache.name].shape == (BATCH, PROMPT, dc + dr)
        if cfg.rope_interleaved:
            k_pe = np.concatenate([k_pe[..., 0::2], k_pe[..., 1::2]], axis=-1)
        np.testing.assert_allclose(latent, entry.keys[:, 0].numpy(), atol=TOL, rtol=0)
        np.testing.assert_allclose(k_pe, entry.values[:, 0].numpy(), atol=TOL, rtol=0)
    decode_matches(p, TOL)


def test_the_tiny_configs_cover_the_variants() -> None:
    cfgs = [tiny_model(f)[1] for f in DEEPSEEK]
    assert {bool(c.q_lora_rank) for c in cfgs} == {True, False}
    assert any(c.router_groups > 1 and c.router_topk_groups < c.router_groups for c in cfgs)
    assert any(c.dense_layers and any(c.routed(i) for i in range(c.num_layers)) for c in cfgs)


@pytest.mark.parametrize("groups", [(8, 4), (4, 1), (1, 1)])
def test_router_matches_transformers_topk_router(groups: tuple[int, int]) -> None:
    import transformers as T
    from transformers.models.deepseek_v3.modeling_deepseek_v3 import DeepseekV3TopkRouter

    n_group, topk_group = groups
    hf_cfg = T.DeepseekV3Config(hidden_size=16, n_routed_experts=32, num_experts_per_tok=6,
                                n_group=n_group, topk_group=topk_group, norm_topk_prob=True,
                                routed_scaling_factor=2.5)
    router = DeepseekV3TopkRouter(hf_cfg)
    torch.manual_seed(0)
    with torch.no_grad():
        router.weight.copy_(torch.randn_like(router.weight))
        router.e_score_correction_bias.copy_(0.3 * torch.randn(32))
    x = torch.randn(40, 16)
    with torch.no_grad():
        logits, hf_weights, hf_idx = router(x)
    attrs = MoERouter(32, 6, True, "sigmoid", n_group, topk_group, 2.5, True)
    op = make_op(OpKind.MOE_ROUTER, attrs, ((40, 32), DType.FP32), ((32,), DType.FP32))
    weights, idx = run_op(op, [logits.numpy(), router.e_score_correction_bias.numpy()])
    order = np.argsort(idx, axis=-1)
    hf_order = np.argsort(hf_idx.numpy(), axis=-1)
    np.testing.assert_array_equal(np.take_along_axis(idx, order, -1),
                                  np.take_along_axis(hf_idx.numpy(), hf_order, -1))
    np.testing.assert_allclose(np.take_along_axis(weights, order, -1),
                               np.take_along_axis(hf_weights.numpy(), hf_order, -1), atol=1e-6)


def test_the_bias_chooses_but_does_not_weigh() -> None:
    """A large bias on expert 0 makes it chosen; its weight is still its own score."""
    attrs = MoERouter(4, 1, False, "sigmoid", correction_bias=True)
    op = make_op(OpKind.MOE_ROUTER, attrs, ((1, 4), DType.FP32), ((4,), DType.FP32))
    logits = np.array([[-2.0, 1.0, 0.0, 0.5]], dtype=np.float32)
    weights, idx = run_op(op, [logits, np.array([10.0, 0, 0, 0], dtype=np.float32)])
    assert idx[0, 0] == 0
    assert weights[0, 0] == pytest.approx(1 / (1 + math.exp(2.0)))


# ---- config ----------------------------------------------------------------------------------


def test_shipped_config_fields() -> None:
    cfg = load_model_config("deepseek-v3")
    assert (cfg.num_layers, cfg.hidden_size, cfg.num_heads) == (61, 7168, 128)
    assert (cfg.q_lora_rank, cfg.kv_lora_rank, cfg.head_dim, cfg.rotary_dim, cfg.v_head_dim) == (
        1536, 512, 192, 64, 128)
    assert cfg.dense_layers == frozenset({0, 1, 2}) and cfg.dense_intermediate_size == 18432
    assert (cfg.num_experts, cfg.experts_per_token, cfg.intermediate_size) == (256, 8, 2048)
    assert cfg.shared_intermediate_size == 2048
    assert (cfg.router_groups, cfg.router_topk_groups, cfg.routed_scaling_factor) == (8, 4, 2.5)
    assert cfg.router_scoring == "sigmoid" and cfg.router_bias and cfg.rope_interleaved
    # DeepSeek's softmax scale: 1/sqrt(192) times mscale(40, mscale_all_dim 1.0) squared
    assert cfg.attn_scale == pytest.approx(192**-0.5 * (0.1 * math.log(40) + 1) ** 2)
    assert kv_layout(cfg).elements_per_token == 61 * (512 + 64)
    r1 = load_model_config("deepseek-r1")
    assert replace(r1, name=cfg.name) == cfg


def test_yarn_frequencies_match_transformers_at_the_published_size() -> None:
    """The shipped config's YaRN (64 rotary channels, factor 40 from 4096 positions): inverse
    frequencies and the rotary magnitude as transformers computes them."""
    import transformers as T
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    from tegel.workload.ir import Rope
    from tegel.workload.reference import rope_inv_freq

    cfg = load_model_config("deepseek-v3")
    hf_cfg = T.DeepseekV3Config(rope_parameters={
        "rope_type": "yarn", "rope_theta": 10000.0, "factor": 40.0, "beta_fast": 32.0,
        "beta_slow": 1.0, "mscale": 1.0, "mscale_all_dim": 1.0,
        "original_max_position_embeddings": 4096}, max_position_embeddings=163840)
    inv_freq, attention_factor = ROPE_INIT_FUNCTIONS["yarn"](hf_cfg)
    rope = Rope(1, 64, 64, cfg.rope_theta, True, cfg.rope_scaling)
    np.testing.assert_allclose(rope_inv_freq(rope), inv_freq.numpy(), rtol=1e-6)
    assert cfg.rope_scaling is not None
    assert cfg.rope_scaling.attention_factor == pytest.approx(attention_factor)  # type: ignore[union-attr]
    assert len(set(np.round(rope_inv_freq(rope) / (1.0 / 10000 ** (np.arange(0, 64, 2) / 64)),
                            6))) > 2  # a real ramp: some channels kept, some divided, some blended


def _raw() -> dict:
    path = Path(load_model_config.__code__.co_filename).parent / "configs" / "deepseek-v3.json"
    return json.loads(path.read_text())


def test_a_null_q_lora_rank_is_a_plain_q_projection() -> None:
    raw = {**_raw(), "q_lora_rank": None, "num_hidden_layers": 4}
    cfg = parse_config(raw, "v2-lite-like", "x.json")
    assert cfg.q_lora_rank == 0
    names = {w.name for w in build_llm_graph(cfg, Phase.prefill(1, 1)).weights}
    assert "layers.0.attn.q.weight" in names and "layers.0.attn.q_a.weight" not in names


@pytest.mark.parametrize(("field", "value"), [
    ("n_group", 7), ("topk_group", 9), ("scoring_func", "softmax"),
    ("first_k_dense_replace", 62), ("qk_rope_head_dim", 63), ("kv_lora_rank", None),
    ("num_experts_per_tok", 129)])
def test_bad_fields_name_file_and_field(field: str, value: object) -> None:
    with pytest.raises(TegelError, match=rf"x\.json: field '{field}'"):
        parse_config({**_raw(), field: value}, "bad", "x.json")


def test_parameters_are_671b_and_37b_active(capsys: pytest.CaptureFixture[str]) -> None:
    """DeepSeek-V3 technical report (arXiv 2412.19437): 671 B total (the multi-token-prediction
    module is not in the graph), 37 B activated per token."""
    assert main(["inspect", "deepseek-v3", "--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["parameters"] == pytest.approx(671e9, rel=0.005)
    assert card["active_parameters"] == pytest.approx(37e9, rel=0.02)


# ---- latent attention: semantics and work ----------------------------------------------------

H, DN, DR, DV, DC = 4, 6, 4, 5, 8


def _mla(b: int, lq: int, lk: int, heads: int = H, causal: bool = True):
    attrs = LatentAttention(heads, DN, DR, DV, DC, 0.3, causal)
    return make_op(OpKind.LATENT_ATTENTION, attrs, ((b, lq, heads * (DN + DR)), BF16),
                   ((b, lk, DC + DR), BF16), ((heads * (DN + DV), DC), BF16))


def test_reference_equals_absorbed_computation() -> None:
    """The reference (expanded) and the weight-absorbed form engines run agree."""
    rng = np.random.default_rng(0)
    b, lq, lk = 2, 3, 9
    op = _mla(b, lq, lk)
    q, cache, kv_b = (rng.standard_normal(t.shape).astype(np.float32) for t in op.inputs)
    (out,) = run_op(op, [q, cache, kv_b])
    w = kv_b.reshape(H, DN + DV, DC)
    qh = q.reshape(b, lq, H, DN + DR)
    q_latent = np.einsum("bqhn,hnc->bqhc", qh[..., :DN], w[:, :DN])  # q_nope W_UK
    scores = (np.einsum("bqhc,bkc->bhqk", q_latent, cache[..., :DC])
              + np.einsum("bqhr,bkr->bhqk", qh[..., DN:], cache[..., DC:])) * 0.3
    visible = np.arange(lk)[None, :] <= np.arange(lk - lq, lk)[:, None]
    scores = np.where(visible, scores, -np.inf)
    p = np.exp(scores - scores.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    latent_out = np.einsum("bhqk,bkc->bqhc", p, cache[..., :DC])
    want = np.einsum("bqhc,hvc->bqhv", latent_out, w[:, DN:]).reshape(b, lq, H * DV)
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-5)


def test_decode_is_priced_absorbed_with_latent_bytes() -> None:
    b, lk = 3, 1000
    op = _mla(b, 1, lk)
    assert latent_attention_form(op) is MlaForm.ABSORBED
    pairs = b * H * lk
    want = 2 * b * H * DC * (DN + DV) + pairs * (2 * (DC + DR) + 2 * DC + 5)
    w = work(op)
    assert w.flops == want
    # the latent cache is read once: dc + dr per token, not 2 * H * head_dim
    assert w.read_bytes[1] == 2 * b * lk * (DC + DR)
    assert sum(g.flops for g in gemm_dims(op)) == want - 5 * pairs
    # all heads' queries are the rows of one GEMM per batch row over the shared latent
    assert gemm_dims(op)[1].m == H and gemm_dims(op)[1].count == b


def test_beams_read_their_shared_prompt_once() -> None:
    attrs = LatentAttention(H, DN, DR, DV, DC, 0.3, kv_group=4, kv_shared=75)
    op = make_op(OpKind.LATENT_ATTENTION, attrs, ((8, 1, H * (DN + DR)), BF16),
                 ((8, 100, DC + DR), BF16), ((H * (DN + DV), DC), BF16))
    per_row = 2 * (DC + DR)
    # two requests of four beams: 75 shared positions once per request, 25 own per beam
    assert work(op).read_bytes[1] == pytest.approx(per_row * (2 * 75 + 8 * 25))


def test_prefill_is_priced_expanded() -> None:
    b, length = 2, 64
    op = _mla(b, length, length)
    assert latent_attention_form(op) is MlaForm.EXPANDED
    pairs = b * H * attended_pairs(length, length, True, None)
    want = 2 * b * length * H * (DN + DV) * DC + pairs * (2 * (DN + DR) + 2 * DV + 5)
    assert work(op).flops == want
    assert sum(g.flops for g in gemm_dims(op)) == want - 5 * pairs


def test_the_form_switches_where_the_flops_cross() -> None:
    """A chunk of new tokens on a long cache: absorbed while few, expanded once many."""
    forms = [latent_attention_form(_mla(1, lq, 4096)) for lq in (1, 8, 512, 4096)]
    assert forms[0] is MlaForm.ABSORBED and forms[-1] is MlaForm.EXPANDED
    assert forms == sorted(forms, key=lambda f: f is MlaForm.EXPANDED)


# ---- graph, roles, sharding, plans -----------------------------------------------------------


def _tiny(first_dense: int = 1):
    raw = {**TINY["deepseek-v3"].to_dict(), "first_k_dense_replace": first_dense}
    return parse_config(raw, "tiny-ds", "tiny-ds")


def test_roles_come_from_structure() -> None:
    graph = build_llm_graph(_tiny(), Phase.decode(1, 5))
    by_name = {op.name: op.role for op in graph.ops}
    assert by_name["layers.1.attn.q_a"] is OpRole.LATENT_PROJ
    assert by_name["layers.1.attn.kv_a"] is OpRole.LATENT_PROJ
    assert by_name["layers.1.attn.q_b"] is OpRole.Q_PROJ
    assert by_name["layers.1.attn.o"] is OpRole.O_PROJ
    assert by_name["layers.1.attn.mla"] is OpRole.ATTENTION
    from tegel.workload import assign_roles

    again = assign_roles(scrambled(graph))
    assert [op.role for op in again.ops] == [op.role for op in graph.ops]


def test_tensor_parallel_splits_heads_and_keeps_the_latent_whole() -> None:
    graph = build_llm_graph(_tiny(), Phase.decode(1, 5))
    tp = 4
    shards = shard_graph(graph, tp)
    assert shards["layers.1.attn.q_a"].flops_div == shards["layers.1.attn.kv_a"].flops_div == 1
    assert shards["layers.1.attn.q_b"].write_div == (tp,)
    assert shards["present.1.kv"].flops_div == 1 and shards["present.1.kv"].write_div == (1,)
    assert shards["layers.1.attn.mla"].read_div == (tp, 1, tp)
    o = shards["layers.1.attn.o"]
    assert o.flops_div == tp and o.collective == "all_reduce"


def test_a_single_kind_deepseek_runs_on_a_gpu_and_a_dataflow_chip() -> None:
    from tegel.serving.run import run

    cfg = _tiny(first_dense=0)
    decode_phase = Phase.decode(2, 31)
    mla = next(op for op in build_llm_graph(cfg, decode_phase).ops
               if op.kind is OpKind.LATENT_ATTENTION)
    latent_bytes = mla.inputs[1].nbytes
    for system in ("h100-sxm", "ref-dataflow"):
        result = run(cfg, system, 2, 24, 8, "bf16")
        assert result.tpot_s > 0 and result.ttft_s > 0
        if system != "h100-sxm":
            continue
        plan = result.chosen.decode.plan
        step = next(s for s in plan.steps if any(o.endswith("attn.mla") for o in s.ops))
        assert step.kind.value == "attention"
        hbm = plan.levels.index(next(n for n in plan.levels if "hbm" in n.lower()))
        # FlashMLA-style: the latent cache read once for all heads, no per-head re-reads
        assert latent_bytes * 0.5 < step.reads[hbm] <= sum(t.nbytes for t in mla.inputs)
