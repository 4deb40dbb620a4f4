"""Convolutions as GPU kernels (an implicit GEMM, or a memory-bound depthwise kernel) and on a
systolic array (`array_gemm`).

A conv2d of x [N, C, H, W] by w [O, C/g, kh, kw] is, per group, the GEMM of `gemm_dims`:
M = N·Hout·Wout output pixels, N = O/g output channels, K = C/g·kh·kw (channels x taps).
cuDNN's and CUTLASS's implicit-GEMM kernels never build the im2col matrix (M x K elements,
kh·kw / stride² times the input): each thread block of tile_m x tile_n outputs loads, for each
channel, the input window its tile_m output pixels cover once into shared memory, and its kh·kw
taps reuse it there. The rule priced here (`implicit_gemm_staged_bytes`):

- the tile_m output pixels of a block are a patch of c = min(tile_m, Wout) columns by
  r = ceil(tile_m / c) rows; its input window is ((r-1)·stride_h + kh_eff) x ((c-1)·stride_w +
  kw_eff) pixels (kh_eff = dilation·(kh-1)+1), at most the padded input;
- input bytes staged = blocks along M x blocks along N x groups x window pixels x C/g channels
  x element bytes (the input re-read once per column of N tiles, with only the halo re-read
  between neighbouring blocks, not kh·kw times);
- weight bytes staged = the weights x blocks along M (as a matmul's B operand).

Tile and wave quantisation are the matmul's (`gpu.gemm_efficiency`) on that M, N, K with the
groups as a batch of GEMMs. A depthwise conv (one input channel per group: K = kh·kw, N = 1)
does not fill a tensor-core tile and runs as a direct, memory-bound kernel: it is priced like
the other non-GEMM kernels — its minimal bytes (`work`) through L2/HBM, compute at the kernel
share of peak — with no GEMM staging.

On a systolic array (`array_gemm`) the array's `conv_unroll` says which loops it unrolls:
`im2col` puts the implicit GEMM's K = C/g·kh·kw on the reduction side (a TPU's lowering);
`channels` only the C/g input channels, with the kh·kw kernel taps as temporal loops: kh·kw
GEMMs of M x N x C/g accumulated into the same outputs (`hardware.systolic.gemm_cycles`'s
`taps`). A conv with few input channels (an RGB stem, C = 3) then fills C of the array's rows
only, as in ZigZag's `tpu_like` mapping (spatial unrolling D1 = K, D2 = C).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tegel.workload.ir import Conv2d, Op, OpKind
from tegel.workload.ops import gemm_dims


@dataclass(frozen=True, slots=True)
class ArrayGemm:
    """The GEMM a systolic array runs for an op: `taps` GEMMs of m x n x k (groups folded
    into m) accumulated into one output."""

    m: float
    n: int
    k: int
    taps: int


def array_gemm(op: Op, conv_unroll: str = "im2col") -> ArrayGemm:
    """The array's GEMM of a matmul or conv `op` under `conv_unroll` (module doc); MACs =
    m·n·k·taps either way."""
    g = gemm_dims(op)[0]
    if op.kind is OpKind.CONV2D and conv_unroll == "channels":
        _, channels, kh, kw = op.inputs[1].shape
        return ArrayGemm(g.m * g.count, g.n, channels, kh * kw)
    return ArrayGemm(g.m * g.count, g.n, g.k, 1)


def is_depthwise(op: Op) -> bool:
    """A grouped conv2d with one input channel per group (MobileNet's depthwise layers)."""
    a = op.attrs
    return (op.kind is OpKind.CONV2D and isinstance(a, Conv2d) and a.groups > 1
            and op.inputs[1].shape[1] == 1)


def input_window_pixels(op: Op, tile_m: int) -> int:
    """Input pixels (per channel) a block of `tile_m` output pixels of conv `op` loads."""
    a: Conv2d = op.attrs  # type: ignore[assignment]
    _, _, h, w = op.inputs[0].shape
    _, _, kh, kw = op.inputs[1].shape
    _, _, _, ow = op.outputs[0].shape
    cols = min(tile_m, ow)
    rows = math.ceil(tile_m / cols)
    reach_h = a.dilation[0] * (kh - 1) + 1
    reach_w = a.dilation[1] * (kw - 1) + 1
    win_h = min((rows - 1) * a.stride[0] + reach_h, h + 2 * a.padding[0])
    win_w = min((cols - 1) * a.stride[1] + reach_w, w + 2 * a.padding[1])
    return win_h * win_w


def implicit_gemm_staged_bytes(op: Op, tile_m: int, tile_n: int, out_div: float = 1.0) -> float:
    """Bytes of a conv's operands staged through shared memory by an implicit-GEMM kernel with
    tile_m x tile_n blocks (module doc); `out_div` divides the output channels (tensor
    parallelism)."""
    g = gemm_dims(op)[0]
    groups = max(1, round(g.count))
    n = max(1, math.ceil(g.n / out_div))
    blocks_m, blocks_n = math.ceil(g.m / tile_m), math.ceil(n / tile_n)
    x = op.inputs[0]
    channels_per_group = op.inputs[1].shape[1]
    staged_x = (blocks_m * blocks_n * groups * input_window_pixels(op, tile_m)
                * channels_per_group * x.dtype.bits / 8)
    staged_w = op.inputs[1].nbytes / out_div * blocks_m
    return staged_x + staged_w


def im2col_bytes(op: Op) -> float:
    """Bytes of the explicit im2col matrix of conv `op` (M x K elements per group): what an
    implicit GEMM avoids materialising (for comparison and tests)."""
    g = gemm_dims(op)[0]
    return g.count * g.m * g.k * op.inputs[0].dtype.bits / 8
