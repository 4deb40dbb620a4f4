"""The NumPy reference of every op kind equals an independent implementation in torch (fp32).

Each test builds a one-op graph with GraphBuilder (so shapes go through the op rules and
`verify`), runs it with `interpret`, and compares to torch code written from the op's
definition. A closing property runs a small random multi-op graph the same two ways.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from tegel.errors import TegelError
from tegel.workload import GraphBuilder, interpret
from tegel.workload.dtypes import DType
from tegel.workload.ir import (
    Attention,
    Binary,
    BinaryFn,
    Conv2d,
    Embedding,
    KVCacheWrite,
    LayerNorm,
    MatMul,
    MoEExperts,
    MoERouter,
    OpKind,
    RMSNorm,
    Slice,
    Softmax,
    Unary,
    UnaryFn,
)

ATOL = 1e-5


def run_one(kind: OpKind, attrs: object, *arrays: np.ndarray) -> list[np.ndarray]:
    """Run one op of `kind` on `arrays` (floats as fp32, integers as int32) via interpret."""
    g = GraphBuilder("one")
    tensors = []
    for i, arr in enumerate(arrays):
        dtype = DType.FP32 if np.issubdtype(arr.dtype, np.floating) else DType.INT32
        tensors.append(g.input(f"in{i}", arr.shape, dtype))
    outs = g.op(kind, attrs, tuple(tensors), "out")  # type: ignore[arg-type]
    graph = g.build(outs)
    got = interpret(graph, {f"in{i}": a for i, a in enumerate(arrays)})
    return [got[t.name] for t in outs]


def rand(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def close(got: np.ndarray, want: torch.Tensor, atol: float = ATOL) -> None:
    assert got.shape == tuple(want.shape)
    np.testing.assert_allclose(got, want.detach().numpy(), atol=atol, rtol=1e-5)


# ---- matmul ----------------------------------------------------------------------------------


@pytest.mark.parametrize("transpose_a", [False, True])
@pytest.mark.parametrize("transpose_b", [False, True])
def test_matmul_transposes(transpose_a: bool, transpose_b: bool) -> None:
    rng = np.random.default_rng(0)
    m, n, k = 3, 5, 4
    a = rand(rng, 2, k, m) if transpose_a else rand(rng, 2, m, k)
    b = rand(rng, 2, n, k) if transpose_b else rand(rng, 2, k, n)
    (got,) = run_one(OpKind.MATMUL, MatMul(transpose_a, transpose_b), a, b)
    ta, tb = torch.tensor(a), torch.tensor(b)
    want = (ta.mT if transpose_a else ta) @ (tb.mT if transpose_b else tb)
    close(got, want)


def test_matmul_linear_weight_broadcasts_with_bias() -> None:
    rng = np.random.default_rng(1)
    x, w, bias = rand(rng, 2, 3, 8), rand(rng, 6, 8), rand(rng, 6)
    (got,) = run_one(OpKind.MATMUL, MatMul(transpose_b=True), x, w, bias)
    close(got, F.linear(torch.tensor(x), torch.tensor(w), torch.tensor(bias)))


def test_matmul_broadcasts_batch_dims() -> None:
    rng = np.random.default_rng(2)
    a, b = rand(rng, 2, 1, 3, 4), rand(rng, 5, 4, 6)
    (got,) = run_one(OpKind.MATMUL, MatMul(), a, b)
    assert got.shape == (2, 5, 3, 6)
    close(got, torch.matmul(torch.tensor(a), torch.tensor(b)))


# ---- attention -------------------------------------------------------------------------------


def torch_attention(
    q: np.ndarray, k: np.ndarray, v: np.ndarray, a: Attention
) -> torch.Tensor:
    """SDPA with the IR's alignment: queries are the last Lq of Lk positions."""
    b, lq, _ = q.shape
    lk = k.shape[1]
    d, group = a.head_dim, a.num_heads // a.num_kv_heads
    qh = torch.tensor(q).view(b, lq, a.num_heads, d).transpose(1, 2)
    kh = torch.tensor(k).view(b, lk, a.num_kv_heads, d).transpose(1, 2)
    vh = torch.tensor(v).view(b, lk, a.num_kv_heads, d).transpose(1, 2)
    kh, vh = kh.repeat_interleave(group, dim=1), vh.repeat_interleave(group, dim=1)
    mask = torch.ones(lq, lk, dtype=torch.bool)
    if a.causal:
        mask = mask.tril(diagonal=lk - lq)
    if a.window is not None:
        mask = mask.triu(diagonal=lk - lq - a.window + 1)
    out = F.scaled_dot_product_attention(qh, kh, vh, attn_mask=mask, scale=a.scale)
    return out.transpose(1, 2).reshape(b, lq, a.num_heads * d)


