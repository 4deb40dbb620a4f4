"""What the ONNX and torch.export frontends share: the loaded model, batch-norm folding, the
unknown-op error and the attention pattern.

A frontend translates node by node into a `GraphBuilder` plus a table of weight values, then
runs the passes here. Passes are pure: (graph, values) in, (graph, values) out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from tegel.errors import TegelError
from tegel.workload.graph import verify
from tegel.workload.ir import Graph, Op, OpKind, Role, Tensor


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
