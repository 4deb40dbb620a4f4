"""Multi-head latent attention (DeepSeek-V2/V3): shape rule, work, GEMMs and reference.

The op (`OpKind.LATENT_ATTENTION`, attributes `LatentAttention`) reads the queries, ONE latent
cache per layer ([B, Lk, dc+dr]: normed latent c_kv, then the rotated key part k_pe all heads
share) and the up-projection kv_b [H*(dn+dv), dc]. Engines run it in one of two forms and so
is it priced — whichever needs fewer FLOPs:

* absorbed (vLLM's and SGLang's decode path, FlashMLA): W_UK is folded into the query
  (q_nope·W_UK_h per head: 2·B·Lq·H·dn·dc), scores are taken in latent space against the
  cache as it is (dc + dr channels, one "KV head" for all H query heads, as in multi-query
  attention), the probabilities weigh the latent (dc channels) and W_UV lifts each head's
  result to dv channels (2·B·Lq·H·dc·dv). Per attended (query, key) pair and head:
  2·(dc+dr) + 2·dc FLOPs.
* expanded (the prefill path of the same engines): kv_b is applied to the whole latent cache
  (2·B·Lk·H·(dn+dv)·dc), then ordinary attention with q/k head width dn+dr and v width dv: per
  pair and head 2·(dn+dr) + 2·dv FLOPs.

With Lq = 1 over a long cache the absorbed form is far cheaper (the cache is never expanded);
for a prefill (Lq = Lk) the projection terms are equal and the expanded form's narrower heads
win. Both add softmax's 5 FLOPs per pair. The bytes either form must move are the same: q,
the latent cache (dc + dr per token, not 2·H·D), kv_b, and the output.

This module registers into `ops` (rules and GEMMs) and `reference` (semantics, expanded form,
float32) when they import it; it is not imported on its own.
"""

from __future__ import annotations

import enum

import numpy as np

from tegel.workload.attention_counts import attended_pairs, shared_prefix_fraction
from tegel.workload.ir import LatentAttention, Op, Tensor
from tegel.workload.ops import Gemm, OpWork, ShapeError


class MlaForm(enum.Enum):
    ABSORBED = "absorbed"  # W_UK into q, attention in latent space, W_UV after
    EXPANDED = "expanded"  # kv_b over the cache, then attention with per-head keys and values


def _need(cond: bool, msg: str) -> None:
    if not cond:
        raise ShapeError(msg)


def latent_attention_infer(ins: tuple[Tensor, ...], a: LatentAttention
                           ) -> tuple[tuple[tuple[int, ...], None], ...]:
    """Output [B, Lq, H*dv] of q [B, Lq, H*(dn+dr)], cache [B, Lk, dc+dr], kv_b [H*(dn+dv), dc]."""
    _need(len(ins) == 3, "latent attention takes (q, latent cache, kv_b)")
    q, cache, kv_b = (t.shape for t in ins)
    h = a.num_heads
    _need(len(q) == 3 and q[2] == h * (a.nope_dim + a.rope_dim),
          f"latent attention q {q}: expected [B, L, {h}*({a.nope_dim}+{a.rope_dim})]")
    _need(len(cache) == 3 and cache[2] == a.latent_dim + a.rope_dim,
          f"latent cache {cache}: expected [B, T, {a.latent_dim}+{a.rope_dim}]")
    _need(kv_b == (h * (a.nope_dim + a.v_dim), a.latent_dim),
          f"kv_b {kv_b}: expected [{h}*({a.nope_dim}+{a.v_dim}), {a.latent_dim}]")
    _need(q[0] == cache[0] and q[1] <= cache[1], f"q{q} must share batch with cache{cache}, Lq <= Lk")
    _need(a.kv_group >= 1 and a.kv_shared >= 0, "kv_group must be >= 1 and kv_shared >= 0")
    return (((q[0], q[1], h * a.v_dim), None),)


def _sizes(op: Op) -> tuple[LatentAttention, int, int, int, float]:
    """(attrs, B, Lq, Lk, attended (query, key) pairs over all rows and heads)."""
    a: LatentAttention = op.attrs  # type: ignore[assignment]
    b, lq, _ = op.inputs[0].shape
    lk = op.inputs[1].shape[1]
    return a, b, lq, lk, float(attended_pairs(lq, lk, a.causal, None) * b * a.num_heads)


