"""Number formats: bit-exact against ml_dtypes, MX block scales, integer scales, bytes."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tegel.errors import TegelError
from tegel.evaluate.numerics import decode, encode, quantize, stored_bytes
from tegel.workload.dtypes import DType

FINITE = st.floats(-300.0, 300.0, allow_nan=False, width=32)


@settings(max_examples=50, deadline=None)
@given(arrays(np.float32, st.integers(1, 70), elements=FINITE))
def test_float_formats_are_bit_exact_casts(x: np.ndarray) -> None:
    for dtype, np_type in ((DType.BF16, ml_dtypes.bfloat16), (DType.FP16, np.float16),
                           (DType.FP8_E5M2, ml_dtypes.float8_e5m2)):
        np.testing.assert_array_equal(encode(x, dtype).elements, x.astype(np_type))
    clipped = np.clip(x, -448, 448).astype(ml_dtypes.float8_e4m3fn)
    np.testing.assert_array_equal(encode(x, DType.FP8_E4M3).elements.view(np.uint8),
                                  clipped.view(np.uint8))


def test_fp8_saturates_instead_of_overflowing() -> None:
    assert quantize(np.array([1e6, -1e6], np.float32), DType.FP8_E4M3).tolist() == [448.0, -448.0]


@settings(max_examples=50, deadline=None)
@given(arrays(np.float32, (3, 64), elements=FINITE))
def test_mx_fp4_scales_are_powers_of_two_and_fit_the_block(x: np.ndarray) -> None:
    e = encode(x, DType.FP4_E2M1, block_size=32)
    scales = e.scales.astype(np.float32)
    assert np.all(np.log2(scales) == np.round(np.log2(scales)))  # e8m0: exact powers of two
    blocks = x.reshape(3, 2, 32)
    amax = np.abs(blocks).max(axis=-1, keepdims=True)
    assert np.all((amax / scales <= 8.0) | (amax == 0))  # largest element scaled into [4, 8)
    err = np.abs(decode(e) - x).reshape(3, 2, 32)
    assert np.all(err <= np.maximum(amax, 1e-30) * 0.26 + 1e-6)  # half an e2m1 step at most


def test_fp4_values_are_e2m1_codes() -> None:
    x = np.array([[0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0]], np.float32)
    np.testing.assert_array_equal(quantize(x, DType.FP4_E2M1, 8), x)


@pytest.mark.parametrize(("dtype", "qmax"), [(DType.INT8, 127), (DType.INT4, 7)])
def test_integer_formats_are_symmetric_per_block(dtype: DType, qmax: int) -> None:
    x = np.random.default_rng(1).normal(size=(2, 96)).astype(np.float32)
    e = encode(x, dtype, 32)
    codes = e.elements.astype(np.int32)
    assert codes.min() >= -qmax and codes.max() <= qmax
    assert np.all(np.abs(codes).max(axis=-1) == qmax)  # each block uses its full range
    step = np.abs(x).reshape(2, 3, 32).max(axis=-1, keepdims=True) / qmax
    assert np.all(np.abs(decode(e) - x).reshape(2, 3, 32) <= step / 2 + 1e-3 * step)


@pytest.mark.parametrize("dtype", [DType.BF16, DType.FP8_E4M3, DType.FP4_E2M1, DType.INT8, DType.INT4])
def test_stored_bytes_equal_the_dtype_size(dtype: DType) -> None:
    x = np.ones((4, 128), np.float32)
    assert stored_bytes(encode(x, dtype, 32)) == pytest.approx(dtype.nbytes(x.size))


def test_bad_block_size_is_an_error() -> None:
    with pytest.raises(TegelError, match="block size"):
        encode(np.ones(4, np.float32), DType.INT8, 0)


def test_nvfp4_matches_a_hand_computed_example() -> None:
    """Three blocks of 16 under one tensor scale: amax 10.5 gives the tensor scale
    10.5 / (6 x 448) = 2^-8 exactly. Block 1 (amax 10.5): e4m3 scale 448, step 1.75, values
    1.75 x e2m1 codes come back exactly. Block 2 (amax 3): scale 3 / 6 / 2^-8 = 128, step 0.5:
    1.1 -> 2.2 -> 2 -> 1.0; 2.6 -> 5.2 -> 6 -> 3.0; 0.3 -> 0.6 -> 0.5 -> 0.25; -1.3 -> -2.6
    -> -3 -> -1.5. Block 3 (amax 1.3): 1.3 / 6 / 2^-8 = 55.47 rounds to the e4m3 value 56, step
    0.21875: 1.3 -> 5.94 -> 6 -> 1.3125; 0.7 -> 3.2 -> 3 -> 0.65625; -0.1 -> -0.46 -> -0.5."""
    one = [10.5, -10.5, 7.0, 5.25, 3.5, 2.625, 1.75, 0.875]
    two = [3.0, 1.1, 2.6, 0.3, -1.3]
    three = [1.3, 0.7, -0.1]
    x = np.zeros(48, np.float32)
    x[:8], x[16:21], x[32:35] = one, two, three
    e = encode(x, DType.NVFP4)
    assert e.tensor_scale == 2.0**-8 and e.block_size == 16
    assert e.scales.astype(np.float32).ravel().tolist() == [448.0, 128.0, 56.0]
    want = np.zeros(48, np.float32)
    want[:8], want[16:21] = one, [3.0, 1.0, 3.0, 0.25, -1.5]
    want[32:35] = [1.3125, 0.65625, -0.109375]
    np.testing.assert_array_equal(decode(e), want)
    assert stored_bytes(e) == 48 * 4 / 8 + 3 + 4  # nibbles, an e4m3 scale per 16, FP32 tensor
    assert DType.NVFP4.bits == 4.5 and DType.FP4_E2M1.bits == 4.25
    assert DType.parse("nvfp4") is DType.NVFP4 and DType.parse("fp4") is DType.FP4_E2M1


def test_nvfp4_of_zeros_is_zeros() -> None:
    np.testing.assert_array_equal(quantize(np.zeros((2, 16), np.float32), DType.NVFP4),
                                  np.zeros((2, 16), np.float32))