ATTENTION_CASES = {
    # name: (heads, kv_heads, lq, lk, causal, window)
    "mha-prefill": (4, 4, 6, 6, True, None),
    "gqa-prefill": (6, 2, 7, 7, True, None),
    "mqa-prefill": (4, 1, 5, 5, True, None),
    "gqa-decode": (6, 2, 1, 9, True, None),
    "mqa-decode": (4, 1, 1, 9, True, None),
    "gqa-chunked": (6, 3, 4, 11, True, None),
    "window-prefill": (4, 2, 9, 9, True, 3),
    "window-decode": (4, 2, 1, 12, True, 5),
    "window-chunked": (4, 2, 3, 10, True, 4),
    "bidirectional": (4, 2, 5, 5, False, None),
    "cross-lq-lt-lk": (4, 4, 3, 8, False, None),
}


@pytest.mark.parametrize("case", sorted(ATTENTION_CASES))
def test_attention_matches_sdpa(case: str) -> None:
    heads, kv_heads, lq, lk, causal, window = ATTENTION_CASES[case]
    d, b = 8, 2
    rng = np.random.default_rng(3)
    q, k, v = rand(rng, b, lq, heads * d), rand(rng, b, lk, kv_heads * d), rand(rng, b, lk, kv_heads * d)
    attrs = Attention(heads, kv_heads, d, 1 / math.sqrt(d), causal, window)
    (got,) = run_one(OpKind.ATTENTION, attrs, q, k, v)
    close(got, torch_attention(q, k, v, attrs))


def test_attention_decode_equals_last_row_of_prefill() -> None:
    """Causal alignment: one query over Lk keys is the last query of a full prefill."""
    rng = np.random.default_rng(4)
    d, lk = 4, 7
    q, k, v = rand(rng, 1, lk, 2 * d), rand(rng, 1, lk, d), rand(rng, 1, lk, d)
    attrs = Attention(2, 1, d, 0.5, causal=True)
    (full,) = run_one(OpKind.ATTENTION, attrs, q, k, v)
    (step,) = run_one(OpKind.ATTENTION, attrs, q[:, -1:], k, v)
    np.testing.assert_allclose(step, full[:, -1:], atol=ATOL)


# ---- elementwise, norms, softmax -------------------------------------------------------------

TORCH_UNARY = {
    UnaryFn.SILU: F.silu,
    UnaryFn.GELU: lambda t: F.gelu(t, approximate="none"),
    UnaryFn.GELU_TANH: lambda t: F.gelu(t, approximate="tanh"),
    UnaryFn.RELU: F.relu,
    UnaryFn.NEG: torch.neg,
    UnaryFn.SOFTCAP: torch.tanh,  # with Unary's default cap of 1
    UnaryFn.RELU6: F.relu6,
    UnaryFn.SIGMOID: torch.sigmoid,
    UnaryFn.HARDSIGMOID: F.hardsigmoid,
    UnaryFn.HARDSWISH: F.hardswish,
}


@pytest.mark.parametrize("fn", list(UnaryFn))
def test_unary_matches_torch(fn: UnaryFn) -> None:
    x = np.linspace(-6, 6, 97, dtype=np.float32).reshape(1, 97)
    (got,) = run_one(OpKind.UNARY, Unary(fn), x)
    close(got, TORCH_UNARY[fn](torch.tensor(x)))


def test_gelu_exact_and_tanh_differ() -> None:
    """Guards against one being silently computed as the other."""
    x = np.array([[1.5, -2.5]], dtype=np.float32)
    (exact,) = run_one(OpKind.UNARY, Unary(UnaryFn.GELU), x)
    (approx,) = run_one(OpKind.UNARY, Unary(UnaryFn.GELU_TANH), x)
    assert np.abs(exact - approx).max() > 1e-5


