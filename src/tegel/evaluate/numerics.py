"""Number formats, emulated bit-exactly with `ml_dtypes`.

`encode(x, dtype)` returns what memory holds — elements in the format's own NumPy type, plus a
scale per block for block-scaled formats — and `decode` turns it back into float32. `quantize`
is the round trip. Scaling rules:
- bf16, fp16, fp8-e4m3, fp8-e5m2: round to nearest even, saturating at the format's largest
  finite value (as inference kernels do; e4m3 has no infinity).
- fp4-e2m1 (MX): blocks of `block_size` along the last axis share one power-of-two scale (an
  e8m0 exponent) chosen so the block's largest magnitude fits the element range (OCP MX v1.0:
  scale = 2^(floor(log2(amax)) - emax_element)).
- nvfp4: blocks of 16 share an FP8 e4m3 scale, under one FP32 scale per tensor (two-level, as
  NVIDIA's quantizers compute it): tensor scale = amax(tensor) / (6 x 448), block scale =
  e4m3(amax(block) / 6 / tensor scale), element = e2m1(x / (block scale x tensor scale)),
  saturating at 6 (the e4m3 rounding of the block scale can push the largest element over).
- int8, int4: symmetric, one fp16 scale per block, scale = amax / qmax.
"""

from __future__ import annotations

from dataclasses import dataclass

import ml_dtypes
import numpy as np

from tegel.errors import TegelError
from tegel.workload.dtypes import DType

_FLOAT = {DType.BF16: ml_dtypes.bfloat16, DType.FP16: np.float16,
          DType.FP8_E4M3: ml_dtypes.float8_e4m3fn, DType.FP8_E5M2: ml_dtypes.float8_e5m2}
_FP4 = ml_dtypes.float4_e2m1fn
_FP4_EMAX = 2  # e2m1: largest normal 6 = 1.5 x 2^2
_NVFP4_BLOCK = 16  # elements per e4m3 scale (the format fixes it)
_INT_MAX = {DType.INT8: 127, DType.INT4: 7}


@dataclass(frozen=True, slots=True)
class Encoded:
    """A tensor as memory holds it: elements (format dtype), block scales, the original shape."""

    dtype: DType
    elements: np.ndarray
    scales: np.ndarray | None
    shape: tuple[int, ...]
    block_size: int
    tensor_scale: float = 1.0  # nvfp4: the FP32 scale of the whole tensor


def _blocks(x: np.ndarray, block: int) -> np.ndarray:
    """x reshaped to [..., n_blocks, block] along the last axis (zero-padded)."""
    pad = (-x.shape[-1]) % block
    if pad:
        x = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, pad)])
    return x.reshape(*x.shape[:-1], x.shape[-1] // block, block)


def encode(x: np.ndarray, dtype: DType, block_size: int = 32) -> Encoded:
    """The stored representation of `x` in `dtype` (float32 input)."""
    x = np.asarray(x, dtype=np.float32)
    if dtype is DType.FP32:
        return Encoded(dtype, x.copy(), None, x.shape, 0)
    if dtype in _FLOAT:
        t = _FLOAT[dtype]
        limit = float(ml_dtypes.finfo(t).max)
        return Encoded(dtype, np.clip(x, -limit, limit).astype(t), None, x.shape, 0)
    if block_size < 1:
        raise TegelError(f"block size must be >= 1, got {block_size}")
    if dtype is DType.NVFP4:
        return _encode_nvfp4(x)
    blocks = _blocks(x, block_size)
    amax = np.max(np.abs(blocks), axis=-1, keepdims=True)
    if dtype is DType.FP4_E2M1:
        exponent = np.where(amax > 0, np.floor(np.log2(np.where(amax > 0, amax, 1.0))) - _FP4_EMAX, 0)
        exponent = np.clip(exponent, -127, 127)  # the range of an e8m0 scale
        scale = np.exp2(exponent.astype(np.float64))  # exactly an e8m0 value
        limit = float(ml_dtypes.finfo(_FP4).max)
        elements = np.clip(blocks / scale, -limit, limit).astype(_FP4)
        return Encoded(dtype, elements, scale.astype(ml_dtypes.float8_e8m0fnu), x.shape, block_size)
    if dtype in _INT_MAX:
        qmax = _INT_MAX[dtype]
        scale_type = np.float16
        scale = np.where(amax > 0, amax / qmax, 1.0).astype(scale_type)
        q = np.clip(np.rint(blocks / scale.astype(np.float32)), -qmax, qmax)
        store = ml_dtypes.int4 if dtype is DType.INT4 else np.int8
        return Encoded(dtype, q.astype(store), scale, x.shape, block_size)
    raise TegelError(f"no number-format emulation for {dtype.value}")


def _encode_nvfp4(x: np.ndarray) -> Encoded:
    """NVFP4 (module doc): e2m1 elements, an e4m3 scale per 16, an FP32 scale per tensor."""
    limit = float(ml_dtypes.finfo(_FP4).max)  # 6
    scale_max = float(ml_dtypes.finfo(ml_dtypes.float8_e4m3fn).max)  # 448
    amax = float(np.max(np.abs(x))) if x.size else 0.0
    tensor_scale = np.float32(amax / (limit * scale_max) if amax > 0 else 1.0)
    blocks = _blocks(x, _NVFP4_BLOCK).astype(np.float64)
    block_amax = np.max(np.abs(blocks), axis=-1, keepdims=True)
    block_scale = (block_amax / limit / float(tensor_scale)).astype(ml_dtypes.float8_e4m3fn)
    step = block_scale.astype(np.float64) * float(tensor_scale)
    scaled = np.divide(blocks, step, out=np.zeros_like(blocks), where=step > 0)
    elements = np.clip(scaled, -limit, limit).astype(_FP4)
    return Encoded(DType.NVFP4, elements, block_scale, x.shape, _NVFP4_BLOCK, float(tensor_scale))


def decode(e: Encoded) -> np.ndarray:
    """float32 values of a stored tensor."""
    if e.scales is None:
        return e.elements.astype(np.float32)
    scales = e.scales.astype(np.float64) * e.tensor_scale
    values = (e.elements.astype(np.float64) * scales).astype(np.float32)
    flat = values.reshape(*values.shape[:-2], -1)
    return flat[..., : e.shape[-1]].reshape(e.shape)


def quantize(x: np.ndarray, dtype: DType, block_size: int = 32) -> np.ndarray:
    """`x` rounded to what `dtype` can hold, as float32."""
    if dtype in (DType.FP32, DType.INT32, DType.INT64):
        return np.asarray(x, dtype=np.float32) if dtype is DType.FP32 else np.asarray(x)
    return decode(encode(x, dtype, block_size))


def stored_bytes(e: Encoded) -> float:
    """Bytes of memory the representation takes (elements at their bit width + scales; nvfp4
    adds its FP32 tensor scale)."""
    bits = e.dtype.info.element_bits * int(np.prod(e.shape))
    scale_bits = 0 if e.scales is None else e.scales.size * e.scales.dtype.itemsize * 8
    scale_bits += 32 if e.dtype is DType.NVFP4 else 0
    return (bits + scale_bits) / 8.0
