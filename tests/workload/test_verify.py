"""`verify` accepts a well-formed graph and names the op or tensor of each broken invariant."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tegel.workload import Graph, GraphBuilder, GraphError, verify
from tegel.workload.dtypes import DType
from tegel.workload.ir import (
    MatMul,
    MoERouter,
    Op,
    OpKind,
    RMSNorm,
    Role,
    Tensor,
    Unary,
    UnaryFn,
)

F32 = DType.FP32


def small_graph() -> Graph:
    """x -> matmul(w) -> silu -> rmsnorm(g) -> out."""
    g = GraphBuilder("small")
    x = g.input("x", (2, 3, 8), F32)
    w = g.weight("w", (4, 8), F32)
    gain = g.weight("gain", (4,), F32)
    h = g.op1(OpKind.MATMUL, MatMul(transpose_b=True), (x, w), "mm")
    a = g.op1(OpKind.UNARY, Unary(UnaryFn.SILU), (h,), "act")
    out = g.op1(OpKind.RMSNORM, RMSNorm(1e-5), (a, gain), "norm")
    return g.build((out,))


def with_op(graph: Graph, index: int, op: Op) -> Graph:
    ops = list(graph.ops)
    ops[index] = op
    return replace(graph, ops=tuple(ops))


def test_well_formed_graph_passes_and_is_returned_unchanged() -> None:
    graph = small_graph()
    assert verify(graph) is graph
    assert [op.name for op in graph.ops] == ["mm", "act", "norm"]
    assert graph.producers()["act"].name == "act"
    assert graph.parameter_count == 4 * 8 + 4


def test_undefined_input() -> None:
    graph = small_graph()
    ghost = Tensor("ghost", (2, 3, 4), F32)
    broken = with_op(graph, 1, replace(graph.ops[1], inputs=(ghost,)))
    with pytest.raises(GraphError, match=r"op act: input 'ghost' is not defined before it"):
        verify(broken)


def test_input_that_differs_from_its_definition() -> None:
    graph = small_graph()
    stale = replace(graph.ops[0].outputs[0], dtype=DType.BF16)
    broken = with_op(graph, 1, replace(graph.ops[1], inputs=(stale,)))
    with pytest.raises(GraphError, match=r"op act: input 'mm' differs"):
        verify(broken)


def test_op_reading_a_tensor_defined_later() -> None:
    graph = small_graph()
    mm, act, norm = graph.ops
    with pytest.raises(GraphError, match=r"op act: input 'mm' is not defined before it"):
        verify(replace(graph, ops=(act, mm, norm)))


def test_tensor_defined_twice_by_two_ops() -> None:
    graph = small_graph()
    act = graph.ops[1]
    renamed = replace(act.outputs[0], name="mm")  # same shape as mm's output
    broken = with_op(graph, 1, replace(act, outputs=(renamed,)))
    with pytest.raises(GraphError, match=r"tensor 'mm' defined twice \(output of act\)"):
        verify(broken)


def test_tensor_defined_twice_as_input_and_weight() -> None:
    graph = small_graph()
    clash = Tensor("x", (4,), F32, Role.WEIGHT)
    with pytest.raises(GraphError, match=r"tensor 'x' defined twice \(weight\)"):
        verify(replace(graph, weights=(*graph.weights, clash)))


def test_wrong_output_shape() -> None:
    graph = small_graph()
    mm = graph.ops[0]
    bad = replace(mm.outputs[0], shape=(2, 3, 5))
    broken = with_op(graph, 0, replace(mm, outputs=(bad,)))
    with pytest.raises(GraphError, match=r"op mm: output mm is \(2, 3, 5\), rule gives \(2, 3, 4\)"):
        verify(broken)


def test_wrong_attrs_type_for_kind() -> None:
    graph = small_graph()
    broken = with_op(graph, 0, replace(graph.ops[0], attrs=Unary(UnaryFn.RELU)))
    with pytest.raises(GraphError, match=r"op mm: matmul needs MatMul"):
        verify(broken)


def test_inputs_the_rule_rejects() -> None:
    graph = small_graph()
    mm = graph.ops[0]
    broken = with_op(graph, 0, replace(mm, attrs=MatMul(transpose_b=False)))
    with pytest.raises(GraphError, match=r"op mm: matmul contraction mismatch"):
        verify(broken)


def test_wrong_number_of_outputs() -> None:
    graph = small_graph()
    act = graph.ops[1]
    extra = Tensor("act.extra", act.outputs[0].shape, F32)
    broken = with_op(graph, 1, replace(act, outputs=(*act.outputs, extra)))
    with pytest.raises(GraphError, match=r"op act: 2 outputs, rule gives 1"):
        verify(broken)


def test_weight_with_wrong_role() -> None:
    graph = small_graph()
    w = replace(graph.weights[0], role=Role.ACTIVATION)
    with pytest.raises(GraphError, match=r"weight 'w' has role activation"):
        verify(replace(graph, weights=(w, *graph.weights[1:])))


def test_input_with_weight_role() -> None:
    graph = small_graph()
    x = replace(graph.inputs[0], role=Role.WEIGHT)
    with pytest.raises(GraphError, match=r"input 'x' has role weight"):
        verify(replace(graph, inputs=(x,)))


def test_output_not_defined() -> None:
    graph = small_graph()
    missing = Tensor("nowhere", (2, 3, 4), F32)
    with pytest.raises(GraphError, match=r"small: output 'nowhere' is not defined"):
        verify(replace(graph, outputs=(*graph.outputs, missing)))


def test_op_name_used_twice() -> None:
    graph = small_graph()
    broken = with_op(graph, 1, replace(graph.ops[1], name="mm"))
    with pytest.raises(GraphError, match=r"op name 'mm' used twice"):
        verify(broken)


def test_negative_size() -> None:
    graph = small_graph()
    x = replace(graph.inputs[0], shape=(2, -3, 8))
    with pytest.raises(GraphError, match=r"tensor 'x' has negative size"):
        verify(replace(graph, inputs=(x,)))


def router_graph() -> Graph:
    g = GraphBuilder("route")
    logits = g.input("logits", (5, 8), F32)
    outs = g.op(OpKind.MOE_ROUTER, MoERouter(8, 2), (logits,), "r")
    return g.build(outs)


def test_wrong_fixed_output_dtype_is_rejected() -> None:
    graph = router_graph()
    op = graph.ops[0]
    assert op.outputs[1].dtype is DType.INT32
    bad = replace(op.outputs[1], dtype=F32)
    broken = replace(with_op(graph, 0, replace(op, outputs=(op.outputs[0], bad))),
                     outputs=(op.outputs[0], bad))
    with pytest.raises(GraphError, match=r"op r: output r\.1"):
        verify(broken)


def test_wrong_fixed_output_dtype_message_names_the_dtype() -> None:
    graph = router_graph()
    op = graph.ops[0]
    bad = replace(op.outputs[1], dtype=F32)
    broken = replace(with_op(graph, 0, replace(op, outputs=(op.outputs[0], bad))),
                     outputs=(op.outputs[0], bad))
    with pytest.raises(GraphError, match=r"int32"):
        verify(broken)


def test_builder_rejects_reused_names_and_bad_shapes() -> None:
    g = GraphBuilder("b")
    x = g.input("x", (2, 8), F32)
    with pytest.raises(GraphError, match=r"b: name 'x' used twice"):
        g.weight("x", (8, 8), F32)
    w = g.weight("w", (3, 4), F32)
    with pytest.raises(GraphError, match=r"op bad: matmul contraction mismatch"):
        g.op1(OpKind.MATMUL, MatMul(), (x, w), "bad")
