"""What the ONNX and torch.export frontends share: the loaded model, the unknown-op error and
the passes run after translation (`simplify`: batch-norm folding, linear biases, attention).

A frontend translates node by node into a `GraphBuilder` plus a table of weight values, then
runs the passes here. Passes are pure: (graph, values) in, (graph, values) out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from tegel.errors import TegelError
from tegel.workload import ops as rules
from tegel.workload.dtypes import DType
from tegel.workload.graph import verify
from tegel.workload.ir import (
    Attention,
    Attrs,
    Binary,
    BinaryFn,
    Graph,
    MatMul,
    Op,
    OpKind,
    Reshape,
    Role,
    Softmax,
    Tensor,
    Transpose,
)


@dataclass(frozen=True)
class ImportedModel:
    """A graph and the values of its weights, by tensor name (float32 NumPy arrays)."""

    graph: Graph
    weights: Mapping[str, np.ndarray]

    def feeds(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The weights plus runtime `inputs`: what `tegel.workload.interpret` takes."""
        return {**self.weights, **inputs}


def unsupported_error(source: str, counts: Counter[str]) -> TegelError:
    """One error listing every op the frontend cannot translate, with how often it occurs."""
    listed = ", ".join(f"{name} x{n}" for name, n in sorted(counts.items()))
    return TegelError(f"{source}: unsupported ops: {listed}")


def _consumers(graph: Graph) -> Counter[str]:
    uses: Counter[str] = Counter(t.name for op in graph.ops for t in op.inputs)
    uses.update(t.name for t in graph.outputs)
    return uses


def simplify(model: ImportedModel) -> ImportedModel:
    """The frontends' passes, in order: fold batch norms into convolutions, fuse linear
    biases into their matmuls, recognise softmax(q kᵀ) v as ATTENTION."""
    return fuse_attention(fuse_matmul_bias(fold_batchnorm(model)))


def fold_batchnorm(model: ImportedModel) -> ImportedModel:
    """Fold every inference batch norm into the convolution before it, where it can.

    The rule: a BATCHNORM folds when its input is a CONV2D's output that nothing else reads
    (and is no graph output), and the conv's kernel and bias and the norm's four parameters
    are all weights. Then with m = scale / sqrt(var + eps) per output channel the conv
    becomes w' = w * m[o], b' = (b - mean) * m + bias (b = 0 without a bias) and writes the
    norm's output. Any other batch norm stays a BATCHNORM op. Weights no op reads any more
    are dropped.
    """
    graph, values = model.graph, dict(model.weights)
    uses = _consumers(graph)
    producer = graph.producers()
    folded: dict[str, Op] = {}  # conv name -> its folded form
    dropped: set[str] = set()  # names of norms folded away
    for op in graph.ops:
        if op.kind is not OpKind.BATCHNORM:
            continue
        conv = producer.get(op.inputs[0].name)
        params = (*op.inputs[1:], *(conv.inputs[1:] if conv else ()))
        if (conv is None or conv.kind is not OpKind.CONV2D or uses[op.inputs[0].name] != 1
                or any(t.role is not Role.WEIGHT for t in params) or conv.name in folded):
            continue
        scale, shift, mean, var = (values[t.name].astype(np.float64) for t in op.inputs[1:])
        mul = scale / np.sqrt(var + op.attrs.eps)  # type: ignore[union-attr]
        w = values[conv.inputs[1].name].astype(np.float64)
        bias = values[conv.inputs[2].name].astype(np.float64) if len(conv.inputs) == 3 else 0.0
        w_t = Tensor(f"{conv.name}.weight_bn", conv.inputs[1].shape, conv.inputs[1].dtype,
                     Role.WEIGHT)
        b_t = Tensor(f"{conv.name}.bias_bn", (w.shape[0],), conv.inputs[1].dtype, Role.WEIGHT)
        values[w_t.name] = (w * mul[:, None, None, None]).astype(np.float32)
        values[b_t.name] = ((bias - mean) * mul + shift).astype(np.float32)
        folded[conv.name] = replace(conv, inputs=(conv.inputs[0], w_t, b_t), outputs=op.outputs)
        dropped.add(op.name)
    ops = tuple(folded.get(op.name, op) for op in graph.ops if op.name not in dropped)
    return _with_ops(graph, ops, values)


