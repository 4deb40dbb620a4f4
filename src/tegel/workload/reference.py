"""The NumPy reference interpreter: the semantics every compiled plan must reproduce.

Each op kind has one reference function `(op, arrays) -> arrays`. Arithmetic is float32
(float64 accumulation where a reduction is long), whatever dtype the tensors declare:
number-format emulation is the functional executor's job; this is the exact-math baseline.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np

from tegel.errors import TegelError
from tegel.workload.cnn_reference import CNN_REFERENCES
from tegel.workload.ir import (
    Attention,
    BinaryFn,
    Conv2d,
    Graph,
    LayerNorm,
    LinearScaling,
    MatMul,
    MoEExperts,
    MoERouter,
    Op,
    OpKind,
    QueryTemperature,
    RMSNorm,
    Rope,
    Slice,
    Softmax,
    Unary,
    UnaryFn,
    YarnScaling,
)
from tegel.workload.mla import latent_attention_reference

Array = np.ndarray
Reference = Callable[[Op, list[Array]], list[Array]]
REFERENCES: dict[OpKind, Reference] = {}


def _ref(kind: OpKind) -> Callable[[Reference], Reference]:
    def register(fn: Reference) -> Reference:
        REFERENCES[kind] = fn
        return fn

    return register


def _f32(x: Array) -> Array:
    return np.asarray(x, dtype=np.float32)


def unary(fn: UnaryFn, x: Array, cap: float = 1.0) -> Array:
    """Elementwise activation functions, matching PyTorch's definitions."""
    x = _f32(x)
    if fn is UnaryFn.SOFTCAP:
        return (np.float32(cap) * np.tanh(x / np.float32(cap))).astype(np.float32)
    if fn is UnaryFn.SILU:
        return x / (1.0 + np.exp(-x))
    if fn is UnaryFn.GELU:
        erf = np.vectorize(math.erf, otypes=[np.float64])
        return (0.5 * x * (1.0 + erf(x.astype(np.float64) / math.sqrt(2.0)))).astype(np.float32)
    if fn is UnaryFn.GELU_TANH:
        inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)
        return 0.5 * x * (1.0 + np.tanh(inner))
    if fn is UnaryFn.RELU:
        return np.maximum(x, 0.0)
    if fn is UnaryFn.NEG:
        return -x
    if fn is UnaryFn.RELU6:
        return np.clip(x, 0.0, 6.0)
    if fn is UnaryFn.SIGMOID:
        return (1.0 / (1.0 + np.exp(-x.astype(np.float64)))).astype(np.float32)
    if fn in (UnaryFn.HARDSIGMOID, UnaryFn.HARDSWISH):
        hard = np.clip(x / np.float32(6.0) + np.float32(0.5), 0.0, 1.0)
        return hard if fn is UnaryFn.HARDSIGMOID else x * hard
    raise NotImplementedError(fn)


@_ref(OpKind.MATMUL)
def _matmul(op: Op, xs: list[Array]) -> list[Array]:
    a_attrs: MatMul = op.attrs  # type: ignore[assignment]
    a, b = _f32(xs[0]), _f32(xs[1])
    if a_attrs.transpose_a:
        a = np.swapaxes(a, -1, -2)
    if a_attrs.transpose_b:
        b = np.swapaxes(b, -1, -2)
    out = np.matmul(a, b)
    if len(xs) == 3:
        out = out + _f32(xs[2])
    return [out]


def softmax(x: Array, axis: int = -1) -> Array:
    x = _f32(x)
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def temperature_factor(t: QueryTemperature, positions: Array) -> Array:
    """Llama 4's query scale at integer `positions`: 1 + strength * log(1 + floor((p + 1) /
    floor_scale)), so 1 for the first floor_scale - 1 positions (float32, positions' shape)."""
    steps = np.floor((np.asarray(positions, dtype=np.float64) + 1.0) / t.floor_scale)
    return (1.0 + t.strength * np.log1p(steps)).astype(np.float32)


