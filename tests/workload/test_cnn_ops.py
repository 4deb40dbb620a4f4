"""The vision-network op kinds (pool2d, batchnorm, reshape, transpose, concat) against torch
(the new activations are in test_ops_reference's table): shapes from the op rules, values
from the NumPy reference, each compared with torch's own operator. Batch-norm folding keeps
a graph's meaning."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tegel.workload import GraphBuilder, interpret, work
from tegel.workload.dtypes import DType
from tegel.workload.imported import ImportedModel, fold_batchnorm
from tegel.workload.ir import (
    BatchNorm,
    Concat,
    Conv2d,
    OpKind,
    Pool2d,
    PoolFn,
    Reshape,
    Transpose,
)
from workload.test_ops_reference import close, rand, run_one

POOL_CASES = [
    # (x shape, kernel, stride, padding, ceil_mode, count_include_pad, dilation)
    ((2, 3, 9, 9), (3, 3), (2, 2), (1, 1), False, True, (1, 1)),
    ((1, 2, 10, 7), (3, 2), (2, 2), (1, 0), True, True, (1, 1)),
    ((1, 2, 10, 7), (3, 3), (2, 3), (1, 1), True, False, (1, 1)),
    ((1, 2, 8, 8), (2, 2), (3, 3), (0, 0), True, True, (1, 1)),  # ceil: a window past the input
    ((2, 4, 7, 7), (7, 7), (7, 7), (0, 0), False, True, (1, 1)),  # global
    ((1, 2, 11, 9), (3, 2), (2, 1), (1, 1), True, True, (2, 3)),  # dilated (max only)
]


@pytest.mark.parametrize(("fn", "xs", "k", "s", "p", "ceil", "include", "d"),
                         [(fn, *case) for fn in PoolFn for case in POOL_CASES
                          if fn is PoolFn.MAX or case[-1] == (1, 1)])  # avg has no dilation
def test_pool2d_matches_torch(fn, xs, k, s, p, ceil, include, d) -> None:
    x = rand(np.random.default_rng(5), *xs)
    (got,) = run_one(OpKind.POOL2D, Pool2d(fn, k, s, p, ceil, include, d), x)
    t = torch.tensor(x)
    want = (F.max_pool2d(t, k, s, p, d, ceil_mode=ceil) if fn is PoolFn.MAX
            else F.avg_pool2d(t, k, s, p, ceil_mode=ceil, count_include_pad=include))
    assert got.shape == tuple(want.shape)
    close(got, want, atol=1e-5)


def test_pool2d_work_counts_taps_and_bytes() -> None:
    g = GraphBuilder("p")
    x = g.input("x", (1, 2, 8, 8), DType.FP32)
    y = g.op1(OpKind.POOL2D, Pool2d(PoolFn.AVG, (2, 2), (2, 2)), (x,), "y")
    (op,) = g.build((y,)).ops
    w = work(op)
    assert w.flops == y.numel * (4 + 1)  # four adds-or-compares and a divide per output
    assert w.bytes_read == x.nbytes and w.bytes_written == y.nbytes


def test_pool2d_rejects_padding_beyond_half_the_kernel() -> None:
    from tegel.workload.graph import GraphError

    g = GraphBuilder("p")
    x = g.input("x", (1, 2, 8, 8), DType.FP32)
    with pytest.raises(GraphError, match="padding"):
        g.op1(OpKind.POOL2D, Pool2d(PoolFn.MAX, (2, 2), (1, 1), (2, 2)), (x,), "y")


def test_batchnorm_matches_torch() -> None:
    rng = np.random.default_rng(11)
    x, scale, bias, mean = rand(rng, 2, 5, 4, 3), rand(rng, 5), rand(rng, 5), rand(rng, 5)
    var = rng.uniform(0.3, 2.0, 5).astype(np.float32)
    (got,) = run_one(OpKind.BATCHNORM, BatchNorm(1e-3), x, scale, bias, mean, var)
    want = F.batch_norm(torch.tensor(x), torch.tensor(mean), torch.tensor(var),
                        torch.tensor(scale), torch.tensor(bias), False, eps=1e-3)
    close(got, want, atol=1e-5)


def _conv_bn_graph(conv_bias: bool, second_reader: bool) -> ImportedModel:
    """x -> depthwise, strided, dilated conv -> batch norm (-> + conv output when
    `second_reader`, so the conv output has two readers and must not fold)."""
    rng = np.random.default_rng(13)
    g = GraphBuilder("cbn")
    x = g.input("x", (2, 4, 11, 11), DType.FP32)
    names = ["w", "b"] if conv_bias else ["w"]
    shapes = {"w": (4, 1, 3, 3), "b": (4,)}
    values = {n: rand(rng, *shapes[n]) for n in names}
    ws = tuple(g.weight(n, shapes[n], DType.FP32) for n in names)
    c = g.op1(OpKind.CONV2D, Conv2d((2, 2), (2, 2), 4, (2, 2)), (x, *ws), "conv")
    params = []
    for n in ("scale", "shift", "mean", "var"):
        values[n] = (rng.uniform(0.5, 1.5, 4) if n == "var" else rng.standard_normal(4)).astype(
            np.float32)
        params.append(g.weight(n, (4,), DType.FP32))
    y = g.op1(OpKind.BATCHNORM, BatchNorm(1e-5), (c, *params), "bn")
    if second_reader:
        from tegel.workload.ir import Binary, BinaryFn

        y = g.op1(OpKind.BINARY, Binary(BinaryFn.ADD), (y, c), "sum")
    return ImportedModel(g.build((y,)), values)


@pytest.mark.parametrize("conv_bias", [False, True])
def test_batchnorm_folds_into_the_conv_before_it(conv_bias: bool) -> None:
    model = _conv_bn_graph(conv_bias, second_reader=False)
    folded = fold_batchnorm(model)
    assert [op.kind for op in folded.graph.ops] == [OpKind.CONV2D]
    assert len(folded.graph.ops[0].inputs) == 3  # the folded conv has a bias
    x = rand(np.random.default_rng(17), 2, 4, 11, 11)
    before = interpret(model.graph, model.feeds({"x": x}))["bn"]
    after = interpret(folded.graph, folded.feeds({"x": x}))["bn"]
    v = model.weights
    t = F.conv2d(torch.tensor(x), torch.tensor(v["w"]),
                 torch.tensor(v["b"]) if conv_bias else None, 2, 2, 2, 4)
    want = F.batch_norm(t, torch.tensor(v["mean"]), torch.tensor(v["var"]),
                        torch.tensor(v["scale"]), torch.tensor(v["shift"]), False, eps=1e-5)
    close(before, want, atol=1e-4)
    close(after, want, atol=1e-4)


def test_batchnorm_stays_when_the_conv_output_has_another_reader() -> None:
    model = _conv_bn_graph(conv_bias=True, second_reader=True)
    folded = fold_batchnorm(model)
    assert OpKind.BATCHNORM in [op.kind for op in folded.graph.ops]
    assert folded.graph == model.graph


def test_layout_ops_match_torch() -> None:
    rng = np.random.default_rng(3)
    x, y = rand(rng, 2, 3, 4), rand(rng, 2, 5, 4)
    (got,) = run_one(OpKind.TRANSPOSE, Transpose((2, 0, 1)), x)
    close(got, torch.tensor(x).permute(2, 0, 1), atol=0)
    (got,) = run_one(OpKind.RESHAPE, Reshape((6, 4)), x)
    close(got, torch.tensor(x).reshape(6, 4), atol=0)
    (got,) = run_one(OpKind.CONCAT, Concat(1), x, y)
    close(got, torch.cat([torch.tensor(x), torch.tensor(y)], 1), atol=0)


def test_reshape_is_a_view_and_transpose_moves_every_byte() -> None:
    g = GraphBuilder("v")
    x = g.input("x", (2, 3, 4), DType.FP32)
    r = g.op1(OpKind.RESHAPE, Reshape((6, 4)), (x,), "r")
    t = g.op1(OpKind.TRANSPOSE, Transpose((1, 0)), (r,), "t")
    reshape, transpose = g.build((t,)).ops
    assert work(reshape).bytes_read == 0 and work(reshape).bytes_written == 0
    assert work(transpose).bytes_read == x.nbytes == work(transpose).bytes_written