@pytest.mark.parametrize(
    ("fn", "op"), [(BinaryFn.ADD, torch.add), (BinaryFn.SUB, torch.sub), (BinaryFn.MUL, torch.mul)]
)
def test_binary_broadcasts_like_torch(fn: BinaryFn, op) -> None:
    rng = np.random.default_rng(5)
    a, b = rand(rng, 2, 1, 4), rand(rng, 3, 1)
    (got,) = run_one(OpKind.BINARY, Binary(fn), a, b)
    close(got, op(torch.tensor(a), torch.tensor(b)))


def test_rmsnorm_matches_torch() -> None:
    rng = np.random.default_rng(6)
    x, w = rand(rng, 2, 3, 16) * 3, rand(rng, 16)
    (got,) = run_one(OpKind.RMSNORM, RMSNorm(1e-6), x, w)
    close(got, F.rms_norm(torch.tensor(x), (16,), torch.tensor(w), eps=1e-6))


def test_grouped_rmsnorm_normalises_each_head_alone() -> None:
    """Qwen3's q/k norms: [B, L, H*D] normalised per head of D channels, one weight [D]."""
    rng = np.random.default_rng(16)
    heads, d = 3, 8
    x, w = rand(rng, 2, 5, heads * d) * 3, rand(rng, d)
    x[..., :d] *= 50.0  # heads of very different scale: one norm over all channels would differ
    (got,) = run_one(OpKind.RMSNORM, RMSNorm(1e-6, group=d), x, w)
    want = F.rms_norm(torch.tensor(x).view(2, 5, heads, d), (d,), torch.tensor(w), eps=1e-6)
    close(got, want.reshape(2, 5, heads * d))
    (whole,) = run_one(OpKind.RMSNORM, RMSNorm(1e-6), x, np.tile(w, heads))
    assert np.abs(whole - got).max() > 0.1


def test_softcap_unary_embedding_scale_and_attention_softcap_match_torch() -> None:
    rng = np.random.default_rng(17)
    x = rand(rng, 2, 3, 8) * 20
    (got,) = run_one(OpKind.UNARY, Unary(UnaryFn.SOFTCAP, 2.5), x)
    close(got, 2.5 * torch.tanh(torch.tensor(x) / 2.5))
    assert np.abs(got).max() <= 2.5 and np.abs(got).max() > 2.4
    table, ids = rand(rng, 11, 4), np.array([[3, 0, 10]], np.int32)
    (rows,) = run_one(OpKind.EMBEDDING, Embedding(2.0), ids, table)
    close(rows, torch.tensor(table)[torch.tensor(ids, dtype=torch.long)] * 2.0)
    heads, d, cap = 2, 4, 1.5
    q, k, v = (rand(rng, 1, 5, heads * d) * 3 for _ in range(3))
    (out,) = run_one(OpKind.ATTENTION, Attention(heads, heads, d, 0.5, softcap=cap), q, k, v)
    qt, kt, vt = (torch.tensor(t).view(1, 5, heads, d).transpose(1, 2) for t in (q, k, v))
    scores = cap * torch.tanh(qt @ kt.transpose(-1, -2) * 0.5 / cap)
    scores = scores.masked_fill(torch.triu(torch.ones(5, 5, dtype=torch.bool), 1), -torch.inf)
    want = (torch.softmax(scores, -1) @ vt).transpose(1, 2).reshape(1, 5, heads * d)
    close(out, want)
    (plain,) = run_one(OpKind.ATTENTION, Attention(heads, heads, d, 0.5), q, k, v)
    assert np.abs(plain - out).max() > 1e-3


def test_grouped_rmsnorm_refuses_a_weight_of_the_wrong_size() -> None:
    x, w = np.ones((1, 2, 24), np.float32), np.ones(24, np.float32)
    with pytest.raises(Exception, match="must be \\[8\\]"):
        run_one(OpKind.RMSNORM, RMSNorm(1e-6, group=8), x, w)
    with pytest.raises(Exception, match="groups of 5"):
        run_one(OpKind.RMSNORM, RMSNorm(1e-6, group=5), x, np.ones(5, np.float32))


