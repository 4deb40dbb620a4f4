"""Tiny random-weight `transformers` models of every supported family, for equivalence tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import transformers as T

from tegel.workload import Graph, ModelConfig, Phase, Precision, build_llm_graph, interpret
from tegel.workload.dtypes import DType
from tegel.workload.llm import carried_caches
from tegel.workload.model_config import parse_config
from tegel.workload.random_model import INIT_SCALE
from tegel.workload.weights import to_canonical

# Smaller than `tegel make-model --size tiny` (the bf16/fp8 tolerances in tests/functional are
# stated for these); these are transformers configs of every variant the equivalence tests cover

COMMON = dict(vocab_size=97, max_position_embeddings=64)
LLAMA = dict(hidden_size=48, intermediate_size=80, num_hidden_layers=2, num_attention_heads=6,
             num_key_value_heads=2, rms_norm_eps=1e-5, **COMMON)

DEEPSEEK = dict(hidden_size=48, intermediate_size=80, moe_intermediate_size=24, num_attention_heads=4,
                num_key_value_heads=4, n_routed_experts=8, kv_lora_rank=16, qk_rope_head_dim=8,
                qk_nope_head_dim=10, v_head_dim=12, rms_norm_eps=1e-5, **COMMON)

TINY: dict[str, T.PretrainedConfig] = {
    "llama": T.LlamaConfig(**LLAMA, rope_theta=500000.0, tie_word_embeddings=False,
                           rope_scaling={"rope_type": "llama3", "factor": 8.0,
                                         "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                         "original_max_position_embeddings": 16}),
    "llama-tied-bias": T.LlamaConfig(**LLAMA, attention_bias=True, mlp_bias=True,
                                     tie_word_embeddings=True),
    "mistral": T.MistralConfig(**LLAMA, sliding_window=5),
    "qwen2": T.Qwen2Config(**LLAMA, tie_word_embeddings=True, rope_theta=1e6),
    "mixtral": T.MixtralConfig(**LLAMA, num_local_experts=4, num_experts_per_tok=2,
                               sliding_window=None),
    "qwen3": T.Qwen3Config(**LLAMA, head_dim=16, tie_word_embeddings=False, rope_theta=1e6),
    "qwen3-moe": T.Qwen3MoeConfig(**LLAMA, head_dim=16, num_experts=8, num_experts_per_tok=3,
                                  moe_intermediate_size=24, norm_topk_prob=True),
    "qwen3-moe-unnormalized": T.Qwen3MoeConfig(**LLAMA, num_experts=6, num_experts_per_tok=2,
                                               moe_intermediate_size=24, norm_topk_prob=False),
    "phi3": T.Phi3Config(**LLAMA, pad_token_id=0, tie_word_embeddings=False, sliding_window=5,
                         rope_parameters={"rope_type": "default", "rope_theta": 1e4,
                                          "partial_rotary_factor": 0.75}),
    "phi3-full-rotary": T.Phi3Config(**LLAMA, pad_token_id=0, rope_theta=250000.0,
                                     sliding_window=None),
    "gemma2": T.Gemma2Config(**LLAMA, head_dim=16, pad_token_id=0, sliding_window=4,
                             query_pre_attn_scalar=12, attn_logit_softcapping=3.0,
                             final_logit_softcapping=2.5),
    "gemma3": T.Gemma3TextConfig(**LLAMA, head_dim=16, pad_token_id=0, sliding_window=4,
                                 query_pre_attn_scalar=12,
                                 layer_types=["sliding_attention", "full_attention"],
                                 rope_parameters={
                                     "sliding_attention": {"rope_type": "default",
                                                           "rope_theta": 100.0},
                                     "full_attention": {"rope_type": "default",
                                                        "rope_theta": 1e6}}),
    # 4 layers: (RoPE, dense), (NoPE, MoE), (NoPE, dense), (RoPE, MoE); chunks of 3 < the
    # prompt; a query temperature that rises from position 1 (floor_scale 2); qk norm on
    "llama4": T.Llama4TextConfig(**{**LLAMA, "num_hidden_layers": 4}, head_dim=8,
                                 intermediate_size_mlp=80, num_local_experts=4,
                                 num_experts_per_tok=1, interleave_moe_layer_step=2,
                                 no_rope_layers=[1, 0, 0, 1], attention_chunk_size=3,
                                 use_qk_norm=True, attn_temperature_tuning=True, floor_scale=2,
                                 attn_scale=0.5, rope_parameters={
                                     "rope_type": "llama3", "rope_theta": 500000.0,
                                     "factor": 8.0, "low_freq_factor": 1.0,
                                     "high_freq_factor": 4.0,
                                     "original_max_position_embeddings": 16}),
    # DeepSeek-V3: q through the low-rank bottleneck, one dense layer then MoE layers with
    # group-limited routing, YaRN with mscale != mscale_all_dim (rotary magnitude != 1)
    "deepseek-v3": T.DeepseekV3Config(**DEEPSEEK, num_hidden_layers=3, first_k_dense_replace=1,
                                      q_lora_rank=24, n_shared_experts=1, num_experts_per_tok=3,
                                      n_group=4, topk_group=2, routed_scaling_factor=2.5,
                                      rope_parameters={"rope_type": "yarn", "rope_theta": 1e4,
                                                       "factor": 4.0, "mscale": 1.0,
                                                       "mscale_all_dim": 0.7, "beta_fast": 32.0,
                                                       "beta_slow": 1.0,
                                                       "original_max_position_embeddings": 16}),
    # ... and with a plain q projection, every layer routed, one group, two shared experts,
    # unnormalised weights, NeoX-style rotary and no scaling
    "deepseek-v3-plain-q": T.DeepseekV3Config(**DEEPSEEK, num_hidden_layers=2,
                                              first_k_dense_replace=0, q_lora_rank=None,
                                              n_shared_experts=2, num_experts_per_tok=2,
                                              n_group=1, topk_group=1, norm_topk_prob=False,
                                              routed_scaling_factor=1.5, rope_interleave=False,
                                              rope_parameters={"rope_type": "default",
                                                               "rope_theta": 1e4}),
    # Gemma 3 4B-27B: the global layers' rotary frequencies scaled linearly, the local ones not
    "gemma3-linear": T.Gemma3TextConfig(**LLAMA, head_dim=16, pad_token_id=0, sliding_window=4,
                                        query_pre_attn_scalar=12,
                                        layer_types=["sliding_attention", "full_attention"],
                                        rope_parameters={
                                            "sliding_attention": {"rope_type": "default",
                                                                  "rope_theta": 100.0},
                                            "full_attention": {"rope_type": "linear",
                                                               "factor": 4.0,
                                                               "rope_theta": 1e3}}),
    "gpt2": T.GPT2Config(vocab_size=97, n_positions=64, n_embd=48, n_layer=2, n_head=4),
    "gptj": T.GPTJConfig(vocab_size=97, n_positions=64, n_embd=48, n_layer=2, n_head=4,
                         rotary_dim=8, tie_word_embeddings=False),
}


def tiny_model(family: str, seed: int = 0) -> tuple[torch.nn.Module, ModelConfig]:
    """A transformers model with O(1) random weights (so every path matters) and tegel's config."""
    hf_config = TINY[family]
    hf_config._attn_implementation = "eager"
    torch.manual_seed(seed)
    model = T.AutoModelForCausalLM.from_config(hf_config, attn_implementation="eager").eval()
    with torch.no_grad():
        # Gemma's norms scale by (1 + weight): centre them on 0 so every family's norms scale ~1
        norm_centre = 0.0 if hf_config.model_type.startswith("gemma") else 1.0
        for name, p in model.named_parameters():
            if "norm" in name or "ln_" in name:
                p.copy_(norm_centre + INIT_SCALE * torch.randn_like(p))
            else:
                p.copy_(INIT_SCALE * torch.randn_like(p))
        for name, b in model.named_buffers():  # DeepSeek's router bias is a buffer, not a parameter
            if name.endswith("e_score_correction_bias"):
                b.copy_(INIT_SCALE * torch.randn_like(b))
    cfg = parse_config(hf_config.to_dict(), f"tiny-{family}", f"tiny-{family} config")
    return model, cfg


