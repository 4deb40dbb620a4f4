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
R + C - 2 cycles after it entered. How folds follow each other is the array's `fold_overlap`:

- `double_buffered` (the default; the TPU's shadow weight registers, shadow accumulators):
  loading and draining overlap the neighbouring folds' streams, fold f+1 starts max(S, R)
  cycles after fold f, so

      cycles = (F - 1) * max(S, R) + S + 2R + C - 2        with F = folds per array

- `none` (SCALE-Sim v3's timing): a fold starts when the previous one has left the array, so
  each pays its own fill and drain: F * (S + 2R + C - 2) for ws and is, F * (S + R + C - 2) for
  os, where SCALE-Sim lets results leave as their PE finishes instead of shifting them out
  (scalesim/compute/systolic_compute_{ws,is,os}.py at scale-sim-v3 fab89b7; docs/simulation.md).

Either way cycles = fill + compute + drain, split by time: `compute` is the F * S cycles in
which a streamed item enters the array, `fill` the cycles spent waiting for a stationary tile
to load (ws, is), `drain` those after a fold's last item entered until its last result left
(and, os double-buffered, waits for the results to shift out). `count` arrays share the folds
(F = ceil(folds / count)). `taps` GEMMs of the same shape into the same output (a convolution
whose kernel window the array loops in time, `conv_unroll: channels`) are `taps` times the folds
of one (ws, is), or a `taps` times longer stream per fold (os). Utilisation is useful MACs over
the MACs the arrays could do in that time, M N K taps / (cycles R C count) — the achievable
fraction of peak the cost engine uses as compute efficiency for systolic chips.
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
FoldOverlap = Literal["double_buffered", "none"]
FOLD_OVERLAPS: tuple[FoldOverlap, ...] = ("double_buffered", "none")


@dataclass(frozen=True, slots=True)
class SystolicCycles:
    """A GEMM's schedule on `count` R x C arrays: folds, stream length, and its cycles split
    into fill, compute and drain (module doc), which sum to `cycles`."""

    m: int
    n: int
    k: int
    rows: int
    cols: int
    count: int
    dataflow: Dataflow
    folds: int  # tiles of the stationary operand (or output) over all arrays
    stream: int  # items streamed through the array per fold (S)
    fill: int  # cycles waiting for stationary tiles to load
    compute: int  # cycles in which a streamed item enters the array
    drain: int  # cycles after a fold's last item entered until its results left
    fold_overlap: FoldOverlap = "double_buffered"
    taps: int = 1  # GEMMs of this shape accumulated into one output, one after the other

    @property
    def cycles(self) -> int:
        """Cycles from the first load until the last result has left the array."""
        return self.fill + self.compute + self.drain

    @property
    def scalesim_total_cycles(self) -> int:
        """`cycles` as SCALE-Sim v3 reports its 'Total Cycles': the 0-based index of the last
        cycle, one less (memory/double_buffered_scratchpad_mem.py: total_cycles =
        max(ofmap_serviced_cycles), demand line i serviced at cycle i)."""
        return max(self.cycles - 1, 0)

    @property
    def macs(self) -> int:
        return self.m * self.n * self.k * self.taps

    @property
    def utilisation(self) -> float:
        """Useful MACs / (cycles x PEs): the fraction of the arrays' peak the GEMM achieves."""
        return self.macs / (self.cycles * self.rows * self.cols * self.count) if self.cycles else 0.0

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "m": self.m, "n": self.n, "k": self.k, "array": f"{self.rows}x{self.cols}",
            "arrays": self.count, "dataflow": self.dataflow, "fold_overlap": self.fold_overlap,
            "folds": self.folds, "stream": self.stream, "cycles": self.cycles, "fill": self.fill,
            "compute": self.compute, "drain": self.drain, "utilisation": self.utilisation}
        if self.taps != 1:
            out["taps"] = self.taps
        if self.fold_overlap == "none":
            out["scalesim_total_cycles"] = self.scalesim_total_cycles
        return out


def gemm_cycles(m: int, n: int, k: int, rows: int, cols: int, dataflow: str,
                count: int = 1, fold_overlap: str = "double_buffered",
                taps: int = 1) -> SystolicCycles:
    """Cycles of out[m, n] = a[m, k] @ w[k, n] on `count` rows x cols arrays (module doc), or
    of `taps` such GEMMs accumulated into one out, one after the other.

    `dataflow` is weight_stationary | output_stationary | input_stationary (or ws/os/is);
    `fold_overlap` double_buffered | none. Operands are on chip; a zero-sized GEMM takes 0 cycles.
    """
    flow = SHORT_NAMES.get(dataflow, dataflow)
    if flow not in SHORT_NAMES.values():
        raise TegelError(f"dataflow must be ws, os or is, got {dataflow!r}")
    if fold_overlap not in FOLD_OVERLAPS:
        raise TegelError(f"fold_overlap must be double_buffered or none, got {fold_overlap!r}")
    if min(rows, cols, count, taps) < 1 or min(m, n, k) < 0:
        raise TegelError(f"bad GEMM {m}x{n}x{k} on {count} x {rows}x{cols} array(s)")
    if flow == "weight_stationary":
        folds, stream = math.ceil(k / rows) * math.ceil(n / cols), m
    elif flow == "input_stationary":
        folds, stream = math.ceil(k / rows) * math.ceil(m / cols), n
    else:  # the outputs stay: the taps lengthen each fold's stream
        folds, stream = math.ceil(m / rows) * math.ceil(n / cols), k * taps
    if flow != "output_stationary":
        folds *= taps  # each tap's stationary tiles load in turn
    overlap: FoldOverlap = "none" if fold_overlap == "none" else "double_buffered"
    per_array = math.ceil(folds / count) if stream else 0
    fill, drain = _fill_drain(flow, overlap, per_array, stream, rows, cols)
    return SystolicCycles(m, n, k, rows, cols, count, flow, folds, stream,  # type: ignore[arg-type]
                          fill, per_array * stream, drain, overlap, taps)


def _fill_drain(flow: str, fold_overlap: str, folds: int, stream: int, rows: int,
                cols: int) -> tuple[int, int]:
    """Fill and drain cycles of `folds` folds of `stream` items on one array (module doc)."""
    if folds == 0:
        return 0, 0
    skew = rows + cols - 2  # the last item's way through the array once it entered
    load = 0 if flow == "output_stationary" else rows  # the stationary tile shifts in
    if fold_overlap == "none":  # SCALE-Sim: every fold loads, streams and drains alone
        return folds * load, folds * skew
    # double-buffered: the next tile loads (os: the results shift out) during this fold's
    # stream, so a fold shorter than R waits R - S for it
    wait = (folds - 1) * max(0, rows - stream)
    if load:
        return load + wait, skew
    return 0, skew + rows + wait


def parse_array(text: str) -> tuple[int, int]:
    """'128x128' -> (128, 128)."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match or min(int(match[1]), int(match[2])) < 1:
        raise TegelError(f"--array: expected RxC with positive integers, e.g. 128x128, got {text!r}")
    return int(match[1]), int(match[2])