def test_layernorm_matches_torch() -> None:
    rng = np.random.default_rng(7)
    x, w, bias = rand(rng, 2, 3, 16) * 3 + 1, rand(rng, 16), rand(rng, 16)
    (got,) = run_one(OpKind.LAYERNORM, LayerNorm(1e-5), x, w, bias)
    want = F.layer_norm(torch.tensor(x), (16,), torch.tensor(w), torch.tensor(bias), eps=1e-5)
    close(got, want)


@pytest.mark.parametrize("axis", [-1, 1, 0])
def test_softmax_matches_torch(axis: int) -> None:
    rng = np.random.default_rng(8)
    x = rand(rng, 3, 4, 5) * 10
    (got,) = run_one(OpKind.SOFTMAX, Softmax(axis), x)
    close(got, torch.softmax(torch.tensor(x), dim=axis))


# ---- embedding, slice, kv cache --------------------------------------------------------------


def test_embedding_gathers_rows() -> None:
    rng = np.random.default_rng(9)
    table = rand(rng, 11, 6)
    ids = np.array([[0, 10, 3], [3, 3, 7]], dtype=np.int32)
    (got,) = run_one(OpKind.EMBEDDING, Embedding(), ids, table)
    close(got, F.embedding(torch.tensor(ids, dtype=torch.long), torch.tensor(table)))


@pytest.mark.parametrize("bad_id", [11, -1])
def test_embedding_out_of_range_id_raises(bad_id: int) -> None:
    table = np.zeros((11, 6), dtype=np.float32)
    ids = np.array([[0, bad_id]], dtype=np.int32)
    with pytest.raises(TegelError, match="out of range"):
        run_one(OpKind.EMBEDDING, Embedding(), ids, table)


@pytest.mark.parametrize(("axis", "start", "stop"), [(1, 4, 5), (-1, 2, 6), (0, 0, 1)])
def test_slice_matches_narrow(axis: int, start: int, stop: int) -> None:
    x = np.random.default_rng(10).standard_normal((2, 5, 7)).astype(np.float32)
    (got,) = run_one(OpKind.SLICE, Slice(axis, start, stop), x)
    close(got, torch.tensor(x).narrow(axis, start, stop - start), atol=0)


def test_kv_cache_write_appends_along_positions() -> None:
    rng = np.random.default_rng(11)
    past, new = rand(rng, 2, 5, 8), rand(rng, 2, 3, 8)
    (got,) = run_one(OpKind.KV_CACHE_WRITE, KVCacheWrite(), past, new)
    close(got, torch.cat([torch.tensor(past), torch.tensor(new)], dim=1), atol=0)


def test_kv_cache_write_without_past_is_the_new_entries() -> None:
    new = np.random.default_rng(12).standard_normal((2, 4, 8)).astype(np.float32)
    (got,) = run_one(OpKind.KV_CACHE_WRITE, KVCacheWrite(), new)
    np.testing.assert_array_equal(got, new)


# ---- mixture of experts ----------------------------------------------------------------------


@pytest.mark.parametrize("normalize", [True, False])
def test_moe_router_softmax_topk(normalize: bool) -> None:
    rng = np.random.default_rng(16)
    logits = rand(rng, 2, 5, 8) * 2
    weights, idx = run_one(OpKind.MOE_ROUTER, MoERouter(8, 3, normalize), logits)
    probs = torch.softmax(torch.tensor(logits), dim=-1)
    want_w, want_i = torch.topk(probs, 3, dim=-1)
    if normalize:
        want_w = want_w / want_w.sum(-1, keepdim=True)
    assert idx.dtype == np.int32
    np.testing.assert_array_equal(idx, want_i.numpy())
    close(weights, want_w)


