"""Config files as transformers 4 and 5 write them read the same; Qwen3 MoE layouts tegel cannot
price are refused by field."""

from __future__ import annotations

import copy
import json
from importlib import resources

import pytest

from tegel.errors import TegelError
from tegel.workload.ir import LinearScaling, RopeScaling
from tegel.workload.model_config import parse_config


def shipped(name: str) -> dict:
    return json.loads((resources.files("tegel.workload") / "configs" / f"{name}.json").read_text())


def as_transformers_5(raw: dict) -> dict:
    """`rope_theta` and `rope_scaling` folded into `rope_parameters`, as transformers 5 saves."""
    new = {k: v for k, v in raw.items() if k not in ("rope_theta", "rope_scaling")}
    params = dict(raw.get("rope_scaling") or {"rope_type": "default"})
    params["rope_theta"] = raw["rope_theta"]
    new["rope_parameters"] = params
    return new


@pytest.mark.parametrize("name", ["llama-3.1-8b", "qwen3-8b", "mistral-7b", "qwen3-30b-a3b"])
def test_transformers_5_rope_parameters_read_like_rope_theta(name: str) -> None:
    old = shipped(name)
    new = as_transformers_5(old)
    assert "rope_theta" not in new and "rope_parameters" in new
    assert parse_config(new, name, "new") == parse_config(old, name, "old")


def test_rope_parameters_carry_theta_and_llama3_scaling() -> None:
    cfg = parse_config(as_transformers_5(shipped("llama-3.1-8b")), "x", "x")
    assert cfg.rope_theta == 500000.0
    assert cfg.rope_scaling == RopeScaling(8.0, 1.0, 4.0, 8192)
    plain = parse_config(as_transformers_5(shipped("qwen3-8b")), "x", "x")
    assert (plain.rope_theta, plain.rope_scaling) == (1e6, None)


def test_transformers_5_expert_count_key_is_read() -> None:
    raw = shipped("qwen3-30b-a3b")
    renamed = {("num_local_experts" if k == "num_experts" else k): v for k, v in raw.items()}
    assert parse_config(renamed, "x", "x").num_experts == 128


def test_qwen3_moe_reads_experts_routing_and_head_norms() -> None:
    cfg = parse_config(shipped("qwen3-30b-a3b"), "q", "q")
    assert (cfg.num_experts, cfg.experts_per_token, cfg.intermediate_size) == (128, 8, 768)
    assert cfg.moe_normalize and cfg.qk_norm and not cfg.qkv_bias
    raw = shipped("qwen3-30b-a3b") | {"norm_topk_prob": False}
    assert not parse_config(raw, "q", "q").moe_normalize


@pytest.mark.parametrize(("field", "value"), [("mlp_only_layers", [0, 3]),
                                              ("decoder_sparse_step", 2)])
def test_qwen3_moe_with_dense_layers_is_refused_by_field(field: str, value: object) -> None:
    raw = copy.deepcopy(shipped("qwen3-30b-a3b"))
    raw[field] = value
    with pytest.raises(TegelError, match=f"src.json: field '{field}'"):
        parse_config(raw, "q", "src.json")


def test_phi3_partial_rotary_from_either_place() -> None:
    """Published Phi configs put `partial_rotary_factor` at the top; transformers 5 inside
    `rope_parameters`."""
    old = shipped("phi-4") | {"partial_rotary_factor": 0.75}
    assert parse_config(old, "p", "p").rotary_dim == 96
    new = as_transformers_5(shipped("phi-4"))
    new["rope_parameters"]["partial_rotary_factor"] = 0.5
    cfg = parse_config(new, "p", "p")
    assert (cfg.rotary_dim, cfg.rope_theta, cfg.sliding_window) == (64, 250000.0, 16384)
    assert parse_config(shipped("phi-4"), "p", "p").rotary_dim == 128