def form_flops(op: Op) -> dict[MlaForm, float]:
    """FLOPs of each form, softmax included (the module docstring gives the terms)."""
    a, b, lq, lk, pairs = _sizes(op)
    h, dn, dr, dv, dc = a.num_heads, a.nope_dim, a.rope_dim, a.v_dim, a.latent_dim
    return {
        MlaForm.ABSORBED: 2.0 * b * lq * h * dc * (dn + dv) + pairs * (2 * (dc + dr) + 2 * dc + 5),
        MlaForm.EXPANDED: 2.0 * b * lk * h * (dn + dv) * dc + pairs * (2 * (dn + dr) + 2 * dv + 5),
    }


def latent_attention_form(op: Op) -> MlaForm:
    """The form an engine runs: the one of fewer FLOPs (absorbed on a tie)."""
    flops = form_flops(op)
    return min(flops, key=lambda form: (flops[form], form is not MlaForm.ABSORBED))


def latent_attention_work(op: Op) -> OpWork:
    """FLOPs of the cheaper form; q, the latent cache, kv_b read once (a prefix the beams of a
    request share, once per request), the output written."""
    a, _, _, lk, _ = _sizes(op)
    q, cache, kv_b = op.inputs
    flops = form_flops(op)[latent_attention_form(op)]
    shared = shared_prefix_fraction(a.kv_group, a.kv_shared, lk)
    return OpWork(flops, (q.nbytes, cache.nbytes * shared, kv_b.nbytes), (op.outputs[0].nbytes,))


def latent_attention_gemms(op: Op) -> tuple[Gemm, ...]:
    """The GEMMs of the chosen form. Absorbed: q_nope·W_UK per head, the scores and the
    probability-weighted latent per batch row with all heads' queries as rows (the latent is
    one KV head: FlashMLA), W_UV per head. Expanded: kv_b over the cache, then q·kᵀ and p·v
    per (batch row, head). `m` of the attention GEMMs is attended pairs per key row, as in
    `ops.gemm_dims` for attention, so FLOPs are exact."""
    a, b, lq, lk, pairs = _sizes(op)
    h, dn, dr, dv, dc = a.num_heads, a.nope_dim, a.rope_dim, a.v_dim, a.latent_dim
    rows = pairs / (b * h * lk) if lk else 0.0
    if latent_attention_form(op) is MlaForm.ABSORBED:
        return (Gemm(float(h), float(b * lq), dc, dn),
                Gemm(float(b), h * rows, lk, dc + dr),
                Gemm(float(b), h * rows, dc, lk),
                Gemm(float(h), float(b * lq), dv, dc))
    return (Gemm(1.0, float(b * lk), h * (dn + dv), dc),
            Gemm(float(b * h), rows, lk, dn + dr),
            Gemm(float(b * h), rows, dv, lk))


def latent_attention_reference(op: Op, xs: list[np.ndarray]) -> list[np.ndarray]:
    """Expanded form in float32: keys [c_kv W_UK_h^T, k_pe], values c_kv W_UV_h^T."""
    from tegel.workload.reference import softmax

    a: LatentAttention = op.attrs  # type: ignore[assignment]
    q, cache, kv_b = (np.asarray(x, dtype=np.float32) for x in xs)
    b, lq, _ = q.shape
    lk = cache.shape[1]
    h, dn, dv, dc = a.num_heads, a.nope_dim, a.v_dim, a.latent_dim
    kv = (cache[..., :dc] @ kv_b.T).reshape(b, lk, h, dn + dv).transpose(0, 2, 1, 3)
    k_pe = np.broadcast_to(cache[:, None, :, dc:], (b, h, lk, a.rope_dim))
    keys = np.concatenate([kv[..., :dn], k_pe], axis=-1)
    qh = q.reshape(b, lq, h, dn + a.rope_dim).transpose(0, 2, 1, 3)
    scores = np.matmul(qh, keys.transpose(0, 1, 3, 2)) * np.float32(a.scale)
    if a.causal:
        visible = np.arange(lk)[None, :] <= np.arange(lk - lq, lk)[:, None]
        scores = np.where(visible, scores, -np.inf)
    out = np.matmul(softmax(scores), kv[..., dn:])
    return [out.transpose(0, 2, 1, 3).reshape(b, lq, h * dv)]


def partial_width(op: Op) -> int:
    """Channels per head of an attention op's output before its last projection — what a
    split over keys leaves partial per query and head: head_dim for attention; for latent
    attention the latent (absorbed form, W_UV comes after the reduction) or v_dim (expanded)."""
    a = op.attrs
    if isinstance(a, LatentAttention):
        return a.latent_dim if latent_attention_form(op) is MlaForm.ABSORBED else a.v_dim
    return a.head_dim  # type: ignore[union-attr]