def torch_moe(x, w, idx, wg, wu, wd, act) -> torch.Tensor:
    """Per-token, per-choice loop straight from the MoEExperts docstring."""
    flat_x = torch.tensor(x).reshape(-1, x.shape[-1])
    flat_w = torch.tensor(w).reshape(flat_x.shape[0], -1)
    flat_i = torch.tensor(idx).reshape(flat_x.shape[0], -1)
    wg, wu, wd = torch.tensor(wg), torch.tensor(wu), torch.tensor(wd)
    out = torch.zeros_like(flat_x)
    for t in range(flat_x.shape[0]):
        for j in range(flat_i.shape[1]):
            e = int(flat_i[t, j])
            hidden = act(flat_x[t] @ wg[e].T) * (flat_x[t] @ wu[e].T)
            out[t] += flat_w[t, j] * (hidden @ wd[e].T)
    return out.reshape(x.shape)


@pytest.mark.parametrize("activation", [UnaryFn.SILU, UnaryFn.GELU])
def test_moe_experts_match_token_loop(activation: UnaryFn) -> None:
    rng = np.random.default_rng(17)
    e, k, h, f = 5, 2, 8, 12
    x = rand(rng, 2, 3, h)
    idx = np.stack([rng.choice(e - 1, size=k, replace=False) for _ in range(6)]).reshape(2, 3, k)
    idx = idx.astype(np.int32)  # expert e-1 receives no token
    w = rng.random((2, 3, k)).astype(np.float32)
    wg, wu, wd = rand(rng, e, f, h), rand(rng, e, f, h), rand(rng, e, h, f)
    (got,) = run_one(OpKind.MOE_EXPERTS, MoEExperts(e, k, activation), x, w, idx, wg, wu, wd)
    close(got, torch_moe(x, w, idx, wg, wu, wd, TORCH_UNARY[activation]), atol=1e-4)


def test_router_then_experts_equals_torch() -> None:
    rng = np.random.default_rng(18)
    e, k, h, f = 4, 2, 6, 10
    g = GraphBuilder("moe")
    x = g.input("x", (2, 3, h), DType.FP32)
    wr, wg, wu, wd = (g.weight(n, s, DType.FP32) for n, s in
                      [("wr", (e, h)), ("wg", (e, f, h)), ("wu", (e, f, h)), ("wd", (e, h, f))])
    logits = g.op1(OpKind.MATMUL, MatMul(transpose_b=True), (x, wr), "logits")
    weights, idx = g.op(OpKind.MOE_ROUTER, MoERouter(e, k), (logits,), "route")
    out = g.op1(OpKind.MOE_EXPERTS, MoEExperts(e, k), (x, weights, idx, wg, wu, wd), "moe")
    feeds = {"x": rand(rng, 2, 3, h), "wr": rand(rng, e, h), "wg": rand(rng, e, f, h),
             "wu": rand(rng, e, f, h), "wd": rand(rng, e, h, f)}
    got = interpret(g.build((out,)), feeds)["moe"]

    probs = torch.softmax(torch.tensor(feeds["x"]) @ torch.tensor(feeds["wr"]).T, dim=-1)
    tw, ti = torch.topk(probs, k, dim=-1)
    tw = tw / tw.sum(-1, keepdim=True)
    want = torch_moe(feeds["x"], tw.numpy(), ti.numpy(), feeds["wg"], feeds["wu"], feeds["wd"],
                     F.silu)
    close(got, want, atol=1e-4)


# ---- convolution -----------------------------------------------------------------------------

CONV_CASES = [
    # (x shape, w shape, stride, padding, groups, bias)
    ((1, 3, 8, 8), (4, 3, 3, 3), (1, 1), (0, 0), 1, False),
    ((2, 4, 9, 7), (6, 4, 3, 2), (2, 1), (1, 0), 1, True),
    ((1, 4, 10, 10), (8, 2, 3, 3), (2, 2), (1, 1), 2, True),
    ((2, 6, 7, 7), (6, 1, 5, 5), (1, 3), (2, 2), 6, False),  # depthwise
    ((1, 3, 16, 16), (5, 3, 4, 4), (4, 4), (0, 0), 1, True),  # patchify
]


@pytest.mark.parametrize(("xs", "ws", "stride", "padding", "groups", "bias"), CONV_CASES)
def test_conv2d_matches_torch(xs, ws, stride, padding, groups, bias) -> None:
    rng = np.random.default_rng(19)
    x, w = rand(rng, *xs), rand(rng, *ws)
    arrays = (x, w, rand(rng, ws[0])) if bias else (x, w)
    (got,) = run_one(OpKind.CONV2D, Conv2d(stride, padding, groups), *arrays)
    want = F.conv2d(torch.tensor(x), torch.tensor(w),
                    torch.tensor(arrays[2]) if bias else None, stride, padding, groups=groups)
    close(got, want, atol=1e-4)


