"""Rules (shape inference, FLOPs, minimal bytes) of the vision-network op kinds.

Registered into `tegel.workload.ops` when that module loads. None of these kinds is a GEMM:
convolutions and linear layers are CONV2D and MATMUL, whose rules live in `ops`.
Conventions: a pooling window costs one FLOP per tap (a compare or an add) plus, for
average pooling, one divide; inference batch norm is a multiply-add per element; a reshape
is a view and moves no bytes; a transpose and a concat read and write every element once.
"""

from __future__ import annotations

import math

from tegel.workload.ir import (
    BatchNorm,
    Concat,
    Conv2d,
    Op,
    OpKind,
    Pool2d,
    PoolFn,
    Reshape,
    Tensor,
    Transpose,
    UnaryFn,
)
from tegel.workload.ops import UNARY_FLOPS, OpSpecs, OpWork, Shape, _need, _plain, _rule

UNARY_FLOPS.update({
    UnaryFn.RELU6: 2,  # two compares
    UnaryFn.SIGMOID: 4,  # negate, exp, add, divide
    UnaryFn.HARDSIGMOID: 4,  # multiply, add, two compares
    UnaryFn.HARDSWISH: 5,  # hardsigmoid and a multiply
})


def pool_output_extent(size: int, kernel: int, stride: int, pad: int, dilation: int,
                       ceil_mode: bool) -> int:
    """Output size of one pooled axis, as torch and ONNX define it: in ceil mode the last
    window must start inside the input or its left padding."""
    span = dilation * (kernel - 1) + 1
    room = size + 2 * pad - span
    out = (-(-room // stride) if ceil_mode else room // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def pool_output_hw(hw: tuple[int, ...], a: Pool2d) -> tuple[int, int]:
    """(H_out, W_out) of a pooling of an [H, W] image."""
    return (pool_output_extent(hw[0], a.kernel[0], a.stride[0], a.padding[0], a.dilation[0],
                               a.ceil_mode),
            pool_output_extent(hw[1], a.kernel[1], a.stride[1], a.padding[1], a.dilation[1],
                               a.ceil_mode))


def _pool_infer(ins: tuple[Tensor, ...], a: Pool2d) -> OpSpecs:
    _need(len(ins) == 1 and len(ins[0].shape) == 4, "pool2d takes one NCHW input")
    _need(min(*a.kernel, *a.stride, *a.dilation) >= 1 and min(a.padding) >= 0,
          f"pool2d kernel {a.kernel} / stride {a.stride} / padding {a.padding}")
    _need(all(2 * p <= k for p, k in zip(a.padding, a.kernel, strict=True)),
          f"pool2d padding {a.padding} exceeds half the kernel {a.kernel}")
    _need(a.fn is PoolFn.MAX or a.dilation == (1, 1), "average pooling has no dilation")
    n, c, h, w = ins[0].shape
    oh, ow = pool_output_hw((h, w), a)
    _need(oh > 0 and ow > 0, f"pool2d kernel {a.kernel} larger than padded input {(h, w)}")
    return (((n, c, oh, ow), None),)


def _pool_work(op: Op) -> OpWork:
    a: Pool2d = op.attrs  # type: ignore[assignment]
    per_output = a.kernel[0] * a.kernel[1] + (a.fn is PoolFn.AVG)
    return _plain(op, float(per_output * op.outputs[0].numel))


def _batchnorm_infer(ins: tuple[Tensor, ...], _: BatchNorm) -> OpSpecs:
    _need(len(ins) == 5 and len(ins[0].shape) >= 2,
          "batchnorm takes (x [N, C, ...], scale, bias, mean, var)")
    c = ins[0].shape[1]
    for p in ins[1:]:
        _need(p.shape == (c,), f"batchnorm parameter {p.name} must be [{c}], got {p.shape}")
    return ((ins[0].shape, None),)


def _reshape_infer(ins: tuple[Tensor, ...], a: Reshape) -> OpSpecs:
    _need(len(ins) == 1, "reshape takes one input")
    _need(min(a.shape, default=0) >= 0 and math.prod(a.shape) == ins[0].numel,
          f"cannot reshape {ins[0].shape} to {a.shape}")
    return ((a.shape, None),)


def _transpose_infer(ins: tuple[Tensor, ...], a: Transpose) -> OpSpecs:
    _need(len(ins) == 1, "transpose takes one input")
    shape = ins[0].shape
    _need(sorted(a.perm) == list(range(len(shape))), f"perm {a.perm} for shape {shape}")
    return ((tuple(shape[p] for p in a.perm), None),)


def _concat_infer(ins: tuple[Tensor, ...], a: Concat) -> OpSpecs:
    _need(len(ins) >= 1, "concat takes at least one input")
    first = ins[0].shape
    _need(0 <= a.axis < len(first), f"concat axis {a.axis} for rank {len(first)}")
    for t in ins[1:]:
        same = len(t.shape) == len(first) and all(
            d == e for i, (d, e) in enumerate(zip(t.shape, first, strict=True)) if i != a.axis)
        _need(same, f"concat of {first} and {t.shape} along axis {a.axis}")
    total = sum(t.shape[a.axis] for t in ins)
    return (((*first[:a.axis], total, *first[a.axis + 1:]), None),)


_rule(OpKind.POOL2D, _pool_infer, _pool_work)
_rule(OpKind.BATCHNORM, _batchnorm_infer, lambda op: _plain(op, 2.0 * op.outputs[0].numel))
_rule(OpKind.RESHAPE, _reshape_infer, lambda op: OpWork(0.0, (0.0,), (0.0,)))
_rule(OpKind.TRANSPOSE, _transpose_infer, lambda op: _plain(op, 0.0))
_rule(OpKind.CONCAT, _concat_infer, lambda op: _plain(op, 0.0))


# ---- convolution ---------------------------------------------------------------------------


def conv_output_hw(hw: Shape, khw: Shape, a: Conv2d) -> tuple[int, int]:
    """Output height and width of a convolution of an [H, W] image by a [kh, kw] kernel."""
    def extent(axis: int) -> int:
        span = a.dilation[axis] * (khw[axis] - 1) + 1  # the dilated kernel's reach
        return (hw[axis] + 2 * a.padding[axis] - span) // a.stride[axis] + 1

    return extent(0), extent(1)


def _conv_infer(ins: tuple[Tensor, ...], a: Conv2d) -> OpSpecs:
    _need(len(ins) in (2, 3), "conv2d takes (x, w) or (x, w, bias)")
    x, w = ins[0].shape, ins[1].shape
    _need(len(x) == 4 and len(w) == 4, f"conv2d needs NCHW x and OIHW w, got {x}, {w}")
    _need(x[1] == w[1] * a.groups and w[0] % a.groups == 0, f"conv2d channels {x} vs {w}")
    _need(min(*a.stride, *a.dilation) >= 1 and min(a.padding) >= 0 and a.groups >= 1,
          f"conv2d stride {a.stride} / dilation {a.dilation} / padding {a.padding} / groups")
    oh, ow = conv_output_hw(x[2:], w[2:], a)
    _need(oh > 0 and ow > 0, f"conv2d kernel {w[2:]} larger than padded input {x[2:]}")
    if len(ins) == 3:
        _need(ins[2].shape == (w[0],), f"conv2d bias must be [{w[0]}]")
    return (((x[0], w[0], oh, ow), None),)


def conv_input_touched(size: int, out: int, k: int, stride: int, dilation: int,
                       pad: int = 0) -> int:
    """Input rows (or columns) of `size` that a convolution's `out` windows of `k` taps read
    (padding aside): all of them where windows cover the input, fewer where the stride or the
    dilation skips rows (a strided 1 x 1 reads a quarter of its input at stride 2). Counted
    exactly: the union of the windows' taps."""
    taps = {o * stride + t * dilation - pad for o in range(out) for t in range(k)}
    return sum(1 for r in taps if 0 <= r < size)


def _conv_work(op: Op) -> OpWork:
    a: Conv2d = op.attrs  # type: ignore[assignment]
    x, w = op.inputs[0].shape, op.inputs[1].shape
    o = op.outputs[0]
    flops = 2.0 * o.numel * w[1] * w[2] * w[3] + (o.numel if len(op.inputs) == 3 else 0)
    rows = conv_input_touched(x[2], o.shape[2], w[2], a.stride[0], a.dilation[0], a.padding[0])
    cols = conv_input_touched(x[3], o.shape[3], w[3], a.stride[1], a.dilation[1], a.padding[1])
    touched = op.inputs[0].nbytes * rows * cols / (x[2] * x[3])
    reads = (touched, *(t.nbytes for t in op.inputs[1:]))
    return OpWork(flops, reads, tuple(t.nbytes for t in op.outputs))


_rule(OpKind.CONV2D, _conv_infer, _conv_work)
