"""A convolution reads the input pixels its windows touch, no more: a strided 1 x 1 (ResNet's
downsampling shortcut) reads a quarter of its input at stride 2 (found beside ZigZag, which
counts it so; docs/peers.md). The rule is the union of the windows' taps; the cases below are
worked out by hand."""

from __future__ import annotations

import pytest

from tegel.workload import DType, GraphBuilder, work
from tegel.workload.cnn_ops import conv_input_touched
from tegel.workload.ir import Conv2d, OpKind


@pytest.mark.parametrize(("size", "k", "stride", "dilation", "pad", "rows"), [
    (56, 1, 2, 1, 0, 28),  # ResNet's strided 1 x 1 shortcut: every other row
    (56, 3, 1, 1, 1, 56),  # 3 x 3, stride 1: every row
    (56, 3, 2, 1, 1, 56),  # 3 x 3, stride 2: windows overlap, every row
    (224, 7, 2, 1, 3, 224),  # ResNet's first conv
    (224, 16, 16, 1, 0, 224),  # ViT's patch embedding: windows abut
    (16, 2, 4, 1, 0, 8),  # 2 taps every 4 rows: half
    (13, 2, 2, 2, 0, 7),  # dilated taps land on even rows only: 0, 2, ..., 12
])
def test_touched_rows(size: int, k: int, stride: int, dilation: int, pad: int,
                      rows: int) -> None:
    out = (size + 2 * pad - dilation * (k - 1) - 1) // stride + 1
    assert conv_input_touched(size, out, k, stride, dilation, pad) == rows


def test_a_strided_1x1_reads_a_quarter_of_its_input() -> None:
    g = GraphBuilder("shortcut", DType.BF16)
    x = g.input("x", (1, 64, 56, 56), DType.BF16)
    w = g.weight("w", (128, 64, 1, 1), DType.BF16)
    y = g.op1(OpKind.CONV2D, Conv2d(stride=(2, 2)), (x, w), "conv")
    op = g.build((y,)).ops[0]
    assert work(op).read_bytes[0] == pytest.approx(x.nbytes / 4)
    assert work(op).read_bytes[1] == w.nbytes
