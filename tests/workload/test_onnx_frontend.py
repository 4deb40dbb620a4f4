"""The ONNX frontend: tegel's reference interpretation of a loaded graph equals onnxruntime's
output on the same file; shape arithmetic folds at load; unknown ops and bad files are one
clear error each."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from tegel.errors import TegelError
from tegel.workload import interpret
from tegel.workload.ir import OpKind, Role
from tegel.workload.onnx_frontend import load_onnx, load_onnx_model
from tegel.workload.zoo import example_input

ATOL = 1e-4  # fp32


def _runtime(path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def _tegel(path, x: np.ndarray) -> np.ndarray:
    model = load_onnx_model(path, batch=x.shape[0])
    (out,) = interpret(model.graph, model.feeds({model.graph.inputs[0].name: x})).values()
    return out


# the CNNs at batch 2 (the file's dynamic batch set at load); ViT-B/16 once, at batch 1
@pytest.mark.parametrize(("name", "batch"), [("resnet18", 2), ("resnet50", 2),
                                             ("mobilenet_v2", 2), ("vit_b_16", 1)])
def test_zoo_net_matches_onnxruntime(name: str, batch: int, zoo_onnx) -> None:
    x = example_input(name, batch, seed=1).numpy()
    want = _runtime(zoo_onnx(name), x)
    got = _tegel(zoo_onnx(name), x)
    assert got.shape == want.shape == (batch, 1000)
    np.testing.assert_allclose(got, want, atol=ATOL, rtol=0)
    assert np.abs(want).max() > 10 * ATOL  # the comparison is not of near-zeros


def test_initializers_are_weights_and_inputs_are_inputs(zoo_onnx) -> None:
    graph = load_onnx(zoo_onnx("resnet18"), batch=3)
    assert [(t.name, t.shape, t.role) for t in graph.inputs] == [("x", (3, 3, 224, 224),
                                                                  Role.INPUT)]
    assert graph.weights and all(t.role is Role.WEIGHT for t in graph.weights)


def _save(tmp_path, nodes, inputs, outputs, inits=(), name="m.onnx"):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    path = tmp_path / name
    onnx.save(model, str(path))
    return path


def test_shape_arithmetic_folds_at_load(tmp_path) -> None:
    """Reshape to [batch, -1] with the batch read by Shape -> Gather -> Unsqueeze -> Concat,
    then Gemm with a transposed weight: only the reshape and the linear layer remain."""
    rng = np.random.default_rng(0)
    w, b = rng.standard_normal((5, 24)).astype(np.float32), rng.standard_normal(5).astype(
        np.float32)
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Constant", [], ["zero"], value=numpy_helper.from_array(np.array(0))),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "axes"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus1"], ["shape"], axis=0),
        helper.make_node("Reshape", ["x", "shape"], ["flat"]),
        helper.make_node("Gemm", ["flat", "w", "b"], ["y"], transB=1),
        helper.make_node("Relu", ["y"], ["z"]),
    ]
    inits = [numpy_helper.from_array(np.array([0]), "axes"),
             numpy_helper.from_array(np.array([-1]), "minus1"),
             numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")]
    x_info = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 3, 4])
    z_info = helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", 5])
    path = _save(tmp_path, nodes, [x_info], [z_info], inits)
    model = load_onnx_model(path, batch=3)
    assert [op.kind for op in model.graph.ops] == [OpKind.RESHAPE, OpKind.MATMUL, OpKind.UNARY]
    assert model.graph.inputs[0].shape == (3, 2, 3, 4)
    x = rng.standard_normal((3, 2, 3, 4)).astype(np.float32)
    np.testing.assert_allclose(_tegel(path, x), _runtime(path, x), atol=ATOL)


def test_unknown_ops_are_listed_once_with_counts(tmp_path) -> None:
    info = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])
    nodes = [
        helper.make_node("Einsum", ["x", "x"], ["a"], equation="ij,ij->ij"),
        helper.make_node("Einsum", ["a", "x"], ["b"], equation="ij,ij->ij"),
        helper.make_node("TopK", ["b", "k"], ["v", "i"]),
        helper.make_node("Relu", ["v"], ["y"]),
    ]
    path = _save(tmp_path, nodes, [info], [helper.make_tensor_value_info(
        "y", TensorProto.FLOAT, [2, 1])], [numpy_helper.from_array(np.array([1]), "k")])
    with pytest.raises(TegelError) as err:
        load_onnx(path)
    message = str(err.value)
    assert "Einsum x2" in message and "TopK x1" in message and str(path) in message
    assert "Relu" not in message and "\n" not in message


def test_corrupt_and_missing_files_name_the_file(tmp_path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07 this is not a protobuf \xff\xff")
    for path in (bad, tmp_path / "missing.onnx"):
        with pytest.raises(TegelError, match=str(path.name)):
            load_onnx(path)


def test_a_dynamic_dimension_other_than_the_batch_is_refused(tmp_path) -> None:
    nodes = [helper.make_node("Relu", ["x"], ["y"])]
    x_info = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "C"])
    path = _save(tmp_path, nodes, [x_info], [helper.make_tensor_value_info(
        "y", TensorProto.FLOAT, [1, "C"])])
    with pytest.raises(TegelError, match="dynamic dimension 1"):
        load_onnx(path)