@_ref(OpKind.ATTENTION)
def _attention(op: Op, xs: list[Array]) -> list[Array]:
    a: Attention = op.attrs  # type: ignore[assignment]
    q, k, v = (_f32(x) for x in xs)
    b, lq, _ = q.shape
    lk = k.shape[1]
    d, group = a.head_dim, a.num_heads // a.num_kv_heads
    qh = q.reshape(b, lq, a.num_heads, d).transpose(0, 2, 1, 3)
    kh = np.repeat(k.reshape(b, lk, a.num_kv_heads, d).transpose(0, 2, 1, 3), group, axis=1)
    vh = np.repeat(v.reshape(b, lk, a.num_kv_heads, d).transpose(0, 2, 1, 3), group, axis=1)
    q_pos = np.arange(lk - lq, lk)[:, None]
    k_pos = np.arange(lk)[None, :]
    if a.temperature is not None:
        qh = qh * temperature_factor(a.temperature, q_pos)[None, None]
    scores = np.matmul(qh, kh.transpose(0, 1, 3, 2)) * np.float32(a.scale)
    if a.softcap is not None:
        scores = unary(UnaryFn.SOFTCAP, scores, a.softcap)
    visible = np.ones((lq, lk), dtype=bool)
    if a.causal:
        visible &= k_pos <= q_pos
    if a.window is not None:
        visible &= k_pos > q_pos - a.window
    if a.chunk is not None:
        visible &= k_pos // a.chunk == q_pos // a.chunk
    scores = np.where(visible, scores, -np.inf)
    out = np.matmul(softmax(scores), vh)
    return [out.transpose(0, 2, 1, 3).reshape(b, lq, a.num_heads * d)]


@_ref(OpKind.UNARY)
def _unary(op: Op, xs: list[Array]) -> list[Array]:
    a: Unary = op.attrs  # type: ignore[assignment]
    return [unary(a.fn, xs[0], a.cap)]


_BINARY = {BinaryFn.ADD: np.add, BinaryFn.SUB: np.subtract, BinaryFn.MUL: np.multiply,
           BinaryFn.DIV: np.divide}


@_ref(OpKind.BINARY)
def _binary(op: Op, xs: list[Array]) -> list[Array]:
    return [_BINARY[op.attrs.fn](_f32(xs[0]), _f32(xs[1]))]  # type: ignore[union-attr, index]


