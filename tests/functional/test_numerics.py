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
