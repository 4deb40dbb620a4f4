"""Building and verifying graphs.

`GraphBuilder` is the one way frontends make graphs: it infers every output shape from the
op rules, so a built graph is well-formed by construction. `verify` re-checks the invariants
of any graph (after a pass, after loading) and names what is wrong.
"""

from __future__ import annotations

from tegel.errors import TegelError
from tegel.workload import ops
from tegel.workload.dtypes import DType
from tegel.workload.ir import ATTRS_OF_KIND, Attrs, Graph, Op, OpKind, Role, Tensor


class GraphError(TegelError, ValueError):
    """A graph that breaks an IR invariant: a TegelError (one line, no traceback, when a
    config describes an impossible model) that stays a ValueError for older callers."""


def verify(graph: Graph) -> Graph:
    """Check a graph's invariants and return it unchanged.

    Checked: attrs type matches op kind; names unique; every tensor has exactly one
    definition (graph input, weight or one producing op); ops read only tensors defined
    before them (so the graph is acyclic and topologically ordered); output shapes are the
    ones the op rules infer; weights have role WEIGHT; graph outputs exist.
    """
    defined: dict[str, Tensor] = {}

    def define(t: Tensor, where: str) -> None:
        if t.name in defined:
            raise GraphError(f"{graph.name}: tensor {t.name!r} defined twice ({where})")
        if any(d < 0 for d in t.shape):
            raise GraphError(f"{graph.name}: tensor {t.name!r} has negative size {t.shape}")
        defined[t.name] = t

    for t in graph.inputs:
        if t.role is Role.WEIGHT:
            raise GraphError(f"{graph.name}: input {t.name!r} has role weight")
        define(t, "graph input")
    for t in graph.weights:
        if t.role is not Role.WEIGHT:
            raise GraphError(f"{graph.name}: weight {t.name!r} has role {t.role.value}")
        define(t, "weight")
    op_names: set[str] = set()
    for op in graph.ops:
        if op.name in op_names:
            raise GraphError(f"{graph.name}: op name {op.name!r} used twice")
        op_names.add(op.name)
        if not isinstance(op.attrs, ATTRS_OF_KIND[op.kind]):
            raise GraphError(f"op {op.name}: {op.kind.value} needs {ATTRS_OF_KIND[op.kind].__name__}")
        for t in op.inputs:
            if defined.get(t.name) != t:
                state = "is not defined before it" if t.name not in defined else "differs"
                raise GraphError(f"op {op.name}: input {t.name!r} {state}")
        try:
            specs = ops.infer(op.kind, op.inputs, op.attrs)
        except ops.ShapeError as err:
            raise GraphError(f"op {op.name}: {err}") from None
        if len(specs) != len(op.outputs):
            raise GraphError(f"op {op.name}: {len(op.outputs)} outputs, rule gives {len(specs)}")
        for t, (shape, dtype) in zip(op.outputs, specs, strict=True):
            if t.shape != shape:
                raise GraphError(f"op {op.name}: output {t.name} is {t.shape}, rule gives {shape}")
            if dtype is not None and t.dtype != dtype:
                raise GraphError(f"op {op.name}: output {t.name} is {t.dtype.value}, "
                                 f"rule gives {dtype.value}")
            define(t, f"output of {op.name}")
    for t in graph.outputs:
        if defined.get(t.name) != t:
            raise GraphError(f"{graph.name}: output {t.name!r} is not defined")
    return graph


class GraphBuilder:
    """Accumulates inputs, weights and ops; `build` returns a verified, frozen Graph."""

    def __init__(self, name: str, activation_dtype: DType = DType.FP32) -> None:
        self.name = name
        self.activation_dtype = activation_dtype
        self._inputs: list[Tensor] = []
        self._weights: dict[str, Tensor] = {}
        self._ops: list[Op] = []
        self._names: set[str] = set()
        self.layer = -1  # the block new ops belong to

    def _claim(self, name: str) -> str:
        if name in self._names:
            raise GraphError(f"{self.name}: name {name!r} used twice")
        self._names.add(name)
        return name

    def input(self, name: str, shape: tuple[int, ...], dtype: DType, role: Role = Role.INPUT) -> Tensor:
        t = Tensor(self._claim(name), tuple(shape), dtype, role)
        self._inputs.append(t)
        return t

    def weight(self, name: str, shape: tuple[int, ...], dtype: DType) -> Tensor:
        t = Tensor(self._claim(name), tuple(shape), dtype, Role.WEIGHT)
        self._weights[name] = t
        return t

    def op(
        self,
        kind: OpKind,
        attrs: Attrs,
        inputs: tuple[Tensor, ...],
        name: str,
        dtype: DType | None = None,
        role: Role = Role.ACTIVATION,
    ) -> tuple[Tensor, ...]:
        """Add an op; its outputs are named `name` (or `name.i` for several) and returned."""
        try:
            specs = ops.infer(kind, inputs, attrs)
        except ops.ShapeError as err:
            raise GraphError(f"op {name}: {err}") from None
        outs = []
        for i, (shape, fixed) in enumerate(specs):
            out_name = name if len(specs) == 1 else f"{name}.{i}"
            out_dtype = fixed or dtype or self.activation_dtype
            outs.append(Tensor(self._claim(out_name), shape, out_dtype, role))
        self._ops.append(Op(name, kind, tuple(inputs), tuple(outs), attrs, self.layer))
        return tuple(outs)

    def op1(self, kind: OpKind, attrs: Attrs, inputs: tuple[Tensor, ...], name: str) -> Tensor:
        """Add a single-output op and return its output."""
        (out,) = self.op(kind, attrs, inputs, name)
        return out

    @property
    def ops(self) -> tuple[Op, ...]:
        return tuple(self._ops)

    def build(self, outputs: tuple[Tensor, ...]) -> Graph:
        graph = Graph(self.name, tuple(self._inputs), tuple(self._weights.values()),
                      tuple(self._ops), tuple(outputs))
        return verify(graph)