@_ref(OpKind.RMSNORM)
def _rmsnorm(op: Op, xs: list[Array]) -> list[Array]:
    a: RMSNorm = op.attrs  # type: ignore[assignment]
    x = _f32(xs[0])
    shape = x.shape
    if a.group:
        x = x.reshape(*shape[:-1], shape[-1] // a.group, a.group)
    var = np.mean(x * x, axis=-1, keepdims=True)
    out = x / np.sqrt(var + np.float32(a.eps))
    return [(out * _f32(xs[1]) if a.weighted else out).reshape(shape)]


@_ref(OpKind.LAYERNORM)
def _layernorm(op: Op, xs: list[Array]) -> list[Array]:
    a: LayerNorm = op.attrs  # type: ignore[assignment]
    x = _f32(xs[0])
    mean = np.mean(x, axis=-1, keepdims=True)
    var = np.mean((x - mean) ** 2, axis=-1, keepdims=True)
    return [(x - mean) / np.sqrt(var + np.float32(a.eps)) * _f32(xs[1]) + _f32(xs[2])]


@_ref(OpKind.SOFTMAX)
def _softmax(op: Op, xs: list[Array]) -> list[Array]:
    a: Softmax = op.attrs  # type: ignore[assignment]
    return [softmax(xs[0], a.axis)]


@_ref(OpKind.EMBEDDING)
def _embedding(op: Op, xs: list[Array]) -> list[Array]:
    ids, table = xs
    if ids.size and (ids.min() < 0 or ids.max() >= table.shape[0]):
        raise TegelError(f"{op.name}: token id out of range 0..{table.shape[0] - 1}")
    rows = _f32(table)[ids.astype(np.int64)]
    scale = op.attrs.scale  # type: ignore[union-attr]
    return [rows if scale == 1.0 else rows * np.float32(scale)]


def _yarn_inv_freq(inv: Array, a: Rope, s: YarnScaling) -> Array:
    """YaRN: a linear ramp between the dimensions that complete `beta_fast` and `beta_slow`
    rotations over the original context blends interpolated (inv / factor) into extrapolated
    (inv) frequencies, as transformers' `_compute_yarn_parameters` does (truncated range)."""
    dim, base = a.rotary_dim, a.theta

    def correction_dim(rotations: float) -> float:
        return (dim * math.log(s.original_max_position_embeddings / (rotations * 2 * math.pi))
                / (2 * math.log(base)))

    low = float(max(math.floor(correction_dim(s.beta_fast)), 0))
    high = float(min(math.ceil(correction_dim(s.beta_slow)), dim - 1))
    width = high - low if high > low else 0.001  # as transformers: no zero-width ramp
    ramp = np.clip((np.arange(dim // 2, dtype=np.float32) - low) / width, 0, 1)
    extrapolation = 1.0 - ramp.astype(np.float64)
    return inv / s.factor * (1 - extrapolation) + inv * extrapolation


def rope_inv_freq(a: Rope) -> Array:
    """Inverse frequencies of the rotary pairs (rotary_dim / 2), with Llama-3, YaRN or linear
    scaling."""
    inv = 1.0 / (a.theta ** (np.arange(0, a.rotary_dim, 2, dtype=np.float64) / a.rotary_dim))
    s = a.scaling
    if s is None:
        return inv
    if isinstance(s, YarnScaling):
        return _yarn_inv_freq(inv, a, s)
    if isinstance(s, LinearScaling):
        return inv / s.factor
    low_wavelen = s.original_max_position_embeddings / s.low_freq_factor
    high_wavelen = s.original_max_position_embeddings / s.high_freq_factor
    wavelen = 2 * math.pi / inv
    smooth = (s.original_max_position_embeddings / wavelen - s.low_freq_factor) / (
        s.high_freq_factor - s.low_freq_factor
    )
    mid = (1 - smooth) * inv / s.factor + smooth * inv
    return np.where(wavelen > low_wavelen, inv / s.factor, np.where(wavelen < high_wavelen, inv, mid))


@_ref(OpKind.ROPE)
def _rope(op: Op, xs: list[Array]) -> list[Array]:
    a: Rope = op.attrs  # type: ignore[assignment]
    x, pos = _f32(xs[0]), xs[1]
    b, seq, _ = x.shape
    xh = x.reshape(b, seq, a.num_heads, a.head_dim)
    angles = pos.astype(np.float64)[..., None] * rope_inv_freq(a)[None, None, :]
    magnitude = a.scaling.attention_factor if isinstance(a.scaling, YarnScaling) else 1.0
    cos = (np.cos(angles) * magnitude).astype(np.float32)[:, :, None, :]
    sin = (np.sin(angles) * magnitude).astype(np.float32)[:, :, None, :]
    start, stop = a.rotary_offset, a.rotary_offset + a.rotary_dim
    before, rot, rest = xh[..., :start], xh[..., start:stop], xh[..., stop:]
    if a.interleaved:
        even, odd = rot[..., 0::2], rot[..., 1::2]
        out = np.empty_like(rot)
        out[..., 0::2] = even * cos - odd * sin
        out[..., 1::2] = odd * cos + even * sin
    else:
        half = a.rotary_dim // 2
        first, second = rot[..., :half], rot[..., half:]
        out = np.concatenate([first * cos - second * sin, second * cos + first * sin], axis=-1)
    return [np.concatenate([before, out, rest], axis=-1).reshape(b, seq, a.num_heads * a.head_dim)]


@_ref(OpKind.SLICE)
def _slice(op: Op, xs: list[Array]) -> list[Array]:
    a: Slice = op.attrs  # type: ignore[assignment]
    index = [slice(None)] * xs[0].ndim
    index[a.axis] = slice(a.start, a.stop)
    return [xs[0][tuple(index)]]


@_ref(OpKind.KV_CACHE_WRITE)
def _kv_write(op: Op, xs: list[Array]) -> list[Array]:
    pieces = op.attrs.pieces  # type: ignore[union-attr]
    new = np.concatenate(xs[-pieces:], axis=2) if pieces > 1 else xs[-1]
    return [np.concatenate([xs[0], new], axis=1) if len(xs) > pieces else new]


@_ref(OpKind.MOE_ROUTER)
def _router(op: Op, xs: list[Array]) -> list[Array]:
    a: MoERouter = op.attrs  # type: ignore[assignment]
    probs = softmax(xs[0]) if a.scoring == "softmax" else 1.0 / (1.0 + np.exp(-_f32(xs[0])))
    choice = probs + _f32(xs[1]) if a.correction_bias else probs
    if a.groups > 1:  # DeepSeek-V3: only experts of the groups with the best two-expert sums
        grouped = choice.reshape(*choice.shape[:-1], a.groups, -1)
        best_two = -np.sort(-grouped, axis=-1)[..., :2].sum(axis=-1)
        top_groups = np.argsort(-best_two, axis=-1, kind="stable")[..., : a.topk_groups]
        allowed = np.zeros(best_two.shape, dtype=bool)
        np.put_along_axis(allowed, top_groups, True, axis=-1)
        choice = np.where(np.repeat(allowed, grouped.shape[-1], axis=-1), choice, -np.inf)
    # stable descending order: ties go to the lower expert index, as torch.topk does on CPU
    idx = np.argsort(-choice, axis=-1, kind="stable")[..., : a.top_k]
    weights = np.take_along_axis(probs, idx, axis=-1)
    if a.normalize:  # DeepSeek adds 1e-20 to the sum; Mixtral and Qwen do not
        weights = weights / (np.sum(weights, axis=-1, keepdims=True)
                             + np.float32(1e-20 if a.correction_bias else 0.0))
    return [weights * np.float32(a.scaling_factor), idx.astype(np.int32)]


@_ref(OpKind.MOE_EXPERTS)
def _experts(op: Op, xs: list[Array]) -> list[Array]:
    a: MoEExperts = op.attrs  # type: ignore[assignment]
    x, w, idx = _f32(xs[0]), _f32(xs[1]), xs[2]
    wg, wu, wd = (_f32(t) for t in xs[3:])
    h = x.shape[-1]
    flat_x, flat_w, flat_i = x.reshape(-1, h), w.reshape(-1, a.top_k), idx.reshape(-1, a.top_k)
    out = np.zeros_like(flat_x)
    for e in range(a.num_experts):
        tok, slot = np.nonzero(flat_i == e)
        if tok.size == 0:
            continue
        xe, we = flat_x[tok], flat_w[tok, slot][:, None]
        if a.scale_input:
            xe = xe * we
        hidden = unary(a.activation, xe @ wg[e].T) * (xe @ wu[e].T)
        out_e = hidden @ wd[e].T
        np.add.at(out, tok, out_e if a.scale_input else out_e * we)
    return [out.reshape(x.shape)]


@_ref(OpKind.CONV2D)
def _conv2d(op: Op, xs: list[Array]) -> list[Array]:
    a: Conv2d = op.attrs  # type: ignore[assignment]
    x, w = _f32(xs[0]), _f32(xs[1])
    (ph, pw), (sh, sw), (dh, dw), g = a.padding, a.stride, a.dilation, a.groups
    x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    hh, ww = x.shape[2:]
    o, cg, kh, kw = w.shape
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1  # the dilated kernel's extent
    oh, ow = (hh - span_h) // sh + 1, (ww - span_w) // sw + 1
    windows = np.lib.stride_tricks.sliding_window_view(x, (span_h, span_w), axis=(2, 3))
    windows = windows[:, :, ::sh, ::sw][:, :, :oh, :ow, ::dh, ::dw]  # [N, C, OH, OW, kh, kw]
    og = o // g
    outs = []
    for gi in range(g):
        xg = windows[:, gi * cg : (gi + 1) * cg]
        wg = w[gi * og : (gi + 1) * og]
        outs.append(np.einsum("nchwij,ocij->nohw", xg, wg, optimize=True))
    out = np.concatenate(outs, axis=1)
    if len(xs) == 3:
        out = out + _f32(xs[2])[None, :, None, None]
    return [out.astype(np.float32)]


REFERENCES[OpKind.LATENT_ATTENTION] = latent_attention_reference
REFERENCES.update(CNN_REFERENCES)

assert set(REFERENCES) == set(OpKind), "every op kind needs a reference implementation"


def run_op(op: Op, arrays: list[Array]) -> list[Array]:
    """Execute one op on NumPy arrays with its reference semantics."""
    return REFERENCES[op.kind](op, arrays)


def graph_feeds(graph: Graph, feeds: Mapping[str, Array]) -> dict[str, Array]:
    """The value of every graph input and weight from `feeds`, checked against its shape.

    A missing feed or a wrong shape is a TegelError naming the tensor.
    """
    env: dict[str, Array] = {}
    for t in (*graph.inputs, *graph.weights):
        if t.name not in feeds:
            raise TegelError(f"graph {graph.name}: no value for tensor {t.name!r}")
        value = np.asarray(feeds[t.name])
        if value.shape != t.shape:
            raise TegelError(f"tensor {t.name!r}: expected shape {t.shape}, got {value.shape}")
        env[t.name] = value
    return env


def interpret(graph: Graph, feeds: Mapping[str, Array]) -> dict[str, Array]:
    """Run `graph` on `feeds` (runtime inputs and weights by tensor name).

    Returns every graph output by name. Missing feeds or wrong shapes are a TegelError.
    """
    env = graph_feeds(graph, feeds)
    for op in graph.ops:
        results = run_op(op, [env[t.name] for t in op.inputs])
        for tensor, value in zip(op.outputs, results, strict=True):
            env[tensor.name] = value
    return {t.name: env[t.name] for t in graph.outputs}