@pytest.mark.parametrize(("xs", "ws", "stride", "padding", "groups", "dilation"), [
    ((1, 3, 11, 9), (4, 3, 3, 3), (1, 1), (2, 2), 1, (2, 2)),
    ((2, 4, 12, 10), (6, 2, 3, 2), (2, 1), (1, 0), 2, (3, 2)),
])
def test_dilated_conv2d_matches_torch(xs, ws, stride, padding, groups, dilation) -> None:
    rng = np.random.default_rng(23)
    x, w, b = rand(rng, *xs), rand(rng, *ws), rand(rng, ws[0])
    (got,) = run_one(OpKind.CONV2D, Conv2d(stride, padding, groups, dilation), x, w, b)
    want = F.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), stride, padding,
                    dilation, groups)
    close(got, want, atol=1e-4)


# ---- interpreter -----------------------------------------------------------------------------


def test_interpret_rejects_missing_feed_and_wrong_shape() -> None:
    g = GraphBuilder("g")
    x = g.input("x", (2, 3), DType.FP32)
    y = g.op1(OpKind.UNARY, Unary(UnaryFn.RELU), (x,), "y")
    graph = g.build((y,))
    with pytest.raises(TegelError, match="'x'"):
        interpret(graph, {})
    with pytest.raises(TegelError, match=r"expected shape \(2, 3\)"):
        interpret(graph, {"x": np.zeros((3, 2), np.float32)})


@settings(max_examples=50, deadline=None)
@given(
    batch=st.integers(1, 3),
    seq=st.integers(1, 4),
    hidden=st.integers(1, 12),
    ffn=st.integers(1, 16),
    fn=st.sampled_from([UnaryFn.SILU, UnaryFn.GELU, UnaryFn.GELU_TANH, UnaryFn.RELU]),
    bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_random_mlp_graph_matches_torch(batch, seq, hidden, ffn, fn, bias, seed) -> None:
    """x -> rmsnorm -> (act(x Wg^T [+b]) * x Wu^T) -> Wd^T -> + x, as a graph and in torch."""
    g = GraphBuilder("mlp")
    x = g.input("x", (batch, seq, hidden), DType.FP32)
    shapes = {"norm": (hidden,), "wg": (ffn, hidden), "wu": (ffn, hidden), "wd": (hidden, ffn)}
    if bias:
        shapes["bg"] = (ffn,)
    w = {n: g.weight(n, s, DType.FP32) for n, s in shapes.items()}
    lin = MatMul(transpose_b=True)
    h = g.op1(OpKind.RMSNORM, RMSNorm(1e-5), (x, w["norm"]), "h")
    gate_in = (h, w["wg"], w["bg"]) if bias else (h, w["wg"])
    gate = g.op1(OpKind.UNARY, Unary(fn), (g.op1(OpKind.MATMUL, lin, gate_in, "g"),), "act")
    up = g.op1(OpKind.MATMUL, lin, (h, w["wu"]), "up")
    prod = g.op1(OpKind.BINARY, Binary(BinaryFn.MUL), (gate, up), "prod")
    down = g.op1(OpKind.MATMUL, lin, (prod, w["wd"]), "down")
    out = g.op1(OpKind.BINARY, Binary(BinaryFn.ADD), (x, down), "out")
    graph = g.build((out,))

    rng = np.random.default_rng(seed)
    feeds = {"x": rand(rng, batch, seq, hidden)} | {n: rand(rng, *s) for n, s in shapes.items()}
    got = interpret(graph, feeds)["out"]

    t = {n: torch.tensor(a) for n, a in feeds.items()}
    th = F.rms_norm(t["x"], (hidden,), t["norm"], eps=1e-5)
    tg = TORCH_UNARY[fn](F.linear(th, t["wg"], t.get("bg")))
    want = t["x"] + F.linear(tg * F.linear(th, t["wu"]), t["wd"])
    close(got, want, atol=1e-4)
