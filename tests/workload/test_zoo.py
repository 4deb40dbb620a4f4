"""The zoo networks are torchvision's: parameters and MACs (counted from tegel's graph of the
ONNX file `tegel make-model` writes, through `gemm_dims`) equal the published figures."""

from __future__ import annotations

import json

import pytest
import torch

from tegel.cli import main
from tegel.workload.graph_card import graph_macs
from tegel.workload.ir import OpKind
from tegel.workload.onnx_frontend import load_onnx
from tegel.workload.zoo import zoo_model

# torchvision's model documentation (pytorch.org/vision/stable/models.html), ImageNet weights'
# "GFLOPS" (multiply-accumulates, as fvcore counts them) and "Params" at 224x224, batch 1
PUBLISHED = {
    "resnet18": (1.81e9, 11.69e6),
    "resnet50": (4.09e9, 25.56e6),
    "mobilenet_v2": (0.30e9, 3.50e6),
    "vit_b_16": (17.56e9, 86.57e6),
}
TOLERANCE = 0.005


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_macs_and_parameters_match_the_published_figures(name: str, zoo_onnx) -> None:
    macs, params = PUBLISHED[name]
    graph = load_onnx(zoo_onnx(name))
    assert graph_macs(graph) == pytest.approx(macs, rel=TOLERANCE)
    module = zoo_model(name)
    torch_params = sum(p.numel() for p in module.parameters())
    assert torch_params == pytest.approx(params, rel=TOLERANCE)
    # folding each batch norm into its conv keeps one bias per channel of its scale and shift
    bn_channels = sum(m.num_features for m in module.modules()
                      if isinstance(m, torch.nn.BatchNorm2d))
    assert graph.parameter_count == torch_params - bn_channels
    assert OpKind.BATCHNORM not in {op.kind for op in graph.ops}


def test_vit_attention_becomes_attention_ops(zoo_onnx) -> None:
    graph = load_onnx(zoo_onnx("vit_b_16"))
    attention = [op for op in graph.ops if op.kind is OpKind.ATTENTION]
    assert len(attention) == 12
    assert {(op.attrs.num_heads, op.attrs.head_dim) for op in attention} == {(12, 64)}
    assert all(op.attrs.scale == pytest.approx(64 ** -0.5) for op in attention)


def test_batch_scales_the_macs(zoo_onnx) -> None:
    path = zoo_onnx("resnet18")
    assert graph_macs(load_onnx(path, batch=4)) == 4 * graph_macs(load_onnx(path))


def test_inspect_prints_the_onnx_card(zoo_onnx, capsys) -> None:
    path = zoo_onnx("mobilenet_v2")
    capsys.readouterr()  # what make-model printed, if this test made the file
    assert main(["inspect", str(path), "--json", "--batch", "2"]) == 0
    card = json.loads(capsys.readouterr().out)
    graph = load_onnx(path, 2)
    assert card["inputs"] == {"x": [2, 3, 224, 224]}
    assert card["parameters"] == graph.parameter_count
    assert sum(r["count"] for r in card["ops_by_kind"].values()) == len(graph.ops)
    assert card["ops_by_kind"]["conv2d"]["macs"] == pytest.approx(card["macs"], rel=0.01)
    assert main(["inspect", str(path)]) == 0
    assert "conv2d" in capsys.readouterr().out


def test_make_model_refuses_a_bad_batch(tmp_path, capsys) -> None:
    assert main(["make-model", "resnet18", str(tmp_path / "r.onnx"), "--batch", "0"]) == 2
    assert main(["make-model", "llama", str(tmp_path / "d"), "--batch", "2"]) == 2
    err = capsys.readouterr().err
    assert err.count("tegel: error: --batch") == 2
    assert not (tmp_path / "r.onnx").exists()
