"""The PyTorch frontend: a torch.nn.Module -> a tegel graph and its weight values.

`torch.export.export(module, example_inputs).run_decompositions()` gives a flat graph of
core ATen ops (with `scaled_dot_product_attention`, hardswish and hardsigmoid kept whole, so
they map onto ATTENTION and single UNARY ops).
Parameters, buffers and lifted constants become weights (Role.WEIGHT) when an op reads them;
the example inputs' shapes are the graph inputs'. A node whose tensor inputs are all
constants (a weight's transpose, shape arithmetic) is evaluated at load time by torch itself.
Every other node maps onto IR ops by `_ATEN`; nodes it cannot map are listed together, with
their counts, in one TegelError. The module is exported as it is: call `.eval()` first for
inference batch norm and no dropout (a training-mode batch norm is an unsupported op).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tegel.errors import TegelError
from tegel.workload.emitter import Emitter, Value
from tegel.workload.imported import ImportedModel, unsupported_error
from tegel.workload.ir import (
    Attention,
    BinaryFn,
    Conv2d,
    Graph,
    OpKind,
    Pool2d,
    PoolFn,
    Tensor,
    UnaryFn,
)


class _Unmapped:
    """The value of a node that could not be translated (its error is being collected)."""


_UNMAPPED = _Unmapped()
_KEPT_WHOLE = ("scaled_dot_product_attention", "hardswish", "hardsigmoid")


def from_torch(module: Any, example_inputs: Sequence[Any]) -> Graph:
    """The graph of `module` called on `example_inputs` (a tuple of tensors)."""
    return torch_model(module, example_inputs).graph


def torch_model(module: Any, example_inputs: Sequence[Any], fold: bool = True) -> ImportedModel:
    """The graph of `module` with its weight values (see the module doc)."""
    import torch

    source = type(module).__name__
    try:
        ep = torch.export.export(module, tuple(example_inputs))
        table = torch.export.default_decompositions()
        for whole in _KEPT_WHOLE:  # ops the IR has, left undecomposed
            table.pop(getattr(torch.ops.aten, whole).default, None)
        ep = ep.run_decompositions(table)
    except Exception as err:  # export raises many types for untraceable code
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise TegelError(f"{source}: torch.export failed: {first}") from None
    em = Emitter(source.lower(), source)
    sig = ep.graph_signature
    consts = {**sig.inputs_to_parameters, **sig.inputs_to_buffers,
              **sig.inputs_to_lifted_tensor_constants}
    tables = {**ep.state_dict, **ep.constants}
    env: dict[Any, Any] = {}
    unknown: Counter[str] = Counter()
    for node in ep.graph.nodes:
        if node.op == "placeholder":
            if node.name in consts:
                env[node] = tables[consts[node.name]].detach().float().numpy().copy()
            else:
                env[node] = em.input(node.name, tuple(node.meta["val"].shape))
        elif node.op == "call_function":
            env[node] = _call(em, node, env, unknown)
        elif node.op == "output":
            outs = [env[n] for n in node.args[0]]
    if unknown:
        raise unsupported_error(source, unknown)
    for v in outs:
        if not isinstance(v, Tensor):
            raise TegelError(f"{source}: an output is a constant; nothing to run")
    return em.build(tuple(outs), fold)


def _call(em: Emitter, node: Any, env: dict, unknown: Counter[str]) -> Any:
    import torch

    def value(a: Any) -> Any:
        if isinstance(a, torch.fx.Node):
            return env[a]
        if isinstance(a, (list, tuple)):
            return type(a)(value(x) for x in a)
        return a

    args, kwargs = value(node.args), {k: value(v) for k, v in node.kwargs.items()}
    flat = [*args, *kwargs.values()]
    flat += [x for a in flat if isinstance(a, (list, tuple)) for x in a]
    name = str(node.target)
    if name == "<built-in function getitem>":
        return args[0] if args[0] is _UNMAPPED else args[0][args[1]]
    key = name.removeprefix("aten.")
    rule = _ATEN.get(key)
    if rule is None and any(isinstance(a, Tensor) or a is _UNMAPPED for a in flat):
        unknown[key] += 1
        return _UNMAPPED
    if any(a is _UNMAPPED for a in flat):
        return _UNMAPPED
    if not any(isinstance(a, Tensor) for a in flat):  # all constants: fold with torch itself
        out = node.target(*_to_torch(args), **_to_torch(kwargs))
        return _to_numpy(out)
    shape = tuple(node.meta["val"].shape) if hasattr(node.meta.get("val"), "shape") else None
    assert rule is not None  # an unknown op with no computed input was folded above
    return rule(em, args, kwargs, node.name, shape)


def _to_torch(a: Any) -> Any:
    import torch

    if isinstance(a, np.ndarray):
        return torch.from_numpy(a)
    if isinstance(a, (list, tuple)):
        return type(a)(_to_torch(x) for x in a)
    if isinstance(a, dict):
        return {k: _to_torch(v) for k, v in a.items()}
    return a


def _to_numpy(a: Any) -> Any:
    import torch

    if isinstance(a, torch.Tensor):
        return a.detach().numpy().copy()
    if isinstance(a, (list, tuple)):
        return type(a)(_to_numpy(x) for x in a)
    return a


def _arg(args: tuple, kwargs: dict, i: int, key: str, default: Any) -> Any:
    return args[i] if len(args) > i else kwargs.get(key, default)


def _pair(v: Any, default: int) -> tuple[int, int]:
    v = list(v) if isinstance(v, (list, tuple)) else [v]
    v = v or [default]
    return (int(v[0]), int(v[-1]))


def _scalar(v: Any) -> Value:
    return v if isinstance(v, (Tensor, np.ndarray)) else np.asarray(v, dtype=np.float32)


def _conv(em, args, kw, name, shape):
    x, w, b, stride, padding, dilation, transposed, _, groups = args
    if transposed:
        raise TegelError(f"{em.source}: node {name}: transposed convolution is not supported")
    return em.conv(x, w, b, Conv2d(_pair(stride, 1), _pair(padding, 0), int(groups),
                                   _pair(dilation, 1)), name)


def _batchnorm(em, args, kw, name, shape):
    x, w, b, mean, var, _, eps = args
    c = mean.shape[0]
    w = np.ones(c, np.float32) if w is None else w
    b = np.zeros(c, np.float32) if b is None else b
    return (em.batchnorm(x, (w, b, mean, var), float(eps), name), None, None)


def _unary(fn: UnaryFn) -> Callable:
    return lambda em, args, kw, name, shape: em.unary(fn, args[0], name)


def _clamp(keys: tuple[str, str], lo_default: float | None,
           hi_default: float | None) -> Callable:
    """hardtanh / clamp: ReLU6 when the bounds are (0, 6), ReLU when (0, none)."""
    def translate(em, args, kw, name, shape):
        lo, hi = _arg(args, kw, 1, keys[0], lo_default), _arg(args, kw, 2, keys[1], hi_default)
        if (lo, hi) in ((0, 6), (0, None)):
            return em.unary(UnaryFn.RELU6 if hi else UnaryFn.RELU, args[0], name)
        raise TegelError(f"{em.source}: node {name}: clamp({lo}, {hi}) is not supported "
                         "(only the ReLU and ReLU6 forms)")
    return translate


def _gelu(em, args, kw, name, shape):
    tanh = _arg(args, kw, 1, "approximate", "none") == "tanh"
    return em.unary(UnaryFn.GELU_TANH if tanh else UnaryFn.GELU, args[0], name)


def _binary(fn: BinaryFn) -> Callable:
    def translate(em, args, kw, name, shape):
        b = _scalar(args[1])
        alpha = kw.get("alpha", 1)
        if alpha != 1:
            b = em.binary(BinaryFn.MUL, b, _scalar(alpha), f"{name}.alpha")
        return em.binary(fn, _scalar(args[0]), b, name)
    return translate


def _max_pool(em, args, kw, name, shape):
    x, k = args[0], _pair(args[1], 1)
    stride = _arg(args, kw, 2, "stride", []) or k
    a = Pool2d(PoolFn.MAX, k, _pair(stride, 1), _pair(_arg(args, kw, 3, "padding", 0), 0),
               bool(_arg(args, kw, 5, "ceil_mode", False)), True,
               _pair(_arg(args, kw, 4, "dilation", 1), 1))
    return (em.pool(x, a, name), None)


def _avg_pool(em, args, kw, name, shape):
    x, k = args[0], _pair(args[1], 1)
    if _arg(args, kw, 6, "divisor_override", None) is not None:
        raise TegelError(f"{em.source}: node {name}: avg_pool2d divisor_override")
    stride = _arg(args, kw, 2, "stride", []) or k
    a = Pool2d(PoolFn.AVG, k, _pair(stride, 1), _pair(_arg(args, kw, 3, "padding", 0), 0),
               bool(_arg(args, kw, 4, "ceil_mode", False)),
               bool(_arg(args, kw, 5, "count_include_pad", True)))
    return em.pool(x, a, name)


def _global_mean(em, args, kw, name, shape):
    x = args[0]
    dims = sorted(int(d) % len(x.shape) for d in args[1]) if len(args) > 1 else []
    if len(x.shape) != 4 or dims != [2, 3]:
        raise TegelError(f"{em.source}: node {name}: mean only over H and W of NCHW")
    return em.reshape(em.global_avg_pool(x, f"{name}.pool"), shape, name)


def _adaptive_avg(em, args, kw, name, shape):
    x = args[0]
    if tuple(args[1]) != (1, 1):
        raise TegelError(f"{em.source}: node {name}: adaptive pooling to other than 1x1")
    return em.global_avg_pool(x, name)


def _addmm(em, args, kw, name, shape):
    if kw.get("beta", 1) != 1 or kw.get("alpha", 1) != 1:
        raise TegelError(f"{em.source}: node {name}: addmm with alpha/beta != 1")
    bias, a, b = args
    if len(bias.shape) == 1:
        return em.linear(a, b, bias, name)
    return em.binary(BinaryFn.ADD, em.linear(a, b, None, f"{name}.mm"), bias, name)


def _reshape_to_meta(em, args, kw, name, shape):
    return em.reshape(args[0], shape, name)


def _expand(em, args, kw, name, shape):
    if tuple(shape) != args[0].shape:
        raise TegelError(f"{em.source}: node {name}: expand of a computed tensor "
                         f"{args[0].shape} -> {tuple(shape)} is not supported")
    return args[0]


def _sdpa(em, args, kw, name, shape):
    q, k, v = args[:3]
    mask, dropout = _arg(args, kw, 3, "attn_mask", None), _arg(args, kw, 4, "dropout_p", 0.0)
    causal, scale = _arg(args, kw, 5, "is_causal", False), _arg(args, kw, 6, "scale", None)
    b, h, lq, d = q.shape
    hkv, lk = k.shape[1], k.shape[2]
    if mask is not None or dropout or (causal and lq != lk) or len(q.shape) != 4:
        raise TegelError(f"{em.source}: node {name}: scaled_dot_product_attention with a mask, "
                         "dropout or a causal Lq != Lk is not supported")
    flat = [em.reshape(em.transpose(t, (0, 2, 1, 3), f"{name}.{s}_t"),
                       (b, t.shape[2], t.shape[1] * d), f"{name}.{s}")
            for s, t in (("q", q), ("k", k), ("v", v))]
    attrs = Attention(h, hkv, d, scale if scale is not None else 1 / math.sqrt(d), bool(causal))
    out = em.op(OpKind.ATTENTION, attrs, tuple(flat), f"{name}.attn")
    return em.transpose(em.reshape(out, (b, lq, h, d), f"{name}.heads"), (0, 2, 1, 3), name)


_ATEN: dict[str, Callable] = {
    "convolution.default": _conv,
    "_native_batch_norm_legit_no_training.default": _batchnorm,
    "relu.default": _unary(UnaryFn.RELU),
    "hardtanh.default": _clamp(("min_val", "max_val"), -1.0, 1.0),
    "clamp.default": _clamp(("min", "max"), None, None),
    "sigmoid.default": _unary(UnaryFn.SIGMOID),
    "silu.default": _unary(UnaryFn.SILU),
    "hardswish.default": _unary(UnaryFn.HARDSWISH),
    "hardsigmoid.default": _unary(UnaryFn.HARDSIGMOID),
    "gelu.default": _gelu,
    "add.Tensor": _binary(BinaryFn.ADD),
    "add.Scalar": _binary(BinaryFn.ADD),
    "sub.Tensor": _binary(BinaryFn.SUB),
    "mul.Tensor": _binary(BinaryFn.MUL),
    "mul.Scalar": _binary(BinaryFn.MUL),
    "div.Tensor": _binary(BinaryFn.DIV),
    "div.Scalar": _binary(BinaryFn.DIV),
    "max_pool2d_with_indices.default": _max_pool,
    "avg_pool2d.default": _avg_pool,
    "mean.dim": _global_mean,
    "_adaptive_avg_pool2d.default": _adaptive_avg,
    "addmm.default": _addmm,
    "mm.default": lambda em, args, kw, name, shape: em.linear(args[0], args[1], None, name),
    "bmm.default": lambda em, args, kw, name, shape: em.linear(args[0], args[1], None, name),
    "view.default": _reshape_to_meta,
    "reshape.default": _reshape_to_meta,
    "_unsafe_view.default": _reshape_to_meta,
    "unsqueeze.default": _reshape_to_meta,
    "squeeze.dim": _reshape_to_meta,
    "squeeze.dims": _reshape_to_meta,
    "expand.default": _expand,
    "permute.default": lambda em, args, kw, name, shape: em.transpose(args[0], tuple(args[1]),
                                                                       name),
    "clone.default": lambda em, args, kw, name, shape: args[0],
    "alias.default": lambda em, args, kw, name, shape: args[0],
    "cat.default": lambda em, args, kw, name, shape: em.concat(tuple(args[0]),
                                                               _arg(args, kw, 1, "dim", 0), name),
    "select.int": lambda em, args, kw, name, shape: em.select(args[0], args[1], args[2], name),
    "slice.Tensor": lambda em, args, kw, name, shape: _slice(em, args, kw, name),
    "_softmax.default": lambda em, args, kw, name, shape: em.softmax(args[0], args[1], name),
    "native_layer_norm.default": lambda em, args, kw, name, shape: (
        _layernorm(em, args, name), None, None),
    "scaled_dot_product_attention.default": _sdpa,
}


def _slice(em: Emitter, args: tuple, kw: dict, name: str) -> Tensor:
    x, dim = args[0], _arg(args, kw, 1, "dim", 0)
    start, end = _arg(args, kw, 2, "start", None), _arg(args, kw, 3, "end", None)
    if _arg(args, kw, 4, "step", 1) != 1:
        raise TegelError(f"{em.source}: node {name}: slice with a step other than 1")
    size = x.shape[dim]
    return em.slice(x, dim, 0 if start is None else start,
                    size if end is None else min(end, size), name)


def _layernorm(em: Emitter, args: tuple, name: str) -> Tensor:
    x, normalized, w, b, eps = args
    if len(normalized) != 1:
        raise TegelError(f"{em.source}: node {name}: layer norm over more than the last axis")
    return em.layernorm(x, w, b, float(eps), name)
