"""The ONNX frontend: an .onnx file -> a tegel graph and its weight values.

Initializers become weights (Role.WEIGHT) when an op reads them; graph inputs are runtime
inputs, a symbolic leading (batch) dimension set to `batch`. Nodes whose inputs are all
constants (Constant, Shape of a tensor of known shape, the Gather/Unsqueeze/Concat arithmetic
on shapes, ...) are evaluated at load time with ONNX's reference evaluator. Every other node
maps onto IR ops by `_TRANSLATE`; nodes it cannot map are listed together, with their counts,
in one TegelError. Batch norms are folded into the convolutions before them
(`workload.imported.fold_batchnorm`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tegel.errors import TegelError
from tegel.workload.emitter import Emitter, Value
from tegel.workload.imported import ImportedModel, unsupported_error
from tegel.workload.ir import BinaryFn, Conv2d, Graph, Pool2d, PoolFn, Tensor, UnaryFn

_PASS_THROUGH = frozenset({"Identity", "Dropout"})


def load_onnx(path: str | Path, batch: int | None = None) -> Graph:
    """The graph of the ONNX model at `path`, its dynamic batch dimension set to `batch` (1)."""
    return load_onnx_model(path, batch).graph


def load_onnx_model(path: str | Path, batch: int | None = None,
                    fold: bool = True) -> ImportedModel:
    """The graph of the ONNX model at `path` with its weight values (see the module doc)."""
    import onnx
    import onnx.numpy_helper

    path = Path(path)
    if batch is not None and batch < 1:
        raise TegelError(f"batch: expected a positive integer, got {batch}")
    try:
        model = onnx.load(str(path))
    except Exception as err:  # onnx raises DecodeError, OSError, ... for unreadable files
        raise TegelError(f"{path}: not a readable ONNX model ({type(err).__name__}: "
                         f"{str(err).splitlines()[0] if str(err) else 'no detail'})") from None
    g = model.graph
    if not g.node:
        raise TegelError(f"{path}: not a readable ONNX model (no graph nodes)")
    em = Emitter(path.stem, str(path))
    env: dict[str, Value] = {i.name: onnx.numpy_helper.to_array(i) for i in g.initializer}
    for vi in g.input:
        if vi.name not in env:
            env[vi.name] = em.input(vi.name, _input_shape(vi, batch or 1, path))
    todo = Counter(n.op_type for n in g.node if not _known(n))
    if todo:
        raise unsupported_error(str(path), todo)
    for node in g.node:
        ins: list[Value | None] = [env[i] if i else None for i in node.input]
        outs: list[Value]
        if all(v is None or isinstance(v, np.ndarray) for v in ins):
            outs = list(_fold(node, ins))
        else:
            outs = _translate(em, node, ins, path)
        for name, value in zip(node.output, outs, strict=False):
            env[name] = value
    outputs = tuple(_as_output(em, env[o.name], o.name) for o in g.output)
    return em.build(outputs, fold)


def _input_shape(vi, batch: int, path: Path) -> tuple[int, ...]:
    dims = []
    for i, d in enumerate(vi.type.tensor_type.shape.dim):
        if d.HasField("dim_value") and d.dim_value > 0:
            dims.append(d.dim_value)
        elif i == 0:
            dims.append(batch)
        else:
            raise TegelError(f"{path}: input {vi.name!r} has a dynamic dimension {i} "
                             f"({d.dim_param or '?'}); only the leading batch may be dynamic")
    return tuple(dims)


def _as_output(em: Emitter, v: Value, name: str) -> Tensor:
    if isinstance(v, Tensor):
        return v
    raise TegelError(f"{em.source}: output {name!r} is a constant; nothing to run")


def _fold(node, ins: list) -> list[np.ndarray]:
    from onnx.reference import ReferenceEvaluator

    feeds = {name: v for name, v in zip(node.input, ins, strict=True) if name}
    return [np.asarray(v) for v in ReferenceEvaluator(node).run(None, feeds)]


def _known(node) -> bool:
    return node.op_type in _TRANSLATE or node.op_type in _PASS_THROUGH or node.op_type in _FOLDABLE


def _attrs(node) -> dict:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _pairs(node, key: str, default: int, path: Path) -> tuple[int, int]:
    v = _attrs(node).get(key, [default, default])
    if key == "pads":
        if len(v) != 4 or v[0] != v[2] or v[1] != v[3]:
            raise TegelError(f"{path}: node {node.name!r}: asymmetric pads {list(v)}")
        return int(v[0]), int(v[1])
    return int(v[0]), int(v[1])


def _check_auto_pad(node, path: Path) -> None:
    auto = _attrs(node).get("auto_pad", b"NOTSET")
    if auto not in (b"NOTSET", b"VALID"):
        raise TegelError(f"{path}: node {node.name!r}: auto_pad {auto.decode()} is not supported")


def _translate(em: Emitter, node, ins: list, path: Path) -> list[Value]:
    op = node.op_type
    if op == "Shape":
        shape = np.array(_runtime(ins[0], node, path).shape, dtype=np.int64)
        a = _attrs(node)
        return [shape[a.get("start", 0): a.get("end", len(shape))]]
    if op in _PASS_THROUGH:
        return [ins[0]]
    return [_TRANSLATE[op](em, node, ins, _attrs(node), node.output[0], path)]


def _runtime(v: Value, node, path: Path) -> Tensor:
    if not isinstance(v, Tensor):
        raise TegelError(f"{path}: node {node.name!r} ({node.op_type}) needs a computed input "
                         "where the file gives a constant")
    return v


def _const(v: Value | None, node, path: Path, what: str) -> np.ndarray:
    if not isinstance(v, np.ndarray):
        raise TegelError(f"{path}: node {node.name!r} ({node.op_type}): {what} must be a "
                         "constant")
    return v


def _conv(em, node, ins, a, out, path):
    _check_auto_pad(node, path)
    attrs = Conv2d(_pairs(node, "strides", 1, path), _pairs(node, "pads", 0, path),
                   int(a.get("group", 1)), _pairs(node, "dilations", 1, path))
    return em.conv(ins[0], ins[1], ins[2] if len(ins) > 2 else None, attrs, out)


def _pool(fn: PoolFn) -> Callable:
    def translate(em, node, ins, a, out, path):
        _check_auto_pad(node, path)
        attrs = Pool2d(fn, _pairs(node, "kernel_shape", 1, path), _pairs(node, "strides", 1, path),
                       _pairs(node, "pads", 0, path), bool(a.get("ceil_mode", 0)),
                       bool(a.get("count_include_pad", 0)), _pairs(node, "dilations", 1, path))
        return em.pool(ins[0], attrs, out)
    return translate


def _global_pool(em, node, ins, a, out, path):
    return em.global_avg_pool(_runtime(ins[0], node, path), out)


def _reduce_mean(em, node, ins, a, out, path):
    x = _runtime(ins[0], node, path)
    axes = a.get("axes") if len(ins) < 2 else _const(ins[1], node, path, "axes")
    if len(x.shape) != 4 or sorted(int(i) % 4 for i in axes) != [2, 3]:
        raise TegelError(f"{path}: node {node.name!r}: ReduceMean only over H and W of NCHW")
    pooled = em.global_avg_pool(x, f"{out}.pool")
    return pooled if a.get("keepdims", 1) else em.reshape(pooled, x.shape[:2], out)


def _binary(fn: BinaryFn) -> Callable:
    return lambda em, node, ins, a, out, path: em.binary(fn, ins[0], ins[1], out)


def _unary(fn: UnaryFn) -> Callable:
    return lambda em, node, ins, a, out, path: em.unary(fn, ins[0], out)


def _clip(em, node, ins, a, out, path):
    lo = float(_const(ins[1], node, path, "min")) if len(ins) > 1 and ins[1] is not None else None
    hi = float(_const(ins[2], node, path, "max")) if len(ins) > 2 and ins[2] is not None else None
    lo, hi = a.get("min", lo), a.get("max", hi)
    if (lo, hi) == (0.0, 6.0):
        return em.unary(UnaryFn.RELU6, ins[0], out)
    if lo == 0.0 and hi is None:
        return em.unary(UnaryFn.RELU, ins[0], out)
    raise TegelError(f"{path}: node {node.name!r}: Clip({lo}, {hi}) is not supported "
                     "(only ReLU and ReLU6 forms)")


def _hardsigmoid(em, node, ins, a, out, path):
    if not (np.isclose(a.get("alpha", 0.2), 1 / 6) and np.isclose(a.get("beta", 0.5), 0.5)):
        raise TegelError(f"{path}: node {node.name!r}: HardSigmoid alpha {a.get('alpha', 0.2)} "
                         "(only torch's 1/6, 0.5)")
    return em.unary(UnaryFn.HARDSIGMOID, ins[0], out)


def _gelu(em, node, ins, a, out, path):
    tanh = a.get("approximate", b"none") == b"tanh"
    return em.unary(UnaryFn.GELU_TANH if tanh else UnaryFn.GELU, ins[0], out)


def _matmul(em, node, ins, a, out, path):
    return em.linear(_runtime(ins[0], node, path), ins[1], None, out)


def _gemm(em, node, ins, a, out, path):
    if a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0 or a.get("transA", 0):
        raise TegelError(f"{path}: node {node.name!r}: Gemm with alpha/beta != 1 or transA")
    bias = ins[2] if len(ins) > 2 else None
    if bias is not None and len(bias.shape) != 1:
        bias = _const(bias, node, path, "bias").reshape(-1)
    return em.linear(ins[0], ins[1], bias, out, transpose_b=bool(a.get("transB", 0)))


def _batchnorm(em, node, ins, a, out, path):
    return em.batchnorm(ins[0], tuple(ins[1:5]), float(a.get("epsilon", 1e-5)), out)


def _layernorm(em, node, ins, a, out, path):
    x = _runtime(ins[0], node, path)
    if a.get("axis", -1) % len(x.shape) != len(x.shape) - 1:
        raise TegelError(f"{path}: node {node.name!r}: LayerNormalization over other than the "
                         "last axis")
    return em.layernorm(x, ins[1], ins[2] if len(ins) > 2 else None,
                        float(a.get("epsilon", 1e-5)), out)


def _reshape(em, node, ins, a, out, path):
    x = _runtime(ins[0], node, path)
    shape = [int(d) for d in _const(ins[1], node, path, "shape")]
    if not a.get("allowzero", 0):
        shape = [x.shape[i] if d == 0 else d for i, d in enumerate(shape)]
    return em.reshape(x, tuple(shape), out)


def _flatten(em, node, ins, a, out, path):
    x = _runtime(ins[0], node, path)
    axis = a.get("axis", 1) % (len(x.shape) + 1)
    return em.reshape(x, (int(np.prod(x.shape[:axis])), int(np.prod(x.shape[axis:]))), out)


def _squeeze_like(em, node, ins, a, out, path):
    x = _runtime(ins[0], node, path)
    shape = _fold(node, [np.empty(x.shape, np.float32), *ins[1:]])[0].shape
    return em.reshape(x, shape, out)


def _transpose(em, node, ins, a, out, path):
    x = _runtime(ins[0], node, path)
    return em.transpose(x, tuple(a.get("perm", range(len(x.shape))[::-1])), out)


def _concat(em, node, ins, a, out, path):
    return em.concat(tuple(ins), int(a["axis"]), out)


def _softmax(em, node, ins, a, out, path):
    return em.softmax(ins[0], int(a.get("axis", -1)), out)


def _gather(em, node, ins, a, out, path):
    index = _const(ins[1], node, path, "the index")
    if index.ndim != 0:
        raise TegelError(f"{path}: node {node.name!r}: Gather by an index array is not supported")
    return em.select(_runtime(ins[0], node, path), int(a.get("axis", 0)), int(index), out)


def _slice(em, node, ins, a, out, path):
    x = _runtime(ins[0], node, path)
    starts, ends = (_const(v, node, path, "bounds") for v in ins[1:3])
    axes = _const(ins[3], node, path, "axes") if len(ins) > 3 else range(len(starts))
    steps = _const(ins[4], node, path, "steps") if len(ins) > 4 else [1] * len(starts)
    if any(int(s) != 1 for s in steps):
        raise TegelError(f"{path}: node {node.name!r}: Slice with steps other than 1")
    for i, (axis, start, end) in enumerate(zip(axes, starts, ends, strict=True)):
        stop = min(int(end), x.shape[int(axis)])
        x = em.slice(x, int(axis), int(start), stop, out if i == len(starts) - 1 else f"{out}.{i}")
    return x


_TRANSLATE: dict[str, Callable] = {
    "Conv": _conv,
    "MaxPool": _pool(PoolFn.MAX),
    "AveragePool": _pool(PoolFn.AVG),
    "GlobalAveragePool": _global_pool,
    "ReduceMean": _reduce_mean,
    "BatchNormalization": _batchnorm,
    "Relu": _unary(UnaryFn.RELU),
    "Sigmoid": _unary(UnaryFn.SIGMOID),
    "HardSwish": _unary(UnaryFn.HARDSWISH),
    "HardSigmoid": _hardsigmoid,
    "Clip": _clip,
    "Gelu": _gelu,
    "Add": _binary(BinaryFn.ADD),
    "Sub": _binary(BinaryFn.SUB),
    "Mul": _binary(BinaryFn.MUL),
    "Div": _binary(BinaryFn.DIV),
    "MatMul": _matmul,
    "Gemm": _gemm,
    "Softmax": _softmax,
    "LayerNormalization": _layernorm,
    "Reshape": _reshape,
    "Flatten": _flatten,
    "Squeeze": _squeeze_like,
    "Unsqueeze": _squeeze_like,
    "Transpose": _transpose,
    "Concat": _concat,
    "Gather": _gather,
    "Slice": _slice,
}
# ops met only in shape arithmetic, folded when all their inputs are constants
_FOLDABLE = frozenset({"Constant", "Shape", "Cast", "ConstantOfShape", "Range", "Expand",
                       "Equal", "Where", "ReduceProd", "Sqrt", "Floor", "Ceil"})