def _with_ops(graph: Graph, ops: tuple[Op, ...], values: dict[str, np.ndarray]) -> ImportedModel:
    """The graph with `ops`, its weights those the ops read (old ones first, new ones after)."""
    read = {t.name: t for op in ops for t in op.inputs if t.role is Role.WEIGHT}
    kept = [w for w in graph.weights if w.name in read]
    known = {w.name for w in kept}
    kept += [t for name, t in read.items() if name not in known]
    new = verify(replace(graph, weights=tuple(kept), ops=ops))
    return ImportedModel(new, {w.name: values[w.name] for w in kept})


def _sole_producer(producers: Mapping[str, Op], uses: Counter[str], t: Tensor) -> Op | None:
    """The op writing `t` when nothing but one op reads `t`."""
    op = producers.get(t.name)
    return op if op is not None and uses[t.name] == 1 else None


def fuse_matmul_bias(model: ImportedModel) -> ImportedModel:
    """x @ W followed by + b (b a weight [N], W a weight, the product read only by the add)
    becomes one MATMUL with a bias: how ONNX and ATen often spell a linear layer."""
    graph = model.graph
    uses = _consumers(graph)
    producers = graph.producers()
    fused: dict[str, Op] = {}
    dropped: set[str] = set()
    for op in graph.ops:
        if op.kind is not OpKind.BINARY or op.attrs != Binary(BinaryFn.ADD):
            continue
        for prod_in, bias in (op.inputs, op.inputs[::-1]):
            mm = producers.get(prod_in.name)
            if (mm is None or mm.kind is not OpKind.MATMUL or len(mm.inputs) != 2
                    or uses[prod_in.name] != 1 or mm.inputs[1].role is not Role.WEIGHT
                    or bias.role is not Role.WEIGHT
                    or bias.shape != prod_in.shape[-1:] or op.outputs[0].shape != prod_in.shape):
                continue
            fused[mm.name] = replace(mm, inputs=(*mm.inputs, bias), outputs=op.outputs)
            dropped.add(op.name)
            break
    ops = tuple(fused.get(op.name, op) for op in graph.ops if op.name not in dropped)
    return _with_ops(graph, ops, dict(model.weights))


class _Ops:
    """New ops for a rewrite: each output's shape inferred by the op rules."""

    def __init__(self, base: str) -> None:
        self.base, self.ops = base, []  # type: ignore[var-annotated]

    def add(self, kind: OpKind, attrs: Attrs, ins: tuple[Tensor, ...], suffix: str,
            out: Tensor | None = None) -> Tensor:
        ((shape, dtype),) = rules.infer(kind, ins, attrs)
        name = f"{self.base}.{suffix}"
        out = out or Tensor(name, shape, dtype or ins[0].dtype)
        self.ops.append(Op(name, kind, ins, (out,), attrs))
        return out

    def heads_last(self, x: Tensor, perm: tuple[int, int, int, int], suffix: str) -> Tensor:
        """[B, ., ., .] permuted to [B, L, H, D], then flattened to [B, L, H*D]."""
        t = self.add(OpKind.TRANSPOSE, Transpose(perm), (x,), f"{suffix}_t")
        b, length, h, d = t.shape
        return self.add(OpKind.RESHAPE, Reshape((b, length, h * d)), (t,), suffix)


def _scalar_factor(op: Op | None, values: Mapping[str, np.ndarray]) -> float | None:
    """The factor of a multiply by a one-element weight, else None."""
    if op is None or op.attrs != Binary(BinaryFn.MUL):
        return None
    w = op.inputs[1]
    return float(values[w.name].reshape(())) if w.role is Role.WEIGHT and w.numel == 1 else None


