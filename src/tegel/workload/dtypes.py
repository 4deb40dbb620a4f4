"""Number formats of tensors: storage size in bits and the compute class hardware peaks are quoted in.

Block-scaled formats carry one shared scale per block; their storage cost per element includes
the scale's share, so bytes counted from a tensor are what memory holds. Two FP4 formats share
the e2m1 element: MX FP4 (`fp4`, OCP MX v1.0: 32 elements per 8-bit e8m0 scale, 4.25 bits) and
NVIDIA's NVFP4 (`nvfp4`: 16 elements per FP8 e4m3 scale, 4.5 bits, and one FP32 scale per
tensor, which no per-element figure counts; NVIDIA Technical Blog, "Introducing NVFP4 for
Efficient and Accurate Low-Precision Inference", 2025,
https://developer.nvidia.com/blog/introducing-nvfp4-for-efficient-and-accurate-low-precision-inference/).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DTypeInfo:
    """Storage and arithmetic facts of one number format."""

    element_bits: int  # bits of one element, without any shared scale
    block_size: int  # elements sharing one scale (0: no block scale)
    scale_bits: int  # bits of each shared scale
    compute_class: str  # key of hardware peak-throughput tables: fp32, bf16, fp8, ...
    is_float: bool


class DType(enum.Enum):
    """Every number format a tensor may be stored in."""

    FP32 = "fp32"
    BF16 = "bf16"
    FP16 = "fp16"
    FP8_E4M3 = "fp8_e4m3"
    FP8_E5M2 = "fp8_e5m2"
    FP4_E2M1 = "fp4_e2m1"  # MX-style: 32 elements share one 8-bit (e8m0) scale
    NVFP4 = "nvfp4"  # e2m1 elements, 16 share one FP8 (e4m3) scale; + one FP32 scale per tensor
    INT8 = "int8"
    INT4 = "int4"  # symmetric, one fp16 scale per block of 32 (GPTQ/AWQ-style group)
    INT32 = "int32"  # token ids, positions, expert indices
    INT64 = "int64"

    @property
    def info(self) -> DTypeInfo:
        return _INFO[self]

    @property
    def bits(self) -> float:
        """Storage bits per element, including the element's share of any block scale."""
        info = _INFO[self]
        if info.block_size == 0:
            return float(info.element_bits)
        return info.element_bits + info.scale_bits / info.block_size

    @property
    def compute_class(self) -> str:
        return _INFO[self].compute_class

    def nbytes(self, elements: int) -> float:
        """Bytes that `elements` values occupy in memory (fractional for sub-byte formats)."""
        return elements * self.bits / 8.0

    @classmethod
    def parse(cls, text: str) -> DType:
        """A dtype from its name; accepts the common aliases (`fp8` = e4m3, `fp4` = MX e2m1,
        `nvfp4` = NVIDIA's e2m1 with FP8 block scales)."""
        key = text.strip().lower().replace("-", "_")
        if key in _ALIASES:
            return _ALIASES[key]
        try:
            return cls(key)
        except ValueError:
            names = ", ".join(sorted({d.value for d in cls} | set(_ALIASES)))
            raise ValueError(f"unknown dtype {text!r}; expected one of: {names}") from None


_INFO: dict[DType, DTypeInfo] = {
    DType.FP32: DTypeInfo(32, 0, 0, "fp32", True),
    DType.BF16: DTypeInfo(16, 0, 0, "bf16", True),
    DType.FP16: DTypeInfo(16, 0, 0, "fp16", True),
    DType.FP8_E4M3: DTypeInfo(8, 0, 0, "fp8", True),
    DType.FP8_E5M2: DTypeInfo(8, 0, 0, "fp8", True),
    DType.FP4_E2M1: DTypeInfo(4, 32, 8, "fp4", True),
    DType.NVFP4: DTypeInfo(4, 16, 8, "fp4", True),
    DType.INT8: DTypeInfo(8, 32, 16, "int8", False),  # symmetric, one fp16 scale per 32
    DType.INT4: DTypeInfo(4, 32, 16, "int4", False),
    DType.INT32: DTypeInfo(32, 0, 0, "int32", False),
    DType.INT64: DTypeInfo(64, 0, 0, "int64", False),
}

_ALIASES: dict[str, DType] = {
    "float32": DType.FP32,
    "bfloat16": DType.BF16,
    "float16": DType.FP16,
    "fp8": DType.FP8_E4M3,
    "e4m3": DType.FP8_E4M3,
    "e5m2": DType.FP8_E5M2,
    "fp4": DType.FP4_E2M1,
    "mxfp4": DType.FP4_E2M1,
    "nvfp4_e2m1": DType.NVFP4,
}
