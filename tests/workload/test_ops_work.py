"""FLOPs and minimal bytes of each op kind against closed forms and brute-force counts.

Properties (hypothesis): work is non-negative, each input is read at most once in full, each
output written at most once in full, and batch-parallel ops scale linearly with batch.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tegel.workload import GraphBuilder
from tegel.workload.dtypes import DType
from tegel.workload.ir import (
    Attention,
    BatchNorm,
    Binary,
    BinaryFn,
    Concat,
    Conv2d,
    Embedding,
    KVCacheWrite,
    LatentAttention,
    LayerNorm,
    MatMul,
    MoEExperts,
    MoERouter,
    Op,
    OpKind,
    Pool2d,
    PoolFn,
    Reshape,
    RMSNorm,
    Rope,
    Slice,
    Softmax,
    Tensor,
    Transpose,
    Unary,
    UnaryFn,
)
from tegel.workload.ops import UNARY_FLOPS, OpWork, attended_pairs, work

F32, BF16, FP8, FP4, I4, I32 = (DType.FP32, DType.BF16, DType.FP8_E4M3, DType.FP4_E2M1,
                                DType.INT4, DType.INT32)


def make_op(kind: OpKind, attrs: object, *specs: tuple[tuple[int, ...], DType],
            out_dtype: DType = BF16) -> Op:
    """One op on inputs of the given (shape, dtype), built and verified through GraphBuilder."""
    g = GraphBuilder("one", activation_dtype=out_dtype)
    ins = tuple(g.input(f"in{i}", shape, dtype) for i, (shape, dtype) in enumerate(specs))
    outs = g.op(kind, attrs, ins, "out")  # type: ignore[arg-type]
    g.build(outs)
    return g.ops[-1]


# ---- matmul ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("transpose_a", "transpose_b"), [(False, False), (True, True)])
def test_matmul_flops_and_bytes(transpose_a: bool, transpose_b: bool) -> None:
    b, m, n, k = 3, 5, 7, 11
    a_shape = (b, k, m) if transpose_a else (b, m, k)
    b_shape = (b, n, k) if transpose_b else (b, k, n)
    op = make_op(OpKind.MATMUL, MatMul(transpose_a, transpose_b), (a_shape, BF16), (b_shape, FP8))
    w = work(op)
    assert w.flops == 2 * b * m * n * k
    assert w.read_bytes == (b * m * k * 2, b * k * n * 1)
    assert w.write_bytes == (b * m * n * 2,)


def test_matmul_bias_adds_one_flop_per_output() -> None:
    op = make_op(OpKind.MATMUL, MatMul(transpose_b=True), ((4, 6, 8), F32), ((10, 8), F32),
                 ((10,), F32))
    w = work(op)
    assert w.flops == 2 * 24 * 10 * 8 + 24 * 10
    assert w.read_bytes == (4 * 6 * 8 * 4, 80 * 4, 40)


def test_matmul_broadcast_batch_counts_every_pair() -> None:
    op = make_op(OpKind.MATMUL, MatMul(), ((2, 1, 3, 4), F32), ((5, 4, 6), F32))
    assert work(op).flops == 2 * (2 * 5) * 3 * 6 * 4


@pytest.mark.parametrize(
    ("dtype", "weight_bytes"),
    [(BF16, 64 * 128 * 2), (FP8, 64 * 128), (FP4, 64 * 128 * 4.25 / 8), (I4, 64 * 128 * 4.5 / 8)],
)
def test_weight_bytes_by_dtype(dtype: DType, weight_bytes: float) -> None:
    op = make_op(OpKind.MATMUL, MatMul(transpose_b=True), ((1, 64), BF16), ((128, 64), dtype))
    assert work(op).read_bytes[1] == weight_bytes


# ---- attention -------------------------------------------------------------------------------


def brute_pairs(lq: int, lk: int, causal: bool, window: int | None) -> int:
    """Count the visible (query, key) pairs of the mask the reference applies."""
    q_pos = np.arange(lk - lq, lk)[:, None]
    k_pos = np.arange(lk)[None, :]
    visible = np.ones((lq, lk), dtype=bool)
    if causal:
        visible &= k_pos <= q_pos
    if window is not None:
        visible &= k_pos > q_pos - window
    return int(visible.sum())


@st.composite
def lq_lk(draw: st.DrawFn) -> tuple[int, int]:
    lk = draw(st.integers(1, 64))
    return draw(st.integers(1, lk)), lk


@settings(max_examples=50, deadline=None)
@given(lens=lq_lk(), window=st.none() | st.integers(1, 80))
def test_attended_pairs_counts_causal_mask(lens: tuple[int, int], window: int | None) -> None:
    lq, lk = lens
    assert attended_pairs(lq, lk, True, window) == brute_pairs(lq, lk, True, window)


@settings(max_examples=50, deadline=None)
@given(lens=lq_lk())
def test_attended_pairs_counts_full_mask(lens: tuple[int, int]) -> None:
    lq, lk = lens
    assert attended_pairs(lq, lk, False, None) == lq * lk == brute_pairs(lq, lk, False, None)


def test_attended_pairs_counts_non_causal_window_mask() -> None:
    assert attended_pairs(3, 4, False, 2) == brute_pairs(3, 4, False, 2)


@pytest.mark.parametrize(
    ("lq", "lk", "window", "kv_rows"),
    [(16, 16, None, 16), (1, 40, None, 40), (1, 40, 8, 8), (16, 16, 4, 16), (4, 40, 8, 11)],
)
def test_attention_work(lq: int, lk: int, window: int | None, kv_rows: int) -> None:
    b, hq, hkv, d = 2, 8, 2, 16
    a = Attention(hq, hkv, d, 0.25, True, window)
    op = make_op(OpKind.ATTENTION, a, ((b, lq, hq * d), BF16), ((b, lk, hkv * d), FP8),
                 ((b, lk, hkv * d), FP8))
    w = work(op)
    pairs = brute_pairs(lq, lk, True, window) * b * hq
    assert w.flops == 4 * d * pairs + 5 * pairs
    kv_bytes = b * kv_rows * hkv * d  # fp8: one byte each; only rows some query can see
    assert w.read_bytes == pytest.approx((b * lq * hq * d * 2, kv_bytes, kv_bytes))
    assert w.write_bytes == (b * lq * hq * d * 2,)


# ---- elementwise, norms ----------------------------------------------------------------------


@pytest.mark.parametrize("fn", list(UnaryFn))
def test_unary_flops_per_element(fn: UnaryFn) -> None:
    w = work(make_op(OpKind.UNARY, Unary(fn), ((3, 5), BF16)))
    assert w.flops == UNARY_FLOPS[fn] * 15
    assert w.read_bytes == (30,) and w.write_bytes == (30,)


def test_binary_broadcast_counts_output_elements_and_reads_inputs_once() -> None:
    w = work(make_op(OpKind.BINARY, Binary(BinaryFn.ADD), ((4, 1, 8), F32), ((3, 1), F32)))
    assert w.flops == 4 * 3 * 8
    assert w.read_bytes == (4 * 8 * 4, 3 * 4)
    assert w.write_bytes == (4 * 3 * 8 * 2,)


@pytest.mark.parametrize(
    ("kind", "attrs", "params", "per_element"),
    [(OpKind.RMSNORM, RMSNorm(1e-5), 1, 4), (OpKind.LAYERNORM, LayerNorm(1e-5), 2, 7),
     (OpKind.SOFTMAX, Softmax(), 0, 5)],
)
def test_norm_and_softmax_flops(kind: OpKind, attrs: object, params: int, per_element: int) -> None:
    specs = [((2, 3, 16), BF16)] + [((16,), F32)] * params
    w = work(make_op(kind, attrs, *specs))
    assert w.flops == per_element * 96
    assert w.read_bytes == (192,) + (64,) * params


def test_rope_flops_cover_rotary_channels_only() -> None:
    op = make_op(OpKind.ROPE, Rope(4, 16, 8, 1e4), ((2, 3, 64), BF16), ((2, 3), I32))
    assert work(op).flops == 3 * 2 * 3 * 4 * 8


# ---- data movement ---------------------------------------------------------------------------


def test_embedding_reads_only_gathered_rows() -> None:
    v, h = 1000, 64
    op = make_op(OpKind.EMBEDDING, Embedding(), ((2, 5), I32), ((v, h), BF16))
    w = work(op)
    assert w.flops == 0
    assert w.read_bytes == (10 * 4, 10 * h * 2)
    assert w.write_bytes == (10 * h * 2,)


def test_embedding_read_is_at_most_the_table() -> None:
    op = make_op(OpKind.EMBEDDING, Embedding(), ((4, 8), I32), ((10, 16), BF16))
    assert work(op).read_bytes[1] <= op.inputs[1].nbytes


@pytest.mark.parametrize(("new_dtype", "cache_dtype"), [(BF16, BF16), (BF16, FP8)])
def test_kv_cache_write_touches_only_new_entries(new_dtype: DType, cache_dtype: DType) -> None:
    b, past, new, c = 2, 100, 3, 64
    op = make_op(OpKind.KV_CACHE_WRITE, KVCacheWrite(), ((b, past, c), cache_dtype),
                 ((b, new, c), new_dtype))
    assert op.outputs[0].shape == (b, past + new, c)
    assert op.outputs[0].dtype is cache_dtype
    w = work(op)
    assert w.flops == 0
    assert w.read_bytes == (0.0, b * new * c * new_dtype.bits / 8)
    assert w.write_bytes == (b * new * c * cache_dtype.bits / 8,)


def test_kv_cache_write_without_past() -> None:
    w = work(make_op(OpKind.KV_CACHE_WRITE, KVCacheWrite(), ((2, 7, 32), BF16)))
    assert w.read_bytes == (2 * 7 * 32 * 2,) and w.write_bytes == (2 * 7 * 32 * 2,)


@pytest.mark.parametrize(("axis", "start", "stop"), [(1, 9, 10), (-1, 0, 4), (0, 1, 2)])
def test_slice_reads_only_the_slice(axis: int, start: int, stop: int) -> None:
    op = make_op(OpKind.SLICE, Slice(axis, start, stop), ((2, 10, 8), F32))
    out = math.prod(op.outputs[0].shape)
    w = work(op)
    assert w.flops == 0
    assert w.read_bytes == (out * 4,) and w.write_bytes == (out * 2,)


# ---- mixture of experts ----------------------------------------------------------------------


def moe_op(e: int, k: int, tokens: int, h: int, f: int, counts: tuple[int, ...] | None) -> Op:
    return make_op(OpKind.MOE_EXPERTS, MoEExperts(e, k, UnaryFn.SILU, counts),
                   ((tokens, h), BF16), ((tokens, k), BF16), ((tokens, k), I32),
                   ((e, f, h), FP8), ((e, f, h), FP8), ((e, h, f), FP8))


def test_moe_reads_only_touched_experts() -> None:
    e, k, tokens, h, f = 8, 2, 3, 16, 32
    counts = (2, 0, 0, 3, 0, 1, 0, 0)  # 6 = tokens * k routed, 3 experts touched
    w = work(moe_op(e, k, tokens, h, f, counts))
    assert w.read_bytes[3:] == pytest.approx((3 * f * h,) * 3)  # fp8: 1 B per element
    assert w.read_bytes[:3] == (tokens * h * 2, tokens * k * 2, tokens * k * 4)
    per_token = 6 * h * f + (UNARY_FLOPS[UnaryFn.SILU] + 1) * f + 2 * h
    assert w.flops == 6 * per_token


@pytest.mark.parametrize("tokens", [1, 4, 64])
def test_moe_uniform_routing_expectation(tokens: int) -> None:
    e, k, h, f = 8, 2, 16, 32
    w = work(moe_op(e, k, tokens, h, f, None))
    touched = e * (1 - (1 - k / e) ** tokens)
    assert w.read_bytes[3:] == pytest.approx((touched * f * h,) * 3)
    per_token = 6 * h * f + (UNARY_FLOPS[UnaryFn.SILU] + 1) * f + 2 * h
    assert w.flops == pytest.approx(tokens * k * per_token)
    if tokens == 1:
        assert w.read_bytes[3] == pytest.approx(k * f * h)  # one token touches exactly k experts


def test_router_flops() -> None:
    op = make_op(OpKind.MOE_ROUTER, MoERouter(8, 2), ((3, 5, 8), F32))
    assert [t.dtype for t in op.outputs] == [BF16, I32]
    assert work(op).flops == 15 * (5 * 8 + 2 * 2)


# ---- convolution -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x", "w", "stride", "padding", "groups", "bias"),
    [((2, 3, 32, 32), (16, 3, 3, 3), (1, 1), (1, 1), 1, True),
     ((1, 8, 15, 9), (8, 2, 3, 3), (2, 2), (0, 1), 4, False)],
)
def test_conv2d_flops(x, w, stride, padding, groups, bias) -> None:
    specs = [(x, BF16), (w, BF16)] + ([((w[0],), BF16)] if bias else [])
    op = make_op(OpKind.CONV2D, Conv2d(stride, padding, groups), *specs)
    oh = (x[2] + 2 * padding[0] - w[2]) // stride[0] + 1
    ow = (x[3] + 2 * padding[1] - w[3]) // stride[1] + 1
    outputs = x[0] * w[0] * oh * ow
    assert op.outputs[0].shape == (x[0], w[0], oh, ow)
    assert work(op).flops == 2 * outputs * (x[1] // groups) * w[2] * w[3] + (outputs if bias else 0)


# ---- properties ------------------------------------------------------------------------------

DTYPES = st.sampled_from([F32, BF16, FP8, FP4, I4])


@st.composite
def random_op(draw: st.DrawFn) -> Op:
    """An op of a random kind with small random shapes and storage dtypes."""
    kind = draw(st.sampled_from(sorted(OpKind, key=lambda k: k.value)))
    dt = draw(DTYPES)
    b, n, h = draw(st.integers(1, 3)), draw(st.integers(1, 6)), draw(st.integers(1, 8)) * 2
    if kind is OpKind.MATMUL:
        m, k = draw(st.integers(1, 6)), draw(st.integers(1, 6))
        specs = [((b, n, k), dt), ((k, m), draw(DTYPES))]
        return make_op(kind, MatMul(), *specs, *([((m,), dt)] if draw(st.booleans()) else []))
    if kind is OpKind.ATTENTION:
        hkv, group, d = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 4))
        lk = draw(st.integers(1, 12))
        lq = draw(st.integers(1, lk))
        a = Attention(hkv * group, hkv, d, 1.0, True, draw(st.none() | st.integers(1, 14)))
        kv = ((b, lk, hkv * d), dt)
        return make_op(kind, a, ((b, lq, hkv * group * d), dt), kv, kv)
    if kind in (OpKind.UNARY, OpKind.SOFTMAX):
        attrs = Unary(draw(st.sampled_from(list(UnaryFn)))) if kind is OpKind.UNARY else Softmax()
        return make_op(kind, attrs, ((b, n, h), dt))
    if kind is OpKind.BINARY:
        return make_op(kind, Binary(BinaryFn.MUL), ((b, n, h), dt), ((h,), dt))
    if kind is OpKind.RMSNORM:
        return make_op(kind, RMSNorm(1e-5), ((b, n, h), dt), ((h,), F32))
    if kind is OpKind.LAYERNORM:
        return make_op(kind, LayerNorm(1e-5), ((b, n, h), dt), ((h,), F32), ((h,), F32))
    if kind is OpKind.EMBEDDING:
        vocab = draw(st.integers(1, 40))
        return make_op(kind, Embedding(), ((b, n), I32), ((vocab, h), dt))
    if kind is OpKind.ROPE:
        heads, d = draw(st.integers(1, 3)), h
        rotary = draw(st.integers(1, d // 2)) * 2
        return make_op(kind, Rope(heads, d, rotary, 1e4), ((b, n, heads * d), dt), ((b, n), I32))
    if kind is OpKind.MOE_ROUTER:
        groups = draw(st.integers(1, 2))
        e = draw(st.integers(1, 4)) * groups
        top_groups = draw(st.integers(1, groups))
        biased = draw(st.booleans())
        attrs = MoERouter(e, draw(st.integers(1, e // groups * top_groups)), groups=groups,
                          topk_groups=top_groups, correction_bias=biased,
                          scaling_factor=draw(st.sampled_from([1.0, 2.5])))
        return make_op(kind, attrs, ((b, n, e), dt), *([((e,), F32)] if biased else []))
    if kind is OpKind.LATENT_ATTENTION:
        heads, dn, dr, dv, dc = (draw(st.integers(1, 3)), draw(st.integers(1, 4)),
                                 draw(st.integers(1, 2)) * 2, draw(st.integers(1, 4)),
                                 draw(st.integers(1, 6)))
        lk = draw(st.integers(1, 12))
        lq = draw(st.integers(1, lk))
        la = LatentAttention(heads, dn, dr, dv, dc, 0.5, draw(st.booleans()))
        return make_op(kind, la, ((b, lq, heads * (dn + dr)), dt), ((b, lk, dc + dr), dt),
                       ((heads * (dn + dv), dc), dt))
    if kind is OpKind.MOE_EXPERTS:
        e = draw(st.integers(1, 6))
        k, f = draw(st.integers(1, e)), draw(st.integers(1, 8))
        tokens = b * n
        counts = None
        if draw(st.booleans()):
            counts = tuple(draw(st.lists(st.integers(0, tokens), min_size=e, max_size=e)))
        route = ((b, n, k), BF16)
        return make_op(kind, MoEExperts(e, k, UnaryFn.SILU, counts), ((b, n, h), dt), route,
                       ((b, n, k), I32), ((e, f, h), dt), ((e, f, h), dt), ((e, h, f), dt))
    if kind is OpKind.KV_CACHE_WRITE:
        past = draw(st.integers(0, 8))
        pieces = draw(st.integers(1, 2))
        new = [((b, n, h), dt)] + ([((b, n, 2), dt)] if pieces == 2 else [])
        width = h + (2 if pieces == 2 else 0)
        return make_op(kind, KVCacheWrite(pieces),
                       *([((b, past, width), draw(DTYPES)), *new] if past else new))
    if kind is OpKind.CONV2D:
        groups = draw(st.integers(1, 2))
        c, o = draw(st.integers(1, 3)) * groups, draw(st.integers(1, 3)) * groups
        kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        size = draw(st.integers(3, 8))
        stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
        return make_op(kind, Conv2d(stride, (1, 0), groups), ((b, c, size, size), dt),
                       ((o, c // groups, kh, kw), dt))
    if kind in (OpKind.POOL2D, OpKind.BATCHNORM):
        c, size = draw(st.integers(1, 3)), draw(st.integers(3, 8))
        x = ((b, c, size, size), dt)
        if kind is OpKind.BATCHNORM:
            return make_op(kind, BatchNorm(1e-5), x, *[((c,), F32)] * 4)
        k = draw(st.integers(1, 3))
        pool = Pool2d(draw(st.sampled_from(list(PoolFn))), (k, k), (draw(st.integers(1, 2)),) * 2,
                      (draw(st.integers(0, k // 2)),) * 2, draw(st.booleans()), draw(st.booleans()))
        return make_op(kind, pool, x)
    if kind is OpKind.RESHAPE:
        return make_op(kind, Reshape((b * n, h)), ((b, n, h), dt))
    if kind is OpKind.TRANSPOSE:
        return make_op(kind, Transpose(draw(st.permutations([0, 1, 2]))), ((b, n, h), dt))
    if kind is OpKind.CONCAT:
        return make_op(kind, Concat(1), ((b, n, h), dt), ((b, draw(st.integers(1, 4)), h), dt))
    assert kind is OpKind.SLICE
    start = draw(st.integers(0, n - 1))
    return make_op(kind, Slice(1, start, draw(st.integers(start + 1, n))), ((b, n, h), dt))


@settings(max_examples=50, deadline=None)
@given(op=random_op())
def test_work_is_non_negative_and_bounded_by_tensor_sizes(op: Op) -> None:
    w = work(op)
    assert len(w.read_bytes) == len(op.inputs) and len(w.write_bytes) == len(op.outputs)
    assert w.flops >= 0
    for t, read in zip(op.inputs, w.read_bytes, strict=True):
        assert 0 <= read <= t.nbytes + 1e-9, (op.kind, t.name)
    for t, written in zip(op.outputs, w.write_bytes, strict=True):
        assert 0 <= written <= t.nbytes + 1e-9, (op.kind, t.name)
    assert w.bytes_read == pytest.approx(sum(w.read_bytes))


def doubled_batch(op: Op) -> Op:
    """The same op on inputs with a doubled leading (batch) axis; broadcast weights stay."""
    g = GraphBuilder("twice", activation_dtype=op.outputs[0].dtype)
    ins = []
    for t in op.inputs:
        shape = (2 * t.shape[0], *t.shape[1:]) if len(t.shape) == 3 else t.shape
        ins.append(g.input(t.name, shape, t.dtype))
    g.op(op.kind, op.attrs, tuple(ins), "out")
    return g.ops[-1]


def batched_work(op: Op) -> tuple[OpWork, OpWork]:
    return work(op), work(doubled_batch(op))


@settings(max_examples=50, deadline=None)
@given(b=st.integers(1, 4), n=st.integers(1, 5), k=st.integers(1, 9), m=st.integers(1, 9),
       bias=st.booleans(), dt=DTYPES)
def test_matmul_work_is_additive_in_batch(b, n, k, m, bias, dt) -> None:
    specs = [((b, n, k), dt), ((k, m), FP8)] + ([((m,), F32)] if bias else [])
    once, twice = batched_work(make_op(OpKind.MATMUL, MatMul(), *specs))
    assert twice.flops == 2 * once.flops
    assert twice.read_bytes[0] == 2 * once.read_bytes[0]
    assert twice.read_bytes[1:] == once.read_bytes[1:]  # the shared weight is read once
    assert twice.write_bytes == tuple(2 * x for x in once.write_bytes)


@settings(max_examples=50, deadline=None)
@given(b=st.integers(1, 4), n=st.integers(1, 5), h=st.integers(1, 9), dt=DTYPES,
       kind=st.sampled_from([OpKind.UNARY, OpKind.BINARY, OpKind.RMSNORM, OpKind.SOFTMAX]))
def test_elementwise_work_is_additive_in_batch(b, n, h, dt, kind) -> None:
    x = ((b, n, h), dt)
    op = {
        OpKind.UNARY: lambda: make_op(kind, Unary(UnaryFn.GELU), x),
        OpKind.BINARY: lambda: make_op(kind, Binary(BinaryFn.ADD), x, x),
        OpKind.RMSNORM: lambda: make_op(kind, RMSNorm(1e-6), x, ((h,), F32)),
        OpKind.SOFTMAX: lambda: make_op(kind, Softmax(), x),
    }[kind]()
    once, twice = batched_work(op)
    assert once.flops > 0
    assert twice.flops == 2 * once.flops
    assert twice.read_bytes[0] == 2 * once.read_bytes[0]
    assert twice.bytes_written == 2 * once.bytes_written


@settings(max_examples=50, deadline=None)
@given(lens=lq_lk(), window=st.none() | st.integers(1, 70), b=st.integers(1, 3))
def test_attention_work_is_additive_in_batch(lens, window, b) -> None:
    lq, lk = lens
    kv = ((b, lk, 8), BF16)
    op = make_op(OpKind.ATTENTION, Attention(4, 2, 4, 0.5, True, window), ((b, lq, 16), BF16),
                 kv, kv)
    once, twice = batched_work(op)
    assert twice.flops == 2 * once.flops
    assert twice.read_bytes == pytest.approx(tuple(2 * x for x in once.read_bytes))


def test_tensor_nbytes_by_dtype() -> None:
    shape = (4, 64)
    assert Tensor("a", shape, BF16).nbytes == 512
    assert Tensor("a", shape, FP8).nbytes == 256
    assert Tensor("a", shape, FP4).nbytes == 256 * 4.25 / 8
    assert Tensor("a", shape, I4).nbytes == 256 * 4.5 / 8


def test_beams_read_their_shared_prompt_once() -> None:
    """Beam search: 4 hypotheses share a 90-position prompt of a 100-position cache, so the
    cache bytes read are 4 x 10 private + 1 x 90 shared rows instead of 4 x 100."""
    from tegel.workload.graph import GraphBuilder
    from tegel.workload.ir import Attention, OpKind
    from tegel.workload.ops import work

    def reads(group: int, shared: int) -> float:
        g = GraphBuilder("beams", DType.BF16)
        q = g.input("q", (4, 1, 64), DType.BF16)
        k = g.input("k", (4, 100, 64), DType.BF16)
        v = g.input("v", (4, 100, 64), DType.BF16)
        g.op1(OpKind.ATTENTION, Attention(1, 1, 64, 0.125, kv_group=group, kv_shared=shared),
              (q, k, v), "a")
        return work(g.ops[0]).read_bytes[1]

    row = 64 * 2
    assert reads(1, 0) == 4 * 100 * row
    assert reads(4, 90) == pytest.approx((4 * 10 + 90) * row)
