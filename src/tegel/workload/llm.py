"""The graph of one LLM inference phase — prefill of L tokens or one decode step at KV length K.

Tensor names are tegel's canonical weight names (`layers.3.attn.q.weight`); the Hugging Face
loader (`tegel.workload.weights`) maps checkpoints onto them. Activation layout is
[batch, tokens, channels]; KV caches are [batch, positions, kv_heads * head_dim].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tegel.errors import TegelError
from tegel.workload.dtypes import DType
from tegel.workload.graph import GraphBuilder
from tegel.workload.ir import (
    Attention,
    Binary,
    BinaryFn,
    Embedding,
    Graph,
    KVCacheWrite,
    LatentAttention,
    LayerNorm,
    MatMul,
    MoEExperts,
    MoERouter,
    OpKind,
    RMSNorm,
    Role,
    Rope,
    Slice,
    Tensor,
    Unary,
    UnaryFn,
)
from tegel.workload.model_config import ModelConfig
from tegel.workload.ops import has_past
from tegel.workload.roles import assign_roles


@dataclass(frozen=True, slots=True)
class Precision:
    """Number formats of weights, activations and the KV cache."""

    weights: DType = DType.BF16
    activations: DType = DType.BF16
    kv_cache: DType = DType.BF16

    @classmethod
    def uniform(cls, dtype: DType) -> Precision:
        return cls(dtype, dtype, dtype)


@dataclass(frozen=True, slots=True)
class Phase:
    """One forward call: `new_tokens` per sequence on top of `past_tokens` already cached.

    Prefill of L tokens is Phase(batch, L, 0); a decode step at KV length K is
    Phase(batch, 1, K). With beam search, `beams` consecutive sequences are the hypotheses of
    one request and share its first `shared_prefix` cached positions (the prompt).
    """

    batch: int
    new_tokens: int
    past_tokens: int = 0
    beams: int = 1
    shared_prefix: int = 0

    @classmethod
    def prefill(cls, batch: int, tokens: int) -> Phase:
        return cls(batch, tokens, 0)

    @classmethod
    def decode(cls, batch: int, kv_length: int) -> Phase:
        return cls(batch, 1, kv_length)

    @property
    def kind(self) -> str:
        return "decode" if self.new_tokens == 1 and self.past_tokens > 0 else "prefill"


class _Blocks:
    """Emits the blocks of one model into a GraphBuilder (one instance per graph)."""

    def __init__(self, cfg: ModelConfig, phase: Phase, precision: Precision) -> None:
        self.cfg, self.phase, self.p = cfg, phase, precision
        self.g = GraphBuilder(f"{cfg.name}-{phase.kind}", precision.activations)

    def w(self, name: str, *shape: int) -> Tensor:
        return self.g.weight(name, shape, self.p.weights)

    def small(self, name: str, *shape: int) -> Tensor:
        """Norm scales and biases: kept in the activation format (they are tiny)."""
        return self.g.weight(name, shape, self.p.activations)

    def linear(self, x: Tensor, prefix: str, n_in: int, n_out: int, bias: bool) -> Tensor:
        ins: tuple[Tensor, ...] = (x, self.w(f"{prefix}.weight", n_out, n_in))
        if bias:
            ins += (self.small(f"{prefix}.bias", n_out),)
        return self.g.op1(OpKind.MATMUL, MatMul(transpose_b=True), ins, prefix)

    def norm(self, x: Tensor, prefix: str, width: int = 0) -> Tensor:
        """The model's norm over the last axis of `width` channels (default: hidden_size)."""
        h, c = width or self.cfg.hidden_size, self.cfg
        if c.norm == "rms":
            return self.g.op1(OpKind.RMSNORM, RMSNorm(c.norm_eps),
                              (x, self.small(f"{prefix}.weight", h)), prefix)
        ins = (x, self.small(f"{prefix}.weight", h), self.small(f"{prefix}.bias", h))
        return self.g.op1(OpKind.LAYERNORM, LayerNorm(c.norm_eps), ins, prefix)

    def add(self, a: Tensor, b: Tensor, name: str) -> Tensor:
        return self.g.op1(OpKind.BINARY, Binary(BinaryFn.ADD), (a, b), name)

    def attention(self, x: Tensor, i: int, positions: Tensor) -> Tensor:
        if self.cfg.is_mla:
            return self.latent_attention(x, i, positions)
        c, ph, g = self.cfg, self.phase, self.g
        pre = f"layers.{i}.attn"
        q_ch, kv_ch = c.num_heads * c.head_dim, c.num_kv_heads * c.head_dim
        q = self.linear(x, f"{pre}.q", c.hidden_size, q_ch, c.qkv_bias)
        k = self.linear(x, f"{pre}.k", c.hidden_size, kv_ch, c.qkv_bias)
        v = self.linear(x, f"{pre}.v", c.hidden_size, kv_ch, c.qkv_bias)
        if c.qk_norm:
            q = self._head_norm(q, f"{pre}.q_norm")
            k = self._head_norm(k, f"{pre}.k_norm")
        sliding = c.sliding_window is not None and i not in c.full_attention_layers
        local = sliding and c.local_rope_theta is not None  # Gemma 3's own local rotary
        theta = c.local_rope_theta if local and c.local_rope_theta is not None else c.rope_theta
        rotary = not c.learned_positions and i not in c.nope_layers
        if rotary:
            q = self._rope(q, c.num_heads, positions, theta, f"{pre}.q_rope", local=local)
            k = self._rope(k, c.num_kv_heads, positions, theta, f"{pre}.k_rope", local=local)
        if c.qk_l2_norm and rotary:  # Llama 4: after the rotation, on RoPE layers only
            q = self._head_norm(q, f"{pre}.q_l2norm", weighted=False)
            k = self._head_norm(k, f"{pre}.k_l2norm", weighted=False)
        caches = []
        for kind, new in (("k", k), ("v", v)):
            ins: tuple[Tensor, ...] = (new,)
            if ph.past_tokens:
                past = g.input(f"past.{i}.{kind}", (ph.batch, ph.past_tokens, kv_ch),
                               self.p.kv_cache, Role.KV_CACHE)
                ins = (past, new)
            (cache,) = g.op(OpKind.KV_CACHE_WRITE, KVCacheWrite(), ins, f"present.{i}.{kind}",
                            dtype=self.p.kv_cache, role=Role.KV_CACHE)
            caches.append(cache)
        window = c.sliding_window if sliding else None
        scale = c.attn_scale if c.attn_scale is not None else 1.0 / math.sqrt(c.head_dim)
        attrs = Attention(c.num_heads, c.num_kv_heads, c.head_dim, scale, causal=True,
                          window=window, kv_group=ph.beams,
                          kv_shared=ph.shared_prefix if ph.beams > 1 else 0,
                          softcap=c.attn_softcap,
                          chunk=c.attention_chunk if i in c.chunked_layers else None,
                          temperature=None if rotary else c.nope_temperature)
        a = g.op1(OpKind.ATTENTION, attrs, (q, caches[0], caches[1]), f"{pre}.sdpa")
        return self.linear(a, f"{pre}.o", q_ch, c.hidden_size, c.o_bias)

    def latent_attention(self, x: Tensor, i: int, positions: Tensor) -> Tensor:
        """DeepSeek's multi-head latent attention: q (through the q_a -> norm -> q_b bottleneck
        when the model has one), kv_a splits into the latent (normed) and the shared rope key,
        both rotated parts are rotated, the two are appended side by side to the layer's one
        latent cache, and the LATENT_ATTENTION op expands them through kv_b."""
        c, ph, g = self.cfg, self.phase, self.g
        pre = f"layers.{i}.attn"
        heads, dr, dc = c.num_heads, c.rotary_dim, c.kv_lora_rank
        dn = c.head_dim - dr
        q_ch = heads * c.head_dim
        if c.q_lora_rank:
            q = self.linear(x, f"{pre}.q_a", c.hidden_size, c.q_lora_rank, False)
            q = self.norm(q, f"{pre}.q_a_norm", c.q_lora_rank)
            q = self.linear(q, f"{pre}.q_b", c.q_lora_rank, q_ch, False)
        else:
            q = self.linear(x, f"{pre}.q", c.hidden_size, q_ch, False)
        kv = self.linear(x, f"{pre}.kv_a", c.hidden_size, dc + dr, False)
        latent = g.op1(OpKind.SLICE, Slice(2, 0, dc), (kv,), f"{pre}.kv_latent")
        k_pe = g.op1(OpKind.SLICE, Slice(2, dc, dc + dr), (kv,), f"{pre}.k_pe")
        latent = self.norm(latent, f"{pre}.kv_a_norm", dc)
        q = self._rope(q, heads, positions, c.rope_theta, f"{pre}.q_rope", c.head_dim, dn)
        k_pe = self._rope(k_pe, 1, positions, c.rope_theta, f"{pre}.k_rope", dr)
        ins: tuple[Tensor, ...] = (latent, k_pe)
        if ph.past_tokens:
            ins = (g.input(f"past.{i}.kv", (ph.batch, ph.past_tokens, dc + dr), self.p.kv_cache,
                           Role.KV_CACHE), *ins)
        (cache,) = g.op(OpKind.KV_CACHE_WRITE, KVCacheWrite(pieces=2), ins, f"present.{i}.kv",
                        dtype=self.p.kv_cache, role=Role.KV_CACHE)
        kv_b = self.w(f"{pre}.kv_b.weight", heads * (dn + c.v_head_dim), dc)
        attrs = LatentAttention(heads, dn, dr, c.v_head_dim, dc, c.attn_scale or c.head_dim ** -0.5,
                                kv_group=ph.beams,
                                kv_shared=ph.shared_prefix if ph.beams > 1 else 0)
        a = g.op1(OpKind.LATENT_ATTENTION, attrs, (q, cache, kv_b), f"{pre}.mla")
        return self.linear(a, f"{pre}.o", heads * c.v_head_dim, c.hidden_size, False)

    def _head_norm(self, x: Tensor, prefix: str, weighted: bool = True) -> Tensor:
        c = self.cfg
        ins = (x, self.small(f"{prefix}.weight", c.head_dim)) if weighted else (x,)
        return self.g.op1(OpKind.RMSNORM, RMSNorm(c.norm_eps, c.head_dim, weighted), ins, prefix)

    def _rope(self, x: Tensor, heads: int, positions: Tensor, theta: float, name: str,
              head_dim: int = 0, offset: int = 0, local: bool = False) -> Tensor:
        """Rotary embedding; `local` layers (Gemma 3's sliding ones) are never scaled."""
        c = self.cfg
        attrs = Rope(heads, head_dim or c.head_dim, c.rotary_dim, theta, c.rope_interleaved,
                     None if local else c.rope_scaling, rotary_offset=offset)
        return self.g.op1(OpKind.ROPE, attrs, (x, positions), name)

    def mlp(self, x: Tensor, i: int) -> Tensor:
        c, g = self.cfg, self.g
        h = c.hidden_size
        if not c.routed(i):
            width = c.dense_intermediate_size if c.is_moe and c.dense_intermediate_size else None
            return self.dense_mlp(x, f"layers.{i}.mlp", width or c.intermediate_size)
        f = c.intermediate_size
        logits = self.linear(x, f"layers.{i}.moe.router", h, c.num_experts, False)
        route: tuple[Tensor, ...] = (logits,)
        if c.router_bias:
            # kept in fp32, as DeepSeek ships it: it only ranks experts, in steps finer than bf16
            route += (self.g.weight(f"layers.{i}.moe.router.score_bias", (c.num_experts,),
                                    DType.FP32),)
        attrs_route = MoERouter(c.num_experts, c.experts_per_token, c.moe_normalize,
                                c.router_scoring, c.router_groups, c.router_topk_groups,
                                c.routed_scaling_factor, c.router_bias)
        weights, idx = g.op(OpKind.MOE_ROUTER, attrs_route, route, f"layers.{i}.moe.route")
        e = c.num_experts
        experts = (self.w(f"layers.{i}.moe.w_gate", e, f, h),
                   self.w(f"layers.{i}.moe.w_up", e, f, h),
                   self.w(f"layers.{i}.moe.w_down", e, h, f))
        attrs = MoEExperts(e, c.experts_per_token, c.activation, scale_input=c.moe_scale_input)
        routed = g.op1(OpKind.MOE_EXPERTS, attrs, (x, weights, idx, *experts),
                       f"layers.{i}.moe.experts")
        if not c.shared_intermediate_size:
            return routed
        shared = self.dense_mlp(x, f"layers.{i}.moe.shared", c.shared_intermediate_size)
        return self.add(routed, shared, f"layers.{i}.moe.sum")

    def dense_mlp(self, x: Tensor, pre: str, f: int) -> Tensor:
        """up -> act -> down, gated (act(gate) * up) when the model's MLP is."""
        c, g, h = self.cfg, self.g, self.cfg.hidden_size
        up = self.linear(x, f"{pre}.up", h, f, c.mlp_bias)
        if c.gated_mlp:
            gate = self.linear(x, f"{pre}.gate", h, f, c.mlp_bias)
            act = g.op1(OpKind.UNARY, Unary(c.activation), (gate,), f"{pre}.act")
            up = g.op1(OpKind.BINARY, Binary(BinaryFn.MUL), (act, up), f"{pre}.gated")
        else:
            up = g.op1(OpKind.UNARY, Unary(c.activation), (up,), f"{pre}.act")
        return self.linear(up, f"{pre}.down", f, h, c.mlp_bias)

    def build(self, logits: str, layers: tuple[int, ...]) -> Graph:
        c, ph, g = self.cfg, self.phase, self.g
        shape = (ph.batch, ph.new_tokens)
        ids = g.input("input_ids", shape, DType.INT32)
        positions = g.input("position_ids", shape, DType.INT32)
        table = self.w("embed.weight", c.vocab_size, c.hidden_size)
        h = g.op1(OpKind.EMBEDDING, Embedding(c.embed_scale), (ids, table), "embed")
        if c.learned_positions:
            pos_table = self.w("pos_embed.weight", c.max_position_embeddings, c.hidden_size)
            pos = g.op1(OpKind.EMBEDDING, Embedding(), (positions, pos_table), "pos_embed")
            h = self.add(h, pos, "embed_sum")
        for i in layers:
            g.layer = i
            x = self.norm(h, f"layers.{i}.attn_norm")
            attn = self.attention(x, i, positions)
            if c.parallel_block:
                h = self.add(self.add(h, attn, f"layers.{i}.attn_residual"),
                             self.mlp(x, i), f"layers.{i}.mlp_residual")
                continue
            if c.sandwich_norms:
                attn = self.norm(attn, f"layers.{i}.post_attn_norm")
            h = self.add(h, attn, f"layers.{i}.attn_residual")
            mlp = self.mlp(self.norm(h, f"layers.{i}.mlp_norm"), i)
            if c.sandwich_norms:
                mlp = self.norm(mlp, f"layers.{i}.post_mlp_norm")
            h = self.add(h, mlp, f"layers.{i}.mlp_residual")
        g.layer = -1
        h = self.norm(h, "final_norm")
        if logits == "last" and ph.new_tokens > 1:
            h = g.op1(OpKind.SLICE, Slice(1, ph.new_tokens - 1, ph.new_tokens), (h,), "last_token")
        head = table if c.tie_word_embeddings else self.w("lm_head.weight", c.vocab_size,
                                                         c.hidden_size)
        ins = (h, head) + ((self.small("lm_head.bias", c.vocab_size),) if c.lm_head_bias else ())
        capped = c.final_softcap is not None
        out = g.op1(OpKind.MATMUL, MatMul(transpose_b=True), ins, "lm_head" if capped else "logits")
        if c.final_softcap is not None:
            out = g.op1(OpKind.UNARY, Unary(UnaryFn.SOFTCAP, c.final_softcap), (out,), "logits")
        presents = tuple(t for op in g.ops for t in op.outputs if t.role is Role.KV_CACHE)
        return g.build((out, *presents))


