"""Per-kind rules of the IR: output shapes, FLOPs and minimal bytes moved.

Conventions (docs/design.md): a multiply-add is 2 FLOPs; elementwise functions count the
FLOPs in `UNARY_FLOPS`; minimal bytes are what any implementation must read and write at
least once — each input read once, each output written once — except where an op touches
only part of an input (embedding rows, routed experts, a slice, a sliding window) or updates
memory in place (KV-cache append).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from tegel.workload.attention_counts import attended_key_rows, attended_pairs, shared_prefix_fraction
from tegel.workload.dtypes import DType
from tegel.workload.ir import (
    Attention,
    Binary,
    Conv2d,
    Embedding,
    KVCacheWrite,
    LayerNorm,
    MatMul,
    MoEExperts,
    MoERouter,
    Op,
    OpKind,
    RMSNorm,
    Rope,
    Slice,
    Tensor,
    UnaryFn,
)

Shape = tuple[int, ...]
# An output's shape and dtype; a dtype of None takes the activation dtype the builder chose.
OutSpec = tuple[Shape, DType | None]
OpSpecs = tuple[OutSpec, ...]

UNARY_FLOPS: dict[UnaryFn, int] = {
    UnaryFn.SILU: 4,  # exp, add, divide, multiply
    UnaryFn.GELU: 8,
    UnaryFn.GELU_TANH: 8,
    UnaryFn.RELU: 1,
    UnaryFn.NEG: 1,
    UnaryFn.SOFTCAP: 4,  # divide, tanh (as exp, add, divide), multiply: counted like SiLU
}


class ShapeError(ValueError):
    """Inputs that an op cannot accept."""


@dataclass(frozen=True, slots=True)
class OpWork:
    """What an op must do at least: FLOPs, bytes read per input, bytes written per output."""

    flops: float
    read_bytes: tuple[float, ...]
    write_bytes: tuple[float, ...]

    @property
    def bytes_read(self) -> float:
        return sum(self.read_bytes)

    @property
    def bytes_written(self) -> float:
        return sum(self.write_bytes)


@dataclass(frozen=True, slots=True)
class Rule:
    infer: Callable[[tuple[Tensor, ...], object], tuple[OutSpec, ...]]
    work: Callable[[Op], OpWork]


RULES: dict[OpKind, Rule] = {}


def _rule(kind: OpKind, infer: Callable, work: Callable) -> None:
    RULES[kind] = Rule(infer, work)


def infer(kind: OpKind, inputs: tuple[Tensor, ...], attrs: object) -> tuple[OutSpec, ...]:
    """Output shapes (and fixed dtypes) of an op of `kind` on `inputs`; raises ShapeError."""
    return RULES[kind].infer(inputs, attrs)


def work(op: Op) -> OpWork:
    """FLOPs and minimal bytes of one op."""
    return RULES[op.kind].work(op)


def _need(cond: bool, msg: str) -> None:
    if not cond:
        raise ShapeError(msg)


def _plain(op: Op, flops: float) -> OpWork:
    return OpWork(flops, tuple(t.nbytes for t in op.inputs), tuple(t.nbytes for t in op.outputs))


def broadcast_shapes(a: Shape, b: Shape) -> Shape:
    out: list[int] = []
    for i in range(1, max(len(a), len(b)) + 1):
        x = a[-i] if i <= len(a) else 1
        y = b[-i] if i <= len(b) else 1
        _need(x == y or x == 1 or y == 1, f"shapes {a} and {b} do not broadcast")
        out.append(max(x, y))
    return tuple(reversed(out))


# ---- matmul ----------------------------------------------------------------------------------


def matmul_dims(a: Shape, b: Shape, attrs: MatMul) -> tuple[Shape, int, int, int]:
    """(batch shape, M, N, K) of a matmul."""
    _need(len(a) >= 2 and len(b) >= 2, f"matmul needs operands of rank >= 2, got {a} and {b}")
    m, k = (a[-1], a[-2]) if attrs.transpose_a else (a[-2], a[-1])
    kb, n = (b[-1], b[-2]) if attrs.transpose_b else (b[-2], b[-1])
    _need(k == kb, f"matmul contraction mismatch: {a} x {b} (K {k} vs {kb})")
    return broadcast_shapes(a[:-2], b[:-2]), m, n, k


def _matmul_infer(ins: tuple[Tensor, ...], attrs: MatMul) -> tuple[OutSpec, ...]:
    _need(len(ins) in (2, 3), "matmul takes (a, b) or (a, b, bias)")
    batch, m, n, _ = matmul_dims(ins[0].shape, ins[1].shape, attrs)
    if len(ins) == 3:
        _need(ins[2].shape == (n,), f"matmul bias must be [{n}], got {ins[2].shape}")
    return (((*batch, m, n), None),)


def _matmul_work(op: Op) -> OpWork:
    batch, m, n, k = matmul_dims(op.inputs[0].shape, op.inputs[1].shape, op.attrs)  # type: ignore[arg-type]
    outer = math.prod(batch) * m * n
    return _plain(op, 2.0 * outer * k + (outer if len(op.inputs) == 3 else 0))


_rule(OpKind.MATMUL, _matmul_infer, _matmul_work)


# ---- attention -------------------------------------------------------------------------------


def _attention_infer(ins: tuple[Tensor, ...], a: Attention) -> tuple[OutSpec, ...]:
    _need(len(ins) == 3, "attention takes (q, k, v)")
    q, k, v = (t.shape for t in ins)
    _need(len(q) == 3 and len(k) == 3 and k == v, f"attention shapes q{q} k{k} v{v}")
    _need(a.num_heads % a.num_kv_heads == 0, "num_heads must be a multiple of num_kv_heads")
    _need(q[2] == a.num_heads * a.head_dim, f"q has {q[2]} channels, heads x head_dim differ")
    _need(k[2] == a.num_kv_heads * a.head_dim, f"k has {k[2]} channels, kv heads differ")
    _need(q[0] == k[0] and q[1] <= k[1], f"q{q} must share batch with k{k} and Lq <= Lk")
    _need(a.kv_group >= 1 and a.kv_shared >= 0, "kv_group must be >= 1 and kv_shared >= 0")
    _need(a.chunk is None or (a.chunk >= 1 and a.causal), "chunked attention must be causal, "
          f"with chunk >= 1 (got chunk {a.chunk})")
    return ((q, None),)


def _attention_work(op: Op) -> OpWork:
    a: Attention = op.attrs  # type: ignore[assignment]
    q, k, v = op.inputs
    b, lq, _ = q.shape
    lk = k.shape[1]
    pairs = attended_pairs(lq, lk, a.causal, a.window, a.chunk) * b * a.num_heads
    flops = 4.0 * a.head_dim * pairs + 5.0 * pairs  # QK^T and PV, plus softmax
    if a.softcap is not None:
        flops += float(UNARY_FLOPS[UnaryFn.SOFTCAP]) * pairs
    if a.temperature is not None:  # one multiply per query channel
        flops += float(q.numel)
    kv_rows = attended_key_rows(lq, lk, a.window, a.chunk)
    kv_frac = kv_rows / lk if lk else 0.0
    kv_frac *= shared_prefix_fraction(a.kv_group, a.kv_shared, lk)
    return OpWork(flops, (q.nbytes, k.nbytes * kv_frac, v.nbytes * kv_frac), (op.outputs[0].nbytes,))


_rule(OpKind.ATTENTION, _attention_infer, _attention_work)


# ---- elementwise, norms, softmax -------------------------------------------------------------


def _same_as_first(ins: tuple[Tensor, ...], _: object) -> tuple[OutSpec, ...]:
    return ((ins[0].shape, None),)


def _unary_work(op: Op) -> OpWork:
    fn = op.attrs.fn  # type: ignore[union-attr]
    return _plain(op, float(UNARY_FLOPS[fn] * op.outputs[0].numel))  # type: ignore[index]


def _binary_infer(ins: tuple[Tensor, ...], _: Binary) -> tuple[OutSpec, ...]:
    _need(len(ins) == 2, "binary ops take two inputs")
    return ((broadcast_shapes(ins[0].shape, ins[1].shape), None),)


def _norm_infer(ins: tuple[Tensor, ...], attrs: RMSNorm | LayerNorm) -> tuple[OutSpec, ...]:
    want = (1 + attrs.weighted) if isinstance(attrs, RMSNorm) else 3
    _need(len(ins) == want, f"{type(attrs).__name__} takes {want} inputs")
    hidden = ins[0].shape[-1]
    if isinstance(attrs, RMSNorm) and attrs.group:
        _need(hidden % attrs.group == 0, f"{hidden} channels do not split into groups of {attrs.group}")
        hidden = attrs.group
    for p in ins[1:]:
        _need(p.shape == (hidden,), f"norm parameter {p.name} must be [{hidden}], got {p.shape}")
    return ((ins[0].shape, None),)


def _per_element(flops_per_element: int) -> Callable[[Op], OpWork]:
    return lambda op: _plain(op, float(flops_per_element * op.outputs[0].numel))


_rule(OpKind.UNARY, lambda ins, _: _same_as_first(ins, _), _unary_work)
_rule(OpKind.BINARY, _binary_infer, _per_element(1))
def _rmsnorm_work(op: Op) -> OpWork:
    weighted = op.attrs.weighted  # type: ignore[union-attr]
    return _plain(op, float((4 if weighted else 3) * op.outputs[0].numel))


_rule(OpKind.RMSNORM, _norm_infer, _rmsnorm_work)
_rule(OpKind.LAYERNORM, _norm_infer, _per_element(7))
_rule(OpKind.SOFTMAX, lambda ins, a: _same_as_first(ins, a), _per_element(5))


# ---- embedding, rope, slice, kv cache --------------------------------------------------------


def _embedding_infer(ins: tuple[Tensor, ...], _: Embedding) -> tuple[OutSpec, ...]:
    _need(len(ins) == 2 and len(ins[1].shape) == 2, "embedding takes (ids, table [V, H])")
    _need(not ins[0].dtype.info.is_float, f"embedding ids must be integers, got {ins[0].dtype}")
    return (((*ins[0].shape, ins[1].shape[1]), None),)


def _embedding_work(op: Op) -> OpWork:
    ids, table = op.inputs
    rows = min(ids.numel, table.shape[0]) * table.shape[1]  # each distinct row read once
    scaled = op.attrs.scale != 1.0  # type: ignore[union-attr]
    flops = float(op.outputs[0].numel) if scaled else 0.0
    return OpWork(flops, (ids.nbytes, table.dtype.nbytes(rows)), (op.outputs[0].nbytes,))


def _rope_infer(ins: tuple[Tensor, ...], a: Rope) -> tuple[OutSpec, ...]:
    _need(len(ins) == 2, "rope takes (x, position_ids)")
    x, pos = ins
    _need(len(x.shape) == 3 and x.shape[2] == a.num_heads * a.head_dim, f"rope x {x.shape}")
    _need(pos.shape == x.shape[:2], f"rope positions {pos.shape} must be {x.shape[:2]}")
    _need(a.rotary_dim % 2 == 0 and a.rotary_offset >= 0
          and a.rotary_offset + a.rotary_dim <= a.head_dim,
          "rotary_dim must be even and the rotated channels within the head")
    return ((x.shape, None),)


def _rope_work(op: Op) -> OpWork:
    a: Rope = op.attrs  # type: ignore[assignment]
    b, seq, _ = op.inputs[0].shape
    return _plain(op, 3.0 * b * seq * a.num_heads * a.rotary_dim)


def _slice_infer(ins: tuple[Tensor, ...], a: Slice) -> tuple[OutSpec, ...]:
    shape = list(ins[0].shape)
    axis = a.axis % len(shape)
    _need(0 <= a.start < a.stop <= shape[axis], f"slice {a.start}:{a.stop} of axis size {shape[axis]}")
    shape[axis] = a.stop - a.start
    return ((tuple(shape), None),)


def _slice_work(op: Op) -> OpWork:
    out = op.outputs[0]
    return OpWork(0.0, (op.inputs[0].dtype.nbytes(out.numel),), (out.nbytes,))


def has_past(op: Op) -> bool:
    """Whether a KV_CACHE_WRITE appends to a past cache (its first input) or starts one."""
    return len(op.inputs) > op.attrs.pieces  # type: ignore[union-attr]


def _kv_infer(ins: tuple[Tensor, ...], a: KVCacheWrite) -> tuple[OutSpec, ...]:
    _need(a.pieces >= 1 and len(ins) in (a.pieces, a.pieces + 1),
          f"kv_cache_write takes ({a.pieces} new) or (past, {a.pieces} new)")
    pieces = [t.shape for t in ins[-a.pieces:]]
    _need(all(len(p) == 3 and p[:2] == pieces[0][:2] for p in pieces),
          f"kv_cache_write entries must be [B, L, C] alike, got {pieces}")
    new = (*pieces[0][:2], sum(p[2] for p in pieces))
    if len(ins) == a.pieces:
        return ((new, None),)
    past = ins[0].shape
    _need(past[0] == new[0] and past[2] == new[2], f"cache {past} and entries {new} differ")
    return (((new[0], past[1] + new[1], new[2]), ins[0].dtype),)


def _kv_work(op: Op) -> OpWork:
    pieces, out = op.inputs[-op.attrs.pieces:], op.outputs[0]  # type: ignore[union-attr]
    reads = (0.0,) * (len(op.inputs) - len(pieces)) + tuple(t.nbytes for t in pieces)
    return OpWork(0.0, reads, (out.dtype.nbytes(sum(t.numel for t in pieces)),))


_rule(OpKind.EMBEDDING, _embedding_infer, _embedding_work)
_rule(OpKind.ROPE, _rope_infer, _rope_work)
_rule(OpKind.SLICE, _slice_infer, _slice_work)
_rule(OpKind.KV_CACHE_WRITE, _kv_infer, _kv_work)


# ---- mixture of experts ----------------------------------------------------------------------


def _router_infer(ins: tuple[Tensor, ...], a: MoERouter) -> tuple[OutSpec, ...]:
    want = 2 if a.correction_bias else 1
    _need(len(ins) == want and ins[0].shape[-1] == a.num_experts,
          "router takes logits [..., E]" + (" and a correction bias [E]" if want == 2 else ""))
    if a.correction_bias:
        _need(ins[1].shape == (a.num_experts,), f"router bias must be [{a.num_experts}]")
    _need(a.groups >= 1 and a.num_experts % a.groups == 0
          and 1 <= a.topk_groups <= a.groups, f"router groups {a.groups}/{a.topk_groups} "
          f"must divide {a.num_experts} experts, the chosen ones at most all groups")
    _need(0 < a.top_k <= a.num_experts // a.groups * a.topk_groups,
          f"top_k {a.top_k} out of range")
    _need(a.scoring in ("softmax", "sigmoid"), f"router scoring {a.scoring!r} is not "
          "'softmax' or 'sigmoid'")
    out = (*ins[0].shape[:-1], a.top_k)
    return ((out, None), (out, DType.INT32))


def _router_work(op: Op) -> OpWork:
    a: MoERouter = op.attrs  # type: ignore[assignment]
    tokens = op.inputs[0].numel // a.num_experts
    # score, (bias add), group sums and top-k, weights (normalise, scale)
    per_expert = 5 + (1 if a.correction_bias else 0) + (2 if a.groups > 1 else 0)
    per_choice = 2 + (1 if a.scaling_factor != 1.0 else 0)
    return _plain(op, float(tokens * (per_expert * a.num_experts + per_choice * a.top_k)))


def expert_token_counts(a: MoEExperts, tokens: int) -> tuple[float, ...]:
    """Tokens per expert: the op's recorded routing, or the uniform expectation."""
    if a.expert_token_counts is not None:
        return tuple(float(c) for c in a.expert_token_counts)
    return (tokens * a.top_k / a.num_experts,) * a.num_experts


