"""Number formats: parsing names and aliases, storage bits (block scales included), compute class."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tegel.workload.dtypes import DType


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("fp32", DType.FP32),
        ("float32", DType.FP32),
        ("bfloat16", DType.BF16),
        ("BF16", DType.BF16),
        ("float16", DType.FP16),
        ("fp8", DType.FP8_E4M3),
        ("e4m3", DType.FP8_E4M3),
        ("FP8-E4M3", DType.FP8_E4M3),
        ("e5m2", DType.FP8_E5M2),
        ("fp8_e5m2", DType.FP8_E5M2),
        ("fp4", DType.FP4_E2M1),
        ("mxfp4", DType.FP4_E2M1),
        ("fp4-e2m1", DType.FP4_E2M1),
        ("nvfp4", DType.NVFP4),
        ("NVFP4-E2M1", DType.NVFP4),
        ("  int4 ", DType.INT4),
        ("int8", DType.INT8),
        ("Int32", DType.INT32),
        ("int64", DType.INT64),
    ],
)
def test_parse_accepts_names_and_aliases(text: str, expected: DType) -> None:
    assert DType.parse(text) is expected


@pytest.mark.parametrize("dtype", list(DType))
def test_parse_round_trips_every_value(dtype: DType) -> None:
    assert DType.parse(dtype.value) is dtype
    assert DType.parse(dtype.value.upper().replace("_", "-")) is dtype


@pytest.mark.parametrize("text", ["fp12", "float8", "", "bf-16x"])
def test_parse_rejects_unknown_names_listing_valid_ones(text: str) -> None:
    with pytest.raises(ValueError, match="unknown dtype") as info:
        DType.parse(text)
    message = str(info.value)
    assert repr(text) in message
    for name in ("fp32", "bf16", "fp8_e4m3", "fp4_e2m1", "int4", "bfloat16", "mxfp4"):
        assert name in message


@pytest.mark.parametrize(
    ("dtype", "bits"),
    [
        (DType.FP32, 32.0),
        (DType.BF16, 16.0),
        (DType.FP16, 16.0),
        (DType.FP8_E4M3, 8.0),
        (DType.FP8_E5M2, 8.0),
        (DType.FP4_E2M1, 4.25),  # 4-bit element + one 8-bit scale per 32
        (DType.NVFP4, 4.5),  # 4-bit element + one FP8 scale per 16 (tensor scale not counted)
        (DType.INT8, 8.5),  # 8 + 16/32: one fp16 scale per block of 32
        (DType.INT4, 4.5),  # 4-bit element + one fp16 scale per group of 32
        (DType.INT32, 32.0),
        (DType.INT64, 64.0),
    ],
)
def test_bits_include_block_scale_share(dtype: DType, bits: float) -> None:
    assert dtype.bits == bits


@pytest.mark.parametrize(
    ("dtype", "cls"),
    [
        (DType.FP32, "fp32"),
        (DType.BF16, "bf16"),
        (DType.FP16, "fp16"),
        (DType.FP8_E4M3, "fp8"),
        (DType.FP8_E5M2, "fp8"),
        (DType.FP4_E2M1, "fp4"),
        (DType.NVFP4, "fp4"),
        (DType.INT8, "int8"),
        (DType.INT4, "int4"),
    ],
)
def test_compute_class(dtype: DType, cls: str) -> None:
    assert dtype.compute_class == cls


def test_float_flags() -> None:
    floats = {d for d in DType if d.info.is_float}
    assert floats == {
        DType.FP32, DType.BF16, DType.FP16, DType.FP8_E4M3, DType.FP8_E5M2, DType.FP4_E2M1,
        DType.NVFP4,
    }


def test_nbytes_of_known_sizes() -> None:
    assert DType.BF16.nbytes(1024) == 2048
    assert DType.FP8_E4M3.nbytes(1024) == 1024
    assert DType.FP4_E2M1.nbytes(32) == 17  # 16 B of nibbles + 1 B scale
    assert DType.NVFP4.nbytes(32) == 18  # 16 B of nibbles + 2 B of FP8 scales
    assert DType.INT4.nbytes(32) == 18  # 16 B of nibbles + 2 B fp16 scale
    assert DType.FP32.nbytes(0) == 0


@settings(max_examples=50, deadline=None)
@given(st.sampled_from(list(DType)), st.integers(0, 10**6), st.integers(0, 10**6))
def test_nbytes_is_linear_and_non_negative(dtype: DType, a: int, b: int) -> None:
    assert dtype.nbytes(a) >= 0
    assert dtype.nbytes(a + b) == pytest.approx(dtype.nbytes(a) + dtype.nbytes(b))
    assert dtype.nbytes(a) == pytest.approx(a * dtype.bits / 8)