def fuse_attention(model: ImportedModel) -> ImportedModel:
    """softmax(s · q kᵀ) v in plain ops becomes one ATTENTION op (bidirectional).

    The pattern: a MATMUL of q [B, H, Lq, D] (optionally times a scalar weight) by kᵀ
    [B, H, D, Lk] (likewise), a SOFTMAX over the last axis read only by a MATMUL by v
    [B, H, Lk, D], with Lq <= Lk. q, kᵀ and v are permuted and flattened into the
    [B, L, H*D] layout ATTENTION takes, and its output back to [B, H, Lq, D]: layout ops a
    mapper may elide. Anything else stays plain ops.
    """
    graph, values = model.graph, model.weights
    uses = _consumers(graph)
    producers = graph.producers()
    consumers: dict[str, list[Op]] = {}
    for op in graph.ops:
        for t in op.inputs:
            consumers.setdefault(t.name, []).append(op)
    replaced: dict[str, list[Op]] = {}  # the output matmul's name -> the ops replacing it
    dropped: set[str] = set()
    for sm in graph.ops:
        if sm.kind is not OpKind.SOFTMAX or sm.attrs != Softmax(-1) or len(sm.inputs[0].shape) != 4:
            continue
        scores = _sole_producer(producers, uses, sm.inputs[0])
        (pv, *others) = consumers.get(sm.outputs[0].name, [None])
        if (scores is None or pv is None or others or scores.kind is not OpKind.MATMUL
                or pv.kind is not OpKind.MATMUL or scores.attrs != MatMul()
                or pv.attrs != MatMul() or len(scores.inputs) != 2 or len(pv.inputs) != 2
                or pv.inputs[0] != sm.outputs[0]):
            continue
        gone = [scores, sm, pv]
        q, kt = scores.inputs
        scale = 1.0
        for i, t in enumerate((q, kt)):
            mul = _sole_producer(producers, uses, t)
            factor = _scalar_factor(mul, values)
            if mul is not None and factor is not None:
                scale *= factor
                gone.append(mul)
                q, kt = (mul.inputs[0], kt) if i == 0 else (q, mul.inputs[0])
        v = pv.inputs[1]
        b, h, lq, d = q.shape
        lk = kt.shape[3]
        if kt.shape != (b, h, d, lk) or v.shape != (b, h, lk, d) or lq > lk:
            continue
        new = _Ops(pv.name)
        q3 = new.heads_last(q, (0, 2, 1, 3), "attn_q")
        k3 = new.heads_last(kt, (0, 3, 1, 2), "attn_k")
        v3 = new.heads_last(v, (0, 2, 1, 3), "attn_v")
        out3 = new.add(OpKind.ATTENTION, Attention(h, h, d, scale, causal=False), (q3, k3, v3),
                       "attn")
        out4 = new.add(OpKind.RESHAPE, Reshape((b, lq, h, d)), (out3,), "attn_heads")
        new.add(OpKind.TRANSPOSE, Transpose((0, 2, 1, 3)), (out4,), "attn_out", pv.outputs[0])
        replaced[pv.name] = new.ops
        dropped.update(op.name for op in gone if op is not pv)
    ops = tuple(new_op for op in graph.ops if op.name not in dropped
                for new_op in replaced.get(op.name, [op]))
    return _with_ops(graph, ops, dict(values))


def in_formats(graph: Graph, weights: DType, activations: DType) -> Graph:
    """`graph` run in other number formats: float weights stored in `weights`, float runtime
    inputs and every float op output (the activations) in `activations`; integer tensors keep
    theirs. An imported model is fp32; `tegel run` / `execute` price it in the system's or the
    user's formats."""
    def cast(t: Tensor, dtype: DType) -> Tensor:
        return replace(t, dtype=dtype) if t.dtype.info.is_float else t

    new: dict[str, Tensor] = {t.name: cast(t, activations) for t in graph.inputs}
    new.update((t.name, cast(t, weights)) for t in graph.weights)
    ops = []
    for op in graph.ops:
        outs = tuple(cast(t, activations) for t in op.outputs)
        ops.append(replace(op, inputs=tuple(new[t.name] for t in op.inputs), outputs=outs))
        new.update((t.name, t) for t in outs)
    return verify(replace(graph, inputs=tuple(new[t.name] for t in graph.inputs),
                          weights=tuple(new[t.name] for t in graph.weights), ops=tuple(ops),
                          outputs=tuple(new[t.name] for t in graph.outputs)))
