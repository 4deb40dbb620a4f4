"""Systolic arrays: the closed-form cycles equal a register-level cycle-by-cycle model, the
fold interval max(S, R) is the smallest without hazards, and TPU-like chips use the model."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulate.cases import system
from simulate.systolic_reference import (
    Hazard,
    input_stationary,
    output_stationary,
    weight_stationary,
)
from tegel.cli import main
from tegel.errors import TegelError
from tegel.hardware.systolic import gemm_cycles, parse_array
from tegel.mapping.compiler import compile_for
from tegel.workload import DType, GraphBuilder
from tegel.workload.ir import MatMul, OpKind

REFERENCE = {"ws": (weight_stationary, 0), "os": (output_stationary, 2), "is": (input_stationary, 1)}
SHAPES = [(r, c, m, n, k) for r, c in ((1, 1), (2, 3), (3, 2), (4, 4))
          for m, n, k in itertools.product((1, 3, 6), (1, 4), (2, 5))]


def _stream(flow: str, m: int, n: int, k: int) -> int:
    return {"ws": m, "is": n, "os": k}[flow]


@pytest.mark.parametrize("flow", ["ws", "os", "is"])
@pytest.mark.parametrize(("rows", "cols", "m", "n", "k"), SHAPES)
def test_closed_form_equals_cycle_model(flow: str, rows: int, cols: int, m: int, n: int, k: int) -> None:
    rng = np.random.default_rng(rows * 1000 + cols * 100 + m * 10 + n + k)
    a, w = rng.integers(-4, 5, (m, k)), rng.integers(-4, 5, (k, n))
    closed = gemm_cycles(m, n, k, rows, cols, flow)
    interval = max(_stream(flow, m, n, k), rows)
    out, cycles = REFERENCE[flow][0](a, w, rows, cols, interval)
    np.testing.assert_array_equal(out, a @ w)
    assert cycles == closed.cycles
    if closed.folds > 1:  # one cycle less between folds overwrites or misses a register
        with pytest.raises(Hazard):
            REFERENCE[flow][0](a, w, rows, cols, interval - 1)


def test_known_values() -> None:
    # one fold: load R, stream M, skew R + C - 2
    assert gemm_cycles(128, 128, 128, 128, 128, "ws").cycles == 128 + 128 + 128 + 128 - 2
    big = gemm_cycles(4096, 4096, 4096, 128, 128, "ws")
    assert big.folds == 32 * 32 and big.utilisation > 0.99
    decode = gemm_cycles(1, 4096, 4096, 128, 128, "ws")  # a decode step: weight loads dominate
    assert decode.utilisation == pytest.approx(1 / 128, rel=0.02)
    four = gemm_cycles(1, 4096, 4096, 128, 128, "ws", count=4)
    assert four.cycles == pytest.approx(decode.cycles / 4, rel=0.01)
    assert gemm_cycles(0, 8, 8, 4, 4, "os").cycles == 0


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 600), st.integers(1, 600), st.integers(1, 600), st.sampled_from(["ws", "os", "is"]),
       st.integers(1, 64), st.integers(1, 64))
def test_utilisation_is_a_fraction_and_more_work_never_takes_fewer_cycles(
        m: int, n: int, k: int, flow: str, rows: int, cols: int) -> None:
    c = gemm_cycles(m, n, k, rows, cols, flow)
    assert 0 < c.utilisation <= 1
    assert gemm_cycles(m + 1, n, k, rows, cols, flow).cycles >= c.cycles
    assert gemm_cycles(m, n, k + 1, rows, cols, flow).cycles >= c.cycles


def test_tpu_gemm_efficiency_is_the_systolic_utilisation() -> None:
    tpu = system("tpu-v6e")
    arr = tpu.chip.tiles.compute.systolic
    assert arr is not None
    g = GraphBuilder("gemm", DType.BF16)
    x = g.input("x", (1, 256, 1024), DType.BF16)
    wt = g.weight("w", (512, 1024), DType.BF16)
    out = g.op1(OpKind.MATMUL, MatMul(transpose_b=True), (x, wt), "mm")
    plan = compile_for(g.build((out,)), tpu)
    expected = gemm_cycles(256, 512, 1024, arr.rows, arr.cols, arr.dataflow, arr.count).utilisation
    assert plan.split(0, "mm").utilisation == pytest.approx(expected)


def test_gemm_cli(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gemm", "128", "128", "128", "--array", "128x128", "--dataflow", "ws", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["cycles"] == 510 and data["dataflow"] == "weight_stationary"
    assert main(["gemm", "64", "64", "64", "--array", "8x16", "--dataflow", "os"]) == 0
    text = capsys.readouterr().out
    assert f"cycles       {gemm_cycles(64, 64, 64, 8, 16, 'os').cycles}" in text and "utilisation" in text
    assert main(["gemm", "1", "1", "1", "--array", "8by8", "--dataflow", "is"]) == 2
    assert "--array" in capsys.readouterr().err
    with pytest.raises(TegelError):
        parse_array("0x4")
