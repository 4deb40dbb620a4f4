"""Attributes of the IR's vision-network op kinds (pooling, batch norm, layout ops, concat).

Kept apart from `tegel.workload.ir` (which imports and lists them) so each file stays small;
they depend on nothing of the IR. Layouts are NCHW, as in ONNX and PyTorch.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class PoolFn(enum.Enum):
    MAX = "max"
    AVG = "avg"


@dataclass(frozen=True, slots=True)
class Pool2d:
    """Max or average pooling of x [N, C, H, W] over `kernel` windows, as ONNX and torch.

    Padding is symmetric (`padding` pixels on each side of H and W). With `ceil_mode` the
    output size rounds up, but a window must start inside the input or its left padding.
    Average pooling divides by the window's taps inside the padded input when
    `count_include_pad`, else by its taps inside the input; a window's part past the padded
    input (ceil mode) never counts. Global average pooling is a kernel of the whole image.
    """

    fn: PoolFn
    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    ceil_mode: bool = False
    count_include_pad: bool = True
    dilation: tuple[int, int] = (1, 1)  # max pooling only (ONNX and torch allow none for avg)


@dataclass(frozen=True, slots=True)
class BatchNorm:
    """Inference batch norm of x [N, C, ...] by (scale, bias, mean, var), each [C]:
    (x - mean) / sqrt(var + eps) * scale + bias. Frontends fold it into the convolution
    before it where they can (`workload.cnn_passes.fold_batchnorm`)."""

    eps: float


@dataclass(frozen=True, slots=True)
class Reshape:
    """x viewed as `shape` (same element count, row-major): reshape, flatten, squeeze."""

    shape: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Transpose:
    """Axes permuted: out.shape[i] = x.shape[perm[i]] (transpose, permute)."""

    perm: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Concat:
    """Inputs laid side by side along `axis` (non-negative); other dimensions equal."""

    axis: int
