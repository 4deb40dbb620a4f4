"""NumPy references of the vision-network op kinds (pooling, batch norm, layout, concat).

`tegel.workload.reference` merges `CNN_REFERENCES` into its registry. Arithmetic is float32,
as there.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tegel.workload.cnn_ops import pool_output_hw
from tegel.workload.ir import BatchNorm, Concat, Op, OpKind, Pool2d, PoolFn, Reshape, Transpose

Array = np.ndarray


def _taps(x: Array, a: Pool2d, fill: float) -> tuple[list[Array], tuple[int, int]]:
    """The strided view of x [N, C, H, W] under each kernel tap, over a canvas padded with
    `fill` on every side (the padding, then room for ceil mode's last windows)."""
    (ph, pw), (sh, sw), (dh, dw), (kh, kw) = a.padding, a.stride, a.dilation, a.kernel
    oh, ow = pool_output_hw(x.shape[2:], a)
    need_h, need_w = (oh - 1) * sh + dh * (kh - 1) + 1, (ow - 1) * sw + dw * (kw - 1) + 1
    h, w = x.shape[2:]
    canvas = np.pad(x, ((0, 0), (0, 0), (ph, max(ph, need_h - h - ph)),
                        (pw, max(pw, need_w - w - pw))), constant_values=fill)
    taps = [canvas[:, :, i * dh: i * dh + (oh - 1) * sh + 1: sh,
                   j * dw: j * dw + (ow - 1) * sw + 1: sw]
            for i in range(kh) for j in range(kw)]
    return taps, (oh, ow)


def _window_counts(size: int, out: int, kernel: int, stride: int, pad: int,
                   include_pad: bool) -> Array:
    """Taps of each window along one axis that count for an average: inside the input, or
    inside the padded input with `include_pad`; never past the padded input."""
    start = np.arange(out) * stride - pad
    lo, hi = (-pad, size + pad) if include_pad else (0, size)
    return np.minimum(start + kernel, hi) - np.maximum(start, lo)


def pool2d(op: Op, xs: list[Array]) -> list[Array]:
    a: Pool2d = op.attrs  # type: ignore[assignment]
    x = np.asarray(xs[0], dtype=np.float32)
    if a.fn is PoolFn.MAX:
        taps, _ = _taps(x, a, -np.inf)
        return [np.maximum.reduce(taps).astype(np.float32)]
    taps, (oh, ow) = _taps(x, a, 0.0)
    total = np.add.reduce([t.astype(np.float64) for t in taps])
    h, w = x.shape[2:]
    rows = _window_counts(h, oh, a.kernel[0], a.stride[0], a.padding[0], a.count_include_pad)
    cols = _window_counts(w, ow, a.kernel[1], a.stride[1], a.padding[1], a.count_include_pad)
    return [(total / np.outer(rows, cols)).astype(np.float32)]


def batchnorm(op: Op, xs: list[Array]) -> list[Array]:
    a: BatchNorm = op.attrs  # type: ignore[assignment]
    x = np.asarray(xs[0], dtype=np.float32)
    scale, bias, mean, var = (np.asarray(p, dtype=np.float64) for p in xs[1:])
    mul = scale / np.sqrt(var + a.eps)
    add = bias - mean * mul
    per_channel = (1, -1) + (1,) * (x.ndim - 2)
    return [(x * mul.reshape(per_channel) + add.reshape(per_channel)).astype(np.float32)]


def reshape(op: Op, xs: list[Array]) -> list[Array]:
    a: Reshape = op.attrs  # type: ignore[assignment]
    return [np.asarray(xs[0]).reshape(a.shape)]


def transpose(op: Op, xs: list[Array]) -> list[Array]:
    a: Transpose = op.attrs  # type: ignore[assignment]
    return [np.ascontiguousarray(np.transpose(np.asarray(xs[0]), a.perm))]


def concat(op: Op, xs: list[Array]) -> list[Array]:
    a: Concat = op.attrs  # type: ignore[assignment]
    return [np.concatenate([np.asarray(x) for x in xs], axis=a.axis)]


CNN_REFERENCES: dict[OpKind, Callable[[Op, list[Array]], list[Array]]] = {
    OpKind.POOL2D: pool2d,
    OpKind.BATCHNORM: batchnorm,
    OpKind.RESHAPE: reshape,
    OpKind.TRANSPOSE: transpose,
    OpKind.CONCAT: concat,
}
