"""The frontends' common target: a GraphBuilder plus weight values, with one method per IR
construct the ONNX and torch.export translations share.

A value the frontend holds is either a `Tensor` (computed at run time) or a NumPy array (a
constant: a weight, or shape arithmetic folded at load time). An array that reaches an op
becomes a weight tensor (Role.WEIGHT) the first time, with its value kept.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from tegel.errors import TegelError
from tegel.workload.dtypes import DType
from tegel.workload.graph import GraphBuilder, GraphError
from tegel.workload.imported import ImportedModel, simplify
from tegel.workload.ir import (
    BatchNorm,
    Binary,
    BinaryFn,
    Concat,
    Conv2d,
    LayerNorm,
    MatMul,
    OpKind,
    Pool2d,
    PoolFn,
    Reshape,
    Slice,
    Softmax,
    Tensor,
    Transpose,
    Unary,
    UnaryFn,
)

Value = Tensor | np.ndarray


class Emitter:
    """Builds one imported graph; every method returns the new runtime tensor."""

    def __init__(self, name: str, source: str) -> None:
        self.g = GraphBuilder(name, DType.FP32)
        self.source = source  # the file or module, for error messages
        self.values: dict[str, np.ndarray] = {}
        self._weight_of: dict[int, Tensor] = {}  # id(array) -> its weight tensor
        self._keep: list[np.ndarray] = []  # arrays given weights (so their ids stay unique)
        self._fresh = itertools.count()

    def input(self, name: str, shape: tuple[int, ...]) -> Tensor:
        return self.g.input(name, shape, DType.FP32)

    def name(self, hint: str) -> str:
        """A tensor/op name not used yet, from `hint`."""
        taken = self.g._names
        if hint not in taken:
            return hint
        while (candidate := f"{hint}.{next(self._fresh)}") in taken:
            pass
        return candidate

    def tensor(self, v: Value, hint: str) -> Tensor:
        """`v` as a tensor: a constant becomes a weight (once per array)."""
        if isinstance(v, Tensor):
            return v
        if id(v) not in self._weight_of:
            arr = np.asarray(v, dtype=np.float32)
            t = self.g.weight(self.name(hint), arr.shape, DType.FP32)
            self.values[t.name] = arr
            self._weight_of[id(v)] = t
            self._keep.append(v)
        return self._weight_of[id(v)]

    def op(self, kind: OpKind, attrs: object, ins: tuple[Value, ...], out: str) -> Tensor:
        tensors = tuple(self.tensor(v, f"{out}.w{i}") for i, v in enumerate(ins))
        try:
            return self.g.op1(kind, attrs, tensors, self.name(out))  # type: ignore[arg-type]
        except GraphError as err:
            raise TegelError(f"{self.source}: {err}") from None

    # ---- constructs ----------------------------------------------------------------------

    def conv(self, x: Value, w: Value, b: Value | None, attrs: Conv2d, out: str) -> Tensor:
        return self.op(OpKind.CONV2D, attrs, (x, w) if b is None else (x, w, b), out)

    def linear(self, x: Value, w: Value, b: Value | None, out: str,
               transpose_b: bool = False) -> Tensor:
        """x @ w (+ b); with `transpose_b`, w is [N, K] (a torch.nn.Linear weight)."""
        ins = (x, w) if b is None else (x, w, b)
        return self.op(OpKind.MATMUL, MatMul(transpose_b=transpose_b), ins, out)

    def unary(self, fn: UnaryFn, x: Value, out: str) -> Tensor:
        return self.op(OpKind.UNARY, Unary(fn), (x,), out)

    def binary(self, fn: BinaryFn, a: Value, b: Value, out: str) -> Tensor:
        return self.op(OpKind.BINARY, Binary(fn), (a, b), out)

    def pool(self, x: Value, attrs: Pool2d, out: str) -> Tensor:
        return self.op(OpKind.POOL2D, attrs, (x,), out)

    def global_avg_pool(self, x: Tensor, out: str) -> Tensor:
        """The mean over H and W of x [N, C, H, W] -> [N, C, 1, 1]."""
        if len(x.shape) != 4:
            raise TegelError(f"{self.source}: op {out}: global pooling of a rank-"
                             f"{len(x.shape)} tensor")
        side = (x.shape[2], x.shape[3])
        return self.pool(x, Pool2d(PoolFn.AVG, side, side), out)

    def batchnorm(self, x: Value, params: tuple[Value, ...], eps: float, out: str) -> Tensor:
        return self.op(OpKind.BATCHNORM, BatchNorm(eps), (x, *params), out)

    def layernorm(self, x: Tensor, w: Value | None, b: Value | None, eps: float,
                  out: str) -> Tensor:
        hidden = x.shape[-1]
        w = np.ones(hidden, np.float32) if w is None else w
        b = np.zeros(hidden, np.float32) if b is None else b
        return self.op(OpKind.LAYERNORM, LayerNorm(eps), (x, w, b), out)

    def softmax(self, x: Value, axis: int, out: str) -> Tensor:
        rank = len(self.tensor(x, out).shape)
        return self.op(OpKind.SOFTMAX, Softmax(axis if axis < 0 else axis - rank), (x,), out)

    def reshape(self, x: Tensor, shape: tuple[int, ...], out: str) -> Tensor:
        """x viewed as `shape`; one -1 is inferred, as ONNX and torch do."""
        shape = tuple(int(d) for d in shape)
        if -1 in shape:
            known = math.prod(d for d in shape if d != -1)
            shape = tuple(x.numel // known if d == -1 and known else d for d in shape)
        if shape == x.shape:
            return x
        return self.op(OpKind.RESHAPE, Reshape(shape), (x,), out)

    def transpose(self, x: Tensor, perm: tuple[int, ...], out: str) -> Tensor:
        perm = tuple(p % len(x.shape) for p in perm)
        if perm == tuple(range(len(perm))):
            return x
        return self.op(OpKind.TRANSPOSE, Transpose(perm), (x,), out)

    def concat(self, xs: tuple[Value, ...], axis: int, out: str) -> Tensor:
        rank = len(next(v.shape for v in xs))
        return self.op(OpKind.CONCAT, Concat(axis % rank), xs, out)

    def slice(self, x: Tensor, axis: int, start: int, stop: int, out: str) -> Tensor:
        axis %= len(x.shape)
        size = x.shape[axis]
        start, stop = (max(0, min(size, p + size if p < 0 else p)) for p in (start, stop))
        if (start, stop) == (0, size):
            return x
        return self.op(OpKind.SLICE, Slice(axis, start, stop), (x,), out)

    def select(self, x: Tensor, axis: int, index: int, out: str) -> Tensor:
        """x[..., index, ...] along `axis`, the axis dropped (a Gather by a scalar)."""
        axis %= len(x.shape)
        index %= x.shape[axis]
        piece = self.slice(x, axis, index, index + 1, f"{out}.slice")
        return self.reshape(piece, x.shape[:axis] + x.shape[axis + 1:], out)

    def build(self, outputs: tuple[Tensor, ...], fold: bool = True) -> ImportedModel:
        """The verified model, simplified by `imported.simplify` unless `fold` is off (then
        the graph is the node-by-node translation)."""
        model = ImportedModel(self.g.build(outputs), dict(self.values))
        return simplify(model) if fold else model