def state_numpy(model: torch.nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


@dataclass
class Prefilled:
    """A tiny model's prefill run by transformers and by tegel's reference (logits checked)."""

    model: torch.nn.Module
    cfg: ModelConfig
    weights: dict[str, np.ndarray]
    rng: np.random.Generator
    hf: Any  # transformers' output, with its past_key_values
    graph: Graph  # tegel's prefill graph
    got: dict[str, np.ndarray]  # its outputs


FP32 = Precision.uniform(DType.FP32)


def prefill_matches(family: str, batch: int, prompt: int, tol: float) -> Prefilled:
    """Prefill `prompt` random tokens in transformers and in tegel (fp32, logits at every
    position); the logits agree within `tol` and are large enough for that to mean something."""
    model, cfg = tiny_model(family)
    weights = to_canonical(cfg, state_numpy(model))
    rng = np.random.default_rng(1)
    ids = rng.integers(0, cfg.vocab_size, size=(batch, prompt))
    positions = np.broadcast_to(np.arange(prompt), ids.shape)
    with torch.no_grad():
        hf = model(torch.tensor(ids), use_cache=True)
    graph = build_llm_graph(cfg, Phase.prefill(batch, prompt), FP32, logits="all")
    got = interpret(graph, {"input_ids": ids, "position_ids": positions, **weights})
    np.testing.assert_allclose(got["logits"], hf.logits.numpy(), atol=tol, rtol=0)
    assert np.abs(hf.logits.numpy()).max() > 0.5, "logits too small for the check to mean much"
    return Prefilled(model, cfg, weights, rng, hf, graph, got)


def decode_matches(p: Prefilled, tol: float) -> None:
    """One decode step on top of the prefill's caches (transformers' and tegel's own, fed back
    by structure: `carried_caches`) gives the same logits within `tol`."""
    batch, prompt = p.got["logits"].shape[:2]
    next_ids = p.rng.integers(0, p.cfg.vocab_size, size=(batch, 1))
    with torch.no_grad():
        hf_step = p.model(torch.tensor(next_ids), past_key_values=p.hf.past_key_values,
                          use_cache=True)
    decode = build_llm_graph(p.cfg, Phase.decode(batch, prompt), FP32)
    feeds = {"input_ids": next_ids, "position_ids": np.full((batch, 1), prompt), **p.weights}
    carried = carried_caches(decode)
    assert carried and all(present.name in p.got for _, present in carried)
    for past, present in carried:
        feeds[past.name] = p.got[present.name]
    step = interpret(decode, feeds)
    np.testing.assert_allclose(step["logits"], hf_step.logits.numpy(), atol=tol, rtol=0)
