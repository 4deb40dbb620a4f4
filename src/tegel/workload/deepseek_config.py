"""The `deepseek_v3` config reader (DeepSeek-V3, DeepSeek-R1), registered in `model_config`."""

from __future__ import annotations

from tegel.workload.config_fields import MAX_EXPERTS, MAX_WIDTH, _Fields
from tegel.workload.ir import YarnScaling, yarn_mscale
from tegel.workload.model_config import ModelConfig


def read_deepseek_v3(f: _Fields, name: str, model_type: str) -> ModelConfig:
    """DeepSeek-V3 and R1: multi-head latent attention (q through a low-rank `q_lora_rank`
    bottleneck unless it is null; keys and values from one `kv_lora_rank` latent plus a
    rotated key part shared by the heads), the first `first_k_dense_replace` layers dense, the
    rest `n_routed_experts` sigmoid-scored, group-limited, bias-corrected experts beside
    `n_shared_experts` always-on ones. YaRN rotary; the softmax scale is 1/sqrt(qk head dim)
    times mscale(factor, mscale_all_dim)^2, as DeepSeek's code and transformers apply it. The
    multi-token-prediction layer (`num_nextn_predict_layers`) is not part of the graph."""
    heads, layers = f.integer("num_attention_heads"), f.integer("num_hidden_layers")
    nope, rope_dim = f.integer("qk_nope_head_dim"), f.integer("qk_rope_head_dim")
    if rope_dim % 2:
        raise f._fail("qk_rope_head_dim", "an even number")
    theta, scaling = f.rope(yarn=True)
    scale = (nope + rope_dim) ** -0.5
    if isinstance(scaling, YarnScaling) and scaling.mscale_all_dim:
        scale *= yarn_mscale(scaling.factor, scaling.mscale_all_dim) ** 2
    experts, groups = f.integer("n_routed_experts"), f.integer("n_group", 1)
    top_groups = f.integer("topk_group", 1)
    if experts % groups:
        raise f._fail("n_group", f"a divisor of n_routed_experts {experts}")
    if top_groups > groups:
        raise f._fail("topk_group", f"at most n_group {groups}")
    top_k = f.integer("num_experts_per_tok")
    if top_k > experts // groups * top_groups:
        raise f._fail("num_experts_per_tok", "at most the experts of topk_group groups")
    dense = f.raw.get("first_k_dense_replace", 0)
    if isinstance(dense, bool) or not isinstance(dense, int) or not 0 <= dense <= layers:
        raise f._fail("first_k_dense_replace", f"an integer from 0 to {layers}")
    shared = f.raw.get("n_shared_experts", 0)
    if isinstance(shared, bool) or not isinstance(shared, int) or not 0 <= shared <= MAX_EXPERTS:
        raise f._fail("n_shared_experts", f"an integer from 0 to {MAX_EXPERTS:,}")
    if f.raw.get("scoring_func", "sigmoid") != "sigmoid":
        raise f._fail("scoring_func", "'sigmoid'")
    if f.raw.get("topk_method", "noaux_tc") != "noaux_tc":
        raise f._fail("topk_method", "'noaux_tc' (DeepSeek-V3's bias-corrected group top-k)")
    if f.boolean("attention_bias", False):
        raise f._fail("attention_bias", "false")
    moe_width = f.integer("moe_intermediate_size")
    if shared * moe_width > MAX_WIDTH:  # the shared experts run as one MLP of their summed width
        raise f._fail("n_shared_experts", f"shared experts of at most {MAX_WIDTH:,} channels "
                      f"together (moe_intermediate_size {moe_width:,} each)")
    return ModelConfig(
        name=name,
        model_type=model_type,
        vocab_size=f.integer("vocab_size"),
        hidden_size=f.integer("hidden_size"),
        num_layers=layers,
        num_heads=heads,
        num_kv_heads=1,  # the latent cache is one entry per token that every head reads
        head_dim=nope + rope_dim,
        intermediate_size=moe_width,
        max_position_embeddings=f.integer("max_position_embeddings", 4096),
        norm="rms",
        norm_eps=f.number("rms_norm_eps", 1e-6),
        activation=f.activation("hidden_act", "silu"),
        gated_mlp=True,
        qkv_bias=False,
        o_bias=False,
        mlp_bias=False,
        parallel_block=False,
        learned_positions=False,
        rotary_dim=rope_dim,
        rope_theta=theta,
        rope_interleaved=f.boolean("rope_interleave", True),
        rope_scaling=scaling,
        tie_word_embeddings=f.boolean("tie_word_embeddings", False),
        lm_head_bias=False,
        num_experts=experts,
        experts_per_token=top_k,
        sliding_window=None,
        moe_normalize=f.boolean("norm_topk_prob", True),
        attn_scale=scale,
        dense_layers=frozenset(range(dense)),
        dense_intermediate_size=f.integer("intermediate_size"),
        shared_intermediate_size=shared * moe_width,
        router_scoring="sigmoid",
        router_groups=groups,
        router_topk_groups=top_groups,
        router_bias=True,
        routed_scaling_factor=f.number("routed_scaling_factor", 1.0),
        kv_lora_rank=f.integer("kv_lora_rank"),
        q_lora_rank=f.opt_int("q_lora_rank") or 0,
        v_head_dim=f.integer("v_head_dim"),
    )
