"""The GEMM view of ops (`gemm_dims`): shapes of the GEMMs and FLOPs that agree with `work`.

The GEMMs' 2·count·m·n·k is work(op).flops exactly for matmul and conv2d without bias; the
bias adds one FLOP per output, attention's softmax 5 per attended pair, and MoE experts their
activation, gating and weighting per routed token and channel.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from tegel.workload.dtypes import DType
from tegel.workload.ir import Attention, Conv2d, MatMul, MoEExperts, Op, OpKind, UnaryFn
from tegel.workload.ops import (
    UNARY_FLOPS,
    Gemm,
    attended_pairs,
    expert_token_counts,
    gemm_dims,
    work,
)
from workload.test_ops_work import make_op, random_op

BF16, I32 = DType.BF16, DType.INT32


def gemm_flops(op: Op) -> float:
    return sum(g.flops for g in gemm_dims(op))


# ---- matmul ----------------------------------------------------------------------------------


def test_a_weight_broadcast_over_a_batch_is_one_taller_gemm() -> None:
    op = make_op(OpKind.MATMUL, MatMul(transpose_b=True), ((4, 6, 8), BF16), ((10, 8), BF16))
    assert gemm_dims(op) == (Gemm(1.0, 24.0, 10, 8),)
    assert gemm_flops(op) == work(op).flops


@pytest.mark.parametrize(
    ("a", "b", "attrs", "want"),
    [
        ((3, 5, 11), (3, 11, 7), MatMul(), Gemm(3.0, 5.0, 7, 11)),
        ((3, 11, 5), (3, 7, 11), MatMul(True, True), Gemm(3.0, 5.0, 7, 11)),
        ((2, 1, 3, 4), (5, 4, 6), MatMul(), Gemm(10.0, 3.0, 6, 4)),  # broadcast batch
        ((3, 4), (2, 4, 6), MatMul(), Gemm(2.0, 3.0, 6, 4)),  # broadcast a
        ((2, 3, 4), (1, 4, 6), MatMul(), Gemm(1.0, 6.0, 6, 4)),  # b's batch of 1 broadcasts
        ((5, 4), (4, 6), MatMul(), Gemm(1.0, 5.0, 6, 4)),
    ],
)
def test_matmul_gemms(a, b, attrs, want) -> None:
    op = make_op(OpKind.MATMUL, attrs, (a, BF16), (b, BF16))
    assert gemm_dims(op) == (want,)
    assert gemm_flops(op) == work(op).flops


def test_matmul_bias_is_outside_the_gemm() -> None:
    op = make_op(OpKind.MATMUL, MatMul(transpose_b=True), ((4, 6, 8), BF16), ((10, 8), BF16),
                 ((10,), BF16))
    assert work(op).flops - gemm_flops(op) == 24 * 10


# ---- conv2d ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x", "w", "stride", "padding", "groups", "dilation"),
    [
        ((2, 3, 32, 32), (16, 3, 3, 3), (1, 1), (1, 1), 1, (1, 1)),
        ((1, 8, 15, 9), (8, 2, 3, 3), (2, 2), (0, 1), 4, (1, 1)),  # grouped, strided
        ((2, 6, 7, 7), (6, 1, 5, 5), (1, 3), (2, 2), 6, (1, 1)),  # depthwise
        ((1, 3, 16, 16), (5, 3, 4, 4), (4, 4), (0, 0), 1, (1, 1)),  # patchify
        ((1, 4, 12, 10), (6, 2, 3, 2), (1, 2), (2, 1), 2, (2, 3)),  # dilated
    ],
)
def test_conv2d_is_an_implicit_gemm(x, w, stride, padding, groups, dilation) -> None:
    op = make_op(OpKind.CONV2D, Conv2d(stride, padding, groups, dilation), (x, BF16), (w, BF16))
    _, _, oh, ow = op.outputs[0].shape
    span = [dilation[i] * (w[2 + i] - 1) + 1 for i in range(2)]
    assert (oh, ow) == tuple((x[2 + i] + 2 * padding[i] - span[i]) // stride[i] + 1 for i in range(2))
    assert gemm_dims(op) == (Gemm(float(groups), float(x[0] * oh * ow), w[0] // groups,
                                  w[1] * w[2] * w[3]),)
    assert gemm_flops(op) == work(op).flops


def test_conv2d_bias_is_outside_the_gemm() -> None:
    op = make_op(OpKind.CONV2D, Conv2d(), ((1, 3, 8, 8), BF16), ((4, 3, 3, 3), BF16),
                 ((4,), BF16))
    assert work(op).flops - gemm_flops(op) == op.outputs[0].numel


# ---- attention -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("b", "lq", "lk", "causal", "window"),
    [
        (2, 16, 16, True, None),  # causal prefill
        (3, 1, 100, True, None),  # decode
        (1, 1, 100, True, 32),  # decode, sliding window
        (2, 20, 20, True, 6),  # windowed prefill
        (1, 4, 24, True, None),  # chunked prefill
        (2, 5, 9, False, None),  # cross / encoder attention
    ],
)
def test_attention_gemms_cover_the_attended_pairs(b, lq, lk, causal, window) -> None:
    heads, kv_heads, d = 4, 2, 8
    attrs = Attention(heads, kv_heads, d, 0.5, causal, window)
    kv = ((b, lk, kv_heads * d), BF16)
    op = make_op(OpKind.ATTENTION, attrs, ((b, lq, heads * d), BF16), kv, kv)
    scores, mix = gemm_dims(op)
    pairs = attended_pairs(lq, lk, causal, window) * b * heads
    assert scores.count == mix.count == b * heads
    assert (scores.n, scores.k) == (mix.k, d) and mix.n == d
    if window is None:
        assert scores.n == lk
    if lq == 1 or not causal:
        assert scores.m == lq  # every query sees every key it reads
    assert gemm_flops(op) == pytest.approx(4.0 * d * pairs)
    assert work(op).flops - gemm_flops(op) == pytest.approx(5.0 * pairs)  # the softmax


# ---- experts ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("tokens", "counts"), [(1, None), (6, None), (6, (3, 0, 5, 4))])
def test_expert_gemms_are_gate_up_and_down_of_the_touched_experts(tokens, counts) -> None:
    e, k, f, h = 4, 2, 12, 8
    attrs = MoEExperts(e, k, UnaryFn.SILU, counts)
    route = ((1, tokens, k), BF16)
    op = make_op(OpKind.MOE_EXPERTS, attrs, ((1, tokens, h), BF16), route, ((1, tokens, k), I32),
                 ((e, f, h), BF16), ((e, f, h), BF16), ((e, h, f), BF16))
    gate, up, down = gemm_dims(op)
    routed = sum(expert_token_counts(attrs, tokens))
    assert gate == up and (gate.n, gate.k, down.n, down.k) == (f, h, h, f)
    assert gate.count * gate.m == pytest.approx(routed)
    if counts is not None:
        assert gate.count == 3
    if tokens == 1:
        assert gate.count == pytest.approx(k) and gate.m == pytest.approx(1.0)
    elementwise = routed * ((UNARY_FLOPS[UnaryFn.SILU] + 1) * f + 2 * h)
    assert gemm_flops(op) == pytest.approx(6.0 * routed * h * f)
    assert work(op).flops - gemm_flops(op) == pytest.approx(elementwise)


def test_experts_with_no_tokens_routed_do_no_gemm_work() -> None:
    attrs = MoEExperts(2, 1, UnaryFn.SILU, (0, 0))
    op = make_op(OpKind.MOE_EXPERTS, attrs, ((1, 3, 4), BF16), ((1, 3, 1), BF16),
                 ((1, 3, 1), I32), ((2, 6, 4), BF16), ((2, 6, 4), BF16), ((2, 4, 6), BF16))
    assert gemm_flops(op) == 0.0


# ---- every kind ------------------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(op=random_op())
def test_gemms_never_exceed_the_op_work(op: Op) -> None:
    gemms = gemm_dims(op)
    if op.kind not in (OpKind.MATMUL, OpKind.CONV2D, OpKind.ATTENTION, OpKind.MOE_EXPERTS,
                       OpKind.LATENT_ATTENTION):
        assert gemms == ()
        return
    assert all(g.count >= 0 and g.m >= 0 and g.n >= 0 and g.k >= 0 for g in gemms)
    assert gemm_flops(op) <= work(op).flops * (1 + 1e-12)
    if op.kind in (OpKind.MATMUL, OpKind.CONV2D) and len(op.inputs) == 2:
        assert gemm_flops(op) == work(op).flops