def build_llm_graph(
    cfg: ModelConfig,
    phase: Phase,
    precision: Precision | None = None,
    logits: str = "last",
    layers: tuple[int, ...] | None = None,
) -> Graph:
    """The graph of one forward call of `cfg` for `phase`.

    `layers` builds only those model layers, in that order, each reading the previous one's
    output (a folded graph: `workload.folding`); None builds them all.

    Outputs: `logits` [B, 1, V] (or [B, L, V] with logits="all"), then the updated KV caches
    `present.{layer}.{k|v}` [B, K+L, Hkv*D] (multi-head latent attention: one latent cache
    `present.{layer}.kv` [B, K+L, dc+dr]). Inputs: `input_ids`, `position_ids` [B, L] and,
    when K > 0, the past caches `past.…` [B, K, …] in the same order (`past_feeds`). Every op carries its role
    (`workload.roles.assign_roles`) and, inside blocks, its layer.
    """
    if logits not in ("last", "all"):
        raise TegelError(f"logits must be 'last' or 'all', got {logits!r}")
    if phase.batch < 1 or phase.new_tokens < 1 or phase.past_tokens < 0:
        raise TegelError(f"invalid phase {phase}: need batch >= 1, tokens >= 1, past >= 0")
    total = phase.past_tokens + phase.new_tokens
    if cfg.learned_positions and total > cfg.max_position_embeddings:
        raise TegelError(f"{cfg.name}: {total} positions exceed max_position_embeddings "
                         f"{cfg.max_position_embeddings}")
    if layers is None:
        layers = tuple(range(cfg.num_layers))
    if not layers or len(set(layers)) != len(layers) or not all(
            0 <= i < cfg.num_layers for i in layers):
        raise TegelError(f"{cfg.name}: layers {layers} must be distinct layer indices below "
                         f"{cfg.num_layers}")
    return assign_roles(_Blocks(cfg, phase, precision or Precision()).build(logits, layers))


def carried_caches(graph: Graph) -> tuple[tuple[Tensor, Tensor], ...]:
    """(past-cache input, updated cache output) of every KV-cache append that has a past, in
    graph order: a call's cache outputs feed the next call's past inputs, whatever the caches
    are (keys and values, or one latent per layer). Read from structure, not names."""
    return tuple((op.inputs[0], op.outputs[0]) for op in graph.ops
                 if op.kind is OpKind.KV_CACHE_WRITE and has_past(op))
