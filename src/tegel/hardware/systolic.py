"""Cycles of a GEMM on an R x C systolic array: fill, compute and drain, folded over the array.

out[M, N] = a[M, K] @ w[K, N] on an array of R rows and C columns of multiply-accumulate PEs.
Each dataflow keeps one operand tile in the array and streams the rest through it:

- weight-stationary (ws): a K x N weight tile (K on rows, N on columns) stays; the M input
  rows stream in from the left, partial sums flow down. Folds: ceil(K/R) x ceil(N/C); a fold
  streams S = M rows.
- input-stationary (is): an input tile (K on rows, M on columns) stays; the N weight columns
  stream. Folds: ceil(K/R) x ceil(M/C); S = N.
- output-stationary (os): an M x N output tile (M on rows, N on columns) accumulates in place;
  K steps of a and w stream in from the left and the top. Folds: ceil(M/R) x ceil(N/C); S = K.

Timing (checked cycle by cycle against a register-level reference in tests/simulate):
the stationary operand shifts in row by row (R cycles) or the results shift out (R cycles);
operands enter skewed by one cycle per row and column, so the last of a fold's S items leaves
R + C - 2 cycles after it entered. Loading and draining are double-buffered (the TPU's shadow
weight registers, shadow accumulators): fold f+1 starts max(S, R) cycles after fold f. So

    cycles = (F - 1) * max(S, R) + S + 2R + C - 2        with F = folds per array

and `count` arrays share the folds (F = ceil(folds / count)). Utilisation is useful MACs over
the MACs the arrays could do in that time, M N K / (cycles R C count) — the achievable fraction
of peak the cost engine uses as compute efficiency for systolic chips.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from tegel.errors import TegelError

Dataflow = Literal["weight_stationary", "output_stationary", "input_stationary"]
SHORT_NAMES: dict[str, Dataflow] = {"ws": "weight_stationary", "os": "output_stationary",
                                    "is": "input_stationary"}


@dataclass(frozen=True, slots=True)
class SystolicCycles:
    """A GEMM's schedule on `count` R x C arrays: folds, stream length, cycles, utilisation."""

    m: int
    n: int
    k: int
    rows: int
    cols: int
    count: int
    dataflow: Dataflow
    folds: int  # tiles of the stationary operand (or output) over all arrays
    stream: int  # items streamed through the array per fold (S)
    cycles: int

    @property
    def macs(self) -> int:
        return self.m * self.n * self.k

    @property
    def utilisation(self) -> float:
        """Useful MACs / (cycles x PEs): the fraction of the arrays' peak the GEMM achieves."""
        return self.macs / (self.cycles * self.rows * self.cols * self.count) if self.cycles else 0.0

    def to_dict(self) -> dict[str, object]:
        return {"m": self.m, "n": self.n, "k": self.k, "array": f"{self.rows}x{self.cols}",
                "arrays": self.count, "dataflow": self.dataflow, "folds": self.folds,
                "stream": self.stream, "cycles": self.cycles, "utilisation": self.utilisation}


def gemm_cycles(m: int, n: int, k: int, rows: int, cols: int, dataflow: str,
                count: int = 1) -> SystolicCycles:
    """Cycles of out[m, n] = a[m, k] @ w[k, n] on `count` rows x cols arrays (module doc).

    `dataflow` is weight_stationary | output_stationary | input_stationary (or ws/os/is).
    Operands are on chip; a zero-sized GEMM takes 0 cycles.
    """
    flow = SHORT_NAMES.get(dataflow, dataflow)
    if flow not in SHORT_NAMES.values():
        raise TegelError(f"dataflow must be ws, os or is, got {dataflow!r}")
    if min(rows, cols, count) < 1 or min(m, n, k) < 0:
        raise TegelError(f"bad GEMM {m}x{n}x{k} on {count} x {rows}x{cols} array(s)")
    if flow == "weight_stationary":
        folds, stream = math.ceil(k / rows) * math.ceil(n / cols), m
    elif flow == "input_stationary":
        folds, stream = math.ceil(k / rows) * math.ceil(m / cols), n
    else:
        folds, stream = math.ceil(m / rows) * math.ceil(n / cols), k
    per_array = math.ceil(folds / count)
    if per_array == 0 or stream == 0:
        cycles = 0
    else:
        cycles = (per_array - 1) * max(stream, rows) + stream + 2 * rows + cols - 2
    return SystolicCycles(m, n, k, rows, cols, count, flow, folds, stream, cycles)  # type: ignore[arg-type]


def parse_array(text: str) -> tuple[int, int]:
    """'128x128' -> (128, 128)."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match or min(int(match[1]), int(match[2])) < 1:
        raise TegelError(f"--array: expected RxC with positive integers, e.g. 128x128, got {text!r}")
    return int(match[1]), int(match[2])
