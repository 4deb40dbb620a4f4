"""The torch.export frontend: tegel's reference interpretation of `from_torch`'s graph equals
the module's own output; unknown ATen ops are one error listing them with their counts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import tegel
from tegel.errors import TegelError
from tegel.serving.graph_run import GraphRunOptions
from tegel.workload import interpret
from tegel.workload.ir import Graph, OpKind
from tegel.workload.torch_frontend import torch_model
from tegel.workload.zoo import _vit, example_input, zoo_model

ATOL = 1e-4  # fp32


def _check(module: torch.nn.Module, *inputs: torch.Tensor) -> Graph:
    """Assert tegel's graph of `module` computes what `module` does; return the graph."""
    model = torch_model(module, inputs)
    feeds = {t.name: x.numpy() for t, x in zip(model.graph.inputs, inputs, strict=True)}
    (got,) = interpret(model.graph, model.feeds(feeds)).values()
    with torch.no_grad():
        want = module(*inputs).numpy()
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=ATOL, rtol=0)
    assert np.abs(want).max() > 10 * ATOL
    return model.graph


# the CNNs at 64x64 (their architectures allow it), batch 2
@pytest.mark.parametrize("name", ["resnet18", "resnet50", "mobilenet_v2"])
def test_zoo_cnn_matches_torch(name: str) -> None:
    graph = _check(zoo_model(name, seed=2), example_input(name, 2, side=64, seed=3))
    assert OpKind.BATCHNORM not in {op.kind for op in graph.ops}


def test_small_vit_matches_torch_with_attention_ops() -> None:
    torch.manual_seed(0)
    vit = _vit(image=32, patch=8, layers=2, hidden=64, heads=4, mlp=128, num_classes=10).eval()
    graph = _check(vit, torch.randn(2, 3, 32, 32))
    attention = [op for op in graph.ops if op.kind is OpKind.ATTENTION]
    assert len(attention) == 2 and attention[0].attrs.num_heads == 4


class _CausalGQA(torch.nn.Module):
    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True) * 2.0


def test_causal_grouped_sdpa_is_attention() -> None:
    g = torch.Generator().manual_seed(4)
    q, k, v = (torch.randn(2, h, 5, 8, generator=g) for h in (4, 2, 2))
    graph = _check(_CausalGQA(), q, k, v)
    (op,) = [op for op in graph.ops if op.kind is OpKind.ATTENTION]
    assert (op.attrs.num_heads, op.attrs.num_kv_heads, op.attrs.causal) == (4, 2, True)


class _Shared(torch.nn.Module):
    """A batch norm after a conv whose output is also read elsewhere: it cannot fold."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(4)
        self.pool = torch.nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.conv(x)
        y = F.hardswish(self.bn(c)) + F.hardsigmoid(c) * torch.sigmoid(c)
        return F.max_pool2d(self.pool(y), 2, ceil_mode=True).flatten(1)


def test_unfoldable_batchnorm_and_pools_match_torch() -> None:
    module = _Shared().eval()
    with torch.no_grad():
        module.bn.running_mean.uniform_(-1, 1)
        module.bn.running_var.uniform_(0.5, 2)
    graph = _check(module, torch.randn(2, 3, 9, 9))
    assert OpKind.BATCHNORM in {op.kind for op in graph.ops}


class _Unknown(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.cumsum(torch.cumsum(x, 1), 0)
        return torch.topk(y, 2).values.relu()


def test_unknown_aten_ops_are_listed_once_with_counts() -> None:
    with pytest.raises(TegelError) as err:
        torch_model(_Unknown(), (torch.randn(3, 4),))
    message = str(err.value)
    assert "cumsum.default x2" in message and "topk.default x1" in message
    assert "relu" not in message


def test_tegel_from_torch_returns_a_graph() -> None:
    module = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.GELU(approximate="tanh"))
    graph = tegel.from_torch(module, (torch.randn(2, 4),))
    assert isinstance(graph, Graph)
    assert [op.kind for op in graph.ops] == [OpKind.MATMUL, OpKind.UNARY]
    assert len(graph.ops[0].inputs) == 3  # the bias rides on the matmul


def test_a_torch_vit_runs_on_a_chip_without_fp32() -> None:
    """tegel.from_torch gives an fp32 graph; tegel.run_graph prices it in the chip's bf16 (the
    TPU computes no fp32), with every attention op priced."""
    vit = _vit(image=32, patch=8, layers=2, hidden=64, heads=4, mlp=128, num_classes=10).eval()
    graph = tegel.from_torch(vit, (torch.randn(2, 3, 32, 32),))
    result = tegel.run_graph(graph, "tpu-v5e")
    assert result.latency_s > 0 and result.batch == 2
    steps = [sc.step for sc in result.phase.steps]
    attention = [op.name for op in graph.ops if op.kind is OpKind.ATTENTION]
    assert len(attention) == 2 and all(any(a in s.ops for s in steps) for a in attention)
    with pytest.raises(TegelError, match="precision"):
        tegel.run_graph(graph, "tpu-v5e", options=GraphRunOptions(precision="fp99"))