def experts_touched(a: MoEExperts, tokens: int) -> float:
    """Experts that receive at least one token (expected value under uniform routing)."""
    if a.expert_token_counts is not None:
        return float(sum(1 for c in a.expert_token_counts if c > 0))
    return a.num_experts * (1.0 - (1.0 - a.top_k / a.num_experts) ** tokens)


def _experts_infer(ins: tuple[Tensor, ...], a: MoEExperts) -> tuple[OutSpec, ...]:
    _need(len(ins) == 6, "moe_experts takes (x, weights, indices, w_gate, w_up, w_down)")
    x, w, idx, wg, wu, wd = (t.shape for t in ins)
    e, f, h = wg
    _need(e == a.num_experts and x[-1] == h, f"expert gate {wg} does not fit x {x}")
    _need(wu == wg and wd == (e, h, f), f"expert up {wu} / down {wd} do not match gate {wg}")
    _need(w == idx == (*x[:-1], a.top_k), f"routing {w}/{idx} must be {(*x[:-1], a.top_k)}")
    if a.expert_token_counts is not None:
        _need(len(a.expert_token_counts) == e, "expert_token_counts needs one count per expert")
    return ((x, None),)


def _experts_work(op: Op) -> OpWork:
    a: MoEExperts = op.attrs  # type: ignore[assignment]
    x = op.inputs[0]
    _, f, h = op.inputs[3].shape
    tokens = x.numel // h
    routed = sum(expert_token_counts(a, tokens))
    # the routing weight multiplies the output (or, with scale_input, the input: the same h
    # multiplies), then the weighted output is added: 2h per routed token either way
    flops = routed * (6.0 * h * f + (UNARY_FLOPS[a.activation] + 1) * f + 2.0 * h)
    frac = experts_touched(a, tokens) / a.num_experts
    reads = tuple(t.nbytes for t in op.inputs[:3]) + tuple(t.nbytes * frac for t in op.inputs[3:])
    return OpWork(flops, reads, (op.outputs[0].nbytes,))


