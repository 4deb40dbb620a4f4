"""Small CNN graphs for the graph-run tests, built with the IR's GraphBuilder (test-only)."""

from __future__ import annotations

from tegel.workload import DType, Graph, GraphBuilder, OpKind
from tegel.workload.ir import Binary, BinaryFn, Conv2d, Softmax, Unary, UnaryFn


def conv_block(b: GraphBuilder, x: object, cin: int, cout: int, i: int, groups: int = 1,
               bias: bool = True) -> object:
    """conv2d 3x3 (padding 1), its bias add, relu."""
    w = b.weight(f"w{i}", (cout, cin // groups, 3, 3), DType.BF16)
    y = b.op1(OpKind.CONV2D, Conv2d(padding=(1, 1), groups=groups), (x, w), f"conv{i}")  # type: ignore[arg-type]
    if bias:
        bb = b.weight(f"b{i}", (cout, 1, 1), DType.BF16)
        y = b.op1(OpKind.BINARY, Binary(BinaryFn.ADD), (y, bb), f"bias{i}")
    return b.op1(OpKind.UNARY, Unary(UnaryFn.RELU), (y,), f"relu{i}")


def small_cnn(batch: int = 1, hw: int = 56, channels: int = 64, layers: int = 3,
              layered: bool = True) -> Graph:
    """`layers` conv blocks (3 -> channels -> channels ...), each its own `op.layer`."""
    b = GraphBuilder("small-cnn", DType.BF16)
    x = b.input("x", (batch, 3, hw, hw), DType.BF16)
    cin = 3
    for i in range(layers):
        b.layer = i if layered else -1
        x = conv_block(b, x, cin, channels, i)
        cin = channels
    return b.build((x,))


def single_conv(batch: int, channels: int, hw: int, groups: int = 1) -> Graph:
    """One bias-free 3x3 conv (padding 1) of `channels` -> `channels`."""
    b = GraphBuilder("conv", DType.BF16)
    x = b.input("x", (batch, channels, hw, hw), DType.BF16)
    w = b.weight("w", (channels, channels // groups, 3, 3), DType.BF16)
    y = b.op1(OpKind.CONV2D, Conv2d(padding=(1, 1), groups=groups), (x, w), "conv")
    return b.build((y,))


def cnn_with_generic_op(batch: int = 1) -> Graph:
    """A conv block followed by an op no mapping rule knows specially (softmax over channels
    here; pooling and batch norm will take the same generic path)."""
    b = GraphBuilder("cnn-generic", DType.BF16)
    x = b.input("x", (batch, 16, 32, 32), DType.BF16)
    b.layer = 0
    y = conv_block(b, x, 16, 32, 0)
    b.layer = 1
    z = b.op1(OpKind.SOFTMAX, Softmax(axis=1), (y,), "softmax")  # type: ignore[arg-type]
    return b.build((z,))