def test_phi3_longrope_is_refused_by_field() -> None:
    raw = shipped("phi-4") | {"rope_scaling": {"type": "longrope", "short_factor": [1.0] * 64,
                                               "long_factor": [2.0] * 64}}
    with pytest.raises(TegelError, match=r"src.json: field 'rope_scaling': .*LongRoPE"):
        parse_config(raw, "p", "src.json")


def test_gemma2_alternates_sliding_and_full_attention() -> None:
    cfg = parse_config(shipped("gemma-2-2b-it"), "g", "g")
    assert cfg.full_attention_layers == frozenset(range(1, 26, 2))  # layer 0 slides
    assert (cfg.sliding_window, cfg.attn_softcap, cfg.final_softcap) == (4096, 50.0, 30.0)
    assert cfg.attn_scale == 256**-0.5 and cfg.embed_scale == 2304**0.5
    assert cfg.tie_word_embeddings and cfg.sandwich_norms
    kinds = ["full_attention"] * 20 + ["sliding_attention"] * 6
    written = parse_config(shipped("gemma-2-2b-it") | {"layer_types": kinds}, "g", "g")
    assert written.full_attention_layers == frozenset(range(20))


def test_gemma2_bad_layer_types_are_refused_by_field() -> None:
    raw = shipped("gemma-2-2b-it") | {"layer_types": ["full_attention"] * 3}
    with pytest.raises(TegelError, match=r"src.json: field 'layer_types': expected 26 entries"):
        parse_config(raw, "g", "src.json")


def test_gemma3_layers_and_rotary_from_either_config_form() -> None:
    old = shipped("gemma-3-1b-it")
    cfg = parse_config(old, "g", "g")
    assert cfg.full_attention_layers == frozenset({5, 11, 17, 23})  # every sixth layer
    assert (cfg.rope_theta, cfg.local_rope_theta, cfg.sliding_window) == (1e6, 1e4, 512)
    assert cfg.qk_norm and cfg.attn_softcap is None and cfg.final_softcap is None
    new = {k: v for k, v in old.items()
           if k not in ("rope_theta", "rope_scaling", "rope_local_base_freq",
                        "sliding_window_pattern")}
    new["layer_types"] = ["full_attention" if i in (5, 11, 17, 23) else "sliding_attention"
                          for i in range(26)]
    new["rope_parameters"] = {"full_attention": {"rope_type": "default", "rope_theta": 1e6},
                              "sliding_attention": {"rope_type": "default", "rope_theta": 1e4}}
    assert parse_config(new, "g", "g") == cfg


def test_gemma3_linear_scaling_reads_the_same_in_both_forms() -> None:
    """The 4B-27B models' global-layer linear factor: older `rope_scaling` and transformers 5's
    per-layer-type `rope_parameters` give one configuration."""
    old = shipped("gemma-3-1b-it") | {"rope_scaling": {"rope_type": "linear", "factor": 8.0}}
    new = {k: v for k, v in old.items() if k not in ("rope_scaling", "rope_theta",
                                                       "rope_local_base_freq")}
    new["rope_parameters"] = {"full_attention": {"rope_type": "linear", "factor": 8.0,
                                                 "rope_theta": 1e6},
                              "sliding_attention": {"rope_type": "default", "rope_theta": 1e4}}
    cfg = parse_config(old, "g", "g")
    assert cfg.rope_scaling == LinearScaling(8.0)
    assert parse_config(new, "g", "g") == cfg


@pytest.mark.parametrize(("change", "field"), [
    ({"rope_scaling": {"rope_type": "dynamic", "factor": 8.0}}, "rope_scaling"),
    ({"rope_parameters": {"full_attention": {"rope_type": "default", "rope_theta": 1e6},
                          "sliding_attention": {"rope_type": "linear", "factor": 8.0,
                                                "rope_theta": 1e4}}},
     "rope_parameters"),
    ({"use_bidirectional_attention": True}, "use_bidirectional_attention"),
])
def test_gemma3_unsupported_variants_are_refused_by_field(change: dict, field: str) -> None:
    with pytest.raises(TegelError, match=f"src.json: field '{field}'"):
        parse_config(shipped("gemma-3-1b-it") | change, "g", "src.json")