_rule(OpKind.MOE_ROUTER, _router_infer, _router_work)
_rule(OpKind.MOE_EXPERTS, _experts_infer, _experts_work)


# ---- convolution -----------------------------------------------------------------------------


# conv2d's shape and work rules are in `cnn_ops` (with the other vision ops).



# ---- GEMM view -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Gemm:
    """`count` independent GEMMs of [m, k] x [k, n]: 2·count·m·n·k FLOPs.

    `count` and `m` may be fractional expectations: experts touched and tokens per touched
    expert under uniform routing, or attention's attended (query, key) pairs per key row.
    """

    count: float
    m: float
    n: int
    k: int

    @property
    def flops(self) -> float:
        return 2.0 * self.count * self.m * self.n * self.k


def _matmul_gemms(op: Op) -> tuple[Gemm, ...]:
    a, b = op.inputs[0].shape, op.inputs[1].shape
    batch, m, n, k = matmul_dims(a, b, op.attrs)  # type: ignore[arg-type]
    if math.prod(b[:-2]) == 1:  # one weight broadcast over the batch: the batch is more rows
        return (Gemm(1.0, float(math.prod(batch) * m), n, k),)
    return (Gemm(float(math.prod(batch)), float(m), n, k),)


def _conv_gemms(op: Op) -> tuple[Gemm, ...]:
    a: Conv2d = op.attrs  # type: ignore[assignment]
    o, c_per_group, kh, kw = op.inputs[1].shape
    n_img, _, oh, ow = op.outputs[0].shape
    # implicit GEMM per group: output pixels x output channels, over input channels x taps
    return (Gemm(float(a.groups), float(n_img * oh * ow), o // a.groups, c_per_group * kh * kw),)


def _attention_gemms(op: Op) -> tuple[Gemm, ...]:
    a: Attention = op.attrs  # type: ignore[assignment]
    q, k, _ = op.inputs
    b, lq, _ = q.shape
    lk = k.shape[1]
    kv_rows = attended_key_rows(lq, lk, a.window, a.chunk)
    pairs = attended_pairs(lq, lk, a.causal, a.window, a.chunk)
    # per (batch row, head): scores [m, kv_rows] = q k^T and out [m, D] = p v, where m is the
    # attended pairs per key row (Lq unmasked; (L+1)/2 for causal prefill), so FLOPs are exact
    rows = pairs / kv_rows if kv_rows else 0.0
    count = float(b * a.num_heads)
    return (Gemm(count, rows, kv_rows, a.head_dim), Gemm(count, rows, a.head_dim, kv_rows))


def _experts_gemms(op: Op) -> tuple[Gemm, ...]:
    a: MoEExperts = op.attrs  # type: ignore[assignment]
    _, f, h = op.inputs[3].shape
    tokens = op.inputs[0].numel // h
    touched = experts_touched(a, tokens)
    rows = sum(expert_token_counts(a, tokens)) / touched if touched else 0.0
    return (Gemm(touched, rows, f, h), Gemm(touched, rows, f, h), Gemm(touched, rows, h, f))


_GEMMS: dict[OpKind, Callable[[Op], tuple[Gemm, ...]]] = {
    OpKind.MATMUL: _matmul_gemms,
    OpKind.CONV2D: _conv_gemms,
    OpKind.ATTENTION: _attention_gemms,
    OpKind.MOE_EXPERTS: _experts_gemms,
}

# latent attention and the vision-network kinds live in their own modules, registered here
from tegel.workload import cnn_ops, mla  # noqa: E402, F401

_rule(OpKind.LATENT_ATTENTION, mla.latent_attention_infer, mla.latent_attention_work)
_GEMMS[OpKind.LATENT_ATTENTION] = mla.latent_attention_gemms


def gemm_dims(op: Op) -> tuple[Gemm, ...]:
    """The GEMMs an op performs; () for kinds that do none.

    matmul: one GEMM per batch element, or one taller GEMM when a 2-D weight is broadcast;
    conv2d: an implicit GEMM per group (m = N·Hout·Wout, n = O/groups, k = C/groups·kh·kw);
    attention: q·kᵀ and p·v per (batch row, head) over the attended pairs; MoE experts: the
    gate, up and down GEMMs of each touched expert (m = its expected tokens); latent attention:
    those of the form it is priced in (`workload.mla`). Their FLOPs are
    `work(op).flops` less the bias, softmax and elementwise terms.
    """
    rule = _GEMMS.get(op.kind)
    return rule(op) if rule else ()


assert set(RULES) == set(OpKind), "every op kind needs a rule"
