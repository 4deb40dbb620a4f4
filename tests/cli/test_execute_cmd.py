"""`tegel execute`: an ONNX model run in a system's formats against onnxruntime fp32."""

from __future__ import annotations

import json

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tegel.cli import main


def _small_cnn(path) -> None:
    """conv 3x3 -> relu -> global average pool -> flatten -> linear, random weights."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal(s).astype(np.float32), n)
             for n, s in (("w", (8, 3, 3, 3)), ("b", (8,)), ("fc", (10, 8)), ("fcb", (10,)))]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("GlobalAveragePool", ["r"], ["p"]),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("Gemm", ["f", "fc", "fcb"], ["y"], transB=1)]
    graph = helper.make_graph(nodes, "cnn",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 12, 12])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])],
                              inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))


def _run(capsys, *args: str) -> dict:
    assert main(["execute", *args, "--on", "h100-sxm", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_fp32_matches_and_int8_costs_accuracy(tmp_path, capsys) -> None:
    model, x = tmp_path / "cnn.onnx", tmp_path / "x.npy"
    _small_cnn(model)
    np.save(x, np.random.default_rng(1).standard_normal((5, 3, 12, 12)).astype(np.float32))
    exact = _run(capsys, str(model), "--input", str(x), "--precision", "fp32")
    assert exact["vs_onnxruntime_fp32"]["max_abs_error"] < 1e-5
    assert exact["vs_onnxruntime_fp32"]["top1_agreement"] == 1.0
    int8 = _run(capsys, str(model), "--input", str(x), "--precision", "int8")
    err = int8["vs_onnxruntime_fp32"]["max_rel_error"]
    assert 1e-5 < err < 0.1  # rounding shows, and stays small
    assert int8["precision"] == {"weights": "int8", "activations": "int8"}


def test_a_bad_input_file_is_one_error(tmp_path, capsys) -> None:
    model = tmp_path / "cnn.onnx"
    _small_cnn(model)
    (tmp_path / "x.npy").write_text("not numpy")
    assert main(["execute", str(model), "--input", str(tmp_path / "x.npy"), "--on",
                 "h100-sxm"]) == 2
    assert "tegel: error: --input" in capsys.readouterr().err
